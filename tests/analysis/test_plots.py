"""Plots of the analysis: heatmaps of a run mark where its phases change."""

from __future__ import annotations

import numpy as np

from espnet_hubert_ae.analysis import plots
from espnet_hubert_ae.analysis.plots import phase_spans, plot_heatmap


def test_phase_spans_split_the_columns_where_the_phase_changes():
    assert phase_spans([1, 1, 2, 3, 3, 3]) == [(1, 0, 1), (2, 2, 2), (3, 3, 5)]
    assert phase_spans([None, None]) == [(None, 0, 1)]  # checkpoints of no known phase: one span
    assert phase_spans([]) == []


def _drawn_heatmap(monkeypatch, path, phases):
    """The heatmap's axes as they were drawn, just before the figure was saved to ``path``."""
    drawn = []
    save = plots._save

    def keep(fig, to):
        drawn.append(fig.axes[0])
        save(fig, to)

    monkeypatch.setattr(plots, "_save", keep)
    plot_heatmap("phone_probe_acc", "progressive_tiny_24", [3, 11, 18, 24], np.random.default_rng(0).random((5, 4)),
                 path, phases=phases)
    (ax,) = drawn
    return ax


def test_heatmap_draws_a_line_between_phases_and_labels_each(tmp_path, monkeypatch):
    path = tmp_path / "heatmap.png"
    ax = _drawn_heatmap(monkeypatch, path, phases=[1, 1, 2, 3])
    # Columns 0-1 are phase 1, column 2 phase 2, column 3 phase 3: lines between columns 1|2 and 2|3.
    vertical = sorted(float(line.get_xdata()[0]) for line in ax.get_lines()
                      if len(set(line.get_xdata())) == 1)
    assert vertical == [1.5, 2.5]
    labels = {text.get_text(): text.get_position()[0] for text in ax.texts}
    assert labels == {"p1": 0.5, "p2": 2.0, "p3": 3.0}  # each over the middle of its columns
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_heatmap_of_one_phase_has_no_boundary(tmp_path, monkeypatch):
    ax = _drawn_heatmap(monkeypatch, tmp_path / "one.png", phases=[2, 2, 2, 2])
    assert ax.get_lines() == [] and [t.get_text() for t in ax.texts] == ["p2"]
