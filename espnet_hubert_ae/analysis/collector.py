"""Hidden states as the analysis streams them, and what each metric keeps of one layer.

A :class:`FeatureSource` gives the hidden states of one utterance; a :class:`LayerCollector`
reduces one layer's frames of that utterance at once to what the metrics need -- CCA
statistics of the mel view, pooled phone and word vectors of the sampled instances, the frame
sample of the probe and the clusters -- so no layer of a whole set is ever held in memory.
"""

from __future__ import annotations

import os
from typing import Protocol, Sequence

import numpy as np

from espnet_hubert_ae.analysis.cca import FoldedStats
from espnet_hubert_ae.analysis.config import FRAME_METRICS, WORD_METRICS
from espnet_hubert_ae.analysis.sampling import DataPlan
from espnet_hubert_ae.analysis.views import NUM_MEL_BINS, Instances, align_frames, middle_third, pool_span
from espnet_hubert_ae.data.datadir import Utterance


class FeatureSource(Protocol):
    """Hidden states of one utterance: states 0..upto_layer, each (frames, dim) float32."""

    num_layers: int  # highest layer index (transformer layers)

    def __call__(self, wav: np.ndarray, upto_layer: int) -> list[np.ndarray]: ...


class CheckpointFeatures:
    """Hidden states of an ESPnet HuBERT pretraining checkpoint, one utterance at a time."""

    def __init__(self, checkpoint: str | os.PathLike, config: str | os.PathLike | None = None, device: str = "cpu"):
        from espnet_hubert_ae.model.hubert import load_pretrain_model, num_layers

        self.model, _ = load_pretrain_model(checkpoint, config, device)
        self.num_layers = num_layers(self.model)
        self.device = device

    def __call__(self, wav: np.ndarray, upto_layer: int) -> list[np.ndarray]:
        import torch

        from espnet_hubert_ae.model.hubert import hidden_states

        wavs = torch.as_tensor(np.asarray(wav, dtype=np.float32))[None]
        lengths = torch.tensor([wavs.shape[1]])
        states, frame_lengths = hidden_states(self.model, wavs, lengths, upto_layer)
        n = int(frame_lengths[0])
        return [s[0, :n].float().cpu().numpy() for s in states]


class LayerCollector:
    """What the metrics keep of one layer while the utterances stream past."""

    def __init__(self, plan: DataPlan, metrics: Sequence[str], dim: int):
        c = plan.config
        self.plan = plan
        self.mel = FoldedStats(dim, NUM_MEL_BINS, c.n_folds, c.n_trials) if "mel_cca" in metrics else None
        self.phones = np.zeros((len(plan.phone_instances), dim), np.float32) if "phone_cca" in metrics else None
        wants_words = any(m in WORD_METRICS for m in metrics)
        self.words = np.zeros((len(plan.word_instances), dim), np.float32) if wants_words else None
        self.frames: list[np.ndarray] | None = [] if any(m in FRAME_METRICS for m in metrics) else None
        self.frame_labels: list[np.ndarray] = []
        self.frame_test: list[np.ndarray] = []

    def add(self, index: int, utt: Utterance, layer: np.ndarray, mel: np.ndarray | None, frames: tuple | None):
        if self.mel is not None:
            layer_frames, mel_frames = align_frames(layer, mel, utt.utt_id)
            self.mel.add(int(self.plan.utt_folds[index]), layer_frames, mel_frames)
        if self.phones is not None:
            self._pool(self.phones, self.plan.phone_instances, utt.utt_id, layer, middle_third)
        if self.words is not None:
            self._pool(self.words, self.plan.word_instances, utt.utt_id, layer, lambda s: (s.start, s.end))
        if self.frames is not None and frames is not None:
            picked, labels = frames
            picked = picked[picked < len(layer)]
            self.frames.append(layer[picked])
            self.frame_labels.append(labels[: len(picked)])
            self.frame_test.append(np.full(len(picked), bool(self.plan.probe_test[index])))

    def frame_sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frames, phone labels, is-test mask) of the frames collected so far."""
        frames = np.concatenate(self.frames) if self.frames else np.zeros((0, 1), np.float32)
        labels = np.concatenate(self.frame_labels) if self.frame_labels else np.zeros(0, str)
        test = np.concatenate(self.frame_test) if self.frame_test else np.zeros(0, bool)
        return frames, labels, test

    @staticmethod
    def _pool(out: np.ndarray, instances: Instances, utt_id: str, layer: np.ndarray, span) -> None:
        for seg, row in zip(instances.by_utt.get(utt_id, ()), instances.rows_of(utt_id)):
            out[row] = pool_span(layer, *span(seg))
