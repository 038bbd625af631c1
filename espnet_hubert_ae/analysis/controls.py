"""Input controls of the frame metrics: what the probe and the clusters find in the input itself.

A layer has learnt something only where it beats its input, and a model that sees context
(a transformer layer, or an untrained model's positional convolution) must beat its input's
context too. Input representations at the model's 50 Hz frame rate are measured exactly as the
checkpoints are (same frames, same speaker splits, same seeds):

- ``logmel``: one 80-d log-mel frame (25 ms / 10 ms Kaldi filterbank, every second frame; the
  mel view);
- ``logmel5``, ``logmel9``: those 50 Hz frames stacked with their neighbours, 5 frames (100 ms,
  400-d) and 9 frames (180 ms, 720-d), centred on the frame, edges replicated; ``logmel9`` is
  the widest input context (:data:`WIDEST_CONTEXT`), the control every layer is read against;
- ``mfcc``: 39-d MFCC with deltas (the first pretraining iteration's features, every second frame).

Each is a "model" with one layer, analysed once per data set and cached under
``<outdir>/controls/<name>/``. The random-init floor needs no control here: pretraining keeps
each run's untrained model as its step-0 checkpoint, analysed like any other.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Callable

import numpy as np

from espnet_hubert_ae.analysis.config import FRAME_METRICS
from espnet_hubert_ae.analysis.layerwise import MetricThreads, Subject, metric_records
from espnet_hubert_ae.analysis.sampling import DataPlan
from espnet_hubert_ae.analysis.views import log_mel_50hz
from espnet_hubert_ae.utils.fileio import atomic_write_text
from espnet_hubert_ae.utils.seeds import sample_std

CONTROL_DIR = "controls"
CONTROL_VERSION = 1  # raise when a control's features change
# Input-context controls: name -> 50 Hz log-mel frames stacked (1: the frame alone).
INPUT_CONTEXT = {"logmel": 1, "logmel5": 5, "logmel9": 9}
WIDEST_CONTEXT = max(INPUT_CONTEXT, key=INPUT_CONTEXT.get)
LABELS = {"logmel": "log-mel frame", "logmel5": "log-mel, 5 frames stacked (100 ms)",
          "logmel9": "log-mel, 9 frames stacked (180 ms)", "mfcc": "MFCC frame"}  # in tables and plots


def stack_frames(frames: np.ndarray, width: int) -> np.ndarray:
    """Each frame with its ``width // 2`` neighbours on either side, concatenated in time order
    (edges replicated): ``(T, D) -> (T, width * D)``; ``width`` is odd."""
    if width < 1 or width % 2 == 0:
        raise ValueError(f"a stack of frames is centred on its frame: width must be odd, not {width}")
    frames = np.asarray(frames)
    half, count = width // 2, len(frames)
    if count == 0:
        return np.zeros((0, width * frames.shape[1]), frames.dtype)
    padded = np.concatenate([np.repeat(frames[:1], half, 0), frames, np.repeat(frames[-1:], half, 0)])
    return np.concatenate([padded[i : i + count] for i in range(width)], axis=1)


def stacked_log_mel(width: int) -> Callable[[np.ndarray], np.ndarray]:
    """The input-context control of ``width`` stacked 50 Hz log-mel frames."""
    return functools.partial(_stacked_log_mel, width=width)


def _stacked_log_mel(wav: np.ndarray, width: int) -> np.ndarray:
    return stack_frames(log_mel_50hz(wav), width)


def mfcc_50hz(wav: np.ndarray) -> np.ndarray:
    """39-d MFCC + deltas (HuBERT's first targets' features) at 50 Hz: every second 10 ms frame."""
    from espnet_hubert_ae.targets.mfcc import mfcc_features

    return mfcc_features(wav)[::2]


CONTROLS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "logmel": log_mel_50hz, **{name: stacked_log_mel(width) for name, width in INPUT_CONTEXT.items() if width > 1},
    "mfcc": mfcc_50hz,
}


class InputFeatures:
    """A feature source whose only state (layer 0) is an input representation."""

    num_layers = 0

    def __init__(self, features: Callable[[np.ndarray], np.ndarray]):
        self.features = features

    def __call__(self, wav: np.ndarray, upto_layer: int) -> list[np.ndarray]:
        return [np.asarray(self.features(wav), dtype=np.float32)]


def analyse_controls(plan: DataPlan, outdir: str | Path, threads: MetricThreads = MetricThreads()) -> dict:
    """Frame measures of every control (computed once per data set and settings, then cached):
    control -> measure -> {mean, std, per_seed}, and ``majority`` (the probe's majority-class
    accuracy: {mean, std, per_seed}); ``{}`` when no frame metric is configured."""
    metrics = [m for m in plan.config.metrics if m in FRAME_METRICS]
    if not metrics:
        return {}
    out = {}
    for name, features in CONTROLS.items():
        subject = Subject(f"control {name}", Path(outdir) / CONTROL_DIR / name,
                          {"control": name, "version": CONTROL_VERSION}, lambda f=features: InputFeatures(f))
        records = metric_records(subject, plan, metrics, threads)
        out[name] = _control_values(records)
        majority = out[name].pop("majority", None)  # the same for every control: same frames and splits
        if majority is not None:
            out["majority"] = majority
    atomic_write_text(Path(outdir) / CONTROL_DIR / "results.json", json.dumps(out, indent=1) + "\n")
    return out


def _control_values(records: list[dict]) -> dict:
    """measure -> {mean, std, per_seed} of a control's single layer (the probe's majority class too)."""
    values = {}
    for record in records:
        (layer,) = record["layers"]
        for measure, per_seed in layer["by_seed"].items():
            values[measure] = {"mean": float(np.mean(list(per_seed.values()))), "std": sample_std(list(per_seed.values())),
                               "per_seed": per_seed}
    return values
