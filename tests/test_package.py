"""The package as users get it: a wheel that carries its presets and works outside the checkout,
and sub-packages layered so that none imports from one above it."""

from __future__ import annotations

import ast
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

# The log-mel family built from the wheel's own preset, run on one second of audio.
LOGMEL = """
import torch, yaml
from espnet_hubert_ae.model.factory import pretrain_config
from espnet_hubert_ae.model.hubert import build_pretrain_model, hidden_states
from espnet_hubert_ae.utils.presets import resolve_preset
conf = yaml.safe_load(resolve_preset("model", "mel_tiny").read_text())
model = build_pretrain_model(pretrain_config(conf["encoder_conf"], 20, conf["encoder"])).eval()
states, frames = hidden_states(model, 0.1 * torch.randn(1, 16000), torch.tensor([16000]))
print(type(model.encoder).__module__, len(states), int(frames[0]))
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
    assert "espnet_hubert_ae/conf/model/mel_small.yaml" in names

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
    logmel = subprocess.run([sys.executable, "-c", LOGMEL], cwd=outside, env=env, capture_output=True, text=True)
    assert logmel.returncode == 0, logmel.stderr
    # (ESPnet prints a notice about flash attention first.)
    assert logmel.stdout.splitlines()[-1].split() == ["espnet_hubert_ae.model.encoders", "5", "49"]  # 4 layers + input


# Each sub-package may import from the layers below it only (utils from anywhere); packages of
# one layer do not import each other.
LAYERS = [("data",), ("model",), ("targets",), ("pretrain",), ("upstream",), ("analysis", "asr"), ("report",),
          ("bench", "bin")]


def _imported_subpackages(path: Path) -> set[tuple[str, int]]:
    """(sub-package, line) of every ``espnet_hubert_ae.<sub-package>`` import in a source file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "espnet_hubert_ae" and len(parts) > 1:
                found.add((parts[1], node.lineno))
    return found


def test_no_module_imports_from_a_layer_above(repo_root):
    rank = {package: i for i, layer in enumerate(LAYERS) for package in layer}
    package_root = repo_root / "espnet_hubert_ae"
    sources = sorted(package_root.glob("*/**/*.py"))
    assert {path.relative_to(package_root).parts[0] for path in sources} <= set(rank) | {"utils", "conf"}
    wrong = []
    for path in sources:
        home = path.relative_to(package_root).parts[0]
        if home == "utils":
            continue
        for imported, line in sorted(_imported_subpackages(path)):
            if imported != home and imported in rank and rank[imported] >= rank[home]:
                wrong.append(f"{path.relative_to(repo_root)}:{line} imports espnet_hubert_ae.{imported}")
    assert not wrong, "imports from a layer above (or beside):\n" + "\n".join(wrong)
