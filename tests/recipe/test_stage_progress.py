"""The recipe's progress line: what is done, what is left, and the time left at this run's pace."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

import espnet_hubert_ae
from espnet_hubert_ae.bin import stage_progress


def _times(path, rows):
    path.write_text("".join(f"{stage}\t{start}\t{seconds}\t./run.sh\n" for stage, start, seconds in rows))
    return path


def _epoch(text):
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").timestamp()


def test_time_left_is_the_reference_at_this_runs_pace(tmp_path, capsys):
    reference = _times(tmp_path / "reference.tsv", [(1, "2026-01-01 10:00:00", 60), (2, "2026-01-01 10:01:00", 120),
                                                    (3, "2026-01-01 10:03:00", 600), (4, "2026-01-01 10:13:00", 300)])
    # An earlier run's stage 1 (before --since) does not count; this run did 1 and 2 at 1.5x the reference's time.
    times = _times(tmp_path / "times.tsv", [(1, "2026-01-02 09:00:00", 999), (1, "2026-01-02 10:00:00", 90),
                                            (2, "2026-01-02 10:01:30", 180)])
    argv = ["--times", str(times), "--since", str(_epoch("2026-01-02 10:00:00")), "--next", "3", "--last", "4",
            "--reference", str(reference)]
    assert stage_progress.main(argv) == 0
    line = capsys.readouterr().out.strip()
    # done: 90 + 180 s = 4.5 min; left: (600 + 300) s x 1.5 = 22.5 min, printed rounded
    assert line.startswith("progress: done: stages 1-2 in 4.5 min; left: stages 3-4; about 22 min left")
    assert "x1.50" in line


def test_no_estimate_without_reference_times(tmp_path):
    line = stage_progress.progress_line({}, [5, 6], {})
    assert line == "progress: left: stages 5-6; no reference stage times to estimate from"
    # Stages the reference did not time are named, not guessed; quick stages set no pace.
    line = stage_progress.progress_line({1: 5.0}, [2, 3], {1: 100.0, 2: 120.0})
    assert line.endswith("about 2 min left by the reference run's stage times, stage 3 not included")


@pytest.mark.parametrize("run", ["demo", "study"])
def test_the_shipped_references_time_every_stage(run):
    """demo.sh's and study.sh's --progress_reference: a measured run, every stage timed."""
    times = stage_progress.read_stage_times(Path(espnet_hubert_ae.__file__).parent / "conf" / "stage_times" / f"{run}.tsv")
    assert sorted(times) == list(range(1, 11)) and all(seconds >= 0 for seconds in times.values())
