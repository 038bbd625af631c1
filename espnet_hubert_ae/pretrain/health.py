"""Layer health of a pretrained model: is every transformer layer still doing something?

Two numbers per transformer layer L (1..N):

- ``ln_gain``: the mean absolute gain of the layer's LayerNorms, initialised at 1.0. An optimizer
  that decays weights through the gradient (coupled L2 under Adam) shrinks them toward 0 by
  about the learning rate per step, and a layer whose gains reach 0 outputs nothing but biases.
- ``update``: how much the layer changes its input, ``||h_L - h_(L-1)|| / ||h_(L-1)||`` over
  the frames of a few utterances (hidden states as in ``model.hubert.hidden_states``). A layer
  that passes its input through unchanged is dead, whatever its weights look like.

A layer is *collapsing* when its gain falls below :data:`MIN_LN_GAIN` and *dead* when its update
falls below :data:`MIN_UPDATE`; the phase runner logs both as warnings and keeps the numbers in
the phase summary, and the report repeats the warnings.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

MIN_LN_GAIN = 0.3  # mean LayerNorm gain (init 1.0) below which a layer is collapsing
MIN_UPDATE = 0.01  # relative change of its input below which a layer is dead
HEALTH_UTTERANCES = 8  # utterances of the validation set the updates are measured on


@dataclasses.dataclass(frozen=True)
class LayerHealth:
    layer: int  # 1..N, the project's layer index
    ln_gain: float
    update: float


def layer_norm_gains(model: nn.Module) -> list[float]:
    """Mean |gain| of the LayerNorms inside each transformer layer, layer 1 first."""
    from espnet_hubert_ae.model.hubert import wav2vec2_of

    gains = []
    for layer in wav2vec2_of(model).encoder.transformer.layers:
        weights = [m.weight.detach().abs().flatten() for m in layer.modules() if isinstance(m, nn.LayerNorm)]
        gains.append(float(torch.cat(weights).mean()))
    return gains


def layer_updates(model: nn.Module, wavs: Sequence[np.ndarray]) -> list[float]:
    """Relative norm of each transformer layer's change to its input, pooled over ``wavs``."""
    from espnet_hubert_ae.model.hubert import hidden_states

    change = None
    norm = None
    for wav in wavs:
        samples = torch.as_tensor(np.asarray(wav, dtype=np.float32))[None]
        states, frames = hidden_states(model, samples, torch.tensor([samples.shape[1]]))
        n = int(frames[0])
        states = [s[0, :n].double() for s in states]
        step_change = torch.stack([(b - a).pow(2).sum() for a, b in zip(states[:-1], states[1:])])
        step_norm = torch.stack([a.pow(2).sum() for a in states[:-1]])
        change = step_change if change is None else change + step_change
        norm = step_norm if norm is None else norm + step_norm
    if change is None:
        raise ValueError("layer health needs at least one utterance")
    return (change.sqrt() / norm.sqrt().clamp_min(1e-12)).tolist()


def assess(gains: Sequence[float], updates: Sequence[float]) -> dict:
    """The health record: per-layer numbers, the layers at fault and a warning per fault."""
    layers = [LayerHealth(i + 1, g, u) for i, (g, u) in enumerate(zip(gains, updates))]
    collapsing = [h.layer for h in layers if h.ln_gain < MIN_LN_GAIN]
    dead = [h.layer for h in layers if h.update < MIN_UPDATE]
    warnings = [f"layer {h.layer}: mean LayerNorm gain {h.ln_gain:.3f} < {MIN_LN_GAIN} (collapsing)"
                for h in layers if h.layer in collapsing]
    warnings += [f"layer {h.layer}: changes its input by {h.update:.4f} < {MIN_UPDATE} (dead)"
                 for h in layers if h.layer in dead]
    return {
        "layers": [dataclasses.asdict(h) for h in layers],
        "min_ln_gain": min(gains),
        "collapsing_layers": collapsing,
        "dead_layers": dead,
        "warnings": warnings,
        "thresholds": {"min_ln_gain": MIN_LN_GAIN, "min_update": MIN_UPDATE},
    }


def checkpoint_health(checkpoint: str | Path, datadir: str | Path, num_utterances: int = HEALTH_UTTERANCES) -> dict:
    """Health of a kept checkpoint (config.yaml beside it), measured on the first utterances of ``datadir``."""
    from espnet_hubert_ae.data.datadir import read_datadir
    from espnet_hubert_ae.model.hubert import load_pretrain_model
    from espnet_hubert_ae.data.audio import read_utterance

    model, _ = load_pretrain_model(checkpoint)
    utterances = sorted(read_datadir(datadir), key=lambda u: u.utt_id)[:num_utterances]
    with torch.no_grad():
        record = assess(layer_norm_gains(model), layer_updates(model, [read_utterance(u) for u in utterances]))
    record["checkpoint"] = str(checkpoint)
    record["utterances"] = len(utterances)
    return record
