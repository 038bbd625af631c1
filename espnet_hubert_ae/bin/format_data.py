"""Stage 2: decode every audio file once, exclude bad ones, filter the pretraining set by length.

    python -m espnet_hubert_ae.bin.format_data --src data --dst dump/raw \\
        --sets train_pretrain dev_clean dev_other test_clean test_other \\
        --optional_sets train_10h train_1h train_10min --min_seconds 1 --max_seconds 30 --nj 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from espnet_hubert_ae.data.format import format_sets
from espnet_hubert_ae.defaults import MAX_SECONDS, MIN_SECONDS, PRETRAIN_SET
from espnet_hubert_ae.utils.cli import cli_main, split_names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, default=Path("data"), help="stage 1 data directories")
    p.add_argument("--dst", type=Path, default=Path("dump/raw"), help="where the checked copies go")
    p.add_argument("--sets", nargs="+", required=True, help="sets that must exist in --src")
    p.add_argument("--optional_sets", nargs="*", default=[], help="sets formatted only if --src has them")
    p.add_argument("--filter_sets", nargs="*", default=[PRETRAIN_SET], help="sets filtered by length")
    p.add_argument("--min_seconds", type=float, default=MIN_SECONDS,
                   help="shorter utterances are excluded (filter_sets)")
    p.add_argument("--max_seconds", type=float, default=MAX_SECONDS,
                   help="longer utterances are excluded (filter_sets)")
    p.add_argument("--nj", type=int, default=1, help="parallel decoding processes")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    format_sets(
        args.src,
        args.dst,
        split_names(args.sets),
        optional_sets=split_names(args.optional_sets),
        filter_sets=split_names(args.filter_sets),
        min_seconds=args.min_seconds,
        max_seconds=args.max_seconds,
        nj=args.nj,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
