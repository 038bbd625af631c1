"""Schedule files: parsing, validation errors, budget scaling, the plan and the LR curve."""

from __future__ import annotations

import pytest
import yaml

from espnet_hubert_ae.pretrain.schedule import (
    budget_steps,
    ScheduleError,
    load_schedule,
    lr_factor,
    parse_schedule,
    scale_schedule,
)
from espnet_hubert_ae.utils.presets import PresetError, resolve_preset

PRESETS = ["baseline", "warmstart", "height", "progressive", "progressive_mfcc", "ci_progressive", "ci_baseline"]


def two_phases(**second) -> dict:
    return {
        "phases": [
            {"steps": 100, "targets": "mfcc", "k": 50},
            {"steps": 50, "targets": 3, "k": 80, "init": "continue", **second},
        ]
    }


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load_and_plan_for_tiny_and_base(name):
    schedule = load_schedule(name)
    assert schedule.name == name
    for layers in (4, 12, 24):
        plans = schedule.plan(layers)
        assert plans[-1].end_step == schedule.total_steps
        assert all(p.layer is None or 0 <= p.layer <= layers for p in plans)


def test_baseline_is_hubert_base():
    schedule = load_schedule("baseline")
    first, second = schedule.plan(12)
    assert (first.layer, first.k, first.steps, first.init) == (None, 100, 250_000, "scratch")
    assert (second.layer, second.k, second.steps, second.init) == (6, 500, 400_000, "scratch")
    assert (schedule.loss.masked, schedule.loss.unmasked, schedule.loss.feature_penalty) == (1, 0, 10)
    assert second.run_start == second.start_step  # from scratch: a new learning-rate run
    assert schedule.plan(4)[1].layer == 2  # "6/12" scales to the model's depth


def test_progressive_mfcc_is_progressive_on_mfcc_targets():
    """The control of progressive's layer targets differs from it in its targets only."""
    progressive, control = load_schedule("progressive"), load_schedule("progressive_mfcc")
    assert (control.loss, control.lr, control.total_steps) == (progressive.loss, progressive.lr, progressive.total_steps)
    for p, c in zip(progressive.plan(12), control.plan(12), strict=True):
        assert (c.start_step, c.steps, c.init, c.snapshot_steps) == (p.start_step, p.steps, p.init, p.snapshot_steps)
        assert (c.layer, c.k) == (None, 100)
    assert [p.layer for p in progressive.plan(12)] == [None, 3, 6, 9]
    assert (control.control_of, progressive.control_of) == ("progressive", "")


def test_presets_document_their_settings():
    for name in PRESETS[:4]:
        text = resolve_preset("strategy", name).read_text()
        assert "Reconstructed" in text or "Paper settings" in text, name


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"phases": [{"steps": 10, "targets": "mfcc", "k": 5, "colour": 1}]}, "unknown key"),
        ({"phases": [{"steps": 10, "targets": "mfcc", "k": 5}], "extra": 1}, "unknown key"),
        ({"phases": [{"steps": 0, "targets": "mfcc", "k": 5}]}, "must be positive"),
        ({"phases": [{"steps": 10, "targets": "mfcc"}]}, "missing 'k'"),
        ({"phases": [{"steps": 10, "targets": "mfcc", "k": 5, "init": "continue"}]}, "phase 1 has init: continue"),
        ({"phases": [{"steps": 10, "targets": 6, "k": 5}]}, "phase 1 has targets from a layer"),
        ({"phases": [{"steps": 10, "targets": "mfcc", "k": 5}, {"steps": 5, "targets": -1, "k": 5}]}, "negative"),
        ({"phases": [{"steps": 10, "targets": "mfcc", "k": 5}, {"steps": 5, "targets": "9/6", "k": 5}]}, "N-layer model"),
        ({"phases": [{"steps": 10, "targets": "mfcc", "k": 5, "init": "warm"}]}, "init must be"),
        ({"phases": [{"steps": 10, "targets": "mfcc", "k": 5, "warmup": 20}]}, "longer than the phase"),
        ({"phases": [{"steps": 10, "targets": "mfcc", "k": 5, "snapshots": [11]}]}, "not within the phase"),
        ({"phases": []}, "non-empty list"),
        ({"phases": [{"steps": 10, "targets": "mfcc", "k": 5}], "lr": {"decay": "cosine"}}, "decay must be"),
        ({"phases": [{"steps": 10, "targets": "mfcc", "k": 5}], "loss": {"masked": -1}}, "number >= 0"),
    ],
)
def test_validation_errors_name_the_fault(raw, message):
    with pytest.raises(ScheduleError, match=message) as info:
        parse_schedule(raw, source="s.yaml")
    assert "s.yaml" in str(info.value)


