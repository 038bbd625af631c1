"""Stage 9: CTC fine-tuning of a whole pretrained model, optionally with its top layers reset.

    python -m espnet_hubert_ae.bin.finetune --upstream progressive/p2/step1200 \\
        --config conf/asr/finetune_10h.yaml --train_set dump/raw/train_10h \\
        --valid_set dump/raw/dev_other --eval_sets dump/raw/dev_clean dump/raw/test_clean \\
        --reset_top_layers 2

The encoder of the pretraining checkpoint (a registered name or a .pth with config.yaml
beside it) starts ESPnet's torchaudio HuBERT encoder; ``--reset_top_layers N``
re-initialises its top N transformer layers first (the direct test of the "autoencoder
behaviour"). Dev/test sets are decoded greedily and scored (WER, CER); results go to
``<exp_dir>/results.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from espnet_hubert_ae.asr.espnet_run import TrainingError
from espnet_hubert_ae.asr.pipeline import final_upstream, run_finetune, upstream_tag
from espnet_hubert_ae.utils.cli import cli_main, limit_threads


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--upstream", help="registered upstream name or checkpoint .pth")
    which.add_argument("--strategy", help="use the last registered checkpoint of this pretraining strategy")
    p.add_argument("--config", type=Path, default=Path("conf/asr/finetune_10h.yaml"),
                   help="ESPnet ASR config template")
    p.add_argument("--train_set", type=Path, required=True, help="labelled fine-tuning data directory")
    p.add_argument("--valid_set", type=Path, required=True, help="validation data directory (model selection)")
    p.add_argument("--eval_sets", type=Path, nargs="+", required=True, help="data directories to decode and score")
    p.add_argument("--reset_top_layers", type=int, default=0, help="re-initialise the top N transformer layers")
    p.add_argument("--token_text_sets", type=Path, nargs="*", default=[],
                   help="further labelled sets whose characters join the token list (e.g. the 10h set, so "
                        "that every split shares one list)")
    p.add_argument("--exp_root", type=Path, default=Path("exp/finetune"),
                   help="experiments go to <exp_root>/<config name>/<upstream>/<train set>_reset<N>")
    p.add_argument("--exp_dir", type=Path, default=None, help="explicit experiment directory (overrides --exp_root)")
    p.add_argument("--ngpu", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--lm", default=None, help="n-gram LM for decoding (not supported yet)")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    limit_threads()
    if args.strategy:
        args.upstream = final_upstream(args.strategy)
    if args.reset_top_layers < 0:
        raise ValueError(f"--reset_top_layers must be >= 0, not {args.reset_top_layers}")
    exp_dir = args.exp_dir or (args.exp_root / args.config.stem / upstream_tag(args.upstream)
                               / f"{args.train_set.name}_reset{args.reset_top_layers}")
    try:
        run_finetune(args.upstream, args.config, exp_dir, args.train_set, args.valid_set, args.eval_sets,
                     reset_top_layers=args.reset_top_layers, token_text_dirs=args.token_text_sets,
                     ngpu=args.ngpu, seed=args.seed, lm=args.lm)
    except TrainingError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
