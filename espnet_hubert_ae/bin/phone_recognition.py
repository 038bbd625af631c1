"""Stage 8: SUPERB's phoneme-recognition probe (PR) on a frozen upstream.

    python -m espnet_hubert_ae.bin.phone_recognition --upstream fbank progressive_tiny_120/p2/step60 \\
        --config pr_tiny --train_set dump/raw/train_1h --valid_set dump/raw/dev_clean \\
        --eval_sets dump/raw/dev_clean --seeds "1 2"

For each upstream (as in ``superb_asr``), a learnable softmax-weighted sum of its hidden
states (or of ``fbank``, the 80-d log-mel control) feeds a single linear layer trained with CTC
over phones, once per seed, on the same feature cache as ``superb_asr``; sets are decoded
greedily and scored by phone error rate (PER) and empty hypotheses. References are the phones
of each set's ``phones.ctm`` without silence: in the data directory itself (stage 3 writes
them there), else in ``<alignment dir>/<set name>/``. Results go to ``<exp_dir>/seed<N>/``
and, over the seeds, to ``<exp_dir>/summary.{json,md}``.
"""

from __future__ import annotations

from pathlib import Path

from espnet_hubert_ae.asr.cli import add_cache_options, experiment_parser, run_experiment_cli
from espnet_hubert_ae.asr.pipeline import run_frozen
from espnet_hubert_ae.asr.tokens import PHONES
from espnet_hubert_ae.defaults import PR_CONFIG
from espnet_hubert_ae.utils.cli import cli_main
from espnet_hubert_ae.utils.naming import upstream_tag


def build_parser():
    p = experiment_parser(__doc__, PR_CONFIG.librispeech, "exp/pr", "<exp_root>/<config name>/<upstream>")
    add_cache_options(p)
    p.add_argument("--alignment_dirs", type=Path, nargs="*", default=[],
                   help="where to look for <set name>/phones.ctm when a data directory has none")
    return p


def _run(args, upstream: str, control: str | None, variant=None):
    exp_dir = args.exp_dir or args.exp_root / args.config.stem / upstream_tag(upstream)
    return run_frozen(upstream, args.config, exp_dir, args.train_set, args.valid_set, args.eval_sets,
                      units=PHONES, seeds=args.seeds, control=control, cache_root=args.cache_root,
                      dtype=args.dtype, alignment_dirs=args.alignment_dirs, ngpu=args.ngpu, lm=args.lm)


@cli_main
def main(argv: list[str] | None = None) -> int:
    return run_experiment_cli(build_parser().parse_args(argv), _run)


if __name__ == "__main__":
    raise SystemExit(main())
