"""Stage 8: SUPERB-style ASR on a frozen upstream, through stock ESPnet ASR training.

    python -m espnet_hubert_ae.bin.superb_asr --upstream progressive_tiny_120/p2/step60 \\
        --config superb_tiny --train_set dump/raw/train_pretrain \\
        --valid_set dump/raw/dev_clean --eval_sets dump/raw/dev_clean dump/raw/test_clean

The upstream (a registered name or a checkpoint .pth with config.yaml beside it) stays
frozen; a softmax-weighted sum of all its hidden states feeds a BiLSTM trained with CTC over
characters; dev/test sets are decoded greedily and scored (WER, CER). Results go to
``<exp_dir>/results.{json,md}``.

s3prl's own SUPERB runner works with the same upstream (its task configs come from s3prl's
source tree; see ``espnet_hubert_ae.bin.run_downstream``)::

    python -m espnet_hubert_ae.bin.run_downstream -m train -u hubert_ae_local -k <checkpoint or name> \\
        -d asr -c <s3prl source>/s3prl/downstream/asr/config.yaml -p exp/superb_s3prl/<name>

(``python -m s3prl.main SuperbASR`` does not import with s3prl 0.4.18's wheel: its problem
package needs the HEAR scoring dependencies.)
"""

from __future__ import annotations

from espnet_hubert_ae.asr.cli import experiment_parser, run_experiment_cli
from espnet_hubert_ae.asr.pipeline import run_superb
from espnet_hubert_ae.utils.cli import cli_main, limit_threads
from espnet_hubert_ae.utils.naming import upstream_tag


def build_parser():
    p = experiment_parser(__doc__, "superb", "exp/asr_superb", "<exp_root>/<config name>/<upstream>")
    p.add_argument("--upstream_name", default="hubert_ae_local", help="s3prl hub entry that loads --upstream")
    return p


def _run(args):
    exp_dir = args.exp_dir or args.exp_root / args.config.stem / upstream_tag(args.upstream)
    run_superb(args.upstream, args.config, exp_dir, args.train_set, args.valid_set, args.eval_sets,
               upstream_name=args.upstream_name, token_text_dirs=args.token_text_sets, ngpu=args.ngpu,
               seed=args.seed, lm=args.lm)


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    limit_threads()
    return run_experiment_cli(args, _run)


if __name__ == "__main__":
    raise SystemExit(main())
