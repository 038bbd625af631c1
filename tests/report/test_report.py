"""Stage 10: cost accounting, time-to-target and RESULTS.md on a hand-made experiment tree."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from espnet_hubert_ae.report.collect import Phase, PretrainRun, collect
from espnet_hubert_ae.report.compare import all_time_to_target
from espnet_hubert_ae.report.render import render

SECTIONS = ("Environment", "Commands and time per stage", "Data", "Pretraining cost", "Target quality per phase",
            "Layerwise analysis", "SUPERB-style ASR", "Phoneme recognition", "Libri-light fine-tuning", "Time to target",
            "Plots")


def _phase(index, start, end, training, features=0.0, kmeans=0.0):
    return Phase(index, start, end, "mfcc", 100, "scratch",
                 {"training": training, "features": features, "kmeans": kmeans, "labels": 0.0}, {})


def test_cost_at_counts_earlier_phases_whole_and_the_current_one_pro_rata():
    run = PretrainRun("r", "baseline", "tiny", Path("."), [_phase(1, 0, 10, 100.0, kmeans=10.0),
                                                           _phase(2, 10, 30, 200.0, features=20.0)], True)
    assert run.seconds() == pytest.approx(330.0)
    assert run.cost_at(0) == 0.0
    assert run.cost_at(5) == pytest.approx(10.0 + 50.0)
    assert run.cost_at(10) == pytest.approx(110.0)
    assert run.cost_at(20) == pytest.approx(110.0 + 20.0 + 100.0)
    assert run.cost_at(30) == run.cost_at(99) == pytest.approx(330.0)


# --- a hand-made recipe directory ------------------------------------------------------------


def _write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _make_run(recipe: Path, strategy: str, phases: list[tuple[int, int, float]], quality: float) -> list[dict]:
    """A pretraining run: schedule, phase summaries with label quality, checkpoint records."""
    name = f"{strategy}_tiny_40"
    run_dir = recipe / "exp" / "pretrain" / name
    _write(run_dir / "schedule.json", {"strategy": strategy, "model": "tiny", "phases": [{}] * len(phases)})
    records = []
    for index, (start, end, seconds) in enumerate(phases, 1):
        labels = recipe / "dump" / "targets" / f"{strategy}_p{index}" / "dev_clean"
        _write(labels / "quality.json", {"k": 100, "pnmi": quality, "phone_purity": 0.5, "cluster_purity": 0.25})
        plan = {"index": index, "start_step": start, "end_step": end, "layer": None if index == 1 else 2, "k": 100,
                "init": "scratch"}
        _write(run_dir / f"phase{index}" / "summary.json", {
            "plan": plan, "seconds": {"training": seconds, "features": 0.0, "kmeans": 0.0, "labels": 0.0},
            "labels": {"texts": {"dev_clean": str(labels / "text")}},
        })
        for step in (start + (end - start) // 2, end):
            checkpoint = _write(run_dir / f"phase{index}" / f"step{step}.pth", "")
            records.append({"name": f"{name}/p{index}/step{step}", "checkpoint": str(checkpoint),
                            "config": str(checkpoint), "run": name, "strategy": strategy, "phase": index,
                            "step": step, "phase_end": step == end})
    return records


def _write_summary(exp_dir: Path, kind: str, upstream: str, train_set: str, rates: dict[str, list[float]],
                   reset: int | None = None, control: str | None = None) -> None:
    """What stages 8-9 leave for one evaluation over seeds 1 and 2 (see espnet_hubert_ae.asr.seeds)."""
    from espnet_hubert_ae.asr.seeds import mean_std

    dev = {"num_utts": 10, "empty_hyps": 0, "empty_hyps_per_seed": [0, 0]}
    dev.update({rate: {**mean_std(values), "per_seed": values} for rate, values in rates.items()})
    _write(exp_dir / "summary.json", {"kind": kind, "upstream": upstream, "control": control,
                                      "template": f"conf/asr/{kind}_tiny.yaml", "train_set": f"dump/raw/{train_set}",
                                      "reset_top_layers": reset, "seeds": [1, 2], "sets": {"dev_clean": dev}})


@pytest.fixture
def recipe(tmp_path):
    recipe = tmp_path / "recipe"
    entries = _make_run(recipe, "baseline", [(0, 20, 600.0), (20, 40, 600.0)], 0.4)
    entries += _make_run(recipe, "progressive", [(0, 20, 300.0), (20, 40, 300.0)], 0.45)
    _write(recipe / "exp" / "upstreams.json", {"version": 2, "upstreams": entries})
    # The probe: baseline ends at 0.6; progressive gets there at step 20 (one of its phases).
    probe = {"baseline": [0.3, 0.4, 0.5, 0.6], "progressive": [0.4, 0.6, 0.62, 0.65]}
    rows = ["checkpoint\tstrategy\tphase\tstep\tmeasure\tlayer\tvalue"]
    for entry in entries:
        score = probe[entry["strategy"]][[10, 20, 30, 40].index(entry["step"])]
        for layer, value in enumerate([score - 0.1, score, score - 0.05]):
            rows.append(f"{entry['name']}\t{entry['strategy']}\t{entry['phase']}\t{entry['step']}\tphone_probe_acc"
                        f"\t{layer}\t{value}")
            rows.append(f"{entry['name']}\t{entry['strategy']}\t{entry['phase']}\t{entry['step']}\tmel_cca"
                        f"\t{layer}\t{0.9 - 0.1 * layer}")
    _write(recipe / "exp" / "analysis" / "dev_clean" / "table.tsv", "\n".join(rows) + "\n")
    summary = {"checkpoints": {e["name"]: {"mel_cca": {"input_rebound": 0.0},
                                           "phone_probe_acc": {"best_layer": 1, "top_layer_drop": 0.05}}
                               for e in entries}}
    _write(recipe / "exp" / "analysis" / "dev_clean" / "summary.json", summary)
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


def test_time_to_target_against_the_baseline(recipe):
    results = collect(recipe)
    found = {t.metric: t for t in all_time_to_target(results, "baseline")}
    probe = found["phone_probe_acc (dev_clean)"]
    assert probe.target == pytest.approx(0.6)
    assert probe.reached["baseline_tiny_40"].step == 40
    assert probe.reached["baseline_tiny_40"].cost_fraction == pytest.approx(1.0)
    reached = probe.reached["progressive_tiny_40"]
    assert reached.step == 20 and reached.step_fraction == pytest.approx(0.5)
    assert reached.cost_fraction == pytest.approx(300.0 / 1200.0)

    wer = found["SUPERB WER (dev_clean)"]
    assert not wer.higher_is_better and wer.target == pytest.approx(40.0)
    assert wer.reached["progressive_tiny_40"].cost_fraction == pytest.approx(600.0 / 1200.0)
    assert "fine-tuning train_10min WER (dev_clean)" in found


def test_results_md_has_every_section_with_numbers(recipe, repo_root):
    text = render(collect(recipe), repo_root, report_dir=recipe / "exp" / "report")
    for section in SECTIONS:
        body = re.search(rf"^## {re.escape(section)}.*?\n(.*?)(?=^## |\Z)", text, re.S | re.M)
        assert body, f"no section {section}"
        assert "_No " not in body.group(1), f"section {section} is empty"
        if section != "Plots":
            assert re.search(r"\d", body.group(1)), f"section {section} has no numbers"
    assert "| progressive_tiny_40 | 20 | 5.0 | 0.25 (0.50) |" in text  # the probe's time-to-target row
    assert ("| baseline_tiny_40 | baseline_tiny_40/p2/step40 | 40 | train_10min | 2 | dev_clean | 2 | 30.0 ± 0.0 "
            "| 52.0 ± 1.4 | 0.0 |") in text
    # SUPERB-style ASR: fbank first; the runs' CER (20.0 ± 0.0) beats fbank's (30.5 ± 0.7) beyond the spread.
    assert "| fbank | fbank | - | dev_clean | 2 | 30.5 ± 0.7 | 71.0 ± 1.4 | 0.0 | - | - |" in text
    assert ("| progressive_tiny_40 | progressive_tiny_40/p2/step40 | 40 | dev_clean | 2 | 20.0 ± 0.0 | 35.5 ± 1.4 "
            "| 0.0 | better | - |") in text
    # PR: the runs' PER beats the random-init control's beyond the spread.
    assert "| baseline_tiny_40 | baseline_tiny_40/p2/step40 | 40 | dev_clean | 2 | 51.0 ± 1.4 | 0.0 | - | better |" in text
    assert (recipe / "exp" / "report" / "phone_probe_acc_vs_cost.png").stat().st_size > 0
    assert "![phone_probe_acc_vs_cost](exp/report/phone_probe_acc_vs_cost.png)" in text


def test_sections_of_stages_not_run_say_how_to_run_them(tmp_path, repo_root):
    (tmp_path / "exp").mkdir()
    text = render(collect(tmp_path), repo_root)
    assert "_No pretraining run yet: run stage 5._" in text
    assert "_No results yet: run stage 8._" in text
    assert "./run.sh --strategy \"baseline progressive\"" in text
