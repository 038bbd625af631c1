"""bench phases: the per-phase figures it prints, from the phase summaries a run leaves."""

from __future__ import annotations

import json

import pytest

from espnet_hubert_ae.bench.phases import phase_rows


def test_phase_rows_split_each_phase_into_targets_training_loop_and_overhead(tmp_path):
    for index, (targets, loop, phase) in enumerate([(10.0, 80.0, 100.0), (20.0, 40.0, 70.0)], 1):
        summary = {"phase": index, "steps": 200, "plan": {"init": "scratch" if index == 1 else "continue"},
                   "timing": {"targets_s": targets, "loop_s": loop, "phase_s": phase}}
        (tmp_path / f"phase{index}").mkdir()
        (tmp_path / f"phase{index}" / "summary.json").write_text(json.dumps(summary))
    first, second = phase_rows(tmp_path)
    assert first["steps_per_s"] == pytest.approx(2.5) and second["steps_per_s"] == pytest.approx(5.0)
    assert first["overhead_s"] == pytest.approx(10.0)  # 100 - 10 targets - 80 loop
    assert first["overhead_share_of_phase"] == pytest.approx(0.1)
    assert second["overhead_share_of_training"] == pytest.approx(10.0 / 50.0)
