"""Runs the layerwise analysis of one checkpoint on one data set, computing only what is not cached.

The metrics not yet in the cache are computed in passes over the utterances: a pass runs the
model up to the highest layer of its group of layers (all layers by default; ``layer_group``
bounds memory for large sets), and a collector per layer keeps what the metrics need. One pass
serves every metric and every seed; the mel view and the frame sample of an utterance are the
same for every checkpoint and are computed once per data set (:class:`~.sampling.DataPlan`).
The input controls (:mod:`.controls`) go through the same machinery as a "model" of one layer.
Checkpoints of byte-identical weights are analysed once (:mod:`.cache`).

Outputs, under ``outdir`` (e.g. ``exp/analysis/dev_clean``), per checkpoint tag (``run_p4_step120``):
    <tag>/<metric>.json   one metric, all layers, with the settings it was computed with
    <tag>/results.json    every measure of the checkpoint and its summary statistics:
        measures   measure -> value per layer (frame measures: the mean over the seeds)
        std        frame measure -> sample standard deviation over the seeds, per layer
        summary    measure -> best_layer, best (its value), best_layer_from_1 and best_from_1
                   (among transformer layers only), top_layer_drop; mel_cca: input_rebound
        probe      seeds, accuracy per seed and layer, majority-class accuracy per seed, frames,
                   and the input controls' accuracies on the same frames and splits
        clusters   K, held-out frames per seed, PNMI plug-in and corrected per layer
        weights    the identity its cache is keyed by (digests of its bytes and model options)
        cost       CPU seconds of its analysis: ``pass`` (audio, hidden_states, mel_view,
                   frame_sample, collect: one pass over the set for the metrics it computed)
                   and ``metrics`` (metric -> its CPU seconds over the layers and seeds), and
                   where each metric came from (``computed``, ``cached`` or ``shared`` with a
                   checkpoint of the same weights)
        details    per metric: its settings and per-layer details
    weights/<id>/<metric>.json   the records of one set of weights, shared by its checkpoints
"""

from __future__ import annotations

import dataclasses
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
from espnet_hubert_ae.data.audio import read_utterance
from espnet_hubert_ae.upstream.registry import CheckpointRef
from espnet_hubert_ae.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Subject:
    """What is analysed: its name, where its results go, what identifies it (cache key), how to
    make its feature source, and where records of the same identity are shared (None: nowhere)."""

    name: str
    directory: Path
    identity: dict | None
    source: Callable[[], FeatureSource]
    store: Path | None = None


def checkpoint_features(ref: CheckpointRef, device: str = "cpu") -> FeatureSource:
    return CheckpointFeatures(ref.checkpoint, ref.config, device)


def _layer_groups(num_states: int, group: int | None) -> list[list[int]]:
    size = num_states if group is None else group
    return [list(range(lo, min(lo + size, num_states))) for lo in range(0, num_states, size)]


@dataclasses.dataclass(frozen=True)
class MetricThreads:
    """How the metrics of a pass use the CPU, once its hidden states are collected.

    ``layers``: layers whose metrics are computed at once, each in its own Python thread (the
    probe's and the CCA's numpy/scipy work and faiss release the GIL), each with one BLAS thread
    and one faiss (OpenMP) thread.
    ``blas``: BLAS and faiss threads of one layer's work when layers are computed one at a time:
    OpenBLAS threads busy-wait, and on a machine shared with other work two of them ran 20x
    slower than one, so threads over layers are the safer way to use several cores.
    """

    layers: int = 1
    blas: int = 1

    def __post_init__(self):
        if self.layers < 1 or self.blas < 1:
            raise ValueError(f"metric threads must be at least 1, got layers={self.layers}, blas={self.blas}")
        if self.layers > 1 and self.blas > 1:
            raise ValueError("metric threads over layers run one BLAS thread each: give layers or blas, not both")

    def cpu_seconds(self) -> float:
        """CPU seconds spent so far by this thread, the BLAS threads included when it has them."""
        return time.thread_time() if self.blas == 1 else time.process_time()


PASS_PARTS = ("audio", "hidden_states", "mel_view", "frame_sample", "collect")


