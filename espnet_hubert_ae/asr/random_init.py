"""The random-init control: the pretrained model's architecture before any training.

A downstream trained on an untrained upstream measures what the architecture and the
downstream achieve without pretraining; a pretrained upstream must beat it (and FBANK) for
its numbers to mean learning. The control is a checkpoint like any other:

- the step-0 snapshot of the run, when pretraining kept one (registered with step 0 in the
  same run as the reference checkpoint);
- otherwise a seeded model built from the reference checkpoint's ``config.yaml``, saved as
  ``<out_dir>/<run>/step0.pth`` beside a copy of that config (the initialisation of ESPnet's
  HuBERT model, which pretraining starts from).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from pathlib import Path

import torch
import yaml

from espnet_hubert_ae.utils.fileio import atomic_open

logger = logging.getLogger(__name__)


def registered_step0(like: str) -> Path | None:
    """The step-0 checkpoint registered for the run of the registered name ``like``, if any."""
    from espnet_hubert_ae.upstream.registry import find_registry, read_registry

    registry = find_registry()
    if registry is None or Path(like).is_file():
        return None
    entries = read_registry(registry)
    reference = entries.get(like)
    if reference is None:
        return None
    found = [e for e in entries.values() if e.experiment == reference.experiment and e.step == 0]
    return found[0].checkpoint if found else None


def random_init_checkpoint(like: str, out_dir: str | os.PathLike, seed: int = 1) -> Path:
    """A checkpoint of ``like``'s architecture at initialisation (see the module docstring).

    ``like`` is a checkpoint .pth, a registered name, or a strategy (or run) whose last
    registered checkpoint is meant.
    """
    from espnet2.tasks.hubert import HubertTask

    from espnet_hubert_ae.asr.pipeline import final_upstream, upstream_tag
    from espnet_hubert_ae.upstream.registry import UpstreamError, lookup, resolve_upstream

    if not Path(like).is_file():
        try:
            lookup(like)
        except UpstreamError:
            like = final_upstream(like)  # fails, listing the strategies, when it is none either
    snapshot = registered_step0(like)
    if snapshot is not None:
        logger.info("random-init control: the step-0 snapshot %s", snapshot)
        return snapshot
    checkpoint, config_path = resolve_upstream(like)
    run = lookup(like).experiment if not Path(like).is_file() else upstream_tag(like)
    out_dir = Path(out_dir) / run
    path = out_dir / "step0.pth"
    if path.is_file():  # written last, after its config
        return path
    config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
    torch.manual_seed(seed)
    model = HubertTask.build_model(argparse.Namespace(**config))
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(out_dir / "config.yaml") as f, open(config_path, encoding="utf-8") as src:
        shutil.copyfileobj(src, f)
    with atomic_open(path, "wb") as f:
        torch.save(model.state_dict(), f)
    logger.info("random-init control: built %s from %s (seed %d)", path, config_path, seed)
    return path
