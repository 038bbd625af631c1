"""What a frozen downstream is trained on: every hidden state of a checkpoint, or log-mel frames.

An upstream is named by the user as a registered checkpoint name, a checkpoint ``.pth`` (with
its ``config.yaml`` beside it), or ``fbank``: the FBANK control of SUPERB's tables, 80 log-mel
energies per frame. FBANK frames here are 25 ms windows every 20 ms (Kaldi's fbank, no
dither), i.e. 50 frames per second with exactly as many frames per utterance as HuBERT's conv
stack makes (400-sample receptive field, 320-sample hop), so the downstream sees the same
frame rate whatever it is trained on.

A checkpoint's hidden states follow the project's layer convention (index 0 = input of the
first transformer layer, then one state per transformer layer: N + 1 states, see
:mod:`espnet_hubert_ae.model.hubert`). FBANK counts as one state.
"""

from __future__ import annotations

from pathlib import Path

import torch

from espnet_hubert_ae.model.hubert import embed_dim, frame_grid, hidden_states, load_pretrain_model, num_layers
from espnet_hubert_ae.utils.fileio import file_digest
from espnet_hubert_ae.utils.naming import upstream_tag

FBANK = "fbank"
FBANK_BINS = 80
FBANK_WINDOW_MS = 25.0
FBANK_HOP_MS = 20.0
SAMPLE_RATE = 16000


class FbankSource:
    """The FBANK control: 80 log-mel energies per 20 ms frame, as one "layer"."""

    name = FBANK
    tag = FBANK
    num_layers = 1
    layer_dim = FBANK_BINS
    frame_rate = 1000.0 / FBANK_HOP_MS

    def identity(self) -> dict:
        return {"kind": "fbank", "num_mel_bins": FBANK_BINS, "window_ms": FBANK_WINDOW_MS, "hop_ms": FBANK_HOP_MS,
                "dither": 0.0}

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """``(frames, 80)`` log-mel energies of a 1-D 16 kHz waveform in [-1, 1]."""
        from torchaudio.compliance import kaldi

        if wav.numel() < FBANK_WINDOW_MS * SAMPLE_RATE / 1000:  # not one window: no frame (Kaldi would assert)
            return torch.zeros(0, FBANK_BINS)
        # Kaldi's feature extraction expects 16-bit sample values.
        return kaldi.fbank(wav[None] * 32768.0, sample_frequency=SAMPLE_RATE, num_mel_bins=FBANK_BINS,
                           frame_length=FBANK_WINDOW_MS, frame_shift=FBANK_HOP_MS, dither=0.0)


class CheckpointSource:
    """Every hidden state of an ESPnet HuBERT pretraining checkpoint (loaded on first use, so
    that checking a finished cache against it costs only the file digest)."""

    def __init__(self, name: str):
        from espnet_hubert_ae.upstream.registry import resolve_upstream

        self.name = name
        self.tag = upstream_tag(name)
        self.checkpoint, self.config = resolve_upstream(name)
        self._model = None
        self._digest = None

    @property
    def model(self):
        if self._model is None:
            self._model, _ = load_pretrain_model(self.checkpoint, self.config)
        return self._model

    @property
    def num_layers(self) -> int:
        return num_layers(self.model) + 1

    @property
    def layer_dim(self) -> int:
        return embed_dim(self.model)

    @property
    def frame_rate(self) -> float:
        return frame_grid(self.model).frame_rate(SAMPLE_RATE)

    def identity(self) -> dict:
        if self._digest is None:
            self._digest = file_digest(self.checkpoint)
        return {"kind": "checkpoint", "checkpoint": str(Path(self.checkpoint).resolve()),
                "config": str(Path(self.config).resolve()), "sha256": self._digest}

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """``(frames, num_layers x layer_dim)``: the hidden states of one utterance side by side."""
        states, frames = hidden_states(self.model, wav[None], torch.tensor([wav.numel()]))
        return torch.cat(states, dim=-1)[0, : int(frames[0])]


def feature_source(upstream: str):
    """The source named ``upstream``: ``fbank``, a registered name or a checkpoint path."""
    return FbankSource() if upstream == FBANK else CheckpointSource(upstream)
