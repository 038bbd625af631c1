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


def test_a_finished_run_is_read_not_trained(tmp_path, capsys):
    from espnet_hubert_ae.bench.phases import main

    (tmp_path / "schedule.json").write_text(json.dumps({"strategy": "progressive", "model": "small"}))
    for index, loop in enumerate((100.0, 110.0), 1):
        summary = {"phase": index, "steps": 100, "plan": {"init": "continue"},
                   "timing": {"targets_s": 5.0, "loop_s": loop, "phase_s": loop + 10.0}}
        (tmp_path / f"phase{index}").mkdir()
        (tmp_path / f"phase{index}" / "summary.json").write_text(json.dumps(summary))
    assert main(["--run_dir", str(tmp_path)]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["strategy"] == "progressive" and figures["steps"] == 200
    assert figures["last_vs_first_steps_per_s"] == pytest.approx(100.0 / 110.0)
    with pytest.raises(SystemExit, match="not a finished pretraining run"):
        main(["--run_dir", str(tmp_path / "phase1")])