def test_layer_beyond_the_model_is_refused():
    schedule = parse_schedule(two_phases(targets=9), source="s.yaml")
    with pytest.raises(ScheduleError, match="phase 2 clusters layer 9, but the model has layers 0..4"):
        schedule.plan(4)
    assert schedule.plan(12)[1].layer == 9


def test_unknown_preset_and_missing_file(tmp_path):
    with pytest.raises(PresetError, match="unknown strategy 'nope'.*baseline"):
        load_schedule("nope")
    with pytest.raises(PresetError, match="not found"):
        load_schedule(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("phases: [unclosed")
    with pytest.raises(ScheduleError, match="not valid YAML"):
        load_schedule(bad)


def test_schedule_file_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(two_phases()))
    schedule = load_schedule(path)
    assert schedule.name == "mine" and schedule.total_steps == 150


def test_budget_scales_every_phase_proportionally():
    schedule = load_schedule("progressive")
    for budget in (600, 300, 37):
        scaled = scale_schedule(schedule, budget)
        assert scaled.total_steps == budget
        assert all(p.steps >= 1 for p in scaled.phases)
    half = scale_schedule(schedule, 200)
    assert [p.steps for p in half.phases] == [62, 46, 46, 46]
    with pytest.raises(ScheduleError, match="less than one step per phase"):
        scale_schedule(schedule, 3)


def test_budget_keeps_the_presets_ratios_or_gives_equal_totals():
    # ratio: one factor for every strategy; the reference gets the budget itself
    assert budget_steps("baseline", 2600, "ratio", reference="baseline") == 2600
    assert budget_steps("progressive", 2600, "ratio", reference="baseline") == 1300  # 325k of 650k
    assert budget_steps("warmstart", 2600, "ratio", reference="baseline") == 1600  # 400k of 650k
    assert budget_steps("progressive", 2600, "equal", reference="baseline") == 2600
    assert budget_steps("progressive", 2600, "ratio") == 2600  # no reference: its own total
    assert budget_steps("progressive", None, "ratio", reference="baseline") is None  # the schedule's own
    with pytest.raises(ScheduleError, match="budget mode"):
        budget_steps("progressive", 100, "half")


def test_snapshots_count_and_phase_end_always_kept():
    schedule = parse_schedule({"phases": [{"steps": 100, "targets": "mfcc", "k": 5, "snapshots": 4}]}, source="s")
    assert schedule.plan(4)[0].snapshot_steps == (0, 25, 50, 75, 100)  # 0: the untrained model
    plans = parse_schedule(two_phases(snapshots=[10, 20]), source="s").plan(4)
    assert plans[0].snapshot_steps == (0, 100)
    assert plans[1].snapshot_steps == (110, 120, 150)  # global steps


def test_snapshot_every_gives_every_strategy_the_same_resolution():
    plans = parse_schedule(two_phases(snapshots=[10, 20]), source="s").plan(4, snapshot_every=40)
    assert plans[0].snapshot_steps == (0, 40, 80, 100)  # the schedule's own snapshots are replaced
    assert plans[1].snapshot_steps == (120, 150)  # global multiples of 40 inside the phase, and its end
    with pytest.raises(ScheduleError, match="snapshot_every"):
        parse_schedule(two_phases(), source="s").plan(4, snapshot_every=0)


def test_lr_continues_across_a_warm_start_and_restarts_from_scratch():
    raw = two_phases()
    raw["lr"] = {"warmup": 10}
    first, second = parse_schedule(raw, source="s").plan(4)
    assert first.run_end == second.run_end == 150
    # One curve over both phases: warm-up to the peak, then linear decay to 0 at step 150.
    assert lr_factor(first, 0) == pytest.approx(0.1)
    assert lr_factor(first, 9) == pytest.approx(1.0)
    assert lr_factor(first, 99) == pytest.approx(1 - 89 / 140)
    assert lr_factor(second, 100) == pytest.approx(1 - 90 / 140)  # no jump, no second warm-up
    assert lr_factor(second, 150) == pytest.approx(0.0)

    raw["phases"][1]["init"] = "scratch"
    first, second = parse_schedule(raw, source="s").plan(4)
    assert first.run_end == 100 and second.run_start == 100
    assert lr_factor(second, 100) == pytest.approx(0.1)  # a new model warms up again


def test_continued_phase_can_ask_for_a_warmup():
    raw = two_phases(warmup=5)
    _, second = parse_schedule(raw, source="s").plan(4)
    plain = lr_factor(parse_schedule(two_phases(), source="s").plan(4)[1], 100)
    assert lr_factor(second, 100) == pytest.approx(plain / 5)
    assert lr_factor(second, 104) == pytest.approx(lr_factor(parse_schedule(two_phases(), source="s").plan(4)[1], 104))
