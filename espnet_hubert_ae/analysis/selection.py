"""Which registered checkpoints stage 7 analyses: a bounded number per run, whatever the budget.

Pretraining keeps what its schedule asks for (10 snapshots per phase, or one every
``--snapshot_every`` steps): a file each, cheap to keep and available to every later stage. What
costs is analysing them, so the bound is here, in one place: per run, ``spread`` analyses

- the untrained model (global step 0), the floor of every measure;
- the checkpoint that ends each phase, where the paper's comparisons are made;
- at most ``between`` other snapshots, spread evenly over the run's global steps: for each of
  ``k / (between + 1)`` of the last step (k = 1..between), the nearest snapshot not yet chosen.

So a run of P phases has at most 1 + P + ``between`` analysed checkpoints, at any budget.
``all`` analyses every registered checkpoint.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from espnet_hubert_ae.upstream.registry import CheckpointRef, Registry

SPREAD = "spread"  # the selector word of --checkpoints
DEFAULT_BETWEEN = 4  # snapshots analysed per run besides step 0 and the phase ends


def spread_checkpoints(refs: Iterable[CheckpointRef], between: int = DEFAULT_BETWEEN) -> list[CheckpointRef]:
    """The checkpoints of one run that ``spread`` analyses (module docstring), in step order."""
    if between < 0:
        raise ValueError(f"--between must be 0 or more snapshots, not {between}")
    refs = sorted(refs, key=lambda r: (r.step if r.step is not None else -1, r.phase or 0))
    if not refs:
        return []
    if any(r.step is None for r in refs):  # not a pretraining run's checkpoints: no steps to spread over
        return refs
    chosen = {r.name for r in refs if r.step == 0 or r.phase_end}
    chosen.add(refs[-1].name)  # the last kept, also when a run is incomplete
    last = refs[-1].step
    for k in range(1, between + 1):
        candidates = [r for r in refs if r.name not in chosen]
        if not candidates:
            break
        target = last * k / (between + 1)
        chosen.add(min(candidates, key=lambda r: (abs(r.step - target), r.step)).name)
    return [r for r in refs if r.name in chosen]


def select_checkpoints(registry: Registry, names: Sequence[str], between: int = DEFAULT_BETWEEN) -> list[CheckpointRef]:
    """The checkpoints named by ``--checkpoints``: ``spread`` (per run, :func:`spread_checkpoints`),
    ``all``, registered names or checkpoint files, each once, in the given order."""
    selected: dict[str, CheckpointRef] = {}
    for name in names:
        if name == SPREAD:
            chosen = []
            for run in registry.runs():
                chosen += spread_checkpoints([r for r in registry.values() if r.run == run], between)
            chosen += [r for r in registry.values() if not r.run]
            if registry.path is None or not chosen:
                chosen = registry.select(["all"])  # fails, saying that there is no registry or it is empty
        else:
            chosen = registry.select([name])
        for ref in chosen:
            selected.setdefault(ref.name, ref)
    return list(selected.values())
