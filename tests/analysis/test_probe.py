"""The linear frame-level phone probe."""

import numpy as np
import pytest

from espnet_hubert_ae.analysis import AnalysisError
from espnet_hubert_ae.analysis.probe import train_probe


def _blobs(rng, n, classes=8, dim=16, spread=0.3):
    centres = rng.normal(size=(classes, dim)) * 3
    labels = rng.integers(0, classes, size=n)
    return centres[labels] + spread * rng.normal(size=(n, dim)), np.array([f"P{i}" for i in labels])


def test_separable_data_is_decoded():
    rng = np.random.default_rng(0)
    x, y = _blobs(rng, 3000)
    result = train_probe(x[:2400], y[:2400], x[2400:], y[2400:])
    assert result.accuracy > 0.98
    assert result.num_classes == 8 and result.num_train == 2400 and result.num_test == 600
    assert result.majority_accuracy < 0.3


def test_random_labels_stay_near_chance():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 16))
    y = rng.integers(0, 4, size=3000).astype(str)
    assert train_probe(x[:2400], y[:2400], x[2400:], y[2400:]).accuracy < 0.35


def test_deterministic_and_unseen_test_labels_count_as_errors():
    rng = np.random.default_rng(2)
    x, y = _blobs(rng, 1000, classes=3)
    y_test = y[800:].copy()
    y_test[:20] = "NEVER_SEEN"
    first = train_probe(x[:800], y[:800], x[800:], y_test)
    assert first == train_probe(x[:800], y[:800], x[800:], y_test)
    assert first.accuracy <= 1 - 20 / 200 + 1e-9


def test_needs_two_classes_and_frames():
    x = np.zeros((10, 2))
    with pytest.raises(AnalysisError, match="2 phone classes"):
        train_probe(x, np.array(["a"] * 10), x, np.array(["a"] * 10))
    with pytest.raises(AnalysisError, match="training and test frames"):
        train_probe(x, np.array(["a", "b"] * 5), x[:0], np.array([]))
