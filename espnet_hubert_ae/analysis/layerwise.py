"""Runs the layerwise analysis of one checkpoint on one data set, computing only what is not cached.

The metrics not yet in the cache are computed in passes over the utterances: a pass runs the
model up to the highest layer of its group of layers (all layers by default; ``layer_group``
bounds memory for large sets), and a collector per layer keeps what the metrics need.

Outputs, under ``outdir`` (e.g. ``exp/analysis/dev_clean``), per checkpoint tag (``run_p4_step120``):
    <tag>/<metric>.json   one metric, all layers, with the settings it was computed with
    <tag>/results.json    every metric of the checkpoint and its summary statistics
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

from espnet_hubert_ae.analysis import cache
from espnet_hubert_ae.analysis import stats as summary
from espnet_hubert_ae.analysis.collector import CheckpointFeatures, FeatureSource, LayerCollector
from espnet_hubert_ae.analysis.config import FRAME_METRICS, MEASURES
from espnet_hubert_ae.analysis.metrics import compute_metric
from espnet_hubert_ae.analysis.sampling import DataPlan
from espnet_hubert_ae.analysis.views import log_mel_50hz
from espnet_hubert_ae.data.audio import read_utterance
from espnet_hubert_ae.upstream.registry import CheckpointRef
from espnet_hubert_ae.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)


def checkpoint_features(ref: CheckpointRef, device: str = "cpu") -> FeatureSource:
    return CheckpointFeatures(ref.checkpoint, ref.config, device)


def _layer_groups(num_states: int, group: int | None) -> list[list[int]]:
    size = num_states if group is None else group
    return [list(range(lo, min(lo + size, num_states))) for lo in range(0, num_states, size)]


def compute_metrics(
    ref: CheckpointRef, plan: DataPlan, metrics: Sequence[str], source: FeatureSource, blas_threads: int = 1
) -> dict[str, dict]:
    """Compute ``metrics`` for every layer of one checkpoint: metric -> result record.

    The metrics' linear algebra runs with ``blas_threads`` BLAS threads: OpenBLAS threads
    busy-wait, and on a machine shared with other work two of them ran 20x slower than one.
    """
    from threadpoolctl import threadpool_limits

    num_states = source.num_layers + 1
    per_layer: dict[str, list[tuple[dict, dict]]] = {m: [] for m in metrics}
    seconds = {m: 0.0 for m in metrics}
    wants_mel = "mel_cca" in metrics
    wants_frames = any(m in FRAME_METRICS for m in metrics)
    start = time.perf_counter()
    for group in _layer_groups(num_states, plan.config.layer_group):
        collectors: dict[int, LayerCollector] = {}
        desc = f"{ref.name} layers {group[0]}-{group[-1]}"
        for index, utt in enumerate(tqdm(plan.utterances, desc=desc, unit="utt", leave=False)):
            wav = read_utterance(utt)
            states = source(wav, group[-1])
            mel = log_mel_50hz(wav) if wants_mel else None
            frames = plan.frame_sample(index, len(states[0])) if wants_frames else None
            for layer in group:
                if layer not in collectors:
                    collectors[layer] = LayerCollector(plan, metrics, states[layer].shape[1])
                collectors[layer].add(index, utt, states[layer], mel, frames)
            del states
        forward_seconds = time.perf_counter() - start
        for layer in group:
            for metric in metrics:
                t0 = time.perf_counter()
                with threadpool_limits(limits=blas_threads, user_api="blas"):
                    per_layer[metric].append(compute_metric(metric, plan, collectors[layer]))
                seconds[metric] += time.perf_counter() - t0
            del collectors[layer]
        logger.info("%s: layers %d-%d done (features %.1f s)", ref.name, group[0], group[-1], forward_seconds)
        start = time.perf_counter()
    records = {}
    for metric in metrics:
        values, details = zip(*per_layer[metric])
        records[metric] = {
            "metric": metric,
            "checkpoint": ref.name,
            "key": cache.cache_key(ref, plan, metric),
            "measures": {m: [v[m] for v in values] for m in MEASURES[metric]},
            "layers": list(details),
            "metric_seconds": round(seconds[metric], 3),
        }
    return records


def analyse_checkpoint(
    ref: CheckpointRef,
    plan: DataPlan,
    outdir: str | os.PathLike,
    source_factory: Callable[[CheckpointRef], FeatureSource] | None = None,
    device: str = "cpu",
    blas_threads: int = 1,
) -> dict:
    """Results of every configured metric for one checkpoint, computing only what is not cached.

    ``source_factory`` makes the feature source of a checkpoint (default: load it on ``device``);
    ``blas_threads`` is passed to :func:`compute_metrics`.
    """
    outdir = Path(outdir)
    if source_factory is None:
        source_factory = functools.partial(checkpoint_features, device=device)
    records = {}
    missing = []
    for metric in plan.config.metrics:
        cached = cache.load_cached(outdir, ref, plan, metric)
        if cached is None:
            missing.append(metric)
        else:
            records[metric] = cached
    if missing:
        logger.info("%s: computing %s (cached: %s)", ref.name, ", ".join(missing), ", ".join(records) or "none")
        plan.check()
        fresh = compute_metrics(ref, plan, missing, source_factory(ref), blas_threads)
        for metric, record in fresh.items():
            cache.store(outdir, ref, metric, record)
        records.update(fresh)
    else:
        logger.info("%s: every metric cached", ref.name)
    result = checkpoint_result(ref, plan, [records[m] for m in plan.config.metrics])
    atomic_write_text(outdir / ref.tag / "results.json", json.dumps(result, indent=1) + "\n")
    return result


def checkpoint_result(ref: CheckpointRef, plan: DataPlan, records: Sequence[dict]) -> dict:
    """The per-checkpoint JSON: identity, every measure per layer, and its summary statistics."""
    measures = {name: curve for record in records for name, curve in record["measures"].items()}
    stats: dict = {}
    for name, curve in measures.items():
        stats[name] = {"best_layer": summary.best_layer(curve), "top_layer_drop": summary.top_layer_drop(curve)}
    if "mel_cca" in measures:
        stats["mel_cca"]["input_rebound"] = summary.input_rebound(measures["mel_cca"])
    return {
        "checkpoint": {
            "name": ref.name,
            "path": str(ref.checkpoint),
            "config": None if ref.config is None else str(ref.config),
            "run": ref.run,
            "strategy": ref.strategy,
            "phase": ref.phase,
            "step": ref.step,
        },
        "data": plan.identity,
        "measures": measures,
        "summary": stats,
        "details": {record["metric"]: {"settings": record["key"]["settings"], "layers": record["layers"]} for record in records},
    }
