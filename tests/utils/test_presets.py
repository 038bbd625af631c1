"""The shipped configs and their one resolver: preset names, paths, and errors naming the presets."""

from __future__ import annotations

import pytest

from espnet_hubert_ae.utils.presets import PRESET_KINDS, PresetError, preset_dir, preset_names, resolve_preset


def test_every_kind_ships_its_presets():
    assert {"baseline", "warmstart", "height", "progressive"} <= set(preset_names("strategy"))
    assert {"tiny", "base", "large"} <= set(preset_names("model"))
    assert {"superb", "superb_tiny", "finetune_10h", "finetune_1h", "finetune_10min", "finetune_tiny"} <= set(
        preset_names("asr"))
    for kind in PRESET_KINDS:
        assert preset_dir(kind).parent.parent.name == "espnet_hubert_ae"  # the package owns them


def test_names_and_paths(tmp_path, monkeypatch):
    assert resolve_preset("strategy", "progressive") == preset_dir("strategy") / "progressive.yaml"
    mine = tmp_path / "mine.yml"
    mine.write_text("phases: []\n")
    assert resolve_preset("strategy", mine) == mine
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").write_text("a file named like a preset\n")
    assert resolve_preset("model", "tiny").resolve() == tmp_path / "tiny"  # an existing file wins over a name


def test_errors_name_the_presets(tmp_path):
    with pytest.raises(PresetError, match=r"unknown model 'huge'.*\(base, large, mel_small, mel_tiny, small, tiny\)"):
        resolve_preset("model", "huge")
    with pytest.raises(PresetError, match="asr config file not found: .*missing.yaml"):
        resolve_preset("asr", tmp_path / "missing.yaml")
    with pytest.raises(PresetError, match="unknown config kind 'tokenizer'"):
        resolve_preset("tokenizer", "bpe")