def compute_metrics(
    name: str, plan: DataPlan, metrics: Sequence[str], source: FeatureSource, threads: MetricThreads = MetricThreads()
) -> dict[str, dict]:
    """Compute ``metrics`` for every layer of one feature source: metric -> record (no cache key).

    Records carry the CPU seconds of each metric (over its layers and seeds) and of the pass
    that served them (:data:`PASS_PARTS`: reading audio, the hidden states, the mel view and
    frame sample (computed once per data set), what the collectors keep); both are logged.
    """
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from espnet_hubert_ae.targets.kmeans import set_faiss_threads

    num_states = source.num_layers + 1
    per_layer: dict[str, list] = {m: [] for m in metrics}
    seconds = {m: 0.0 for m in metrics}
    parts = dict.fromkeys(PASS_PARTS, 0.0)

    def layer_metrics(collector: LayerCollector) -> dict[str, tuple]:
        if "cluster_quality" in metrics:  # faiss's OpenMP, like BLAS: threads.blas in this thread
            set_faiss_threads(threads.blas)
        out = {}
        for metric in metrics:
            t0 = threads.cpu_seconds()
            value = compute_metric(metric, plan, collector)
            out[metric] = value, threads.cpu_seconds() - t0
        return out

    def timed(part: str, work: Callable, *args):
        start = time.process_time()
        value = work(*args)
        parts[part] += time.process_time() - start
        return value

    wants_mel = "mel_cca" in metrics
    wants_frames = any(m in FRAME_METRICS for m in metrics)
    for group in _layer_groups(num_states, plan.config.layer_group):
        collectors: dict[int, LayerCollector] = {}
        desc = f"{name} layers {group[0]}-{group[-1]}"
        # The collectors' small products (CCA statistics) in numpy's BLAS threads: those busy-wait
        # between calls, and cost 12x the CPU of one thread in this loop (measured, 2 threads).
        # The model's own threads (torch, --num_threads) are not BLAS threads here.
        with threadpool_limits(limits=threads.blas, user_api="blas"):
            for index, utt in enumerate(tqdm(plan.utterances, desc=desc, unit="utt", leave=False)):
                wav = timed("audio", read_utterance, utt)
                states = timed("hidden_states", source, wav, group[-1])
                mel = timed("mel_view", plan.mel_view, index, wav) if wants_mel else None
                frames = timed("frame_sample", plan.frame_sample, index) if wants_frames else None
                start = time.process_time()
                for layer in group:
                    if layer not in collectors:
                        collectors[layer] = LayerCollector(plan, metrics, states[layer].shape[1])
                    collectors[layer].add(index, utt, states[layer], mel, frames)
                parts["collect"] += time.process_time() - start
                del states
        with threadpool_limits(limits=threads.blas, user_api="blas"), ThreadPoolExecutor(threads.layers) as pool:
            for values in pool.map(layer_metrics, [collectors.pop(layer) for layer in group]):
                for metric, (value, cpu) in values.items():
                    per_layer[metric].append(value)
                    seconds[metric] += cpu
        logger.info("%s: layers %d-%d done", name, group[0], group[-1])
    pass_seconds = {part: round(value, 3) for part, value in parts.items()}
    records = {}
    for metric in metrics:
        layers = per_layer[metric]
        records[metric] = {
            "metric": metric,
            "checkpoint": name,
            "measures": {m: [v.values[m] for v in layers] for m in MEASURES[metric]},
            "std": {m: [v.std[m] for v in layers] for m in MEASURES[metric] if m in layers[0].std},
            "layers": [v.details for v in layers],
            "metric_cpu_seconds": round(seconds[metric], 3),
            "pass_cpu_seconds": pass_seconds,
            "pass_metrics": list(metrics),
        }
    logger.info("%s: CPU seconds: pass %.1f (%s); metrics %s", name, sum(parts.values()),
                ", ".join(f"{part} {value:.1f}" for part, value in parts.items()),
                ", ".join(f"{m} {s:.1f}" for m, s in seconds.items()))
    return records


def metric_records(
    subject: Subject, plan: DataPlan, metrics: Sequence[str], threads: MetricThreads = MetricThreads()
) -> list[dict]:
    """The records of ``metrics`` for ``subject``: from its own cache, else from the records its
    identity shares (:attr:`Subject.store`, copied under its name), else computed (and cached
    in both). Each record says in ``origin`` where it came from this time."""
    directory = subject.directory
    records, missing, shared = {}, [], []
    for metric in metrics:
        cached = cache.load_cached(directory, subject.identity, plan, metric)
        if cached is None and subject.store is not None:
            cached = cache.load_cached(subject.store, subject.identity, plan, metric)
            if cached is not None:
                cached = {**cached, "checkpoint": subject.name, "shared_from": cached.get("checkpoint")}
                cache.store(directory, metric, cached)
                shared.append(metric)
        if cached is None:
            missing.append(metric)
        else:
            records[metric] = {**cached, "origin": "shared" if metric in shared else "cached"}
    if missing:
        logger.info("%s: computing %s (cached: %s)", subject.name, ", ".join(missing), ", ".join(records) or "none")
        plan.check()
        fresh = compute_metrics(subject.name, plan, missing, subject.source(), threads)
        for metric, record in fresh.items():
            record["key"] = cache.cache_key(subject.identity, plan, metric)
            if subject.store is not None:
                cache.store(subject.store, metric, record)
            cache.store(directory, metric, record)
            records[metric] = {**record, "origin": "computed"}
    elif shared:
        first = {records[m].get("shared_from") for m in shared}
        logger.info("%s: every metric cached (%s shared with the same weights, analysed as %s)", subject.name,
                    ", ".join(shared), ", ".join(sorted(str(f) for f in first)))
    else:
        logger.info("%s: every metric cached", subject.name)
    return [records[m] for m in metrics]


