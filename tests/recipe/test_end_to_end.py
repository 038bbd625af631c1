"""The whole recipe through run.sh on a reduced built-in corpus: two strategies, every stage,
stage 5 killed and stage 7 interrupted on the way, RESULTS.md complete at the end."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import yaml

STEPS = 24  # the CI schedules scaled down: ci_progressive phases of 11, 7 and 6 steps
STRATEGIES = ("ci_baseline", "ci_progressive")
OPTIONS = [
    "--strategy", " ".join(STRATEGIES), "--reference_strategy", "ci_baseline", "--builtin_minutes", "1.5",
    "--pretrain_steps", str(STEPS), "--nj", "2", "--superb_train_set", "train_10min",
    "--finetune_splits", "train_10min", "--reset_top_layers", "0 2",
    "--superb_config", "conf/asr/quick_superb.yaml", "--finetune_config", "conf/asr/quick_finetune.yaml",
    "--pr_config", "conf/asr/quick_pr.yaml", "--seeds", "1 2",
]  # fmt: skip
SECTIONS = ("Environment", "Commands and time per stage", "Data", "Pretraining cost", "Target quality per phase",
            "Layerwise analysis", "SUPERB-style ASR", "Phoneme recognition", "Libri-light fine-tuning", "Time to target")


def shorten_asr_configs(conf: Path) -> None:
    """conf/asr/quick_{superb,pr,finetune}.yaml: the built-in corpus' downstream configs cut to a few steps."""
    shorten(conf / "asr" / "superb_tiny.yaml", conf / "asr" / "quick_superb.yaml", batch_bins=600)
    shorten(conf / "asr" / "pr_tiny.yaml", conf / "asr" / "quick_pr.yaml", batch_bins=600)
    shorten(conf / "asr" / "finetune_tiny.yaml", conf / "asr" / "quick_finetune.yaml", freeze_encoder_updates=2)


def shorten(template: Path, out: Path, freeze_encoder_updates: int | None = None, **overrides) -> None:
    config = yaml.safe_load(template.read_text())
    config.update(max_epoch=2, num_iters_per_epoch=4, **overrides)
    if "max_steps" in (config.get("scheduler_conf") or {}):
        config["scheduler_conf"]["max_steps"] = 8
    if freeze_encoder_updates is not None:
        config["encoder_conf"]["freeze_encoder_updates"] = freeze_encoder_updates
    out.write_text(yaml.safe_dump(config))


def run_recipe(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["./run.sh", *args, *OPTIONS], cwd=recipe, capture_output=True, text=True, timeout=1500,
                            env=dict(os.environ))  # fmt: skip
    assert result.returncode == 0, f"./run.sh {' '.join(args)} failed:\n{result.stderr[-4000:]}"
    return result


