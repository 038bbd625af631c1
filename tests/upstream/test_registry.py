"""The upstream registry (stage 6) and how hubert_ae_local resolves what it is given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from espnet_hubert_ae.bin import upstreams as cli
from espnet_hubert_ae.upstream import registry
from espnet_hubert_ae.upstream.registry import UpstreamError


def _fake_checkpoint(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text("encoder: torchaudio_hubert\nmodel: torchaudio\n")
    path = directory / name
    path.write_bytes(b"weights")
    return path


def _fake_pretraining(expdir: Path, tag: str, strategy: str, steps_by_phase: dict[int, list[int]]) -> None:
    """An exp/pretrain/<tag>/ tree with checkpoints.json, as pretraining leaves it."""
    records = []
    for phase, steps in steps_by_phase.items():
        for step in steps:
            ckpt = _fake_checkpoint(expdir / "pretrain" / tag / f"p{phase}", f"step{step:07d}.pth")
            records.append({"path": str(ckpt.relative_to(expdir / "pretrain" / tag)),
                            "config": str(ckpt.parent.relative_to(expdir / "pretrain" / tag) / "config.yaml"),
                            "strategy": strategy, "phase": phase, "global_step": step,
                            "phase_end": step == steps[-1]})
    (expdir / "pretrain" / tag / "checkpoints.json").write_text(json.dumps(records))


@pytest.fixture
def exp_tree(tmp_path, monkeypatch):
    monkeypatch.delenv(registry.REGISTRY_ENV, raising=False)
    expdir = tmp_path / "recipe" / "exp"
    _fake_pretraining(expdir, "progressive_tiny", "progressive", {1: [100, 200], 2: [1200]})
    _fake_pretraining(expdir, "baseline_tiny", "baseline", {1: [300]})
    return expdir


def test_register_and_list(exp_tree, capsys):
    assert cli.main(["register", "--expdir", str(exp_tree)]) == 0
    names = set(registry.read_registry(exp_tree / "upstreams.json"))
    assert names == {"progressive/p1/step100", "progressive/p1/step200", "progressive/p2/step1200",
                     "baseline/p1/step300"}
    capsys.readouterr()
    assert cli.main(["list", "--registry", str(exp_tree / "upstreams.json")]) == 0
    out = capsys.readouterr().out
    assert "progressive/p2/step1200" in out and "4 upstreams" in out
    assert [line.split()[2] for line in out.splitlines()[1:] if "progressive/p1" in line] == ["snapshot", "phase"]


def test_registry_paths_survive_moving_the_tree(exp_tree, tmp_path):
    cli.main(["register", "--expdir", str(exp_tree)])
    moved = tmp_path / "moved"
    exp_tree.parent.rename(moved)
    entry = registry.read_registry(moved / "exp" / "upstreams.json")["progressive/p2/step1200"]
    assert entry.checkpoint == (moved / "exp/pretrain/progressive_tiny/p2/step0001200.pth").resolve()
    assert entry.config.is_file() and entry.step == 1200 and entry.phase == "p2"


def test_same_strategy_in_two_experiments_gets_distinct_names(tmp_path):
    expdir = tmp_path / "exp"
    _fake_pretraining(expdir, "progressive_tiny", "progressive", {1: [100]})
    _fake_pretraining(expdir, "progressive_base", "progressive", {1: [100]})
    names = {e.name for e in registry.collect_entries(expdir)}
    assert names == {"progressive_tiny/progressive/p1/step100", "progressive_base/progressive/p1/step100"}


def test_missing_checkpoint_named(exp_tree):
    (exp_tree / "pretrain/baseline_tiny/p1/step0000300.pth").unlink()
    with pytest.raises(UpstreamError, match="baseline/p1/step300.*step0000300.pth.*does not exist"):
        registry.collect_entries(exp_tree)


def test_register_without_checkpoints_fails_clearly(tmp_path, capsys):
    (tmp_path / "exp").mkdir()
    assert cli.main(["register", "--expdir", str(tmp_path / "exp")]) == 1
    assert "run stage 5 first" in capsys.readouterr().err


def test_unknown_name_lists_close_names(exp_tree):
    cli.main(["register", "--expdir", str(exp_tree)])
    with pytest.raises(UpstreamError, match=r"close names: progressive/p2/step1200"):
        registry.lookup("progresive/p2/step1200", exp_tree / "upstreams.json")


def test_names_found_from_the_recipe_directory_and_env(exp_tree, monkeypatch, tmp_path):
    cli.main(["register", "--expdir", str(exp_tree)])
    monkeypatch.chdir(exp_tree / "pretrain")  # below the recipe directory: searched upward
    checkpoint, config = registry.resolve_upstream("progressive/p1/step200")
    assert checkpoint.name == "step0000200.pth" and config.name == "config.yaml"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UpstreamError, match="no upstream registry was found"):
        registry.resolve_upstream("progressive/p1/step200")
    monkeypatch.setenv(registry.REGISTRY_ENV, str(exp_tree / "upstreams.json"))
    assert registry.resolve_upstream("progressive/p1/step200")[0] == checkpoint
    monkeypatch.setenv(registry.REGISTRY_ENV, str(tmp_path / "nope.json"))
    with pytest.raises(UpstreamError, match="no such registry file"):
        registry.resolve_upstream("progressive/p1/step200")


def test_show_prints_checkpoint(exp_tree, capsys):
    cli.main(["register", "--expdir", str(exp_tree)])
    capsys.readouterr()
    assert cli.main(["show", "baseline/p1/step300", "--registry", str(exp_tree / "upstreams.json")]) == 0
    assert "step0000300.pth" in capsys.readouterr().out
    assert cli.main(["show", "baseline/p9", "--registry", str(exp_tree / "upstreams.json")]) == 1
    assert "close names" in capsys.readouterr().err


def test_resolve_paths_and_their_errors(tmp_path):
    ckpt = _fake_checkpoint(tmp_path / "run", "model.pth")
    assert registry.resolve_upstream(str(ckpt)) == (ckpt, ckpt.parent / "config.yaml")
    other = tmp_path / "elsewhere.yaml"
    other.write_text("x: 1\n")
    assert registry.resolve_upstream(ckpt, config=other)[1] == other
    with pytest.raises(UpstreamError, match="is a directory"):
        registry.resolve_upstream(tmp_path / "run")
    with pytest.raises(UpstreamError, match="needs a checkpoint path"):
        registry.resolve_upstream(None)
    (tmp_path / "run" / "config.yaml").unlink()
    with pytest.raises(UpstreamError, match="config.yaml must sit beside"):
        registry.resolve_upstream(ckpt)


def test_corrupt_registry_named(tmp_path):
    bad = tmp_path / "upstreams.json"
    bad.write_text("{not json")
    with pytest.raises(UpstreamError, match=str(bad)):
        registry.read_registry(bad)
