"""PNG plots of layer curves (matplotlib, Agg backend: no display needed).

- layer curves: one line per checkpoint, value against layer, for one measure;
- heatmap: layer x pretraining step for one run and measure, its phases marked;
- strategies side by side: one panel per strategy, its checkpoints' curves coloured by step.

The floors a measure must beat are drawn in the curve plots: each run's untrained (step-0)
model as a dashed grey curve, and the input controls (log-mel frames alone and stacked 5 and 9
to a frame, MFCC, majority class) as horizontal lines.
"""

from __future__ import annotations

import io
import os
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from espnet_hubert_ae.utils.fileio import atomic_open  # noqa: E402


def _save(fig, path: str | os.PathLike) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    with atomic_open(path, "wb") as f:
        f.write(buffer.getvalue())


# (line style, colour) of the controls' horizontal lines, in the order they are given
REFERENCE_STYLES = ((":", "dimgray"), ("--", "tab:purple"), ("-.", "tab:brown"), ((0, (5, 1)), "black"),
                    ((0, (3, 1, 1, 1, 1, 1)), "tab:olive"), ((0, (1, 1)), "tab:cyan"))


def draw_references(ax, references: Mapping[str, float], with_values: bool = False) -> None:
    """Horizontal lines at the controls' values, labelled (with the value when asked)."""
    for (label, value), (style, colour) in zip(references.items(), REFERENCE_STYLES * len(references)):
        ax.axhline(value, color=colour, linestyle=style, linewidth=1.2,
                   label=f"{label} ({value:.3f})" if with_values else label)


def _draw_floor(ax, label: str, values: Sequence[float]) -> None:
    ax.plot(range(len(values)), values, color="grey", linestyle="--", marker="x", markersize=3, label=label)


def plot_layer_curves(
    measure: str, curves: Mapping[str, Sequence[float]], path: str | os.PathLike,
    references: Mapping[str, float] | None = None, floors: Sequence[str] = (),
) -> None:
    """One line per checkpoint (label -> per-layer values); the curves named in ``floors`` (the
    untrained models) dashed grey, the ``references`` (controls: label -> value) as lines."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, values in curves.items():
        if label in floors:
            _draw_floor(ax, f"{label} (untrained)", values)
        else:
            ax.plot(range(len(values)), values, marker="o", markersize=3, label=label)
    draw_references(ax, references or {})
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer (0 = transformer input)")
    ax.set_ylabel(measure)
    ax.set_title(f"{measure} per layer")
    ax.grid(alpha=0.3)
    if len(curves) <= 12:
        ax.legend(fontsize="small")
    else:
        ax.legend(fontsize="x-small", ncol=2, bbox_to_anchor=(1.02, 1), loc="upper left")
    _save(fig, path)


def phase_spans(phases: Sequence[int | None]) -> list[tuple[int | None, int, int]]:
    """(phase, first column, last column) of each run of equal phases, in column order."""
    spans: list[tuple[int | None, int, int]] = []
    for column, phase in enumerate(phases):
        if spans and spans[-1][0] == phase:
            spans[-1] = (phase, spans[-1][1], column)
        else:
            spans.append((phase, column, column))
    return spans


def plot_heatmap(
    measure: str, run: str, steps: Sequence[int], matrix: np.ndarray, path: str | os.PathLike,
    phases: Sequence[int | None] | None = None,
) -> None:
    """``matrix`` is (layers, checkpoints): column j belongs to pretraining step ``steps[j]``, of
    phase ``phases[j]``; a line separates the phases, each labelled on top."""
    matrix = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(steps) + 2.5), 4.2))
    image = ax.imshow(matrix, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(steps)), [str(s) for s in steps], rotation=45, ha="right")
    ax.set_yticks(range(matrix.shape[0]))
    spans = phase_spans(phases) if phases is not None else []
    for phase, first, last in spans:
        if first > 0:
            ax.axvline(first - 0.5, color="white", linewidth=2)
        if phase is not None:
            ax.text((first + last) / 2, 1.01, f"p{phase}", transform=ax.get_xaxis_transform(), ha="center",
                    va="bottom", fontsize="small")
    ax.set_xlabel("pretraining step")
    ax.set_ylabel("layer")
    ax.set_title(f"{measure}: {run}", pad=14)
    fig.colorbar(image, ax=ax, label=measure)
    _save(fig, path)


def plot_strategies(
    measure: str, by_strategy: Mapping[str, Sequence[tuple[int, Sequence[float]]]], path: str | os.PathLike,
    references: Mapping[str, float] | None = None,
) -> None:
    """One panel per strategy; its (step, curve) pairs coloured from early (dark) to late (light),
    step 0 (the untrained model) dashed grey; the ``references`` as lines in every panel."""
    names = list(by_strategy)
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names) + 1, 3.8), sharey=True, squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, name in zip(axes[0], names):
        pairs = sorted(by_strategy[name], key=lambda pair: pair[0])
        for i, (step, values) in enumerate(pairs):
            if step == 0:
                _draw_floor(ax, "step 0 (untrained)", values)
                continue
            colour = cmap(i / max(1, len(pairs) - 1))
            ax.plot(range(len(values)), values, color=colour, marker="o", markersize=2, label=f"step {step}")
        draw_references(ax, references or {})
        ax.set_title(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("layer")
        ax.grid(alpha=0.3)
        if len(pairs) + len(references or {}) <= 10:
            ax.legend(fontsize="x-small")
    axes[0][0].set_ylabel(measure)
    fig.suptitle(f"{measure} across pretraining, by strategy")
    _save(fig, path)
