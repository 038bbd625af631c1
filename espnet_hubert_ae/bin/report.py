"""Stage 10: write RESULTS.md for every pretraining run of a recipe directory.

    python -m espnet_hubert_ae.bin.report --recipe_dir . --out RESULTS.md

Reads exp/pretrain, dump/targets, exp/analysis, exp/asr_superb, exp/finetune and
exp/stage_times.tsv; a stage that has not run leaves its section saying how to run it. The
same numbers go to exp/report/results.json (schema in espnet_hubert_ae.report.summary).
Time-to-target compares every run against the reference strategy's run (``--reference_strategy``).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from espnet_hubert_ae.defaults import ANALYSIS_SET, REFERENCE_STRATEGY
from espnet_hubert_ae.report.collect import collect
from espnet_hubert_ae.report.render import render
from espnet_hubert_ae.report.summary import results_json
from espnet_hubert_ae.utils.cli import cli_main
from espnet_hubert_ae.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe_dir", type=Path, default=Path("."), help="recipe directory holding exp/ and dump/")
    p.add_argument("--out", type=Path, default=None, help="report file (default: <recipe_dir>/RESULTS.md)")
    p.add_argument("--reference_strategy", default=REFERENCE_STRATEGY, help="strategy that time-to-target is measured against")
    p.add_argument("--analysis_set", default=ANALYSIS_SET, help="analysed set whose probe results.json reports")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not (args.recipe_dir / "exp").is_dir():
        raise FileNotFoundError(f"{args.recipe_dir}/exp does not exist: run the recipe's stages 1-9 first")
    results = collect(args.recipe_dir)
    report_dir = args.recipe_dir / "exp" / "report"
    text = render(results, REPO_ROOT, args.reference_strategy, report_dir=report_dir)
    out = args.out or args.recipe_dir / "RESULTS.md"
    atomic_write_text(out, text)
    summary = results_json(results, args.reference_strategy, args.analysis_set)
    atomic_write_text(report_dir / "results.json", json.dumps(summary, indent=1) + "\n")
    logger.info("wrote %s (%d pretraining runs, %d analysed sets, %d ASR results)", out, len(results.runs),
                len(results.analyses), len(results.asr))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
