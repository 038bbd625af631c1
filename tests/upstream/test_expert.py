"""The hubert_ae_local expert on a tiny random checkpoint, without s3prl's (slow) hub."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from espnet_hubert_ae.model.hubert import num_layers
from espnet_hubert_ae.upstream.expert import UpstreamExpert
from espnet_hubert_ae.upstream.hubconf import hubert_ae_local
from espnet_hubert_ae.upstream.registry import UpstreamError


@pytest.fixture(scope="module")
def expert(tiny_hubert_checkpoint):
    torch.set_num_threads(1)
    return UpstreamExpert(tiny_hubert_checkpoint)


def _wavs(*lengths, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=generator) * 0.1 for n in lengths]


def test_all_layers_with_the_project_convention(expert):
    states = expert(_wavs(16000))["hidden_states"]
    assert len(states) == num_layers(expert.model) + 1
    assert all(s.shape == (1, 49, 64) for s in states)  # 16000 samples: 49 frames of 320 samples
    assert expert.get_downsample_rates("hidden_states") == 320


def test_batched_equals_one_by_one(expert):
    wavs = _wavs(16000, 9000, 4321)
    batched = expert(wavs)["hidden_states"]
    for index, wav in enumerate(wavs):
        alone = expert([wav])["hidden_states"]
        frames = alone[0].shape[1]
        for layer, (b, a) in enumerate(zip(batched, alone)):
            torch.testing.assert_close(b[index, :frames], a[0], atol=1e-4, rtol=1e-4, msg=f"layer {layer}")


def test_stays_in_eval_without_gradients(expert):
    expert.train()
    try:
        assert expert.training and not expert.model.training
        a = expert(_wavs(8000))["hidden_states"][-1]
        b = expert(_wavs(8000))["hidden_states"][-1]
        torch.testing.assert_close(a, b)  # no dropout
        assert not a.requires_grad
    finally:
        expert.eval()


def test_audio_shorter_than_one_frame_gives_one_frame(expert):
    states = expert(_wavs(1, 399))["hidden_states"]
    assert states[0].shape[:2] == (2, 1)
    with pytest.raises(UpstreamError, match="waveform 1 of the batch is empty"):
        expert(_wavs(400, 0))
    with pytest.raises(UpstreamError, match="expected 1-D mono audio"):
        expert([torch.zeros(2, 400)])
    assert expert([torch.zeros(400, 1)])["hidden_states"][0].shape[:2] == (1, 1)


def test_other_sample_rates_are_resampled(tiny_hubert_checkpoint, expert):
    import torchaudio.functional

    at_8k = UpstreamExpert(tiny_hubert_checkpoint, sample_rate=8000)
    assert at_8k.get_downsample_rates() == 160
    wav = _wavs(8000)[0]
    expected = expert([torchaudio.functional.resample(wav, 8000, 16000)])["hidden_states"]
    for got, want in zip(at_8k([wav])["hidden_states"], expected):
        torch.testing.assert_close(got, want)
    with pytest.raises(UpstreamError, match="sample_rate=11025 is not supported"):
        UpstreamExpert(tiny_hubert_checkpoint, sample_rate=11025)


def test_not_a_checkpoint_of_this_project(tmp_path, tiny_hubert_checkpoint):
    junk = tmp_path / "junk" / "model.pth"
    junk.parent.mkdir()
    junk.write_bytes(b"not a checkpoint")
    (junk.parent / "config.yaml").write_text((tiny_hubert_checkpoint.parent / "config.yaml").read_text())
    with pytest.raises(UpstreamError, match="cannot be read as a PyTorch checkpoint"):
        hubert_ae_local(str(junk))
    asr = tmp_path / "asr" / "model.pth"
    asr.parent.mkdir()
    asr.write_bytes(tiny_hubert_checkpoint.read_bytes())
    (asr.parent / "config.yaml").write_text("encoder: conformer\nmodel: espnet\n")
    with pytest.raises(UpstreamError, match="not an ESPnet HuBERT pretraining checkpoint"):
        hubert_ae_local(str(asr))
    (asr.parent / "config.yaml").unlink()
    with pytest.raises(UpstreamError, match="config.yaml must sit beside"):
        hubert_ae_local(str(asr))


def test_layer_round_trip_with_target_features(tiny_hubert_checkpoint, expert):
    """Features the targets stage extracts at layer L are the upstream's hidden_states[L]."""
    from espnet_hubert_ae.targets.sources import FeatureExtractor, Layer

    wav = _wavs(12345, seed=3)[0]
    states = expert([wav])["hidden_states"]
    for layer in range(len(states)):
        (features,) = list(FeatureExtractor(Layer(tiny_hubert_checkpoint, layer))([wav.numpy()]))
        np.testing.assert_allclose(features, states[layer][0].numpy(), atol=1e-4, rtol=1e-4,
                                   err_msg=f"layer {layer}")
