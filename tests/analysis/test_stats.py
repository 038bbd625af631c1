"""Summary statistics of layer curves."""

import pytest

from espnet_hubert_ae.analysis.stats import (
    best_layer,
    input_rebound,
    steps_to_target,
    strategy_steps_to_target,
    top_layer_drop,
)


def test_top_layer_drop_and_rebound():
    assert top_layer_drop([0.2, 0.6, 0.7, 0.5]) == pytest.approx(0.2)
    assert top_layer_drop([0.1, 0.2, 0.3]) == 0.0
    assert input_rebound([0.9, 0.5, 0.4, 0.7]) == pytest.approx(0.3)
    assert best_layer([0.1, 0.4, 0.3]) == 1


def test_steps_to_target():
    assert steps_to_target([(300, 0.7), (100, 0.4), (200, 0.65)], 0.6) == 200
    assert steps_to_target([(100, 0.1)], 0.6) is None
    curves = {
        "baseline": [(100, [0.1, 0.3]), (400, [0.2, 0.6])],  # final best-layer score: 0.6
        "progressive": [(100, [0.2, 0.5]), (200, [0.3, 0.62]), (300, [0.3, 0.7])],
    }
    assert strategy_steps_to_target(curves, "baseline") == {"baseline": 400, "progressive": 200}
    assert strategy_steps_to_target(curves, "baseline", layer=0) == {"baseline": 400, "progressive": 100}
    with pytest.raises(ValueError, match="reference strategy"):
        strategy_steps_to_target(curves, "missing")
