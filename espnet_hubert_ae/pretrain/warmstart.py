"""Warm start: continue a phase from the previous phase's model when the label set changes.

HuBERT's label embeddings have one row per cluster, so a phase with another K (or simply new
clusters) cannot reuse them: they -- and the final projection into their space -- are
re-created, everything else is carried. The optimizer's state (Adam moments and step counts)
is carried for every carried parameter, so the update scale does not jump; the learning rate
continues by itself because it is a function of the global step (``task.PhaseLR``).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Sequence

import torch

logger = logging.getLogger(__name__)


class WarmStartError(ValueError):
    """The previous phase's checkpoint does not fit the model being trained."""


@dataclasses.dataclass
class WarmStartReport:
    """What a warm start carried over and what it re-created."""

    checkpoint: str
    carried: list[str]
    reinitialised: list[str]
    optimizer_states_carried: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def warm_start(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    checkpoint: str | Path,
    reinit: Sequence[str] = (),
) -> WarmStartReport:
    """Load ``checkpoint`` (ESPnet's ``checkpoint.pth`` or a bare state dict) into ``model``.

    Parameters whose name contains one of ``reinit``, or whose shape changed, keep their fresh
    initialisation; the others are copied. With ``optimizer`` and a full ESPnet checkpoint,
    the optimizer state of every copied parameter is copied too.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise WarmStartError(f"warm start: previous phase checkpoint not found: {checkpoint}")
    states = torch.load(checkpoint, map_location="cpu", weights_only=False)
    previous = states["model"] if "model" in states and isinstance(states["model"], dict) else states
    current = model.state_dict()
    missing = sorted(set(current) - set(previous))
    if missing:
        raise WarmStartError(f"warm start: {checkpoint} lacks {len(missing)} parameter(s) of the model, e.g. {missing[0]}")

    carried, reinitialised = [], []
    for name, tensor in current.items():
        if any(pattern in name for pattern in reinit) or previous[name].shape != tensor.shape:
            reinitialised.append(name)
        else:
            carried.append(name)
    model.load_state_dict({**current, **{name: previous[name] for name in carried}})

    carried_states = 0
    if optimizer is not None and "optimizers" in states:
        carried_states = _carry_optimizer_state(model, optimizer, states["optimizers"][0], set(carried), checkpoint)
    logger.info(
        "warm start from %s: %d tensors carried, re-created: %s; optimizer states carried: %d",
        checkpoint, len(carried), ", ".join(reinitialised) or "none", carried_states,
    )
    return WarmStartReport(str(checkpoint), carried, reinitialised, carried_states)


def _carry_optimizer_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, previous: dict, carried: set[str], checkpoint: Path
) -> int:
    """Copy per-parameter optimizer state for carried parameters.

    Optimizer state dicts index parameters by position; the previous phase built the same
    architecture, so position i names the same parameter in both (checked by shape).
    """
    names = [name for name, _ in model.named_parameters()]
    params = list(model.parameters())
    previous_ids = [i for group in previous["param_groups"] for i in group["params"]]
    current = optimizer.state_dict()
    current_ids = [i for group in current["param_groups"] for i in group["params"]]
    if len(previous_ids) != len(current_ids) or len(current_ids) != len(names):
        raise WarmStartError(
            f"warm start: the optimizer in {checkpoint} has {len(previous_ids)} parameters, "
            f"this model {len(names)}: not the same architecture"
        )
    state = {}
    for position, (prev_id, cur_id) in enumerate(zip(previous_ids, current_ids)):
        prev_state = previous["state"].get(prev_id)
        if names[position] not in carried or not prev_state:
            continue
        moments = [v for v in prev_state.values() if torch.is_tensor(v) and v.dim() > 0]
        if any(v.shape != params[position].shape for v in moments):
            continue
        state[cur_id] = prev_state
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})
    return len(state)
