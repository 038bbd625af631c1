"""The package as users get it: a wheel that carries its presets and works outside the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

RESOLVE = """
import espnet_hubert_ae
from espnet_hubert_ae.pretrain.schedule import load_schedule
from espnet_hubert_ae.utils.presets import resolve_preset
schedule = load_schedule("progressive")
print(espnet_hubert_ae.__file__)
print(schedule.source)
print(resolve_preset("model", "tiny"))
print(schedule.name, len(schedule.phases))
"""


def test_wheel_carries_the_presets_and_runs_outside_the_checkout(tmp_path, repo_root):
    # Built from a copy: an in-tree build would leave build/ and *.egg-info in the checkout.
    src = tmp_path / "src"
    shutil.copytree(repo_root / "espnet_hubert_ae", src / "espnet_hubert_ae",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(repo_root / "setup.py", src)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--no-cache-dir", "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("espnet_hubert_ae-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    assert "espnet_hubert_ae/conf/strategy/progressive.yaml" in names
    assert "espnet_hubert_ae/conf/model/tiny.yaml" in names and "espnet_hubert_ae/conf/asr/superb.yaml" in names

    # The extracted wheel comes first on the path and the command runs far from the checkout.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-c", RESOLVE], cwd=outside, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    package, schedule, model, summary = run.stdout.splitlines()
    for path in (package, schedule, model):
        assert Path(path).resolve().is_relative_to(site.resolve()), path
    assert summary == "progressive 4"
    help_run = subprocess.run([sys.executable, "-m", "espnet_hubert_ae.bin.pretrain", "--help"], cwd=outside, env=env,
                              capture_output=True, text=True)
    assert help_run.returncode == 0, help_run.stderr
    assert "--strategy" in help_run.stdout and "--launcher" in help_run.stdout
