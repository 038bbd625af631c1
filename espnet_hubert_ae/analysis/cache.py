"""The analysis cache: one JSON per checkpoint and metric, reused while nothing it depends on changed.

A metric's record is valid for as long as its key holds: the result format version, the
checkpoint file (path, size, mtime), the utterances analysed and the metric's own settings.
"""

from __future__ import annotations

import json
from pathlib import Path

from espnet_hubert_ae.analysis.sampling import DataPlan
from espnet_hubert_ae.upstream.registry import CheckpointRef
from espnet_hubert_ae.utils.fileio import atomic_write_text, file_identity

RESULT_VERSION = 1


def metric_path(outdir: Path, ref: CheckpointRef, metric: str) -> Path:
    return Path(outdir) / ref.tag / f"{metric}.json"


def cache_key(ref: CheckpointRef, plan: DataPlan, metric: str) -> dict:
    return {
        "version": RESULT_VERSION,
        "checkpoint": file_identity(ref.checkpoint),
        "data": plan.identity,
        "settings": plan.config.metric_settings(metric),
    }


def load_cached(outdir: Path, ref: CheckpointRef, plan: DataPlan, metric: str) -> dict | None:
    """The cached record of ``metric`` for ``ref``, or None when absent, unreadable or stale."""
    path = metric_path(outdir, ref, metric)
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    return result if result.get("key") == cache_key(ref, plan, metric) else None


def store(outdir: Path, ref: CheckpointRef, metric: str, record: dict) -> None:
    atomic_write_text(metric_path(outdir, ref, metric), json.dumps(record, indent=1) + "\n")
