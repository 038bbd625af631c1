"""Summary statistics of layer curves: top-layer drop, input rebound, steps-to-target.

- top-layer drop of a curve S: max_l S(l) - S(last); how much the last layer lost against the
  best one (the "autoencoder behaviour" for linguistic measures).
- input rebound of the mel curve: mel(last) - min_l mel(l); how input-like the top became again.
- steps-to-target: pretraining steps a strategy needs for its checkpoint score (a layer's value,
  or the best layer's) to reach the reference strategy's final score.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np


def top_layer_drop(curve: Sequence[float]) -> float:
    values = np.asarray(curve, dtype=float)
    return float(np.nanmax(values) - values[-1])


def input_rebound(mel_curve: Sequence[float]) -> float:
    values = np.asarray(mel_curve, dtype=float)
    return float(values[-1] - np.nanmin(values))


def best_layer(curve: Sequence[float]) -> int:
    return int(np.nanargmax(np.asarray(curve, dtype=float)))


def checkpoint_score(curve: Sequence[float], layer: int | None = None) -> float:
    """One number per checkpoint: the value at ``layer``, or the best layer's when None."""
    values = np.asarray(curve, dtype=float)
    return float(np.nanmax(values) if layer is None else values[layer])


def steps_to_target(progress: Sequence[tuple[int, float]], target: float) -> int | None:
    """First step (in step order) whose score reaches ``target``; None if none does."""
    for step, score in sorted(progress):
        if score >= target:
            return step
    return None


def strategy_steps_to_target(
    curves: Mapping[str, Sequence[tuple[int, Sequence[float]]]],
    reference: str,
    layer: int | None = None,
) -> dict[str, int | None]:
    """Steps-to-target of every strategy against the reference strategy's last checkpoint.

    ``curves`` maps a strategy to its (step, layer curve) pairs.
    """
    if reference not in curves or not curves[reference]:
        raise ValueError(f"reference strategy {reference!r} has no analysed checkpoint (have: {sorted(curves)})")
    last_step, last_curve = max(curves[reference], key=lambda pair: pair[0])
    target = checkpoint_score(last_curve, layer)
    return {
        strategy: steps_to_target([(step, checkpoint_score(curve, layer)) for step, curve in pairs], target)
        for strategy, pairs in curves.items()
    }
