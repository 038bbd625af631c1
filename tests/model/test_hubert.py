"""Loading ESPnet HuBERT checkpoints, their conv stacks and the layer index convention."""

from __future__ import annotations

import shutil

import pytest
import torch
import yaml

from espnet_hubert_ae.model.frames import FrameGrid, conv_frame_count
from espnet_hubert_ae.model.hubert import (
    CheckpointError,
    frame_grid,
    frame_counter,
    hidden_states,
    load_pretrain_model,
    num_layers,
    wav2vec2_of,
)


@pytest.fixture(scope="module")
def tiny_model(tiny_hubert_checkpoint):
    model, config = load_pretrain_model(tiny_hubert_checkpoint)
    return model


def _batch(lengths, seed=0):
    gen = torch.Generator().manual_seed(seed)
    wavs = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        wavs[i, :n] = 0.1 * torch.randn(n, generator=gen)
    return wavs, torch.tensor(lengths)


def test_frame_count_matches_the_model(tiny_model, tiny_hubert_checkpoint):
    lengths = [16000, 12345, 4000]
    _, frame_lengths = hidden_states(tiny_model, *_batch(lengths), upto_layer=0)
    count = frame_counter(tiny_model)
    assert frame_lengths.tolist() == [count(n) for n in lengths]
    assert frame_grid(tiny_model) == frame_grid(tiny_hubert_checkpoint.parent / "config.yaml") == FrameGrid(400, 320)
    # The tiny stack keeps HuBERT Base's arithmetic, so MFCC labels fit it too.
    assert [count(n) for n in lengths] == [conv_frame_count(n) for n in lengths]


def test_early_exit_equals_full_forward(tiny_model):
    wavs, lengths = _batch([16000, 9000])
    full, full_lengths = hidden_states(tiny_model, wavs, lengths)
    assert len(full) == num_layers(tiny_model) + 1 == 3
    for layer in range(num_layers(tiny_model) + 1):
        early, early_lengths = hidden_states(tiny_model, wavs, lengths, upto_layer=layer)
        assert len(early) == layer + 1
        assert torch.equal(early[layer], full[layer])
        assert torch.equal(early_lengths, full_lengths)


@pytest.fixture(scope="module")
def pre_ln_model(tmp_path_factory):
    """The tiny model with layer norm first (whose transformer input then skips the norm)."""
    from espnet_hubert_ae.model.factory import TINY_ENCODER_CONF, write_random_checkpoint

    conf = {**TINY_ENCODER_CONF, "encoder_layer_norm_first": True}
    model, _ = load_pretrain_model(write_random_checkpoint(tmp_path_factory.mktemp("pre_ln"), conf))
    return model


@pytest.mark.parametrize("layer_norm_first", [False, True], ids=["post-LN", "pre-LN"])
def test_layer_index_convention_matches_torchaudio(tiny_model, pre_ln_model, layer_norm_first):
    """Index 0 = what torchaudio's own forward feeds transformer layer 1; index L = the output of
    its public ``Wav2Vec2Model.extract_features`` for layer L (1-based there)."""
    model = pre_ln_model if layer_norm_first else tiny_model
    wavs, lengths = _batch([8000])
    states, _ = hidden_states(model, wavs, lengths)
    w2v = wav2vec2_of(model)
    fed = []
    hook = w2v.encoder.transformer.layers[0].register_forward_pre_hook(lambda module, args: fed.append(args[0]))
    try:
        with torch.no_grad():
            torchaudio_layers, _ = w2v.extract_features(wavs, lengths)
    finally:
        hook.remove()
    assert len(states) == len(torchaudio_layers) + 1
    torch.testing.assert_close(states[0], fed[0], rtol=0, atol=0)
    for layer in range(1, len(states)):
        torch.testing.assert_close(states[layer], torchaudio_layers[layer - 1], rtol=0, atol=0)


def test_batching_does_not_change_features(tiny_model):
    wavs, lengths = _batch([16000, 6000])
    batched, _ = hidden_states(tiny_model, wavs, lengths)
    alone, alone_lengths = hidden_states(tiny_model, wavs[1:, :6000], lengths[1:])
    n = int(alone_lengths[0])
    assert torch.allclose(batched[2][1, :n], alone[2][0], atol=1e-5)


def test_layer_out_of_range(tiny_model):
    wavs, lengths = _batch([4000])
    with pytest.raises(CheckpointError, match="layer 3 is out of range.*0..2"):
        hidden_states(tiny_model, wavs, lengths, upto_layer=3)
    with pytest.raises(CheckpointError, match="out of range"):
        hidden_states(tiny_model, wavs, lengths, upto_layer=-1)


def test_missing_config(tiny_hubert_checkpoint, tmp_path):
    lonely = tmp_path / "model.pth"
    shutil.copy(tiny_hubert_checkpoint, lonely)
    with pytest.raises(CheckpointError, match="config.yaml.*config missing"):
        load_pretrain_model(lonely)


def test_wrong_kind_of_config(tiny_hubert_checkpoint, tmp_path):
    config = yaml.safe_load((tiny_hubert_checkpoint.parent / "config.yaml").read_text())
    config["encoder"] = "conformer"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    shutil.copy(tiny_hubert_checkpoint, tmp_path / "model.pth")
    with pytest.raises(CheckpointError, match="not an ESPnet HuBERT pretraining checkpoint"):
        load_pretrain_model(tmp_path / "model.pth")


def test_wrong_kind_of_state_dict(tiny_hubert_checkpoint, tmp_path):
    shutil.copy(tiny_hubert_checkpoint.parent / "config.yaml", tmp_path / "config.yaml")
    torch.save({"decoder.weight": torch.zeros(3)}, tmp_path / "asr.pth")
    with pytest.raises(CheckpointError, match="parameters missing"):
        load_pretrain_model(tmp_path / "asr.pth")
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_pretrain_model(tmp_path / "junk.pth")


def test_trainer_checkpoint_is_accepted(tiny_hubert_checkpoint, tmp_path):
    """ESPnet's resumable checkpoint.pth keeps the model under "model"."""
    shutil.copy(tiny_hubert_checkpoint.parent / "config.yaml", tmp_path / "config.yaml")
    torch.save({"model": torch.load(tiny_hubert_checkpoint), "optimizers": []}, tmp_path / "checkpoint.pth")
    model, config = load_pretrain_model(tmp_path / "checkpoint.pth")
    assert config["encoder"] == "torchaudio_hubert"
    assert not model.training