def interrupt(recipe: Path, stage: int, sig: int, ready, rng: random.Random) -> None:
    """Start ``stage``, wait until ``ready()`` holds, then a random moment more, and send ``sig``
    to the whole process group (run.sh, the job runner and every Python process)."""
    proc = subprocess.Popen(["./run.sh", "--stage", str(stage), "--stop_stage", str(stage), *OPTIONS], cwd=recipe,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 900
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(rng.uniform(0.0, 3.0))
    assert proc.poll() is None, f"stage {stage} ended before it could be interrupted:\n{proc.stderr.read()[-3000:]}"
    os.killpg(proc.pid, sig)
    proc.wait(timeout=120)
    assert proc.returncode != 0


def phase_dirs(recipe: Path, strategy: str) -> Path:
    return recipe / "exp" / "pretrain" / f"{strategy}_tiny_{STEPS}"


def results_of(directory: Path) -> dict[str, dict]:
    """Checkpoint name -> its per-layer measures, from every results.json under ``directory``."""
    found = {}
    for path in directory.glob("**/results.json"):
        result = json.loads(path.read_text())
        found[result["checkpoint"]["name"]] = result["measures"]
    return found


def test_whole_recipe_two_strategies_with_interruptions(tmp_path, recipe_copy, repo_root):
    rng = random.Random(1)
    recipe = recipe_copy(copy_conf=True)
    shorten_asr_configs(recipe / "conf")
    run_recipe(recipe, "--stage", "1", "--stop_stage", "4")

    # Stage 5 killed (SIGKILL) once the second phase of the progressive run has begun, then rerun.
    progressive = phase_dirs(recipe, "ci_progressive")
    interrupt(recipe, 5, signal.SIGKILL, lambda: (progressive / "phase2").is_dir(), rng)
    run_recipe(recipe, "--stage", "5", "--stop_stage", "6")
    for strategy, phase_ends in (("ci_baseline", [1, 2]), ("ci_progressive", [1, 2, 3])):
        checkpoints = json.loads((phase_dirs(recipe, strategy) / "checkpoints.json").read_text())
        assert [c["phase"] for c in checkpoints if c["phase_end"]] == phase_ends
        assert checkpoints[-1]["global_step"] == STEPS
        steps = [c["global_step"] for c in checkpoints]
        assert steps == sorted(set(steps)), f"{strategy}: checkpoints repeated or out of order: {steps}"
    summary = json.loads((progressive / "phase3" / "summary.json").read_text())
    assert summary["labels"]["source"]["layer"] == 4  # the top layer of the 4-layer model
    assert json.loads((progressive / "phase2" / "phase_start.json").read_text())["warm_start"][
        "optimizer_states_carried"] > 0
    assert not list(recipe.glob("exp/**/*.tmp*")), "partial files left behind"

    # Stage 7 interrupted (SIGINT) after its first checkpoint, then rerun: the finished checkpoint
    # is not recomputed, and its results equal those of an analysis run without interruption.
    analysis = recipe / "exp" / "analysis" / "dev_clean"
    interrupt(recipe, 7, signal.SIGINT, lambda: any(analysis.glob("**/results.json")), rng)
    first = results_of(analysis)
    assert first, "no checkpoint was finished before the interruption"
    run_recipe(recipe, "--stage", "7", "--stop_stage", "7")
    name = sorted(first)[0]
    assert f"{name}: every metric cached" in (analysis / "analyse.log").read_text(), "finished work was redone"
    analysed = results_of(analysis)
    registered = json.loads((recipe / "exp" / "upstreams.json").read_text())["upstreams"]
    assert sorted(analysed) == sorted(entry["name"] for entry in registered)
    fresh = tmp_path / "fresh"
    data = next(d for d in (recipe / "dump" / "raw" / "dev_clean", recipe / "data" / "dev_clean")
                if (d / "phones.ctm").is_file())
    subprocess.run([str(repo_root / ".venv" / "bin" / "python"), "-m", "espnet_hubert_ae.bin.analyse",
                    "--data", str(data), "--outdir", str(fresh),
                    "--registry", str(recipe / "exp" / "upstreams.json"), "--checkpoints", name,
                    "--rare_phones", "drop", "--seed", "1", "--num_threads", "2"],  # as run.sh --nj 2
                   cwd=recipe, check=True, capture_output=True)
    # Equal up to the summation order of the BLAS threads.
    fresh_measures = results_of(fresh)[name]
    assert sorted(fresh_measures) == sorted(analysed[name])
    for measure, curve in fresh_measures.items():
        np.testing.assert_allclose(curve, analysed[name][measure], rtol=1e-5, err_msg=measure)

    run_recipe(recipe, "--stage", "8", "--stop_stage", "10")
    text = (recipe / "RESULTS.md").read_text()
    for section in SECTIONS:
        body = re.search(rf"^## {re.escape(section)}.*?\n(.*?)(?=^## |\Z)", text, re.S | re.M)
        assert body and "_No " not in body.group(1) and re.search(r"\d", body.group(1)), (section, text)
    for strategy in STRATEGIES:
        assert f"| {strategy}_tiny_{STEPS} |" in text
    # Rows: per evaluation set (dev_clean, test_clean), the two controls and the two runs; fine-tuning
    # has each run with two resets. Every row has its mean ± std over the two seeds.
    for section, rows in (("SUPERB-style ASR", 2 * 4), ("Phoneme recognition", 2 * 4), ("Libri-light fine-tuning", 2 * 6)):
        table = text.split(f"## {section}")[1].split("\n## ")[0]
        cells = re.findall(r"\| (dev_clean|test_clean) \| 2 \| \d+\.\d ± \d+\.\d \|", table)
        assert len(cells) == rows, (section, table)
    times = (recipe / "exp" / "stage_times.tsv").read_text()
    assert {line.split("\t")[0] for line in times.splitlines()} >= {str(s) for s in range(1, 10)}
