"""Plots of the analysis: heatmaps of a run mark where its phases change."""

from __future__ import annotations

import numpy as np

from espnet_hubert_ae.analysis.plots import phase_spans, plot_heatmap


def test_phase_spans_split_the_columns_where_the_phase_changes():
    assert phase_spans([1, 1, 2, 3, 3, 3]) == [(1, 0, 1), (2, 2, 2), (3, 3, 5)]
    assert phase_spans([None, None]) == [(None, 0, 1)]  # checkpoints of no known phase: one span
    assert phase_spans([]) == []


def test_heatmap_with_phases_is_written(tmp_path):
    path = tmp_path / "heatmap.png"
    plot_heatmap("phone_probe_acc", "progressive_tiny_24", [3, 11, 18, 24], np.random.default_rng(0).random((5, 4)),
                 path, phases=[1, 1, 2, 3])
    assert path.read_bytes()[:4] == b"\x89PNG"