def analyse_checkpoint(
    ref: CheckpointRef,
    plan: DataPlan,
    outdir: str | os.PathLike,
    source_factory: Callable[[CheckpointRef], FeatureSource] | None = None,
    device: str = "cpu",
    threads: MetricThreads = MetricThreads(),
    controls: dict | None = None,
) -> dict:
    """Results of every configured metric for one checkpoint, computing only what is not cached.

    ``source_factory`` makes the feature source of a checkpoint (default: load it on ``device``);
    ``threads`` is passed to :func:`compute_metrics`; ``controls`` (from
    :func:`.controls.analyse_controls`) are copied into the results for reference.
    """
    outdir = Path(outdir)
    if source_factory is None:
        source_factory = functools.partial(checkpoint_features, device=device)
    identity = cache.weights_identity(ref.checkpoint, ref.config)
    subject = Subject(ref.name, outdir / ref.tag, identity, lambda: source_factory(ref),
                      cache.store_directory(outdir, identity))
    records = metric_records(subject, plan, plan.config.metrics, threads)
    result = checkpoint_result(ref, plan, records, controls)
    result["weights"] = identity
    atomic_write_text(subject.directory / "results.json", json.dumps(result, indent=1) + "\n")
    return result


def curve_summary(curve: Sequence[float], std: Sequence[float] | None = None) -> dict:
    """Best layer and value (overall and among transformer layers, with the spread over seeds
    there when known) and the top-layer drop."""
    out = {"best_layer": summary.best_layer(curve), "best": summary.checkpoint_score(curve),
           "top_layer_drop": summary.top_layer_drop(curve)}
    if len(curve) > 1:
        layer = 1 + summary.best_layer(curve[1:])
        out.update(best_layer_from_1=layer, best_from_1=float(curve[layer]))
        if std is not None:
            out["best_from_1_std"] = float(std[layer])
    return out


def _frame_blocks(records: Sequence[dict], plan: DataPlan, controls: dict | None) -> dict:
    """The probe and clusters blocks of the results: per seed, with their frame counts and K."""
    out = {}
    by_metric = {record["metric"]: record for record in records}
    seeds = [str(s) for s in plan.config.seeds]
    if "phone_probe" in by_metric:
        layers = by_metric["phone_probe"]["layers"]
        first = layers[0]["per_seed"]
        out["probe"] = {
            "seeds": list(plan.config.seeds),
            "per_seed": {s: [layer["by_seed"]["phone_probe_acc"][s] for layer in layers] for s in seeds},
            "majority": layers[0]["by_seed"]["majority"],
            "frames": {s: {"train": first[s]["num_train"], "test": first[s]["num_test"]} for s in seeds},
            "controls": {name: values["phone_probe_acc"] for name, values in (controls or {}).items()
                         if "phone_probe_acc" in values},
        }
    if "cluster_quality" in by_metric:
        record = by_metric["cluster_quality"]
        first = record["layers"][0]["per_seed"]
        out["clusters"] = {
            "k": plan.config.kmeans_k,
            "frames": {s: first[s]["frames"] for s in seeds},
            "fit_frames": {s: first[s]["fit_frames"] for s in seeds},
            "pnmi": {"plugin": record["measures"]["pnmi"], "corrected": record["measures"]["pnmi_corrected"]},
            "controls": {name: {m: values[m] for m in ("pnmi", "pnmi_corrected")}
                         for name, values in (controls or {}).items() if "pnmi" in values},
        }
    return out


def analysis_cost(records: Sequence[dict]) -> dict:
    """CPU seconds of a checkpoint's analysis: the pass that computed its metrics (the latest
    one, when they were computed at different times) and each metric's; and each metric's
    origin this time (computed, cached, or shared with identical weights)."""
    latest = next((r for r in reversed(records) if r.get("origin") == "computed"), None) or \
        next((r for r in records if "pass_cpu_seconds" in r), None)
    return {
        "pass": None if latest is None else latest.get("pass_cpu_seconds"),
        "pass_metrics": None if latest is None else latest.get("pass_metrics"),
        "metrics": {r["metric"]: r.get("metric_cpu_seconds") for r in records},
        "origin": {r["metric"]: r.get("origin", "cached") for r in records},
    }


def checkpoint_result(ref: CheckpointRef, plan: DataPlan, records: Sequence[dict], controls: dict | None = None) -> dict:
    """The per-checkpoint JSON: identity, every measure per layer, and its summary statistics."""
    measures = {name: curve for record in records for name, curve in record["measures"].items()}
    spread = {name: curve for record in records for name, curve in record.get("std", {}).items()}
    stats = {name: curve_summary(curve, spread.get(name)) for name, curve in measures.items()}
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
        "std": spread,
        "summary": stats,
        **_frame_blocks(records, plan, controls),
        "cost": analysis_cost(records),
        "details": {record["metric"]: {"settings": record["key"]["settings"], "layers": record["layers"]} for record in records},
    }
