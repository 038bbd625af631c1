"""The combined outputs of an analysis run: table, summary statistics across checkpoints, plots.

Written under the analysis directory of a data set:
    table.tsv      one row per (checkpoint, measure, layer)
    summary.json   per checkpoint: best layer, top-layer drop (and mel input rebound); per measure:
                   steps-to-target of each strategy against the reference strategy
    plots/<measure>_layers.png, plots/<measure>_heatmap_<run>.png (phases marked), plots/<measure>_strategies.png
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from espnet_hubert_ae.analysis import plots
from espnet_hubert_ae.analysis import stats as summary
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


def write_table(results: Sequence[dict], path: str | os.PathLike) -> None:
    with atomic_open(path) as f:
        f.write("checkpoint\tstrategy\tphase\tstep\tmeasure\tlayer\tvalue\n")
        for result in results:
            ck = result["checkpoint"]
            for measure, curve in result["measures"].items():
                for layer, value in enumerate(curve):
                    step = "" if ck.get("step") is None else ck["step"]
                    f.write(f"{ck['name']}\t{_strategy_of(result)}\t{ck.get('phase') or ''}\t{step}\t"
                            f"{measure}\t{layer}\t{value:.6f}\n")


def summarise(results: Sequence[dict], reference_strategy: str | None = None, target_layer: int | None = None) -> dict:
    """Per-checkpoint statistics, and steps-to-target per measure when a reference strategy is analysed."""
    out: dict = {"checkpoints": {r["checkpoint"]["name"]: r["summary"] for r in results}}
    measures = sorted({m for r in results for m in r["measures"]})
    strategies = {_strategy_of(r) for r in results}
    if reference_strategy is not None:
        if reference_strategy not in strategies:
            logger.warning("reference strategy %r has no analysed checkpoint: no steps-to-target", reference_strategy)
        else:
            out["steps_to_target"] = {
                "reference_strategy": reference_strategy,
                "score": "best layer" if target_layer is None else f"layer {target_layer}",
                "measures": {
                    m: summary.strategy_steps_to_target(_by_strategy(results, m), reference_strategy, target_layer)
                    for m in measures
                    if m != "mel_cca"  # the input measure has no "target" to reach
                },
            }
    return out


def write_plots(results: Sequence[dict], plot_dir: str | os.PathLike) -> list[Path]:
    plot_dir = Path(plot_dir)
    written = []
    measures = sorted({m for r in results for m in r["measures"]})
    for measure in measures:
        curves = {r["checkpoint"]["name"]: r["measures"][measure] for r in results if measure in r["measures"]}
        path = plot_dir / f"{measure}_layers.png"
        plots.plot_layer_curves(measure, curves, path)
        written.append(path)
        for run, pairs in _grouped(results, measure, _run_of).items():
            matrix = np.array([result["measures"][measure] for _, result in pairs], dtype=float).T
            phases = [result["checkpoint"].get("phase") for _, result in pairs]
            path = plot_dir / f"{measure}_heatmap_{safe_tag(run)}.png"
            plots.plot_heatmap(measure, run, [step for step, _ in pairs], matrix, path, phases)
            written.append(path)
        path = plot_dir / f"{measure}_strategies.png"
        plots.plot_strategies(measure, _by_strategy(results, measure), path)
        written.append(path)
    return written


def write_report(
    results: Sequence[dict],
    outdir: str | os.PathLike,
    reference_strategy: str | None = None,
    target_layer: int | None = None,
) -> dict:
    """Table, summary and plots of the analysed checkpoints; returns the summary."""
    outdir = Path(outdir)
    write_table(results, outdir / "table.tsv")
    stats = summarise(results, reference_strategy, target_layer)
    atomic_write_text(outdir / "summary.json", json.dumps(stats, indent=1) + "\n")
    written = write_plots(results, outdir / "plots")
    logger.info("wrote %s, %s and %d plots under %s", "table.tsv", "summary.json", len(written), outdir)
    return stats
