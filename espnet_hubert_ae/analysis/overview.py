"""The combined outputs of an analysis run: table, summary statistics across checkpoints, plots.

Written under the analysis directory of a data set:
    table.tsv      one row per (checkpoint, measure, layer): the value (frame measures: mean over
                   the seeds) and its standard deviation over the seeds (empty for the others)
    summary.json   per checkpoint: best layer (overall and among layers >= 1), top-layer drop, mel
                   input rebound; the input controls and the majority class; each run's untrained
                   (step-0) checkpoint as its floor; per measure: steps-to-target of each strategy
                   against the reference strategy; ``work``: how many checkpoints this run
                   computed, took from identical weights or found cached, and the CPU seconds
                   of what it computed, per part
    plots/<measure>_layers.png, plots/<measure>_heatmap_<run>.png (phases marked), plots/<measure>_strategies.png

Cluster measures (PNMI and purities) are biased by K and the frame count, so they are compared
only among checkpoints measured at the same K and held-out frame counts (those of most
checkpoints); any other is left out of the comparisons and listed as not comparable.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from espnet_hubert_ae.analysis import plots
from espnet_hubert_ae.analysis import stats as summary
from espnet_hubert_ae.analysis.config import MEASURES
from espnet_hubert_ae.analysis.controls import LABELS
from espnet_hubert_ae.utils.fileio import atomic_open, atomic_write_text
from espnet_hubert_ae.utils.naming import safe_tag

logger = logging.getLogger(__name__)

UNREGISTERED = "unregistered"  # strategy of checkpoints given as plain paths


def _strategy_of(result: dict) -> str:
    return result["checkpoint"].get("strategy") or UNREGISTERED


def _run_of(result: dict) -> str:
    return result["checkpoint"].get("run") or _strategy_of(result)


def _grouped(results: Sequence[dict], measure: str, key: Callable[[dict], str]) -> dict[str, list[tuple[int, dict]]]:
    """key -> (step, result) pairs in step order, of the results with ``measure``; checkpoints
    without a step count in given order."""
    grouped: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    for position, result in enumerate(results):
        if measure in result["measures"]:
            step = result["checkpoint"].get("step")
            grouped[key(result)].append((position if step is None else int(step), result))
    return {name: sorted(pairs, key=lambda pair: pair[0]) for name, pairs in grouped.items()}


def _by_strategy(results: Sequence[dict], measure: str) -> dict[str, list[tuple[int, list[float]]]]:
    """strategy -> (step, curve) pairs in step order."""
    return {name: [(step, result["measures"][measure]) for step, result in pairs]
            for name, pairs in _grouped(results, measure, _strategy_of).items()}


CLUSTER_MEASURES = MEASURES["cluster_quality"]


def write_table(results: Sequence[dict], path: str | os.PathLike) -> None:
    with atomic_open(path) as f:
        f.write("checkpoint\tstrategy\tphase\tstep\tmeasure\tlayer\tvalue\tstd\n")
        for result in results:
            ck = result["checkpoint"]
            for measure, curve in result["measures"].items():
                spread = result.get("std", {}).get(measure)
                for layer, value in enumerate(curve):
                    step = "" if ck.get("step") is None else ck["step"]
                    std = "" if spread is None else f"{spread[layer]:.6f}"
                    f.write(f"{ck['name']}\t{_strategy_of(result)}\t{ck.get('phase') or ''}\t{step}\t"
                            f"{measure}\t{layer}\t{value:.6f}\t{std}\n")


def cluster_condition(result: dict) -> tuple | None:
    """(K, held-out frames per seed) the cluster measures of a checkpoint were taken at."""
    clusters = result.get("clusters")
    return None if clusters is None else (clusters["k"], tuple(sorted(clusters["frames"].items())))


def comparable(results: Sequence[dict], measure: str) -> tuple[list[dict], list[str]]:
    """The results whose ``measure`` may be compared, and the names of those left out: for a
    cluster measure, the checkpoints at the most common (K, frames) condition."""
    if measure not in CLUSTER_MEASURES:
        return list(results), []
    conditions = Counter(cluster_condition(r) for r in results if measure in r["measures"])
    if not conditions:
        return list(results), []
    common = conditions.most_common(1)[0][0]
    kept = [r for r in results if measure not in r["measures"] or cluster_condition(r) == common]
    left_out = [r["checkpoint"]["name"] for r in results if measure in r["measures"] and cluster_condition(r) != common]
    if left_out:
        logger.warning("%s of %s measured at another K or frame count than the others (K=%s): left out of the "
                       "comparisons", measure, ", ".join(left_out), common[0])
    return kept, left_out


def floors(results: Sequence[dict]) -> dict[str, dict]:
    """Run -> its untrained (step-0) checkpoint and that checkpoint's summary: the floor a run
    must rise above."""
    out = {}
    for result in results:
        if result["checkpoint"].get("step") == 0:
            out[_run_of(result)] = {"checkpoint": result["checkpoint"]["name"], **result["summary"]}
    return out


def reference_lines(measure: str, controls: dict) -> dict[str, float]:
    """The controls' values of ``measure`` (label -> value): the input representations, and the
    majority class for the probe."""
    lines = {LABELS.get(name, f"{name} input"): values[measure]["mean"] for name, values in controls.items()
             if name != "majority" and measure in values}
    if measure == "phone_probe_acc" and "majority" in controls:
        lines["majority class"] = controls["majority"]["mean"]
    return lines


def work_done(results: Sequence[dict]) -> dict:
    """What an analysis run did: checkpoints whose metrics were (some of them) computed, all
    shared with identical weights, or all cached; CPU seconds of the computed ones per part of
    the pass and per metric (from each result's ``cost``)."""
    counts = Counter()
    seconds: dict[str, float] = defaultdict(float)
    for result in results:
        cost = result.get("cost") or {}
        origins = set((cost.get("origin") or {}).values())
        kind = "computed" if "computed" in origins else "shared" if origins == {"shared"} else "cached"
        counts[kind] += 1
        if kind != "computed":
            continue
        for part, value in (cost.get("pass") or {}).items():
            seconds[f"pass {part}"] += value
        for metric, origin in cost["origin"].items():
            if origin == "computed":
                seconds[metric] += cost["metrics"].get(metric) or 0.0
    return {"checkpoints": len(results), **{k: counts[k] for k in ("computed", "shared", "cached")},
            "cpu_seconds": {k: round(v, 1) for k, v in seconds.items()},
            "cpu_seconds_total": round(sum(seconds.values()), 1)}


def summarise(
    results: Sequence[dict], reference_strategy: str | None = None, target_layer: int | None = None,
    controls: dict | None = None,
) -> dict:
    """Per-checkpoint statistics, the controls and floors, and steps-to-target per measure when a
    reference strategy is analysed."""
    out: dict = {"checkpoints": {r["checkpoint"]["name"]: r["summary"] for r in results},
                 "controls": controls or {}, "floors": floors(results), "work": work_done(results)}
    measures = sorted({m for r in results for m in r["measures"]})
    conditions = {cluster_condition(r) for r in results} - {None}
    if conditions:
        out["clusters"] = {"conditions": [{"k": k, "frames": dict(frames)} for k, frames in sorted(conditions)],
                           "not_comparable": comparable(results, CLUSTER_MEASURES[0])[1]}
    strategies = {_strategy_of(r) for r in results}
    if reference_strategy is not None:
        if reference_strategy not in strategies:
            logger.warning("reference strategy %r has no analysed checkpoint: no steps-to-target", reference_strategy)
        else:
            out["steps_to_target"] = {
                "reference_strategy": reference_strategy,
                "score": "best layer" if target_layer is None else f"layer {target_layer}",
                "measures": {
                    m: summary.strategy_steps_to_target(_by_strategy(comparable(results, m)[0], m), reference_strategy,
                                                        target_layer)
                    for m in measures
                    if m != "mel_cca"  # the input measure has no "target" to reach
                },
            }
    return out


def write_plots(results: Sequence[dict], plot_dir: str | os.PathLike, controls: dict | None = None) -> list[Path]:
    plot_dir = Path(plot_dir)
    written = []
    measures = sorted({m for r in results for m in r["measures"]})
    untrained = [floor["checkpoint"] for floor in floors(results).values()]
    for measure in measures:
        shown, _ = comparable(results, measure)
        references = reference_lines(measure, controls or {})
        curves = {r["checkpoint"]["name"]: r["measures"][measure] for r in shown if measure in r["measures"]}
        path = plot_dir / f"{measure}_layers.png"
        plots.plot_layer_curves(measure, curves, path, references, untrained)
        written.append(path)
        for run, pairs in _grouped(shown, measure, _run_of).items():
            matrix = np.array([result["measures"][measure] for _, result in pairs], dtype=float).T
            phases = [result["checkpoint"].get("phase") for _, result in pairs]
            path = plot_dir / f"{measure}_heatmap_{safe_tag(run)}.png"
            plots.plot_heatmap(measure, run, [step for step, _ in pairs], matrix, path, phases)
            written.append(path)
        path = plot_dir / f"{measure}_strategies.png"
        plots.plot_strategies(measure, _by_strategy(shown, measure), path, references)
        written.append(path)
    return written


def write_report(
    results: Sequence[dict],
    outdir: str | os.PathLike,
    reference_strategy: str | None = None,
    target_layer: int | None = None,
    controls: dict | None = None,
) -> dict:
    """Table, summary and plots of the analysed checkpoints beside the ``controls``; returns the summary."""
    outdir = Path(outdir)
    write_table(results, outdir / "table.tsv")
    stats = summarise(results, reference_strategy, target_layer, controls)
    atomic_write_text(outdir / "summary.json", json.dumps(stats, indent=1) + "\n")
    written = write_plots(results, outdir / "plots", controls)
    work = stats["work"]
    logger.info("%d checkpoints: %d computed, %d shared with identical weights, %d cached; CPU seconds of the "
                "computed: %.1f (%s)", work["checkpoints"], work["computed"], work["shared"], work["cached"],
                work["cpu_seconds_total"], ", ".join(f"{k} {v:.1f}" for k, v in work["cpu_seconds"].items()))
    logger.info("wrote %s, %s and %d plots under %s", "table.tsv", "summary.json", len(written), outdir)
    return stats
