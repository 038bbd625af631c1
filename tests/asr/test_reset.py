"""Top-N layer reset: exactly the top N transformer layers change, nothing else."""

import pytest
import torch

from espnet_hubert_ae.asr.reset import (
    LAYERS_PREFIX,
    PRETRAINING_HEAD_PREFIX,
    ResetError,
    finetuning_init_state,
    layer_prefix,
    reset_top_layers,
    write_init_state,
)


@pytest.fixture(scope="module")
def pretrained(asr_tiny_checkpoint):
    """Encoder state and config of the tiny checkpoint, perturbed so that no tensor (layer
    norms included) still equals its initial value."""
    import yaml

    state = torch.load(asr_tiny_checkpoint, map_location="cpu")
    generator = torch.Generator().manual_seed(1)
    perturbed = {
        k: v + 0.01 * torch.randn(v.shape, generator=generator) if v.is_floating_point() else v
        for k, v in state.items()
    }
    config = yaml.safe_load((asr_tiny_checkpoint.parent / "config.yaml").read_text())
    return finetuning_init_state(perturbed), config["encoder_conf"]


def _changed(before, after):
    return {k for k in before if not torch.equal(before[k], after[k])}


@pytest.mark.parametrize("num_reset", [0, 1, 2, 4])
def test_reset_changes_exactly_the_top_layers(pretrained, num_reset):
    state, encoder_conf = pretrained
    total = 4
    new_state, reset_keys = reset_top_layers(state, encoder_conf, num_reset, seed=0)
    assert new_state.keys() == state.keys()
    top = tuple(layer_prefix(i) for i in range(total - num_reset + 1, total + 1))
    expected = {k for k in state if top and k.startswith(top)}
    assert set(reset_keys) == expected
    assert _changed(state, new_state) == expected  # every tensor of those layers, nothing else
    if num_reset:
        assert any(k.startswith(layer_prefix(total)) for k in expected)
        assert not any(k.startswith(layer_prefix(total - num_reset)) for k in expected)


def test_reset_is_deterministic_and_matches_a_fresh_model(pretrained):
    state, encoder_conf = pretrained
    a, keys = reset_top_layers(state, encoder_conf, 1, seed=3)
    b, _ = reset_top_layers(state, encoder_conf, 1, seed=3)
    assert all(torch.equal(a[k], b[k]) for k in keys)
    # reset layer norms are back at their initial values (weight 1, bias 0)
    norm = next(k for k in keys if k.endswith("layer_norm.weight"))
    assert torch.equal(a[norm], torch.ones_like(a[norm]))


def test_reset_too_many_layers_fails(pretrained):
    state, encoder_conf = pretrained
    with pytest.raises(ResetError, match="has 4 transformer layers"):
        reset_top_layers(state, encoder_conf, 5)


def test_init_state_file_drops_the_pretraining_head(asr_tiny_checkpoint, tmp_path):
    reset_keys = write_init_state(tmp_path / "init.pth", asr_tiny_checkpoint, num_reset=1)
    state = torch.load(tmp_path / "init.pth")
    assert not any(k.startswith(PRETRAINING_HEAD_PREFIX) for k in state)
    assert "hubert_pretrain_model.mask_generator.mask_embedding" in state
    assert sum(k.startswith(LAYERS_PREFIX) for k in state) > len(reset_keys) > 0


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(ValueError, match="nothing.pth"):
        write_init_state(tmp_path / "init.pth", tmp_path / "nothing.pth")
