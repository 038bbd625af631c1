"""The second-iteration question in results.json and RESULTS.md: a 2-phase restart run and a
4-phase continued run, on a hand-made experiment tree whose answers are worked out here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from espnet_hubert_ae.report.collect import collect
from espnet_hubert_ae.report.iterations import upper_layers
from espnet_hubert_ae.report.render import render
from espnet_hubert_ae.report.summary import results_json

PROBE_STD = 0.005  # per layer, over 2 seeds: the standard error of a difference is 0.005, its double 0.01
TRIAL_SPREAD = 0.01  # CCA trials at mean - 0.01, mean, mean + 0.01: sample std 0.01 over 3, 2 x SE = 0.0163

# Per run, per phase end: (probe per layer 0..4, mel CCA per layer); the MFCC targets' corrected PNMI
# is 0.44, each later phase's labels as given.
BASELINE = {  # restart: phase 2 ends lower at the top (probe -0.03 at layers 3, 4) and more input-like
    1: ([0.50, 0.55, 0.54, 0.53, 0.52], [0.90, 0.80, 0.70, 0.72, 0.75]),
    2: ([0.50, 0.55, 0.52, 0.50, 0.49], [0.90, 0.80, 0.72, 0.76, 0.80]),
}
PROGRESSIVE = {  # continued: phase 2 within the spread at the top, phases 3 and 4 above it and less input-like
    1: ([0.50, 0.52, 0.51, 0.50, 0.49], [0.90, 0.80, 0.70, 0.72, 0.75]),
    2: ([0.50, 0.52, 0.51, 0.505, 0.495], [0.90, 0.80, 0.70, 0.72, 0.75]),
    3: ([0.50, 0.53, 0.53, 0.53, 0.52], [0.90, 0.78, 0.66, 0.66, 0.68]),
    4: ([0.50, 0.54, 0.54, 0.54, 0.53], [0.90, 0.77, 0.65, 0.64, 0.66]),
}
# progressive's control (its phases on MFCC targets): the same first phase and phase 2; at the end of
# phase 3 its top layers probe 0.03 lower and are more input-like, at the end of phase 4 they probe
# as progressive's but stay as input-like as after phase 1.
CONTROL = {
    1: PROGRESSIVE[1],
    2: PROGRESSIVE[2],
    3: ([0.50, 0.53, 0.52, 0.50, 0.49], [0.90, 0.80, 0.70, 0.72, 0.75]),
    4: ([0.50, 0.54, 0.54, 0.54, 0.53], [0.90, 0.80, 0.70, 0.72, 0.75]),
}
TARGET_PNMI = {"baseline": {1: 0.44, 2: 0.33}, "progressive": {1: 0.44, 2: 0.40, 3: 0.46, 4: 0.47},
               "progressive_mfcc": {1: 0.44, 2: 0.44, 3: 0.44, 4: 0.44}}


def _write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _result(name: str, run: str, step: int, probe: list[float], mel: list[float], seeds: list[int]) -> dict:
    phone = [p + 0.1 for p in probe]
    details = {metric: {"layers": [{"trial_scores": [v - TRIAL_SPREAD, v, v + TRIAL_SPREAD]} for v in curve]}
               for metric, curve in (("mel_cca", mel), ("phone_cca", phone))}
    return {"checkpoint": {"name": name, "run": run, "step": step},
            "measures": {"phone_probe_acc": probe, "mel_cca": mel, "phone_cca": phone},
            "std": {"phone_probe_acc": [PROBE_STD if len(seeds) > 1 else 0.0] * len(probe)},
            "summary": {"phone_probe_acc": {"best_layer": 1, "best": max(probe), "top_layer_drop": 0.0,
                                            "best_layer_from_1": 1, "best_from_1": max(probe[1:])}},
            "probe": {"seeds": seeds, "majority": {str(s): 0.1 for s in seeds}}, "details": details}


def _make_run(recipe: Path, strategy: str, ends: dict, init: str, seeds: list[int], control_of: str | None = None,
              model: str = "tiny") -> list[dict]:
    name = f"{strategy}_{model}_40"
    run_dir = recipe / "exp" / "pretrain" / name
    _write(run_dir / "schedule.json", {"strategy": strategy, "model": model, "control_of": control_of,
                                       "phases": [{}] * len(ends)})
    length = 40 // len(ends)
    entries = []
    for index in ends:
        start, end = (index - 1) * length, index * length
        labels = recipe / "dump" / "targets" / f"{strategy}_p{index}" / "dev_clean"
        _write(labels / "quality.json", {"k": 100 * index, "frames": 5000, "held_out": True, "pnmi": 0.5,
                                         "pnmi_corrected": TARGET_PNMI[strategy][index], "phone_purity": 0.5,
                                         "cluster_purity": 0.3})
        _write(run_dir / f"phase{index}" / "summary.json", {
            "plan": {"index": index, "start_step": start, "end_step": end, "layer": None if index == 1 else 2,
                     "k": 100 * index, "init": "scratch" if index == 1 else init},
            "cost": {"training": {"cpu_s": 100.0}}, "labels": {"texts": {"dev_clean": str(labels / "text")}}})
        # a snapshot half-way through the phase and the phase end; step 0 in phase 1
        for step in ([0] if index == 1 else []) + [start + length // 2, end]:
            checkpoint = _write(run_dir / f"phase{index}" / f"step{step}.pth", f"{name} {step}")
            entry = {"name": f"{name}/p{index}/step{step}", "checkpoint": str(checkpoint), "config": str(checkpoint),
                     "run": name, "strategy": strategy, "phase": index, "step": step, "phase_end": step == end}
            entries.append(entry)
            probe, mel = ends[index] if step == end else ([0.3] * 5, [0.95] * 5)  # snapshots are not compared
            _write(recipe / "exp" / "analysis" / "dev_clean" / name / f"step{step}" / "results.json",
                   _result(entry["name"], name, step, probe, mel, seeds))
    return entries


def _recipe(tmp_path: Path, seeds: list[int], control: bool = False) -> Path:
    recipe = tmp_path / "recipe"
    entries = _make_run(recipe, "baseline", BASELINE, "scratch", seeds)
    entries += _make_run(recipe, "progressive", PROGRESSIVE, "continue", seeds)
    if control:  # progressive's control, and one of another model that is nobody's control here
        entries += _make_run(recipe, "progressive_mfcc", CONTROL, "continue", seeds, control_of="progressive")
        entries += _make_run(recipe, "progressive_mfcc", CONTROL, "continue", seeds, control_of="progressive",
                             model="small")
    _write(recipe / "exp" / "upstreams.json", {"version": 2, "upstreams": entries})
    _write(recipe / "exp" / "analysis" / "dev_clean" / "table.tsv", "checkpoint\tstrategy\tphase\tstep\tmeasure\tlayer\tvalue\n")
    return recipe


def test_upper_layers_are_the_top_half_of_the_transformer_layers():
    assert upper_layers(5) == [3, 4]  # 4 transformer layers
    assert upper_layers(13) == [7, 8, 9, 10, 11, 12]  # HuBERT Base
    assert upper_layers(2) == [1]


def test_restart_and_continued_runs_answered_layer_by_layer(tmp_path, repo_root):
    results = collect(_recipe(tmp_path, seeds=[1, 2]))
    found = results_json(results, "baseline")["second_iteration"]
    assert set(found) == {"baseline_tiny_40", "progressive_tiny_40"}

    baseline = found["baseline_tiny_40"]
    assert baseline["upper_layers"] == [3, 4]
    assert [p["phase"] for p in baseline["phases"]] == [1, 2] and baseline["phases"][1]["step"] == 40
    (comparison,) = baseline["comparisons"]
    assert (comparison["from_phase"], comparison["to_phase"]) == (1, 2)
    # probe at layer 3: 0.50 - 0.53 = -0.03, beyond 2 x 0.005: lower; layer 1 unchanged
    assert comparison["phone_probe_acc"]["diff"][3] == pytest.approx(-0.03)
    assert comparison["phone_probe_acc"]["call"][1:] == ["within spread", "worse", "worse", "worse"]
    # mel CCA at layer 4: 0.80 - 0.75 = +0.05 > 2 x sqrt(2 x 0.01^2 / 3) = 0.0163: more input-like
    assert comparison["mel_cca"]["diff"][4] == pytest.approx(0.05)
    assert comparison["mel_cca"]["call"][3:] == ["worse", "worse"]
    assert comparison["mel_cca"]["call"][2] == "worse"  # +0.02 > 0.0163
    assert (comparison["more_phonetic"], comparison["less_input_like"], comparison["answer"]) == (False, False, "no")
    targets = baseline["phases"][1]["targets"]
    assert targets["pnmi_corrected"] == 0.33 and targets["mfcc_pnmi_corrected"] == 0.44
    assert targets["minus_mfcc"] == pytest.approx(-0.11) and targets["k"] == 200 and targets["init"] == "scratch"
    assert baseline["phases"][0]["mel_cca"]["std"][0] == pytest.approx(TRIAL_SPREAD)
    assert baseline["phases"][0]["mel_cca"]["n"] == 3 and baseline["phases"][0]["phone_probe_acc"]["n"] == 2

    progressive = found["progressive_tiny_40"]
    assert [p["phase"] for p in progressive["phases"]] == [1, 2, 3, 4]
    assert [c["to_phase"] for c in progressive["comparisons"]] == [2, 3, 4]
    # phase 2: +0.005 at the top layers is within the spread: not more phonetic, so "no"
    p2, p3, p4 = progressive["comparisons"]
    assert p2["phone_probe_acc"]["call"][3:] == ["within spread", "within spread"] and p2["answer"] == "no"
    assert p2["less_input_like"] is False  # mel CCA unchanged
    # phases 3 and 4: +0.03 / +0.04 at the top, mel CCA -0.06 / -0.08 or more: yes
    assert p3["phone_probe_acc"]["call"][3:] == ["better", "better"] and p3["mel_cca"]["call"][3:] == ["better"] * 2
    assert (p3["answer"], p4["answer"]) == ("yes", "yes")
    assert progressive["phases"][2]["targets"]["minus_mfcc"] == pytest.approx(0.02)
    assert progressive["phases"][3]["targets"]["init"] == "continue"

    text = render(results, repo_root)
    assert "### Does a later iteration make the upper layers more phonetic and less input-like? (dev_clean)" in text
    assert "**No**: after phase 2, baseline_tiny_40's upper layers are not both more phonetic" in text
    assert "**No**: after phase 2, progressive_tiny_40's upper layers" in text
    assert "Yes: after phase 3, progressive_tiny_40's upper layers are more phonetic" in text
    assert "Yes: after phase 4, progressive_tiny_40's" in text
    assert "L3 -0.030 (down)" in text and "L4 +0.050 (up)" in text  # the numbers behind the answer
    assert "0.330 (K=200, layer 2), -0.110 vs MFCC" in text
    assert "| **3** | 0.530 ± 0.005 → 0.500 ± 0.005 (-0.030, down) |" in text


def test_a_run_is_compared_with_its_control_at_each_later_phase_end(tmp_path, repo_root):
    results = collect(_recipe(tmp_path, seeds=[1, 2], control=True))
    found = results_json(results, "baseline")["second_iteration"]
    assert found["baseline_tiny_40"]["against_control"] == []  # no run names baseline
    assert found["progressive_mfcc_tiny_40"]["against_control"] == []  # no run names the control
    (control,) = found["progressive_tiny_40"]["against_control"]  # the same model only, not small's
    assert (control["control"], control["control_strategy"]) == ("progressive_mfcc_tiny_40", "progressive_mfcc")
    p2, p3, p4 = control["comparisons"]
    assert [c["phase"] for c in (p2, p3, p4)] == [2, 3, 4] and p4["step"] == 40
    assert p4["control_checkpoint"] == "progressive_mfcc_tiny_40/p4/step40"
    # phase 2: the same values: nothing beyond the spread
    assert set(p2["phone_probe_acc"]["call"]) == {"within spread"} and p2["answer"] == "no"
    # phase 3: progressive - control at layers 3, 4: probe +0.03, +0.03 (2 x SE 0.01); mel CCA -0.06, -0.07
    # (2 x SE 0.0163): more phonetic and less input-like than the control
    assert p3["phone_probe_acc"]["diff"][3:] == pytest.approx([0.03, 0.03])
    assert p3["mel_cca"]["diff"][3:] == pytest.approx([-0.06, -0.07])
    assert (p3["more_phonetic"], p3["less_input_like"], p3["answer"]) == (True, True, "yes")
    # phase 4: the probe equal to the control's, the mel CCA 0.08 and 0.09 lower: less input-like only
    assert p4["phone_probe_acc"]["call"][3:] == ["within spread", "within spread"]
    assert p4["mel_cca"]["diff"][3:] == pytest.approx([-0.08, -0.09]) and p4["mel_cca"]["call"][3:] == ["better"] * 2
    assert (p4["more_phonetic"], p4["less_input_like"], p4["answer"]) == (False, True, "no")
    assert p4["control"]["mel_cca"]["mean"][4] == 0.75 and p4["run"]["mel_cca"]["mean"][4] == 0.66

    text = render(results, repo_root)
    assert "**progressive_tiny_40 against its control progressive_mfcc_tiny_40**" in text
    assert "Yes: at the end of phase 3, progressive_tiny_40's upper layers are more phonetic and less input-like" in text
    assert "**No**: at the end of phase 4, progressive_tiny_40's upper layers are not both more phonetic" in text
    assert "0.750 ± 0.010 → 0.660 ± 0.010 (-0.090, down)" in text
    assert "progressive_small_40" not in text and "against its control progressive_mfcc_small_40" not in text


def test_with_one_seed_nothing_is_called(tmp_path, repo_root):
    results = collect(_recipe(tmp_path, seeds=[1]))
    found = results_json(results, "baseline")["second_iteration"]
    (comparison,) = found["baseline_tiny_40"]["comparisons"]
    assert comparison["phone_probe_acc"]["call"][3] == "n/a (1 seed)"
    assert comparison["more_phonetic"] is None
    assert comparison["less_input_like"] is False  # the CCA's trials still give a spread: mel CCA rose
    assert comparison["answer"] == "no"
    text = render(results, repo_root)
    assert "more phonetic (probe): not called" in text


def test_a_run_without_the_measures_has_no_record(tmp_path):
    recipe = _recipe(tmp_path, seeds=[1, 2])
    for path in (recipe / "exp" / "analysis").glob("**/results.json"):
        result = json.loads(path.read_text())
        result["measures"] = {"word_cca": [0.1] * 5}  # analysed with --metrics word_cca only
        path.write_text(json.dumps(result))
    assert results_json(collect(recipe), "baseline")["second_iteration"] == {}
