"""The recipe's progress line: stages done, stages left, and an estimate of the time left.

run.sh calls this before each stage. What is done and how long it took comes from the stage
times that run.sh records as stages finish (``exp/stage_times.tsv``: stage, start, seconds,
command), from this invocation on; the time left is a reference run's stage times
(``--reference``, a file of the same format: the measured demo or study) scaled by the pace of
this invocation's finished stages against the reference's same stages. Without a reference,
or for stages the reference did not time, it says so rather than guessing.
"""

from __future__ import annotations

import argparse
import csv
from datetime import datetime
from pathlib import Path

from espnet_hubert_ae.utils.cli import cli_main

# Stages this quick (seconds) tell nothing about pace (a rerun skips finished work in seconds).
MIN_PACE_SECONDS = 30.0
PACE_BOUNDS = (0.25, 4.0)


def read_stage_times(path: Path, since: float | None = None) -> dict[int, float]:
    """Seconds of each stage in a stage-times file, the last record of a stage winning.

    ``since`` (epoch seconds) keeps the stages that started at or after it.
    """
    times: dict[int, float] = {}
    if not path.is_file():
        return times
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.reader(f, delimiter="\t"):
            if len(row) < 3 or not row[0].isdigit():
                continue
            if since is not None and datetime.strptime(row[1], "%Y-%m-%d %H:%M:%S").timestamp() < since:
                continue
            times[int(row[0])] = float(row[2])
    return times


def progress_line(done: dict[int, float], left: list[int], reference: dict[int, float]) -> str:
    """One line: what is done (and in how long), what is left and about how long it takes."""
    parts = []
    if done:
        parts.append(f"done: {_stages(sorted(done))} in {sum(done.values()) / 60:.1f} min")
    if not left:
        return "progress: " + "; ".join(parts + ["nothing left"])
    parts.append(f"left: {_stages(left)}")
    known = [s for s in left if s in reference]
    if not known:
        parts.append("no reference stage times to estimate from")
        return "progress: " + "; ".join(parts)
    paced = [s for s in done if done[s] >= MIN_PACE_SECONDS and reference.get(s, 0) >= MIN_PACE_SECONDS]
    pace = 1.0
    if paced:
        pace = sum(done[s] for s in paced) / sum(reference[s] for s in paced)
        pace = min(max(pace, PACE_BOUNDS[0]), PACE_BOUNDS[1])
    estimate = pace * sum(reference[s] for s in known) / 60
    how = f"the reference run's stage times x{pace:.2f} (this run's pace so far)" if paced else \
        "the reference run's stage times"
    unknown = [s for s in left if s not in reference]
    parts.append(f"about {estimate:.0f} min left by {how}" +
                 (f", {_stages(unknown)} not included" if unknown else ""))
    return "progress: " + "; ".join(parts)


def _stages(stages: list[int]) -> str:
    """``stages 1-4``, ``stage 5``, or ``stages 2 5 7`` for stages that are not consecutive."""
    if len(stages) == 1:
        return f"stage {stages[0]}"
    if stages == list(range(stages[0], stages[-1] + 1)):
        return f"stages {stages[0]}-{stages[-1]}"
    return "stages " + " ".join(map(str, stages))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--times", type=Path, required=True, help="this recipe's stage times (exp/stage_times.tsv)")
    p.add_argument("--since", type=float, required=True, help="start of this invocation (epoch seconds)")
    p.add_argument("--next", type=int, required=True, help="the stage about to start")
    p.add_argument("--last", type=int, required=True, help="the last stage of this invocation")
    p.add_argument("--reference", type=Path, default=None, help="stage times of a reference run (same format)")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    done = read_stage_times(args.times, since=args.since)
    reference = read_stage_times(args.reference) if args.reference else {}
    print(progress_line(done, list(range(args.next, args.last + 1)), reference))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
