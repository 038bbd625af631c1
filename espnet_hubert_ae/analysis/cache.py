"""The analysis cache: one JSON per analysed subject (a checkpoint or an input control) and metric,
reused while nothing it depends on changed.

A metric's record is valid for as long as its key holds: the result format version, the
subject's identity, the utterances analysed and the metric's own settings. A checkpoint is
identified by what it computes, not by where it lies: the SHA-256 of its bytes and of the
options its model is built from (its ``config.yaml`` without the training run's own options:
paths, batches, optimiser, schedule hooks). So byte-identical checkpoints -- the step-0
snapshots of runs of one model and seed, the phases one run adopted from another -- are
analysed once: the first one's records go to a store shared by all (``<outdir>/weights/<id>/``)
and every other checkpoint of the same weights takes them from there. Each checkpoint still
has its records and results under its own name (``<outdir>/<tag>/``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

from espnet_hubert_ae.analysis.sampling import DataPlan
from espnet_hubert_ae.utils.fileio import atomic_write_text, file_digest

# 2: speaker-disjoint frame metrics over seeds, reduced CCA views, corrected PNMI; 3: the probe's
# softmax in place (its 100-iteration fit ends up to ~1e-3 away in accuracy), checkpoints by content
RESULT_VERSION = 3
STORE_DIR = "weights"  # under the analysis directory: records by weights identity


def metric_path(directory: Path, metric: str) -> Path:
    return Path(directory) / f"{metric}.json"


def cache_key(identity: dict | None, plan: DataPlan, metric: str) -> dict:
    return {
        "version": RESULT_VERSION,
        "checkpoint": identity,
        "data": plan.identity,
        "settings": plan.config.metric_settings(metric),
    }


def load_cached(directory: Path, identity: dict | None, plan: DataPlan, metric: str) -> dict | None:
    """The cached record of ``metric`` in ``directory``, or None when absent, unreadable or stale."""
    path = metric_path(directory, metric)
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    return result if result.get("key") == cache_key(identity, plan, metric) else None


def store(directory: Path, metric: str, record: dict) -> None:
    atomic_write_text(metric_path(directory, metric), json.dumps(record, indent=1) + "\n")


# --- what identifies a checkpoint's weights ---------------------------------------------------


# The option groups of a pretraining run's parser whose options only the training reads: ESPnet's
# trainer, data, iterator, optimiser and distributed groups, and the schedule's hooks
# (pretrain.task.PhaseTrainer). An option of any other group, or unknown to the parser, is part of
# a checkpoint's identity: a new group can make two checkpoints differ, never make them the same.
TRAINING_GROUPS = frozenset({
    "Common configuration", "distributed training related", "cudnn mode related", "collect stats mode related",
    "Trainer related", "Pretraining model related", "BatchSampler related", "Sequence iterator related",
    "Chunk iterator related", "Dataset related", "Optimizer related",
    "Schedule hooks (one phase of a pretraining schedule)",
})


@functools.lru_cache(maxsize=1)
def training_options() -> frozenset[str]:
    """The options of a pretraining ``config.yaml`` that only the training run reads
    (:data:`TRAINING_GROUPS`, and the path of the training config itself): two runs of one
    model differ there, never in what a checkpoint's weights compute."""
    from espnet_hubert_ae.pretrain.task import PhaseHubertTask

    parser = PhaseHubertTask.get_parser()
    groups = [group for group in parser._action_groups if group.title in TRAINING_GROUPS]
    return frozenset({"config"} | {action.dest for group in groups for action in group._group_actions})


def model_options(config: str | os.PathLike) -> dict:
    """The options of a pretraining config that build its model (:func:`training_options` left out)."""
    import yaml

    with open(config, encoding="utf-8") as f:
        loaded = yaml.safe_load(f)
    if not isinstance(loaded, dict):
        raise ValueError(f"{config}: not an ESPnet config (expected a YAML mapping)")
    return {key: value for key, value in loaded.items() if key not in training_options()}


def weights_identity(checkpoint: str | os.PathLike, config: str | os.PathLike | None) -> dict:
    """What a checkpoint computes: the digest of its bytes and of its model options; ``id`` names
    its folder in the shared store."""
    config = Path(checkpoint).parent / "config.yaml" if config is None else Path(config)
    weights = file_digest(checkpoint)
    # without a config nothing can load the checkpoint; its bytes alone identify it then
    options = json.dumps(model_options(config) if config.is_file() else None, sort_keys=True, default=str)
    model = hashlib.sha256(options.encode()).hexdigest()
    return {"sha256": weights, "model_options_sha256": model,
            "id": hashlib.sha256(f"{weights} {model}".encode()).hexdigest()[:20]}


def store_directory(outdir: str | os.PathLike, identity: dict) -> Path:
    """Where the records of the weights ``identity`` are shared, under an analysis directory."""
    return Path(outdir) / STORE_DIR / identity["id"]
