"""The whole recipe through run.sh on a reduced built-in corpus: two strategies, every stage,
pretraining killed mid-phase and the analysis interrupted on the way, RESULTS.md complete at the end.

One strategy is given as a schedule file whose ``name:`` differs from its file name, so every
stage must go by the schedule's name. The pretraining kill lands after a resumable
``checkpoint.pth`` of the last phase exists; the resumed phase must end with the weights of an
uninterrupted run of the same phase (a second recipe directory that shares the data and the
finished phases).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from espnet_hubert_ae.utils.naming import snapshot_name

STEPS = 24  # the CI schedules scaled down: ci_progressive phases of 11, 7 and 6 steps
PROGRESSIVE_FILE = "conf/strategy/renamed_progressive.yaml"  # name: ci_progressive
STRATEGIES = ("ci_baseline", "ci_progressive")
# ESPnet keeps a resumable checkpoint.pth every "epoch": every 3 steps here, so a phase of 6
# steps has one half-way.
OPTIONS = [
    "--strategy", f"ci_baseline {PROGRESSIVE_FILE}", "--reference_strategy", "ci_baseline",
    "--model", "tiny", "--builtin_minutes", "1.5", "--pretrain_steps", str(STEPS), "--pretrain_args", "--checkpoint_interval 3",
    "--nj", "2", "--eval_sets", "dev_clean test_clean", "--superb_train_set", "train_10min",
    "--finetune_splits", "train_10min", "--reset_top_layers", "2",
    # 40 dev utterances: a handful of words have an instance per fold, fewer than word CCA asks
    "--analysis_args", "--min_labels 2",
    "--superb_config", "conf/asr/quick_superb.yaml", "--finetune_config", "conf/asr/quick_finetune.yaml",
    "--pr_config", "conf/asr/quick_pr.yaml", "--seeds", "1 2",
]  # fmt: skip
SECTIONS = ("Environment", "Commands and time per stage", "Data", "Pretraining cost", "Target quality per phase",
            "Layerwise analysis", "SUPERB-style ASR", "Phoneme recognition", "Libri-light fine-tuning", "Time to target")
# A resumed phase replays the same batches with the same random state (ESPnet seeds each epoch,
# and the learning rate is a function of the restored global step): its weights equal an
# uninterrupted run's (measured: identical) up to float rounding. A resume that loses Adam's
# moments ends 2.5e-4 away after its 3 remaining steps.
RESUME_ATOL = 1e-6
CLUSTER_MEASURES = ("pnmi", "pnmi_corrected", "phone_purity", "cluster_purity")
# The global steps stage 5 keeps of each run: the CI schedules scaled by 24/36 end their phases at
# 11 and 24 (ci_baseline) and 11, 18 and 24 (ci_progressive); every run keeps step 0, and a phase
# with "snapshots: 2" (both of ci_baseline's, ci_progressive's first) one half-way too. Of those,
# stage 8's ASR evaluates 3 per run by default: the kept steps nearest to 1/3 and 2/3 of the last
# (8 and 16), and the last.
KEPT_STEPS = {"ci_baseline": [0, 6, 11, 17, 24], "ci_progressive": [0, 6, 11, 18, 24]}
ASR_CHECKPOINTS = {"ci_baseline": ["p1/step6", "p2/step17", "p2/step24"],
                   "ci_progressive": ["p1/step6", "p2/step18", "p3/step24"]}


def write_configs(conf: Path) -> None:
    """The renamed progressive schedule, and the built-in corpus' downstream configs cut to a few steps."""
    shutil.copy(conf / "strategy" / "ci_progressive.yaml", conf / "strategy" / Path(PROGRESSIVE_FILE).name)
    shorten(conf / "asr" / "superb_tiny.yaml", conf / "asr" / "quick_superb.yaml", batch_bins=600)
    shorten(conf / "asr" / "pr_tiny.yaml", conf / "asr" / "quick_pr.yaml", batch_bins=600)
    shorten(conf / "asr" / "finetune_tiny.yaml", conf / "asr" / "quick_finetune.yaml",
            scheduler_conf={"max_steps": 8, "warmup_ratio": 0.25, "hold_ratio": 0.25, "decay_ratio": 0.5},
            freeze_encoder_updates=2)


