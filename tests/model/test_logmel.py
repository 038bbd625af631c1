"""The log-mel front end: Kaldi's filterbank, per-utterance normalisation, stacking, frame grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchaudio.compliance import kaldi

from espnet_hubert_ae.model.frames import HUBERT_GRID
from espnet_hubert_ae.model.hubert import frame_counter, hidden_states, load_pretrain_model
from espnet_hubert_ae.model.logmel import LogMelConfig, LogMelFrontEnd
from espnet_hubert_ae.targets.mfcc import mfcc_features

# Around the window (400 samples) and the hops of 10 ms (160) and 20 ms (320).
BOUNDARY_LENGTHS = [399, 400, 401, 559, 560, 561, 719, 720, 721, 1039, 1040, 1041, 16000, 16159, 16160, 16161]


def _batch(lengths, seed=0):
    generator = torch.Generator().manual_seed(seed)
    wavs = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        wavs[i, :n] = 0.1 * torch.randn(n, generator=generator)
    return wavs, torch.tensor(lengths)


def _kaldi_fbank(wav: torch.Tensor, shift_ms: float = 10.0) -> np.ndarray:
    """torchaudio's Kaldi-compatible fbank of one utterance (16-bit sample scale, no dither)."""
    if wav.numel() < 400:
        return np.zeros((0, 80), np.float32)
    return kaldi.fbank(wav[None] * 32768.0, num_mel_bins=80, frame_length=25.0, frame_shift=shift_ms, dither=0.0,
                       sample_frequency=16000).numpy()


@pytest.mark.parametrize("shift_ms", [10.0, 20.0])
def test_raw_frames_equal_kaldi_fbank_in_a_padded_batch(shift_ms):
    front = LogMelFrontEnd(LogMelConfig(frame_shift=shift_ms, stack=1, normalize="none"))
    lengths = [16000, 12345, 4000, 719, 400]
    wavs, lens = _batch(lengths)
    features, frames = front(wavs, lens)
    for i, n in enumerate(lengths):
        expected = _kaldi_fbank(wavs[i, :n], shift_ms)
        assert int(frames[i]) == len(expected)
        np.testing.assert_allclose(features[i, : len(expected)].numpy(), expected, atol=2e-3, rtol=0)


def test_normalised_stacked_frames_equal_an_independent_computation():
    front = LogMelFrontEnd(LogMelConfig())  # the presets' setting: 25 ms / 10 ms, normalised, two stacked
    lengths = [16000, 9001, 1041, 721]
    wavs, lens = _batch(lengths, seed=3)
    features, frames = front(wavs, lens)
    assert features.shape == (4, HUBERT_GRID.count(16000), 160)
    for i, n in enumerate(lengths):
        mel = _kaldi_fbank(wavs[i, :n]).astype(np.float64)
        mel = (mel - mel.mean(0)) / mel.std(0)
        if len(mel) % 2:
            mel = np.concatenate([mel, mel[-1:]])
        stacked = mel.reshape(-1, 160)  # rows: [frame 2i | frame 2i + 1]
        assert int(frames[i]) == len(stacked)
        np.testing.assert_allclose(features[i, : len(stacked)].numpy(), stacked, atol=5e-3, rtol=0)
        # Past its end, an utterance's frames repeat its last 10 ms frame, never the padding's.
        np.testing.assert_allclose(features[i, len(stacked):].numpy().reshape(-1, 80),
                                   np.broadcast_to(mel[-1], ((features.shape[1] - len(stacked)) * 2, 80)),
                                   atol=5e-3, rtol=0)


def test_an_utterance_does_not_depend_on_its_batch():
    front = LogMelFrontEnd(LogMelConfig())
    wavs, lens = _batch([16000, 5000, 3210], seed=4)
    together, frames = front(wavs, lens)
    for i, n in enumerate(lens.tolist()):
        alone, alone_frames = front(wavs[i : i + 1, :n], lens[i : i + 1])
        assert int(alone_frames[0]) == int(frames[i])
        torch.testing.assert_close(together[i, : int(frames[i])], alone[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", ["waveform", "logmel"])
def test_frame_count_is_one_grid_for_model_labels_and_analysis(family, tiny_hubert_checkpoint,
                                                               logmel_hubert_checkpoint):
    """Each family's model makes exactly as many frames as the 50 Hz MFCC labels and the analysis' grid."""
    checkpoint = tiny_hubert_checkpoint if family == "waveform" else logmel_hubert_checkpoint
    model, config = load_pretrain_model(checkpoint)
    lengths = [n for n in BOUNDARY_LENGTHS if n >= 400]  # a conv stack cannot run on less than its field
    wavs, lens = _batch(lengths, seed=5)
    _, frames = hidden_states(model, wavs, lens, upto_layer=0)
    count = frame_counter(config)
    for i, n in enumerate(lengths):
        mfcc_labels = len(mfcc_features(wavs[i, :n].numpy())[::2])  # 100 Hz labels, every second one
        assert int(frames[i]) == count(n) == mfcc_labels == HUBERT_GRID.count(n), (family, n)
    assert count(399) == HUBERT_GRID.count(399) == 0


def test_front_end_has_no_parameters_and_checkpoints_hold_none_of_it(logmel_hubert_checkpoint):
    model, _ = load_pretrain_model(logmel_hubert_checkpoint)
    state = torch.load(logmel_hubert_checkpoint, map_location="cpu")
    assert not any("feature_extractor" in key for key in state)
    assert not list(model.encoder.hubert_pretrain_model.wav2vec2.feature_extractor.parameters())


def test_bad_front_end_options_are_named():
    from espnet_hubert_ae.model.encoders import LogMelHuBERTPretrainEncoder

    with pytest.raises(ValueError, match="extractor_conv_layer_config"):
        LogMelHuBERTPretrainEncoder(input_size=1, extractor_conv_layer_config=[[64, 10, 5]])
    with pytest.raises(ValueError, match="logmel_stride"):
        LogMelHuBERTPretrainEncoder(input_size=1, logmel_stride=2)
    with pytest.raises(ValueError, match="whole number of samples"):
        LogMelConfig(frame_shift=10.01)
    with pytest.raises(ValueError, match="logmel_normalize"):
        LogMelConfig(normalize="global")
