"""Which checkpoints stage 7 analyses: per run, step 0, the phase ends and a bounded few between."""

from __future__ import annotations

from pathlib import Path

import pytest

from espnet_hubert_ae.analysis.selection import select_checkpoints, spread_checkpoints
from espnet_hubert_ae.upstream.registry import CheckpointRef, Registry, UpstreamError


def _run(name: str, steps, phase_ends) -> list[CheckpointRef]:
    refs, phase = [], 1
    for step in steps:
        refs.append(CheckpointRef(f"{name}/p{phase}/step{step}", Path(f"/x/{name}{step}.pth"), run=name,
                                  strategy=name, phase=phase, step=step, phase_end=step in phase_ends))
        phase += step in phase_ends
    return refs


def test_step_zero_the_phase_ends_and_evenly_spread_snapshots():
    refs = _run("r", range(0, 41, 2), {20, 40})  # a snapshot every 2 steps, phases end at 20 and 40
    # 3 between: nearest to 10, 20 and 30 of 40 steps, not chosen already (20 is a phase end: 18 and
    # 22 are as near, the earlier wins)
    assert [r.step for r in spread_checkpoints(refs, 3)] == [0, 10, 18, 20, 30, 40]
    assert [r.step for r in spread_checkpoints(refs, 0)] == [0, 20, 40]
    assert len(spread_checkpoints(refs, 100)) == len(refs)  # never more than there are
    with pytest.raises(ValueError, match="--between must be 0 or more"):
        spread_checkpoints(refs, -1)


def test_the_number_analysed_is_bounded_whatever_the_budget():
    for steps in (40, 400, 4000):  # the schedules' own snapshots grow with the budget ...
        ends = {steps // 4, steps // 2, 3 * steps // 4, steps}
        refs = _run("progressive", range(0, steps + 1, max(1, steps // 40)), ends)
        chosen = spread_checkpoints(refs, 4)
        assert len(chosen) == 1 + 4 + 4  # ... what is analysed does not: step 0, 4 phase ends, 4 between
        assert {r.step for r in chosen} >= {0} | ends


def test_spread_is_per_run_and_all_or_names_select_what_they_say(tmp_path):
    refs = _run("a", range(0, 11), {5, 10}) + _run("b", range(0, 21, 5), {20})
    registry = Registry(refs, tmp_path / "upstreams.json")
    spread = [r.name for r in select_checkpoints(registry, ["spread"], between=1)]
    # a: the one between is nearest to step 5, a phase end already: 4 and 6 are as near, 4 wins
    assert spread == ["a/p1/step0", "a/p1/step4", "a/p1/step5", "a/p2/step10",
                      "b/p1/step0", "b/p1/step10", "b/p1/step20"]
    assert len(select_checkpoints(registry, ["all"])) == len(refs)
    assert [r.name for r in select_checkpoints(registry, ["b/p1/step5", "spread"], between=0)][:2] == [
        "b/p1/step5", "a/p1/step0"]
    with pytest.raises(UpstreamError, match="no upstream registry"):
        select_checkpoints(Registry(), ["spread"])


@pytest.mark.parametrize("steps, snapshot_every, kept, analysed", [
    (300, None, 42, (1 + 2 + 4) + (1 + 4 + 4)),  # the schedules' own snapshots: 10 per phase (5 in progressive's)
    (1200, 300, 12, 12),  # the built-in default: one every 300 steps, each analysed
])
def test_the_presets_at_a_small_budget_analyse_a_bounded_few(steps, snapshot_every, kept, analysed):
    from espnet_hubert_ae.pretrain.schedule import budget_steps, load_schedule

    registered, chosen = 0, 0
    for strategy in ("baseline", "progressive"):
        plans = load_schedule(strategy, budget_steps(strategy, steps, "ratio", "baseline")).plan(4, snapshot_every)
        refs = [CheckpointRef(f"{strategy}/p{plan.index}/step{step}", Path("x.pth"), run=strategy, strategy=strategy,
                              phase=plan.index, step=step, phase_end=step == plan.end_step)
                for plan in plans for step in plan.snapshot_steps]
        registered += len(refs)
        chosen += len(spread_checkpoints(refs))
    assert (registered, chosen) == (kept, analysed)
