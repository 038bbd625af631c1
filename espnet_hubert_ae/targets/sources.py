"""What targets are clustered from: MFCC, or one layer of one pretraining checkpoint.

A source knows its name (part of every artefact name -- see ``utils.naming.target_tag`` -- so
labels of another layer or checkpoint never share a directory) and how to turn a batch of
utterances into feature matrices.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator, Sequence, Union

import numpy as np

from espnet_hubert_ae.targets.mfcc import MFCC_DIM, MFCC_FRAME_RATE, mfcc_features, mfcc_frame_count
from espnet_hubert_ae.utils.naming import safe_tag


class TargetError(ValueError):
    """Bad input to target making: features, labels, sets or options that cannot be used."""


@dataclasses.dataclass(frozen=True)
class MFCC:
    """HuBERT's first-iteration features (39-d, 100 Hz; labels are halved to 50 Hz)."""

    frame_rate: int = MFCC_FRAME_RATE
    label_step: int = 2  # take every second 100 Hz label to get the model's 50 Hz

    @property
    def name(self) -> str:
        return "mfcc"

    def describe(self) -> dict:
        return {"kind": "mfcc", "dim": MFCC_DIM, "frame_rate": self.frame_rate}


@dataclasses.dataclass(frozen=True)
class Layer:
    """Hidden state ``layer`` (project layer index convention) of a pretraining checkpoint.

    ``tag`` names the checkpoint in artefact names (e.g. ``progressive_p1``); by default it is
    the checkpoint's directory name. ``config`` defaults to ``config.yaml`` beside it.
    """

    checkpoint: Path
    layer: int
    tag: str | None = None
    config: Path | None = None
    frame_rate: int = dataclasses.field(default=50, init=False)
    label_step: int = dataclasses.field(default=1, init=False)

    def __post_init__(self):
        object.__setattr__(self, "checkpoint", Path(self.checkpoint))
        object.__setattr__(self, "layer", int(self.layer))
        if self.config is not None:
            object.__setattr__(self, "config", Path(self.config))

    @property
    def checkpoint_tag(self) -> str:
        return safe_tag(self.tag or self.checkpoint.resolve().parent.name)

    @property
    def name(self) -> str:
        return f"L{self.layer}-{self.checkpoint_tag}"

    def describe(self) -> dict:
        stat = self.checkpoint.stat() if self.checkpoint.is_file() else None
        return {
            "kind": "layer",
            "layer": self.layer,
            "checkpoint": str(self.checkpoint.resolve()),
            "checkpoint_tag": self.checkpoint_tag,
            # Identifies the checkpoint's contents cheaply, so cached features of a
            # retrained checkpoint are recognised as stale.
            "checkpoint_size": stat.st_size if stat else None,
            "checkpoint_mtime_ns": stat.st_mtime_ns if stat else None,
        }


TargetSource = Union[MFCC, Layer]


class FeatureExtractor:
    """Turns utterance waveforms into feature matrices for one source.

    A layer source's checkpoint is loaded on first use and then kept, so one extractor can
    serve every set without loading anything when all their features are already dumped.
    """

    def __init__(self, source: TargetSource, device: str = "cpu"):
        self.source = source
        self.device = device
        self._model = None
        self._frame_counter = None

    @property
    def model(self):
        if self._model is None and isinstance(self.source, Layer):
            from espnet_hubert_ae.model.hubert import CheckpointError, load_pretrain_model, num_layers

            model, _ = load_pretrain_model(self.source.checkpoint, self.source.config, device=self.device)
            top = num_layers(model)
            if not 0 <= self.source.layer <= top:
                raise CheckpointError(
                    f"layer {self.source.layer} is out of range for {self.source.checkpoint}: it has layers 0..{top}"
                )
            self._model = model
        return self._model

    @property
    def dim(self) -> int:
        if not isinstance(self.source, Layer):
            return MFCC_DIM
        from espnet_hubert_ae.model.hubert import embed_dim

        return embed_dim(self.model)

    def frame_count(self, num_samples: int) -> int:
        if not isinstance(self.source, Layer):
            return mfcc_frame_count(num_samples)
        if self._frame_counter is None:
            from espnet_hubert_ae.model.hubert import frame_counter

            self._frame_counter = frame_counter(self.model)
        return self._frame_counter(num_samples)

    def __call__(self, waveforms: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
        """Feature matrices ``(frames, dim)`` float32, one per waveform, in order."""
        if not isinstance(self.source, Layer):
            for wav in waveforms:
                yield mfcc_features(wav)
            return
        import torch

        from espnet_hubert_ae.model.hubert import hidden_states

        lengths = torch.tensor([len(w) for w in waveforms])
        batch = torch.zeros(len(waveforms), int(lengths.max()))
        for i, wav in enumerate(waveforms):
            batch[i, : len(wav)] = torch.from_numpy(np.asarray(wav, dtype=np.float32))
        states, frame_lengths = hidden_states(self.model, batch, lengths, upto_layer=self.source.layer)
        chosen = states[self.source.layer].float().cpu().numpy()
        for i, n in enumerate(frame_lengths.tolist()):
            yield np.ascontiguousarray(chosen[i, :n])
