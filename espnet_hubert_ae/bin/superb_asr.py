"""Stage 8: SUPERB-style ASR on a frozen upstream, through ESPnet ASR training.

    python -m espnet_hubert_ae.bin.superb_asr --upstream fbank progressive_tiny_120/p2/step60 \\
        --config superb_tiny --train_set dump/raw/train_10h \\
        --valid_set dump/raw/dev_clean --eval_sets dump/raw/dev_clean dump/raw/test_clean --seeds "1 2"

Each upstream (a registered name, a checkpoint .pth with config.yaml beside it, or ``fbank``,
the 80-d log-mel control; see ``--run`` and ``--random_init`` for the others) stays frozen;
a learnable softmax-weighted sum of all its hidden states feeds a BiLSTM trained with CTC
over characters, once per seed; dev/test sets are decoded greedily and scored (WER, CER,
empty hypotheses). Results go to ``<exp_dir>/seed<N>/results.{json,md}``, their mean and
standard deviation over the seeds to ``<exp_dir>/summary.{json,md}``.

The template decides where the hidden states come from. ``frontend: layer_sum`` (the shipped
``superb*.yaml``) reads them from a feature cache, extracted once per upstream and set under
``--cache_root`` (see ``espnet_hubert_ae.bin.cache_features``). ``frontend: s3prl``
(``superb_s3prl.yaml``) runs the upstream live in every update through ESPnet's s3prl
frontend and ``hubert_ae_local``, as a stock ESPnet recipe would.

s3prl's own SUPERB runner works with the same upstream (its task configs come from s3prl's
source tree; see ``espnet_hubert_ae.bin.run_downstream``)::

    python -m espnet_hubert_ae.bin.run_downstream -m train -u hubert_ae_local -k <checkpoint or name> \\
        -d asr -c <s3prl source>/s3prl/downstream/asr/config.yaml -p exp/superb_s3prl/<name>

(``python -m s3prl.main SuperbASR`` does not import with s3prl 0.4.18's wheel: its problem
package needs the HEAR scoring dependencies.)
"""

from __future__ import annotations

from espnet_hubert_ae.asr.cli import add_cache_options, experiment_parser, run_experiment_cli
from espnet_hubert_ae.asr.pipeline import run_frozen
from espnet_hubert_ae.defaults import ASR_CHECKPOINTS_PER_RUN, SUPERB_CONFIG
from espnet_hubert_ae.utils.cli import cli_main
from espnet_hubert_ae.utils.naming import upstream_tag


def build_parser():
    p = experiment_parser(__doc__, SUPERB_CONFIG.librispeech, "exp/asr_superb", "<exp_root>/<config name>/<upstream>",
                          checkpoints_per_run=ASR_CHECKPOINTS_PER_RUN)
    add_cache_options(p)
    p.add_argument("--upstream_name", default="hubert_ae_local",
                   help="s3prl hub entry that loads --upstream (live templates)")
    return p


def _run(args, upstream: str, control: str | None, variant=None):
    exp_dir = args.exp_dir or args.exp_root / args.config.stem / upstream_tag(upstream)
    return run_frozen(upstream, args.config, exp_dir, args.train_set, args.valid_set, args.eval_sets,
                      seeds=args.seeds, control=control, cache_root=args.cache_root, dtype=args.dtype,
                      token_text_dirs=args.token_text_sets, upstream_name=args.upstream_name, ngpu=args.ngpu,
                      lm=args.lm)


@cli_main
def main(argv: list[str] | None = None) -> int:
    return run_experiment_cli(build_parser().parse_args(argv), _run)


if __name__ == "__main__":
    raise SystemExit(main())