def shorten(template: Path, out: Path, freeze_encoder_updates: int | None = None, **overrides) -> None:
    config = yaml.safe_load(template.read_text())
    config.update(max_epoch=2, num_iters_per_epoch=4, **overrides)
    if "max_steps" in (config.get("scheduler_conf") or {}):
        config["scheduler_conf"]["max_steps"] = 8
    if freeze_encoder_updates is not None:
        config["encoder_conf"]["freeze_encoder_updates"] = freeze_encoder_updates
    out.write_text(yaml.safe_dump(config))


def run_recipe(recipe: Path, *args: str, options=OPTIONS) -> subprocess.CompletedProcess:
    result = subprocess.run(["./run.sh", *options, *args], cwd=recipe, capture_output=True, text=True, timeout=1500,
                            env=dict(os.environ))  # fmt: skip
    assert result.returncode == 0, f"./run.sh {' '.join(args)} failed:\n{result.stderr[-4000:]}"
    return result


def interrupt(recipe: Path, stage: int, sig: int, ready, delay: float) -> None:
    """Start ``stage``, wait until ``ready()`` holds and ``delay`` seconds more, then send ``sig``
    to the whole process group (run.sh, the job runner and every Python process)."""
    proc = subprocess.Popen(["./run.sh", *OPTIONS, "--stage", str(stage), "--stop_stage", str(stage)], cwd=recipe,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 900
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(delay)
    assert proc.poll() is None, f"stage {stage} ended before it could be interrupted:\n{proc.stderr.read()[-3000:]}"
    os.killpg(proc.pid, sig)
    proc.wait(timeout=120)
    assert proc.returncode != 0


def phase_dirs(recipe: Path, strategy: str) -> Path:
    return recipe / "exp" / "pretrain" / f"{strategy}_tiny_{STEPS}"


def results_of(directory: Path) -> dict[str, dict]:
    """Checkpoint name -> its per-layer measures, from every checkpoint's results.json under
    ``directory`` (the input controls' results.json is not a checkpoint's)."""
    found = {}
    for path in directory.glob("**/results.json"):
        result = json.loads(path.read_text())
        if "checkpoint" in result:
            found[result["checkpoint"]["name"]] = result["measures"]
    return found


def uninterrupted_last_phase(recipe: Path, run: Path) -> Path:
    """The last phase of ``run`` trained again without interruption, by run.sh's stage 5 in a
    recipe directory of its own that shares the data and the run's finished phases; returns it."""
    other = recipe.parent / "uninterrupted"
    other.mkdir()
    for name in ("run.sh", "db.sh", "cmd.sh", "path.sh", "local", "conf", "data", "dump"):
        (other / name).symlink_to(recipe / name)
    copy = other / "exp" / "pretrain" / run.name
    copy.mkdir(parents=True)
    shutil.copy(run / "schedule.json", copy)
    for phase in ("phase1", "phase2"):
        shutil.copytree(run / phase, copy / phase, symlinks=True)
    # Its own targets: the last phase's labels are made again from the copied phase 2 model.
    run_recipe(other, "--stage", "5", "--stop_stage", "5", "--strategy", PROGRESSIVE_FILE,
               "--targets_dir", str(other / "targets"))
    return copy / "phase3"


def check_resumed_phase_equals_uninterrupted(recipe: Path) -> None:
    run = phase_dirs(recipe, "ci_progressive")
    resumed = run / "phase3"
    assert "The training was resumed" in (resumed / "train.log").read_text(), "phase 3 was not resumed"
    fresh = uninterrupted_last_phase(recipe, run)
    assert "The training was resumed" not in (fresh / "train.log").read_text()
    labels = [json.loads((phase / "summary.json").read_text())["labels"]["texts"]["train_pretrain"]
              for phase in (resumed, fresh)]
    assert Path(labels[0]).read_text() == Path(labels[1]).read_text()  # the same targets: only the kill differs
    final = snapshot_name("ci_progressive", 3, STEPS)
    a, b = (torch.load(phase / final, map_location="cpu") for phase in (resumed, fresh))
    assert a.keys() == b.keys()
    worst = max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())
    print(f"resumed vs uninterrupted phase 3: largest weight difference {worst:.3g}")
    assert worst <= RESUME_ATOL, f"the resumed phase ends {worst:.3g} away from an uninterrupted one"


