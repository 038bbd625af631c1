"""Stage 8: SUPERB-style ASR on a frozen upstream, through stock ESPnet ASR training.

    python -m espnet_hubert_ae.bin.superb_asr --upstream progressive/p2/step1200 \\
        --config conf/asr/superb_tiny.yaml --train_set dump/raw/train_pretrain \\
        --valid_set dump/raw/dev_clean --eval_sets dump/raw/dev_clean dump/raw/test_clean

The upstream (a registered name or a checkpoint .pth with config.yaml beside it) stays
frozen; a softmax-weighted sum of all its hidden states feeds a BiLSTM trained with CTC over
characters; dev/test sets are decoded greedily and scored (WER, CER). Results go to
``<exp_dir>/results.{json,md}``.

s3prl's own SUPERB runner works with the same upstream, e.g. on LibriSpeech:

    python -m s3prl.main SuperbASR --target_dir exp/superb_s3prl/<name> \\
        --prepare_data.dataset_root $LIBRISPEECH \\
        --build_upstream.name hubert_ae_local --build_upstream.path_or_url <checkpoint or name>
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from espnet_hubert_ae.asr.espnet_run import TrainingError
from espnet_hubert_ae.asr.pipeline import final_upstream, run_superb, upstream_tag
from espnet_hubert_ae.utils.cli import cli_main, limit_threads


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--upstream", help="registered upstream name or checkpoint .pth")
    which.add_argument("--strategy", help="use the last registered checkpoint of this pretraining strategy")
    p.add_argument("--config", type=Path, default=Path("conf/asr/superb.yaml"), help="ESPnet ASR config template")
    p.add_argument("--train_set", type=Path, required=True, help="labelled training data directory")
    p.add_argument("--valid_set", type=Path, required=True, help="validation data directory (model selection)")
    p.add_argument("--eval_sets", type=Path, nargs="+", required=True, help="data directories to decode and score")
    p.add_argument("--token_text_sets", type=Path, nargs="*", default=[],
                   help="more data directories whose characters join the token list (a small training set "
                        "may lack some characters of the evaluation sets)")
    p.add_argument("--exp_root", type=Path, default=Path("exp/asr_superb"),
                   help="experiments go to <exp_root>/<config name>/<upstream>")
    p.add_argument("--exp_dir", type=Path, default=None, help="explicit experiment directory (overrides --exp_root)")
    p.add_argument("--upstream_name", default="hubert_ae_local", help="s3prl hub entry that loads --upstream")
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
    exp_dir = args.exp_dir or args.exp_root / args.config.stem / upstream_tag(args.upstream)
    try:
        run_superb(args.upstream, args.config, exp_dir, args.train_set, args.valid_set, args.eval_sets,
                   upstream_name=args.upstream_name, token_text_dirs=args.token_text_sets, ngpu=args.ngpu,
                   seed=args.seed, lm=args.lm)
    except TrainingError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
