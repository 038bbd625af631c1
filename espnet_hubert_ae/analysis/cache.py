"""The analysis cache: one JSON per analysed subject (a checkpoint or an input control) and metric,
reused while nothing it depends on changed.

A metric's record is valid for as long as its key holds: the result format version, the
subject's identity (a checkpoint: its file's path, size and mtime), the utterances analysed
and the metric's own settings.
"""

from __future__ import annotations

import json
from pathlib import Path

from espnet_hubert_ae.analysis.sampling import DataPlan
from espnet_hubert_ae.utils.fileio import atomic_write_text

RESULT_VERSION = 2  # 2: speaker-disjoint frame metrics over seeds, reduced CCA views, corrected PNMI


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
