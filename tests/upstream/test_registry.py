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
    assert names == {"progressive_tiny/p1/step100", "progressive_tiny/p1/step200", "progressive_tiny/p2/step1200",
                     "baseline_tiny/p1/step300"}
    capsys.readouterr()
    assert cli.main(["list", "--registry", str(exp_tree / "upstreams.json")]) == 0
    out = capsys.readouterr().out
    assert "progressive_tiny/p2/step1200" in out and "4 upstreams" in out
    assert [line.split()[2] for line in out.splitlines()[1:] if "progressive_tiny/p1" in line] == ["snapshot", "phase"]


def test_registry_paths_survive_moving_the_tree(exp_tree, tmp_path):
    cli.main(["register", "--expdir", str(exp_tree)])
    moved = tmp_path / "moved"
    exp_tree.parent.rename(moved)
    entry = registry.read_registry(moved / "exp" / "upstreams.json")["progressive_tiny/p2/step1200"]
    assert entry.checkpoint == (moved / "exp/pretrain/progressive_tiny/p2/step0001200.pth").resolve()
    assert entry.config.is_file() and (entry.run, entry.strategy, entry.phase, entry.step) == (
        "progressive_tiny", "progressive", 2, 1200)


def test_names_carry_the_run_and_stay_when_runs_are_added(tmp_path):
    expdir = tmp_path / "exp"
    _fake_pretraining(expdir, "progressive_tiny", "progressive", {1: [0, 100]})
    first = {e.name: e.checkpoint for e in registry.collect_entries(expdir)}
    assert set(first) == {"progressive_tiny/p1/step0", "progressive_tiny/p1/step100"}  # step 0: the initial model
    _fake_pretraining(expdir, "progressive_base", "progressive", {1: [100]})
    both = {e.name: e.checkpoint for e in registry.collect_entries(expdir)}
    assert both == {**first, "progressive_base/p1/step100": both["progressive_base/p1/step100"]}


def test_two_checkpoints_with_one_name_are_refused(tmp_path):
    expdir = tmp_path / "exp"
    _fake_pretraining(expdir, "progressive_tiny", "progressive", {1: [100]})
    listing = expdir / "pretrain" / "progressive_tiny" / "checkpoints.json"
    records = json.loads(listing.read_text())
    other = _fake_checkpoint(listing.parent / "p1", "other.pth")
    listing.write_text(json.dumps(records + [{**records[0], "path": str(other)}]))
    with pytest.raises(UpstreamError, match="two checkpoints are both named progressive_tiny/p1/step100"):
        registry.collect_entries(expdir)


def test_missing_checkpoint_named(exp_tree):
    (exp_tree / "pretrain/baseline_tiny/p1/step0000300.pth").unlink()
    with pytest.raises(UpstreamError, match="baseline_tiny/p1/step300.*step0000300.pth.*does not exist"):
        registry.collect_entries(exp_tree)


def test_register_without_checkpoints_fails_clearly(tmp_path, capsys):
    (tmp_path / "exp").mkdir()
    assert cli.main(["register", "--expdir", str(tmp_path / "exp")]) == 1
    assert "run stage 5 first" in capsys.readouterr().err


def test_unknown_name_lists_close_names(exp_tree):
    cli.main(["register", "--expdir", str(exp_tree)])
    with pytest.raises(UpstreamError, match=r"close names: progressive_tiny/p2/step1200"):
        registry.read_registry(exp_tree / "upstreams.json").lookup("progresive_tiny/p2/step1200")


def test_last_checkpoint_of_each_run(exp_tree):
    cli.main(["register", "--expdir", str(exp_tree)])
    registered = registry.read_registry(exp_tree / "upstreams.json")
    assert registered.last("progressive_tiny").name == "progressive_tiny/p2/step1200"  # the latest phase wins
    assert {run: ref.name for run, ref in registered.last_per_run().items()} == {
        "progressive_tiny": "progressive_tiny/p2/step1200", "baseline_tiny": "baseline_tiny/p1/step300"}
    with pytest.raises(UpstreamError, match="registered runs: baseline_tiny, progressive_tiny"):
        registered.last("progressive")  # a strategy is not a run


def test_references_of_names_files_and_all(exp_tree, tmp_path):
    cli.main(["register", "--expdir", str(exp_tree)])
    registered = registry.read_registry(exp_tree / "upstreams.json")
    snapshot = exp_tree / "pretrain/progressive_tiny/p1/step0000100.pth"
    assert registered.ref(snapshot).name == "progressive_tiny/p1/step100"  # a registered file goes by its name
    loose = _fake_checkpoint(tmp_path / "elsewhere", "model.pth")
    assert registered.ref(loose) == registry.CheckpointRef("elsewhere_model", loose, loose.parent / "config.yaml")
    selected = registered.select([str(loose), "baseline_tiny/p1/step300", "all"])
    assert [r.name for r in selected[:2]] == ["elsewhere_model", "baseline_tiny/p1/step300"]
    assert len(selected) == 1 + 4  # every registered one once
    assert registered.ref("baseline_tiny/p1/step300").tag == "baseline_tiny_p1_step300"
    with pytest.raises(UpstreamError, match="no upstream registry found"):
        registry.Registry().select(["all"])


def test_names_found_from_the_recipe_directory_and_env(exp_tree, monkeypatch, tmp_path):
    cli.main(["register", "--expdir", str(exp_tree)])
    monkeypatch.chdir(exp_tree / "pretrain")  # below the recipe directory: searched upward
    checkpoint, config = registry.resolve_upstream("progressive_tiny/p1/step200")
    assert checkpoint.name == "step0000200.pth" and config.name == "config.yaml"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UpstreamError, match="no upstream registry was found"):
        registry.resolve_upstream("progressive_tiny/p1/step200")
    monkeypatch.setenv(registry.REGISTRY_ENV, str(exp_tree / "upstreams.json"))
    assert registry.resolve_upstream("progressive_tiny/p1/step200")[0] == checkpoint
    monkeypatch.setenv(registry.REGISTRY_ENV, str(tmp_path / "nope.json"))
    with pytest.raises(UpstreamError, match="no such registry file"):
        registry.resolve_upstream("progressive_tiny/p1/step200")


def test_show_prints_checkpoint(exp_tree, capsys):
    cli.main(["register", "--expdir", str(exp_tree)])
    capsys.readouterr()
    assert cli.main(["show", "baseline_tiny/p1/step300", "--registry", str(exp_tree / "upstreams.json")]) == 0
    assert "step0000300.pth" in capsys.readouterr().out
    assert cli.main(["show", "baseline_tiny/p9", "--registry", str(exp_tree / "upstreams.json")]) == 1
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


def test_corrupt_or_old_registry_named(tmp_path):
    bad = tmp_path / "upstreams.json"
    bad.write_text("{not json")
    with pytest.raises(UpstreamError, match=str(bad)):
        registry.read_registry(bad)
    bad.write_text(json.dumps({"version": 1, "upstreams": []}))
    with pytest.raises(UpstreamError, match="format 1, not 2: register the checkpoints again"):
        registry.read_registry(bad)
