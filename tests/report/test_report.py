"""Stage 10: cost accounting, the significance rule, time-to-target, results.json and RESULTS.md
on a hand-made experiment tree."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from espnet_hubert_ae.report.collect import Phase, PretrainRun, collect
from espnet_hubert_ae.report.compare import Score, significant, time_to_target
from espnet_hubert_ae.report.render import render
from espnet_hubert_ae.report.summary import (asr_progress, asr_time_to_target, probe_time_to_target, results_json,
                                             time_to_target_json)
from espnet_hubert_ae.utils.cost import Cost

SECTIONS = ("Environment", "Commands and time per stage", "Data", "Pretraining cost", "Target quality per phase",
            "Layerwise analysis", "SUPERB-style ASR", "Phoneme recognition", "Libri-light fine-tuning", "Time to target",
            "Plots")
STEPS = (0, 10, 20, 30, 40)
# Best transformer layer's probe per checkpoint (2 seeds, std 0.01 each): progressive gets to
# the baseline's final score half-way; both start at the untrained model's 0.25.
PROBE = {"baseline": (0.25, 0.3, 0.4, 0.5, 0.6), "progressive": (0.25, 0.4, 0.6, 0.62, 0.65)}
TRAINING_CPU = {"baseline": 600.0, "progressive": 300.0}  # per phase of 20 steps


def _phase(index, start, end, training, targets=0.0):
    return Phase(index, start, end, "mfcc", 100, "scratch", Cost(cpu_s=targets, wall_s=2 * targets),
                 Cost(cpu_s=training, wall_s=2 * training), {})


def test_cost_counts_earlier_phases_whole_and_the_current_ones_training_pro_rata():
    run = PretrainRun("r", "baseline", "tiny", Path("."), [_phase(1, 0, 10, 100.0, targets=10.0),
                                                           _phase(2, 10, 30, 200.0, targets=20.0)], True)
    assert run.cost().cpu_s == pytest.approx(330.0)
    assert run.cost(0).cpu_s == 0.0
    assert run.cost(5).cpu_s == pytest.approx(10.0 + 50.0)  # targets are paid before the first step
    assert run.cost(10).cpu_s == pytest.approx(110.0)
    assert run.cost(20).cpu_s == pytest.approx(110.0 + 20.0 + 100.0)
    assert run.cost(30).cpu_s == run.cost(99).cpu_s == pytest.approx(330.0)
    assert run.cost(20).wall_s == pytest.approx(2 * 230.0)


def test_a_difference_counts_only_beyond_twice_its_standard_error():
    assert significant(Score(0.50, 0.01, 3), Score(0.47, 0.01, 3))  # 0.03 > 2 * 0.0082
    assert not significant(Score(0.50, 0.01, 3), Score(0.49, 0.01, 3))
    assert not significant(Score(0.60, 0.0, 1), Score(0.40, 0.0, 1))  # one seed: the spread is unknown


# --- a hand-made recipe directory ------------------------------------------------------------


def _write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _checkpoint_result(entry: dict, best: float) -> dict:
    """A per-checkpoint results.json of the layerwise analysis (its keys as stage 7 writes them)."""
    curve = [0.44, best, best - 0.05]
    return {
        "checkpoint": {"name": entry["name"], "run": entry["run"], "step": entry["step"]},
        "measures": {"phone_probe_acc": curve, "mel_cca": [0.9, 0.8, 0.7]},
        "std": {"phone_probe_acc": [0.01, 0.01, 0.01]},
        "summary": {"phone_probe_acc": {"best_layer": 1, "best": best, "top_layer_drop": 0.05,
                                        "best_layer_from_1": 1, "best_from_1": best, "best_from_1_std": 0.01},
                    "mel_cca": {"best_layer": 0, "best": 0.9, "top_layer_drop": 0.2, "input_rebound": 0.0}},
        "probe": {"seeds": [1, 2], "majority": {"1": 0.1, "2": 0.12},
                  "controls": {"logmel": {"mean": 0.44, "std": 0.005}, "mfcc": {"mean": 0.48, "std": 0.004},
                               "logmel5": {"mean": 0.5, "std": 0.005, "per_seed": {"1": 0.4965, "2": 0.5035}},
                               "logmel9": {"mean": 0.55, "std": 0.005, "per_seed": {"1": 0.5465, "2": 0.5535}}}},
    }


def _make_run(recipe: Path, strategy: str) -> list[dict]:
    """A pretraining run of two 20-step phases: schedule, phase summaries, checkpoints, analysis."""
    name = f"{strategy}_tiny_40"
    run_dir = recipe / "exp" / "pretrain" / name
    _write(run_dir / "schedule.json", {"strategy": strategy, "model": "tiny", "phases": [{}, {}]})
    for index, (start, end) in enumerate(((0, 20), (20, 40)), 1):
        labels = recipe / "dump" / "targets" / f"{strategy}_p{index}" / "dev_clean"
        _write(labels / "quality.json", {"k": 100, "frames": 5000, "held_out": True, "pnmi": 0.4,
                                         "pnmi_corrected": 0.35, "phone_purity": 0.5, "cluster_purity": 0.25})
        cost = {"targets": {"cpu_s": 0.0}, "training": {"cpu_s": TRAINING_CPU[strategy], "wall_s": 60.0}}
        _write(run_dir / f"phase{index}" / "summary.json", {
            "plan": {"index": index, "start_step": start, "end_step": end, "layer": None if index == 1 else 2,
                     "k": 100, "init": "scratch"},
            "cost": cost, "labels": {"texts": {"dev_clean": str(labels / "text")}},
        })
    entries = []
    for step, best in zip(STEPS, PROBE[strategy]):
        index = 1 if step <= 20 else 2
        checkpoint = _write(run_dir / f"phase{index}" / f"step{step}.pth", "")
        entry = {"name": f"{name}/p{index}/step{step}", "checkpoint": str(checkpoint), "config": str(checkpoint),
                 "run": name, "strategy": strategy, "phase": index, "step": step, "phase_end": step in (20, 40)}
        entries.append(entry)
        _write(recipe / "exp" / "analysis" / "dev_clean" / name / f"step{step}" / "results.json",
               _checkpoint_result(entry, best))
    return entries


def _write_summary(exp_dir: Path, kind: str, upstream: str, train_set: str, rates: dict[str, list[float]],
                   reset: int | None = None, control: str | None = None, template: str | None = None,
                   sha256: str | None = None) -> None:
    """What stages 8-9 leave for one evaluation over seeds 1 and 2 (see espnet_hubert_ae.asr.seeds)."""
    from espnet_hubert_ae.asr.seeds import mean_std

    dev = {"num_utts": 10, "empty_hyps": 0, "empty_hyps_per_seed": [0, 0]}
    dev.update({rate: {**mean_std(values), "per_seed": values} for rate, values in rates.items()})
    _write(exp_dir / "summary.json", {"kind": kind, "upstream": upstream, "control": control,
                                      "template": template or f"conf/asr/{kind}_tiny.yaml",
                                      "train_set": f"dump/raw/{train_set}",
                                      "reset_top_layers": reset, "seeds": [1, 2], "sets": {"dev_clean": dev},
                                      "identity": {"kind": "checkpoint", "sha256": sha256}})


@pytest.fixture
def recipe(tmp_path):
    recipe = tmp_path / "recipe"
    entries = _make_run(recipe, "baseline") + _make_run(recipe, "progressive")
    _write(recipe / "exp" / "upstreams.json", {"version": 2, "upstreams": entries})
    rows = ["checkpoint\tstrategy\tphase\tstep\tmeasure\tlayer\tvalue"]
    for entry in entries:
        best = PROBE[entry["strategy"]][STEPS.index(entry["step"])]
        for layer, value in enumerate([0.44, best, best - 0.05]):
            rows.append(f"{entry['name']}\t{entry['strategy']}\t{entry['phase']}\t{entry['step']}\tphone_probe_acc"
                        f"\t{layer}\t{value}")
    _write(recipe / "exp" / "analysis" / "dev_clean" / "table.tsv", "\n".join(rows) + "\n")
    _write(recipe / "exp" / "analysis" / "dev_clean" / "summary.json", {"checkpoints": {}})
    for strategy, wer in (("baseline", 40.0), ("progressive", 35.5)):
        _write_summary(recipe / "exp" / "asr_superb" / "superb_tiny" / f"{strategy}_tiny_40_p2_step40", "superb",
                       f"{strategy}_tiny_40/p2/step40", "train_10h", {"cer": [20.0, 20.0], "wer": [wer - 1, wer + 1]})
        _write_summary(recipe / "exp" / "pr" / "pr_tiny" / f"{strategy}_tiny_40_p2_step40", "pr",
                       f"{strategy}_tiny_40/p2/step40", "train_1h", {"per": [50.0, 52.0]})
        for reset in (0, 2):
            _write_summary(recipe / "exp" / "finetune" / "finetune_tiny" / f"{strategy}_tiny_40_p2_step40"
                           / f"train_10min_reset{reset}", "finetune", f"{strategy}_tiny_40/p2/step40", "train_10min",
                           {"cer": [30.0, 30.0], "wer": [wer + 9 + reset, wer + 11 + reset]}, reset=reset)
    _write_summary(recipe / "exp" / "asr_superb" / "superb_tiny" / "fbank", "superb", "fbank", "train_10h",
                   {"cer": [30.0, 31.0], "wer": [70.0, 72.0]}, control="fbank")
    _write_summary(recipe / "exp" / "pr" / "pr_tiny" / "random_init", "pr", "exp/controls/step0.pth", "train_1h",
                   {"per": [90.0, 91.0]}, control="random_init")
    _write(recipe / "dump" / "raw" / "dev_clean" / "utt2num_samples", "u1 16000\nu2 32000\n")
    _write(recipe / "exp" / "stage_times.tsv", "5\t2026-01-01 00:00:00\t1200\t./run.sh --strategy baseline\n")
    return recipe


def test_time_to_target_in_cpu_seconds_within_the_reference_spread(recipe):
    results = collect(recipe)
    found = probe_time_to_target(results, results.analyses[0], "baseline")
    # Target: the baseline's final 0.6, tolerance 2 x 0.01 / sqrt(2).
    assert found.target == pytest.approx(0.6) and found.tolerance == pytest.approx(0.02 / 2**0.5)
    threshold = 0.6 - found.tolerance
    # Progressive crosses between steps 10 (0.4) and 20 (0.6), inside its first phase (300 CPU s / 20 steps).
    step = 10 + 10 * (threshold - 0.4) / 0.2
    reached = found.reached["progressive_tiny_40"]
    assert reached.step == pytest.approx(step)
    assert reached.cpu_s == pytest.approx(300.0 * step / 20)
    assert reached.cost_ratio == pytest.approx(300.0 * step / 20 / 1200.0)
    assert found.reached["baseline_tiny_40"].step == pytest.approx(30 + 10 * (threshold - 0.5) / 0.1)
    best = found.best["progressive_tiny_40"]
    assert (best.score, best.step) == (pytest.approx(0.65), 40) and best.budget_ratio == pytest.approx(0.5)


def test_a_run_that_never_reaches_the_target_reports_its_best_and_budget(recipe):
    results = collect(recipe)
    reference = results.runs["baseline_tiny_40"]
    late = [(0, Score(0.3, 0.0, 2)), (40, Score(0.7, 0.01, 2))]
    short = [(0, Score(0.3, 0.0, 2)), (20, Score(0.5, 0.01, 2)), (40, Score(0.45, 0.01, 2))]
    found = time_to_target(results, reference, "phone_probe_acc", "dev_clean",
                           {"baseline_tiny_40": late, "progressive_tiny_40": short})
    assert found.reached["progressive_tiny_40"] is None
    best = found.best["progressive_tiny_40"]
    assert (best.score, best.step) == (pytest.approx(0.5), 20) and best.budget_ratio == pytest.approx(0.5)
    row = time_to_target_json(found)["progressive_tiny_40"]
    assert row["cost_ratio"] is None and row["best"] == 0.5 and row["budget_ratio"] == 0.5


def test_time_to_target_of_the_frozen_asr_cer(recipe, repo_root):
    superb = recipe / "exp" / "asr_superb" / "superb_tiny"
    # The baseline's final CER is 20.0 +- 0 (the fixture); progressive's falls from 28 to 16
    # between steps 10 and 20. Step 0 is the random-init control; another downstream config is
    # not mixed in.
    _write_summary(superb / "random_init", "superb", "baseline_tiny_40/p1/step0", "train_10h",
                   {"cer": [60.0, 60.0], "wer": [99.0, 99.0]}, control="random_init",
                   sha256=hashlib.sha256(b"").hexdigest())  # the fixture's step-0 files are empty
    _write_summary(superb / "baseline_tiny_40_p1_step20", "superb", "baseline_tiny_40/p1/step20", "train_10h",
                   {"cer": [30.0, 30.0], "wer": [80.0, 80.0]})
    for step, cer in ((10, 28.0), (20, 16.0)):
        _write_summary(superb / f"progressive_tiny_40_p1_step{step}", "superb", f"progressive_tiny_40/p1/step{step}",
                       "train_10h", {"cer": [cer, cer], "wer": [80.0, 80.0]})
    _write_summary(recipe / "exp" / "asr_superb" / "other" / "progressive_tiny_40_p1_step10", "superb",
                   "progressive_tiny_40/p1/step10", "train_10h", {"cer": [5.0, 5.0], "wer": [9.0, 9.0]},
                   template="conf/asr/other.yaml")
    results = collect(recipe)
    progress = asr_progress(results, "dev_clean", "superb_tiny")
    assert [step for step, _ in progress["baseline_tiny_40"]] == [0, 20, 40]
    # Progressive's step-0 snapshot has the same bytes: the control is its step 0 too.
    assert progress["progressive_tiny_40"][0] == (0, Score(60.0, 0.0, 2))
    found = asr_time_to_target(results, "dev_clean", "baseline")
    assert (found.measure, found.target, found.tolerance, found.higher_is_better) == ("cer", 20.0, 0.0, False)
    step = 10 + 10 * (28.0 - 20.0) / (28.0 - 16.0)
    reached = found.reached["progressive_tiny_40"]
    assert reached.step == pytest.approx(step) and reached.cost_ratio == pytest.approx(300.0 * step / 20 / 1200.0)
    assert found.best["progressive_tiny_40"].score == 16.0
    row = results_json(results, "baseline")["time_to_target_asr"]["progressive_tiny_40"]
    assert row["measure"] == "cer" and row["step"] == pytest.approx(step, abs=0.1)
    text = render(results, repo_root, report_dir=recipe / "exp" / "report")
    assert "**cer on dev_clean**: target 20.0 % ± 0.0 % (baseline_tiny_40's final)" in text
    assert (recipe / "exp" / "report" / "asr_cer_vs_cpu.png").stat().st_size > 0
    assert "![asr_cer_vs_cpu](exp/report/asr_cer_vs_cpu.png)" in text
    (recipe / "exp" / "pretrain" / "progressive_tiny_40" / "phase1" / "step0.pth").write_bytes(b"other weights")
    assert asr_progress(collect(recipe), "dev_clean", "superb_tiny")["progressive_tiny_40"][0][0] == 10


def test_results_json_has_runs_controls_and_time_to_target(recipe):
    summary = results_json(collect(recipe), "baseline")
    run = summary["runs"]["progressive_tiny_40"]
    assert run["final_checkpoint"] == "progressive_tiny_40/p2/step40"
    assert run["cost"]["cpu_s"] == pytest.approx(600.0)
    assert run["probe"]["best"] == pytest.approx(0.65) and run["probe"]["best_std"] == pytest.approx(0.01)
    assert run["probe"]["best_layer"] == 1 and run["probe"]["seeds"] == [1, 2]
    controls = summary["controls"]
    assert controls["majority"] == pytest.approx(0.11)
    assert controls["random_init_best"] == pytest.approx(0.25)
    assert (controls["logmel"], controls["logmel_std"], controls["mfcc"]) == (0.44, 0.005, 0.48)
    assert set(summary["time_to_target"]) == {"progressive_tiny_40"}
    assert 0.2 < summary["time_to_target"]["progressive_tiny_40"]["cost_ratio"] < 0.25
    assert summary["asr"]["fbank"]["cer"] == {"mean": 30.5, "std": pytest.approx(0.7071, abs=1e-4)}
    assert summary["asr"]["progressive_tiny_40"]["wer"]["mean"] == 35.5
    assert summary["asr"]["progressive_tiny_40"]["empty_hyps"] == 0
    assert summary["pr"]["random_init"]["per"]["mean"] == 90.5 and summary["pr"]["baseline_tiny_40"]["seeds"] == [1, 2]
    assert summary["pnmi"]["progressive_p1"] == {"set": "dev_clean", "k": 100, "frames": 5000, "plugin": 0.4,
                                                  "corrected": 0.35, "held_out": True}


def test_results_md_has_every_section_with_numbers(recipe, repo_root):
    text = render(collect(recipe), repo_root, report_dir=recipe / "exp" / "report")
    for section in SECTIONS:
        body = re.search(rf"^## {re.escape(section)}.*?\n(.*?)(?=^## |\Z)", text, re.S | re.M)
        assert body, f"no section {section}"
        assert "_No " not in body.group(1), f"section {section} is empty"
        if section != "Plots":
            assert re.search(r"\d", body.group(1)), f"section {section} has no numbers"
    assert "| log-mel frame | 0.440 ± 0.005 |" in text  # the floors beside the runs
    assert "| untrained model (best layer) | 0.250 |" in text
    assert "| **progressive_tiny_40** | 0.650 ± 0.010 | 1 |" in text
    assert re.search(r"\| progressive_tiny_40 \| 19 \| 4\.8 \| [\d.]+ \| 0\.24 \|", text)  # time-to-target row
    assert ("| baseline_tiny_40 | baseline_tiny_40/p2/step40 | 40 | train_10min | 2 | dev_clean | 2 | 30.0 ± 0.0 "
            "| 52.0 ± 1.4 | 0.0 |") in text
    # SUPERB-style ASR: fbank first; the runs' CER (20.0 ± 0.0) beats fbank's (30.5 ± 0.7) beyond the spread.
    assert "| fbank | fbank | - | dev_clean | 2 | 30.5 ± 0.7 | 71.0 ± 1.4 | 0.0 | - | - |" in text
    assert ("| progressive_tiny_40 | progressive_tiny_40/p2/step40 | 40 | dev_clean | 2 | 20.0 ± 0.0 | 35.5 ± 1.4 "
            "| 0.0 | better | - |") in text
    # PR: the runs' PER beats the random-init control's beyond the spread.
    assert "| baseline_tiny_40 | baseline_tiny_40/p2/step40 | 40 | dev_clean | 2 | 51.0 ± 1.4 | 0.0 | - | better |" in text
    assert (recipe / "exp" / "report" / "phone_probe_vs_cpu.png").stat().st_size > 0
    assert "![phone_probe_vs_cpu](exp/report/phone_probe_vs_cpu.png)" in text


def test_sections_of_stages_not_run_say_how_to_run_them(tmp_path, repo_root):
    (tmp_path / "exp").mkdir()
    text = render(collect(tmp_path), repo_root)
    assert "_No pretraining run yet: run stage 5._" in text
    assert "_No results yet: run stage 8._" in text
    assert "./run.sh --strategy \"baseline progressive\"" in text


def test_layer_health_warnings_appear_in_results_md(recipe, repo_root):
    from espnet_hubert_ae.pretrain.health import assess

    def set_health(run: str, phase: int, gains: list[float], updates: list[float]) -> None:
        path = recipe / "exp" / "pretrain" / run / f"phase{phase}" / "summary.json"
        summary = json.loads(path.read_text())
        summary["health"] = assess(gains, updates)  # as the phase runner records it
        path.write_text(json.dumps(summary))

    set_health("baseline_tiny_40", 1, [1.0, 0.98], [0.5, 0.4])
    text = render(collect(recipe), repo_root, report_dir=recipe / "exp" / "report")
    section = text.split("### Layer health")[1].split("\n## ")[0]
    assert "| baseline_tiny_40 | 1 | 1.00 0.98 | 0.500 0.400 |" in section
    assert "No layer of any phase is collapsing or dead." in section and "**Warnings**" not in section

    # The last phase of progressive: layer 2's LayerNorms collapsing, layer 3 passing its input through.
    set_health("progressive_tiny_40", 2, [0.95, 0.12, 0.9], [0.4, 0.3, 0.004])
    results = collect(recipe)
    text = render(results, repo_root, report_dir=recipe / "exp" / "report")
    section = text.split("### Layer health")[1].split("\n## ")[0]
    assert "| progressive_tiny_40 | 2 | 0.95 0.12 0.90 | 0.400 0.300 0.004 |" in section
    warnings = [line for line in section.split("**Warnings**:")[1].splitlines() if line.startswith("- ")]
    assert warnings == ["- **progressive_tiny_40 phase 2**: layer 2: mean LayerNorm gain 0.120 < 0.3 (collapsing)",
                        "- **progressive_tiny_40 phase 2**: layer 3: changes its input by 0.0040 < 0.01 (dead)"]
    assert "No layer of any phase is collapsing or dead." not in section
    health = results_json(results, "baseline")["runs"]["progressive_tiny_40"]["health"]
    assert health == {"min_ln_gain": 0.12, "dead_layers": [3], "collapsing_layers": [2]}


def test_stage_times_give_wall_and_cpu_minutes_per_stage(tmp_path):
    from espnet_hubert_ae.report.collect import collect_stage_times

    path = tmp_path / "stage_times.tsv"
    # An older record without CPU seconds, then run.sh's five fields; the latest record of a stage wins.
    path.write_text("4\t2026-01-01 00:00:00\t60\t./run.sh\n"
                    "5\t2026-01-01 00:01:00\t600\t900\t./run.sh --stage 5\n"
                    "5\t2026-01-02 00:01:00\t1200\t2100\t./run.sh --stage 5\n")
    times = collect_stage_times(path)
    assert [(t.stage, t.seconds, t.cpu_seconds, t.command) for t in times] == [
        (4, 60.0, None, "./run.sh"), (5, 1200.0, 2100.0, "./run.sh --stage 5")]


# --- learning against the floors, time-to-target only where the reference learnt ---------------


def test_every_layer_is_read_against_its_untrained_state_and_the_widest_input_context(recipe, repo_root):
    """Fixture: layers 0 / 1 / 2 of a final checkpoint are 0.44 / best / best - 0.05 (std 0.01, 2 seeds);
    step 0 is 0.44 / 0.25 / 0.20; 9 stacked log-mel frames 0.55 +- 0.005. A difference counts beyond
    2 sqrt(0.01^2 / 2 + 0.005^2 / 2) = 0.0158 against the control, 2 x 0.01 against step 0."""
    results = collect(recipe)
    summary = results_json(results, "baseline")
    assert summary["controls"]["logmel9"] == 0.55 and summary["controls"]["widest_context"] == "logmel9"
    assert summary["controls"]["input_context"] == {"logmel": 1, "logmel5": 5, "logmel9": 9}
    progressive = summary["runs"]["progressive_tiny_40"]["probe"]["learning"]  # 0.44 / 0.65 / 0.60
    assert progressive["untrained_checkpoint"] == "progressive_tiny_40/p1/step0"
    assert progressive["untrained_per_layer"] == [0.44, 0.25, 0.2]
    assert progressive["vs_untrained"] == ["within spread", "better", "better"]
    assert progressive["vs_widest"] == ["worse", "better", "better"]
    assert progressive["learnt"] == [False, True, True] and progressive["learnt_layers"] == [1, 2]
    baseline = summary["runs"]["baseline_tiny_40"]["probe"]["learning"]  # 0.44 / 0.60 / 0.55
    assert baseline["vs_widest"] == ["worse", "better", "within spread"]
    assert baseline["learnt_layers"] == [1]

    text = render(results, repo_root)
    assert "| log-mel, 9 frames stacked (180 ms) | 0.550 ± 0.005 |" in text
    assert "| log-mel, 5 frames stacked (100 ms) | 0.500 ± 0.005 |" in text
    assert "| 2 | 0.550 ± 0.010 | 0.200 ± 0.010 | +0.350 (above) | +0.000 (within spread) | no |" in text
    assert "| 1 | 0.650 ± 0.010 | 0.250 ± 0.010 | +0.400 (above) | +0.100 (above) | **yes** |" in text
    assert "progressive_tiny_40: transformer layer(s) 1, 2 have learnt." in text


def test_with_one_seed_no_layer_is_called_learnt(recipe):
    for path in (recipe / "exp" / "analysis").glob("**/results.json"):
        result = json.loads(path.read_text())
        result["probe"]["seeds"] = [1]
        path.write_text(json.dumps(result))
    learning = results_json(collect(recipe), "baseline")["runs"]["progressive_tiny_40"]["probe"]["learning"]
    assert learning["learnt"] == [None, None, None] and learning["learnt_layers"] == []
    assert learning["vs_untrained"] == ["n/a (1 seed)"] * 3


def test_results_md_says_first_when_one_seed_calls_nothing(recipe, repo_root):
    assert "**One seed.**" not in render(collect(recipe), repo_root)
    for path in (recipe / "exp" / "analysis").glob("**/results.json"):
        result = json.loads(path.read_text())
        result["probe"]["seeds"] = [1]
        path.write_text(json.dumps(result))
    # The downstream summaries still have two seeds: the spread of those tables is known.
    assert "**One seed.**" not in render(collect(recipe), repo_root)
    for path in (recipe / "exp").glob("*/*/**/summary.json"):
        summary = json.loads(path.read_text())
        if "seeds" in summary:
            summary["seeds"] = [1]
            path.write_text(json.dumps(summary))
    text = render(collect(recipe), repo_root, report_dir=recipe / "exp_demo" / "report")
    head = text.split("## ")[0]
    assert "**One seed.**" in head and "no difference is called" in head and "`make study`" in head
    assert "`exp_demo/report/results.json`" in head


def test_the_probe_against_cpu_plot_draws_every_control_as_a_line(recipe, repo_root, monkeypatch):
    from matplotlib.axes import Axes

    drawn = {}
    axhline = Axes.axhline

    def recording(self, y=0, *args, **kwargs):
        label, value = kwargs.get("label").rsplit(" (", 1)  # "log-mel frame (0.440)"
        assert value == f"{y:.3f})"
        drawn[label] = y
        return axhline(self, y, *args, **kwargs)

    monkeypatch.setattr(Axes, "axhline", recording)
    render(collect(recipe), repo_root, report_dir=recipe / "exp" / "report")
    assert drawn == {"majority class": pytest.approx(0.11), "log-mel frame": 0.44,
                     "log-mel, 5 frames stacked (100 ms)": 0.5, "log-mel, 9 frames stacked (180 ms)": 0.55,
                     "MFCC frame": 0.48}


def _points(final: Score, untrained: Score | None) -> list[tuple[int, Score]]:
    return ([] if untrained is None else [(0, untrained)]) + [(20, Score(0.26, 0.002, 2)), (40, final)]


@pytest.mark.parametrize("final, untrained, reason", [
    (Score(0.247, 0.002, 2), Score(0.273, 0.002, 2), "did not learn"),  # below its untrained model
    (Score(0.275, 0.01, 2), Score(0.273, 0.01, 2), "did not learn"),  # above, within the spread
    (Score(0.30, 0.0, 1), Score(0.273, 0.0, 1), "one seed"),
    (Score(0.30, 0.002, 2), None, "not measured"),
])
def test_no_target_where_the_reference_did_not_learn(recipe, final, untrained, reason):
    results = collect(recipe)
    progressive = [(0, Score(0.273, 0.002, 2)), (20, Score(0.30, 0.002, 2)), (40, Score(0.31, 0.002, 2))]
    found = time_to_target(results, results.runs["baseline_tiny_40"], "phone_probe_acc", "dev_clean",
                           {"baseline_tiny_40": _points(final, untrained), "progressive_tiny_40": progressive})
    assert not found.defined and reason in found.undefined_reason
    assert found.reached == {} and found.best == {}
    row = time_to_target_json(found, ["baseline_tiny_40", "progressive_tiny_40"])["progressive_tiny_40"]
    assert row["cost_ratio"] is None and row["target"] is None and row["reference_learnt"] is False
    assert reason in row["reason"]


def test_a_target_where_the_reference_learnt(recipe):
    results = collect(recipe)
    final, untrained = Score(0.30, 0.002, 2), Score(0.273, 0.002, 2)  # +0.027 > 2 x 0.002
    progressive = [(0, untrained), (20, Score(0.29, 0.002, 2)), (40, Score(0.31, 0.002, 2))]
    found = time_to_target(results, results.runs["baseline_tiny_40"], "phone_probe_acc", "dev_clean",
                           {"baseline_tiny_40": _points(final, untrained), "progressive_tiny_40": progressive})
    assert found.defined and found.undefined_reason is None
    threshold = 0.30 - 2 * 0.002 / 2**0.5
    step = 20 + 20 * (threshold - 0.29) / (0.31 - 0.29)
    assert found.reached["progressive_tiny_40"].step == pytest.approx(step)
    assert time_to_target_json(found)["progressive_tiny_40"]["reference_learnt"] is True


def test_results_md_says_the_reference_did_not_learn_and_gives_no_ratio(recipe, repo_root):
    final = recipe / "exp" / "analysis" / "dev_clean" / "baseline_tiny_40" / "step40" / "results.json"
    result = json.loads(final.read_text())
    result["summary"]["phone_probe_acc"]["best_from_1"] = 0.2  # below its untrained 0.25
    final.write_text(json.dumps(result))
    results = collect(recipe)
    text = render(results, repo_root)
    section = text.split("## Time to target")[1].split("\n## ")[0]
    assert ("**phone_probe_acc on dev_clean**: no target. baseline_tiny_40's final 0.200 ± 0.010 (2 seeds) against "
            "its untrained (step 0) 0.250 ± 0.010 (2 seeds): it did not learn") in section
    assert "| progressive_tiny_40 |" not in section.split("**cer on")[0]  # no row, no ratio
    row = results_json(results, "baseline")["time_to_target"]["progressive_tiny_40"]
    assert row["cost_ratio"] is None and row["reference_learnt"] is False
