"""The random-init control: the pretrained model's architecture before any training.

A downstream trained on an untrained upstream measures what the architecture and the
downstream achieve without pretraining; a pretrained upstream must beat it (and FBANK) for
its numbers to mean learning. The control is a checkpoint like any other:

- the step-0 snapshot of the run, when pretraining kept one (registered as ``<run>/p1/step0``,
  see :mod:`espnet_hubert_ae.utils.naming`);
- otherwise a seeded model built from the reference checkpoint's ``config.yaml``, saved as
  ``<out_dir>/<run>/step0.pth`` beside a copy of that config (the initialisation of ESPnet's
  HuBERT model, which pretraining starts from).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import torch
import yaml

from espnet_hubert_ae.defaults import SEED
from espnet_hubert_ae.upstream.registry import CheckpointRef, Registry, open_registry, resolve_upstream
from espnet_hubert_ae.utils.fileio import atomic_open
from espnet_hubert_ae.utils.naming import upstream_name

logger = logging.getLogger(__name__)


def registered_step0(ref: CheckpointRef, registry: Registry) -> CheckpointRef | None:
    """The untrained model pretraining kept for ``ref``'s run (``<run>/p1/step0``), if any."""
    return registry.get(upstream_name(ref.run, 1, 0)) if ref.run else None


def random_init_checkpoint(like: str, out_dir: str | os.PathLike, seed: int = SEED) -> str:
    """A checkpoint of ``like``'s architecture at initialisation (see the module docstring):
    the registered name of the run's step-0 snapshot, else the path of a model built here.

    ``like`` is a checkpoint .pth, a registered name, or a run tag (its last checkpoint).
    """
    from espnet_hubert_ae.model.hubert import build_pretrain_model

    registry = open_registry()
    ref = registry.last(like) if like in registry.runs() else registry.ref(like)
    snapshot = registered_step0(ref, registry)
    if snapshot is not None:
        logger.info("random-init control: the step-0 snapshot %s (%s)", snapshot.name, snapshot.checkpoint)
        return snapshot.name
    checkpoint, config_path = resolve_upstream(ref.checkpoint, ref.config)
    out_dir = Path(out_dir) / (ref.run or ref.tag)
    path = out_dir / "step0.pth"
    if path.is_file():  # written last, after its config
        return str(path)
    config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
    torch.manual_seed(seed)
    model = build_pretrain_model(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(out_dir / "config.yaml") as f, open(config_path, encoding="utf-8") as src:
        shutil.copyfileobj(src, f)
    with atomic_open(path, "wb") as f:
        torch.save(model.state_dict(), f)
    logger.info("random-init control: built %s from %s (seed %d)", path, config_path, seed)
    return str(path)
