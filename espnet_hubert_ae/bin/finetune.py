"""Stage 9: CTC fine-tuning of a whole pretrained model, optionally with its top layers reset.

    python -m espnet_hubert_ae.bin.finetune --upstream progressive_tiny_120/p2/step60 \\
        --config finetune_10h --train_set dump/raw/train_10h \\
        --valid_set dump/raw/dev_other --eval_sets dump/raw/dev_clean dump/raw/test_clean \\
        --reset_top_layers 2

The encoder of the pretraining checkpoint (a registered name or a .pth with config.yaml
beside it) starts ESPnet's torchaudio HuBERT encoder; ``--reset_top_layers N``
re-initialises its top N transformer layers first (the direct test of the "autoencoder
behaviour"). Dev/test sets are decoded greedily and scored (WER, CER); results go to
``<exp_dir>/results.{json,md}``.
"""

from __future__ import annotations

from espnet_hubert_ae.asr.cli import experiment_parser, run_experiment_cli
from espnet_hubert_ae.asr.pipeline import run_finetune
from espnet_hubert_ae.utils.cli import cli_main, limit_threads
from espnet_hubert_ae.utils.naming import upstream_tag


def build_parser():
    p = experiment_parser(__doc__, "finetune_10h", "exp/finetune",
                          "<exp_root>/<config name>/<upstream>/<train set>_reset<N>")
    p.add_argument("--reset_top_layers", type=int, default=0, help="re-initialise the top N transformer layers")
    return p


def _run(args):
    if args.reset_top_layers < 0:
        raise ValueError(f"--reset_top_layers must be >= 0, not {args.reset_top_layers}")
    exp_dir = args.exp_dir or (args.exp_root / args.config.stem / upstream_tag(args.upstream)
                               / f"{args.train_set.name}_reset{args.reset_top_layers}")
    run_finetune(args.upstream, args.config, exp_dir, args.train_set, args.valid_set, args.eval_sets,
                 reset_top_layers=args.reset_top_layers, token_text_dirs=args.token_text_sets,
                 ngpu=args.ngpu, seed=args.seed, lm=args.lm)


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    limit_threads()
    return run_experiment_cli(args, _run)


if __name__ == "__main__":
    raise SystemExit(main())
