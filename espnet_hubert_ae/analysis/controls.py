"""Input controls of the frame metrics: what the probe and the clusters find in the input itself.

A layer has learnt something only where it beats its input. Two single-frame input
representations at the model's 50 Hz frame rate are measured exactly as the checkpoints are
(same frames, same speaker splits, same seeds):

- ``logmel``: 80-d log-mel (25 ms / 10 ms Kaldi filterbank, every second frame; the mel view);
- ``mfcc``: 39-d MFCC with deltas (the first pretraining iteration's features, every second frame).

Each is a "model" with one layer, analysed once per data set and cached under
``<outdir>/controls/<name>/``. The random-init floor needs no control here: pretraining keeps
each run's untrained model as its step-0 checkpoint, analysed like any other.
"""

from __future__ import annotations

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


def mfcc_50hz(wav: np.ndarray) -> np.ndarray:
    """39-d MFCC + deltas (HuBERT's first targets' features) at 50 Hz: every second 10 ms frame."""
    from espnet_hubert_ae.targets.mfcc import mfcc_features

    return mfcc_features(wav)[::2]


CONTROLS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"logmel": log_mel_50hz, "mfcc": mfcc_50hz}


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
