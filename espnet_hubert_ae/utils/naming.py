"""Every name the recipe derives, and the one rule for each. Names are derived, never typed.

- run tag ``<strategy>_<model>[_<steps>]``: one pretraining run, ``exp/pretrain/<run>/``;
- snapshot file ``<strategy>_phase<N>_step<GGGGGGG>.pth``: a kept model of phase N at global step G;
- upstream name ``<run>/p<N>/step<G>``: a registered checkpoint. It carries its run from the
  start, so adding a run (another strategy, model or budget) never renames another's
  checkpoints; ``<run>/p1/step0`` names a model at initialisation;
- phase tag ``<run>_p<N>``: the final model of a phase, as the source of the next targets;
- target tag ``<source>_k<K>-<digest>``: a label set (source ``mfcc`` or ``L<layer>-<phase tag>``; the
  digest is of the other settings that determine its labels);
- upstream tag: a file or directory name for an upstream, from its registered name (``/`` -> ``_``)
  or, for a checkpoint file, from its folder and stem.

``python -m espnet_hubert_ae.bin.names`` prints them for the recipe's shell.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")
CHECKPOINT_SUFFIX = ".pth"


class NamingError(ValueError):
    """A name that cannot be derived (nothing usable left of it)."""


def safe_tag(text: str) -> str:
    """``text`` reduced to characters that are safe in file names and ESPnet experiment tags."""
    tag = _UNSAFE.sub("-", str(text)).strip("-")
    if not tag:
        raise NamingError(f"cannot make a tag of {text!r}")
    return tag


def run_tag(strategy: str, model: str | os.PathLike, pretrain_steps: int | None = None) -> str:
    """``<strategy>_<model>[_<steps>]``: a pretraining run, named by what was run.

    ``strategy`` is the schedule's name (its ``name:``, not its file's); ``model`` a preset name
    or a config path (its stem counts).
    """
    tag = f"{safe_tag(strategy)}_{safe_tag(Path(model).stem)}"
    return f"{tag}_{int(pretrain_steps)}" if pretrain_steps else tag


def snapshot_prefix(strategy: str, phase: int) -> str:
    return f"{safe_tag(strategy)}_phase{int(phase)}_"


def snapshot_file(prefix: str, step: int) -> str:
    """The file of a snapshot at global ``step``, after a :func:`snapshot_prefix`."""
    return f"{prefix}step{int(step):07d}{CHECKPOINT_SUFFIX}"


def snapshot_name(strategy: str, phase: int, step: int) -> str:
    """``<strategy>_phase<N>_step<GGGGGGG>.pth``."""
    return snapshot_file(snapshot_prefix(strategy, phase), step)


def upstream_name(run: str, phase: int, step: int) -> str:
    """``<run>/p<N>/step<G>``: the registered name of a checkpoint."""
    return f"{run}/p{int(phase)}/step{int(step)}"


def phase_tag(run: str, phase: int) -> str:
    """``<run>_p<N>``: the final model of phase N of a run, named as a target source."""
    return f"{run}_p{int(phase)}"


def target_tag(source_name: str, k: int, settings_digest: str | None = None) -> str:
    """``<source>_k<K>[-<digest>]``: a label set, named by what makes its labels -- its source and
    K, and a digest of the other settings (``targets.pipeline.target_key``) -- not by who asked
    for it, so that strategies asking for the same labels share them.

    ``target_tag("mfcc", 100, "1a2b3c4d") == "mfcc_k100-1a2b3c4d"``.
    """
    tag = f"{safe_tag(source_name)}_k{int(k)}"
    return f"{tag}-{safe_tag(settings_digest)}" if settings_digest else tag


def upstream_tag(name_or_path: str | os.PathLike) -> str:
    """A file or directory name for an upstream: a checkpoint file (``.pth``) by its folder and
    stem, a registered name with its ``/`` made ``_`` (``run/p4/step120`` -> ``run_p4_step120``)."""
    path = Path(name_or_path)
    if path.suffix == CHECKPOINT_SUFFIX:
        return safe_tag(f"{path.parent.name}_{path.stem}")
    return safe_tag(str(name_or_path).replace("/", "_"))