@pytest.mark.timeout(2400)  # the suite's 20 minutes per test are for the others: this one is the whole recipe
def test_whole_recipe_two_strategies_with_interruptions(tmp_path, recipe_copy, repo_root):
    rng = random.Random(1)
    recipe = recipe_copy(copy_conf=True)
    write_configs(recipe / "conf")
    run_recipe(recipe, "--stage", "1", "--stop_stage", "4")

    # Stage 5 killed (SIGKILL) once the last phase of the progressive run kept its first resumable
    # checkpoint, then rerun: that phase resumes mid-way.
    progressive = phase_dirs(recipe, "ci_progressive")
    interrupt(recipe, 5, signal.SIGKILL, lambda: (progressive / "phase3" / "checkpoint.pth").is_file(), delay=0.3)
    assert not (progressive / "phase3" / ".done").exists()
    run_recipe(recipe, "--stage", "5", "--stop_stage", "6")
    check_resumed_phase_equals_uninterrupted(recipe)
    for strategy, phase_ends in (("ci_baseline", [1, 2]), ("ci_progressive", [1, 2, 3])):
        checkpoints = json.loads((phase_dirs(recipe, strategy) / "checkpoints.json").read_text())
        assert [c["phase"] for c in checkpoints if c["phase_end"]] == phase_ends
        assert checkpoints[-1]["global_step"] == STEPS
        steps = [c["global_step"] for c in checkpoints]
        assert steps == KEPT_STEPS[strategy], f"{strategy}: kept {steps}"
    summary = json.loads((progressive / "phase3" / "summary.json").read_text())
    assert summary["labels"]["source"]["layer"] == 4  # the top layer of the 4-layer model
    assert json.loads((progressive / "phase2" / "phase_start.json").read_text())["warm_start"][
        "optimizer_states_carried"] > 0
    assert not list(recipe.glob("exp/**/*.tmp*")), "partial files left behind"

    # Stage 7 interrupted (SIGINT) after its first checkpoint, then rerun: the finished checkpoint
    # is not recomputed, and its results equal those of an analysis run without interruption.
    analysis = recipe / "exp" / "analysis" / "dev_clean"
    interrupt(recipe, 7, signal.SIGINT, lambda: bool(results_of(analysis)), delay=rng.uniform(0.0, 3.0))
    first = results_of(analysis)
    assert first, "no checkpoint was finished before the interruption"
    run_recipe(recipe, "--stage", "7", "--stop_stage", "7")
    name = sorted(first)[0]
    assert f"{name}: every metric cached" in (analysis / "analyse.log").read_text(), "finished work was redone"
    analysed = results_of(analysis)
    registered = json.loads((recipe / "exp" / "upstreams.json").read_text())["upstreams"]
    assert sorted(analysed) == sorted(entry["name"] for entry in registered)
    assert {entry["run"] for entry in registered} == {f"{s}_tiny_{STEPS}" for s in STRATEGIES}
    fresh = tmp_path / "fresh"
    subprocess.run([str(repo_root / ".venv" / "bin" / "python"), "-m", "espnet_hubert_ae.bin.analyse",
                    "--data", str(recipe / "dump" / "raw" / "dev_clean"), "--outdir", str(fresh),
                    "--registry", str(recipe / "exp" / "upstreams.json"), "--checkpoints", name,
                    "--rare_phones", "drop", "--min_labels", "2", "--seed", "1", "--seeds", "1 2",
                    "--num_threads", "2"],  # as run.sh --nj 2
                   cwd=recipe, check=True, capture_output=True)
    # Equal up to the summation order of the BLAS threads; through k-means that order can move a
    # few frames to another cluster (measured: a PNMI 8e-5 away), so cluster measures get 1e-3.
    fresh_measures = results_of(fresh)[name]
    assert sorted(fresh_measures) == sorted(analysed[name])
    for measure, curve in fresh_measures.items():
        tolerance = {"atol": 1e-3} if measure in CLUSTER_MEASURES else {"rtol": 1e-5}
        np.testing.assert_allclose(curve, analysed[name][measure], err_msg=measure, **tolerance)

    # Stages 8-9 (their own tests cover them in depth): a summary over both seeds per upstream and setting.
    run_recipe(recipe, "--stage", "8", "--stop_stage", "10")
    for strategy in STRATEGIES:
        tag = f"{strategy}_tiny_{STEPS}_p{2 if strategy == 'ci_baseline' else 3}_step{STEPS}"
        for exp_dir in (recipe / f"exp/asr_superb/quick_superb/{tag}", recipe / f"exp/pr/quick_pr/{tag}",
                        recipe / f"exp/finetune/quick_finetune/{tag}/train_10min_reset2"):
            summary = json.loads((exp_dir / "summary.json").read_text())
            assert sorted(summary["sets"]) == ["dev_clean", "test_clean"] and summary["seeds"] == [1, 2], exp_dir
    text = (recipe / "RESULTS.md").read_text()
    for section in SECTIONS:
        body = re.search(rf"^## {re.escape(section)}.*?\n(.*?)(?=^## |\Z)", text, re.S | re.M)
        assert body and "_No " not in body.group(1) and re.search(r"\d", body.group(1)), (section, text)
    for strategy in STRATEGIES:
        assert f"| {strategy}_tiny_{STEPS} |" in text
    # Rows: per evaluation set (dev_clean, test_clean), the two controls and the two runs (fine-tuning:
    # reset 2; ASR: the 3 checkpoints of each run above, the default). Every row has its mean ± std
    # over the two seeds.
    asr_names = [f"{s}_tiny_{STEPS}/{c}" for s in STRATEGIES for c in ASR_CHECKPOINTS[s]]
    trained = {p.name for p in (recipe / "exp" / "asr_superb" / "quick_superb").iterdir()
               if re.search(r"_step[1-9]\d*$", p.name)}
    assert trained == {name.replace("/", "_") for name in asr_names}
    asr_table = text.split("## SUPERB-style ASR")[1].split("\n## ")[0]
    for name in asr_names:
        for eval_set in ("dev_clean", "test_clean"):
            assert f"| {name} | {name.rsplit('step', 1)[1]} | {eval_set} | 2 |" in asr_table, (name, asr_table)
    for section, rows in (("SUPERB-style ASR", 2 + 6), ("Phoneme recognition", 4), ("Libri-light fine-tuning", 4)):
        table = text.split(f"## {section}")[1].split("\n## ")[0]
        cells = re.findall(r"\| (dev_clean|test_clean) \| 2 \| \d+\.\d ± \d+\.\d \|", table)
        assert len(cells) == 2 * rows, (section, table)
    assert "**cer on dev_clean**" in text.split("## Time to target")[1]
    times = (recipe / "exp" / "stage_times.tsv").read_text()
    assert {line.split("\t")[0] for line in times.splitlines()} >= {str(s) for s in range(1, 10)}
