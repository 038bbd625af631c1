"""The random-init control: the run's step-0 snapshot, or a seeded untrained model of its architecture."""

from pathlib import Path

import torch

from espnet_hubert_ae.asr.random_init import random_init_checkpoint
from espnet_hubert_ae.model.hubert import load_pretrain_model
from espnet_hubert_ae.upstream.registry import REGISTRY_ENV, CheckpointRef, write_registry


def test_built_from_the_config_beside_the_checkpoint(tiny_hubert_checkpoint, tmp_path):
    path = Path(random_init_checkpoint(str(tiny_hubert_checkpoint), tmp_path / "controls", seed=3))
    assert path.parent.parent == tmp_path / "controls" and (path.parent / "config.yaml").is_file()
    model, _ = load_pretrain_model(path)  # a checkpoint like any other
    trained, _ = load_pretrain_model(tiny_hubert_checkpoint)
    assert model.state_dict().keys() == trained.state_dict().keys()
    again = random_init_checkpoint(str(tiny_hubert_checkpoint), tmp_path / "again", seed=3)
    first, second = torch.load(path, weights_only=True), torch.load(again, weights_only=True)
    assert all(torch.equal(first[k], second[k]) for k in first)  # the seed fixes it
    other = torch.load(random_init_checkpoint(str(tiny_hubert_checkpoint), tmp_path / "other", seed=4),
                       weights_only=True)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_the_registered_step0_snapshot_is_preferred(tiny_hubert_checkpoint, tmp_path, monkeypatch):
    config = tiny_hubert_checkpoint.parent / "config.yaml"
    entries = [CheckpointRef(f"base_tiny/p1/step{s}", tmp_path / f"s{s}.pth", config, "base_tiny", "base", 1, s)
               for s in (0, 100)]
    for e in entries:
        e.checkpoint.write_bytes(tiny_hubert_checkpoint.read_bytes())
    monkeypatch.setenv(REGISTRY_ENV, str(write_registry(tmp_path / "upstreams.json", entries)))
    assert random_init_checkpoint("base_tiny/p1/step100", tmp_path / "controls") == "base_tiny/p1/step0"
    assert random_init_checkpoint("base_tiny", tmp_path / "controls") == "base_tiny/p1/step0"  # a run tag
    assert not (tmp_path / "controls").exists()
