"""Recipe stages 1-5 through run.sh on the built-in corpus with the CI progressive schedule."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

STEPS = 24  # ci_progressive scaled down: phases of 11, 7 and 6 steps


def recipe_copy(tmp_path: Path, recipe_dir: Path) -> Path:
    """run.sh and its environment in a temporary directory (data/, dump/, exp/ land there)."""
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    for name in ("run.sh", "db.sh", "cmd.sh"):
        shutil.copy(recipe_dir / name, recipe / name)
    (recipe / "path.sh").write_text(f". {recipe_dir / 'path.sh'}\n")
    for name in ("local", "conf"):
        (recipe / name).symlink_to((recipe_dir / name).resolve())
    return recipe


def run_recipe(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, timeout=1500,
                          env=dict(os.environ))  # fmt: skip


def test_stages_1_to_5_ci_progressive(tmp_path, recipe_dir):
    recipe = recipe_copy(tmp_path, recipe_dir)
    options = ["--strategy", "ci_progressive", "--builtin_minutes", "1.5", "--pretrain_steps", str(STEPS), "--nj", "2"]
    result = run_recipe(recipe, "--stage", "1", "--stop_stage", "5", *options)
    assert result.returncode == 0, result.stderr[-3000:]

    exp_dir = recipe / "exp" / "pretrain" / f"ci_progressive_tiny_{STEPS}"
    checkpoints = json.loads((exp_dir / "checkpoints.json").read_text())
    assert [c["phase"] for c in checkpoints if c["phase_end"]] == [1, 2, 3]
    assert checkpoints[-1]["global_step"] == STEPS
    for phase in (1, 2, 3):
        summary = json.loads((exp_dir / f"phase{phase}" / "summary.json").read_text())
        assert summary["seconds"]["training"] > 0 and summary["final"]["train_acc_m"] >= 0
        assert Path(summary["labels"]["texts"]["train_pretrain"]).is_file()
    # Phase 1 reuses stage 4's MFCC labels; later phases cluster layers of the previous model.
    assert "ci_progressive_p1_mfcc_k20" in summary_of(exp_dir, 1)["labels"]["tokens"]
    assert summary_of(exp_dir, 3)["labels"]["source"]["layer"] == 4
    for phase in (2, 3):
        start = json.loads((exp_dir / f"phase{phase}" / "phase_start.json").read_text())
        assert start["warm_start"]["optimizer_states_carried"] > 0

    started = time.perf_counter()
    rerun = run_recipe(recipe, "--stage", "5", "--stop_stage", "5", *options)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert time.perf_counter() - started < 60
    log = (recipe / "exp" / "pretrain" / "logs" / f"ci_progressive_tiny_{STEPS}.log").read_text()
    assert log.count("skipping it") == 3


def summary_of(exp_dir: Path, phase: int) -> dict:
    return json.loads((exp_dir / f"phase{phase}" / "summary.json").read_text())
