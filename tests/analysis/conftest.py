"""Factories for the analysis tests: a synthetic aligned corpus and a fake feature source."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from espnet_hubert_ae.analysis.views import log_mel_50hz
from espnet_hubert_ae.data.datadir import SAMPLE_RATE, SILENCE, Segment, Utterance, write_datadir

# Each "phone" is a tone: a log-mel view tells them apart, so a layer built from it does too.
PHONE_TONES = {"AA": 300.0, "B": 700.0, "K": 1100.0, "IY": 1700.0, "S": 2600.0, "M": 3600.0}
WORDS = {"CAB": ("K", "AA", "B"), "SEA": ("S", "IY"), "MAKE": ("M", "AA", "K"), "BEAM": ("B", "IY", "M"),
         "ASK": ("AA", "S", "K")}


def make_corpus(root, num_utts=16, words_per_utt=7, seed=0):
    """A data directory of tone 'speech' with phones.ctm / words.ctm tiling each utterance."""
    rng = np.random.default_rng(seed)
    audio_dir = root / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    utts, phones, words = [], [], []
    vocab = sorted(WORDS)
    for u in range(num_utts):
        utt_id = f"spk{u % 3}-utt{u:03d}"
        t, pieces = 0.0, []

        def add(label, dur, freq):
            nonlocal t
            n = int(round(dur * SAMPLE_RATE))
            tt = np.arange(n) / SAMPLE_RATE
            tone = 0.0 if freq is None else 0.3 * np.sin(2 * np.pi * freq * tt + rng.uniform(0, 6))
            pieces.append(tone + 0.01 * rng.standard_normal(n))
            phones.append(Segment(utt_id, round(t, 4), round(n / SAMPLE_RATE, 4), label))
            t += n / SAMPLE_RATE

        add(SILENCE, 0.1, None)
        for _ in range(words_per_utt):
            word = vocab[rng.integers(len(vocab))]
            start = t
            for phone in WORDS[word]:
                add(phone, rng.uniform(0.06, 0.14), PHONE_TONES[phone])
            words.append(Segment(utt_id, round(start, 4), round(t - start, 4), word))
        add(SILENCE, 0.1, None)
        wav = np.concatenate(pieces).astype(np.float32)
        path = audio_dir / f"{utt_id}.wav"
        sf.write(str(path), wav, SAMPLE_RATE, subtype="PCM_16")
        utts.append(Utterance(utt_id, str(path), utt_id.split("-")[0], len(wav), "X"))
    return write_datadir(root / "data", utts, phones=phones, words=words)


class MelFeatures:
    """A fake model: layer l mixes a fixed random map of the log-mel with noise (more noise higher up)."""

    def __init__(self, num_layers=3, dim=24, seed=0):
        rng = np.random.default_rng(seed)
        self.num_layers = num_layers
        self.maps = [rng.normal(size=(80, dim)) / 9 for _ in range(num_layers + 1)]
        self.calls = 0

    def __call__(self, wav, upto_layer):
        self.calls += 1
        mel = log_mel_50hz(wav)
        rng = np.random.default_rng(len(wav))
        return [
            (mel @ m + 0.5 * layer * rng.standard_normal((len(mel), m.shape[1]))).astype(np.float32)
            for layer, m in enumerate(self.maps[: upto_layer + 1])
        ]


@pytest.fixture
def synthetic_corpus(tmp_path):
    return make_corpus(tmp_path / "corpus")


@pytest.fixture
def mel_features():
    """Factory of fake feature sources: ``mel_features(num_layers=3, dim=24, seed=0)``."""
    return MelFeatures
