"""PWCCA and its protocol on views with known answers."""

import numpy as np
import pytest

from espnet_hubert_ae.analysis import AnalysisError
from espnet_hubert_ae.analysis.cca import (
    REGULARISERS,
    CCAFitter,
    CCASettings,
    CovStats,
    FoldedStats,
    Reduction,
    evaluate_pwcca,
    protocol_pwcca,
    pwcca,
    stratified_folds,
    trial_folds,
)

# Tolerances: exact relations hold to rounding (1e-6); sampled ones to ~3 standard errors.
EXACT = 1e-6
NOISE = 0.05


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_view_with_itself_is_one(rng):
    x = rng.normal(size=(2000, 16)) @ rng.normal(size=(16, 16)) + 5.0
    assert pwcca(x, x) == pytest.approx(1.0, abs=EXACT)


def test_invertible_linear_map_is_one(rng):
    x = rng.normal(size=(2000, 12))
    mixed = x @ rng.normal(size=(12, 12)) - 3.0
    assert pwcca(x, mixed) == pytest.approx(1.0, abs=EXACT)
    assert pwcca(mixed, x) == pytest.approx(1.0, abs=EXACT)


def test_linear_map_into_a_larger_view_is_one(rng):
    x = rng.normal(size=(3000, 8))
    wide = np.hstack([x @ rng.normal(size=(8, 8)), rng.normal(size=(3000, 20))])
    # weighted on the smaller view, which the larger one contains entirely
    assert pwcca(x, wide) == pytest.approx(1.0, abs=EXACT)


def test_independent_noise_is_near_zero(rng):
    x, y = rng.normal(size=(20000, 10)), rng.normal(size=(20000, 5))
    assert abs(pwcca(x, y)) < NOISE
    labels = rng.integers(0, 5, size=len(x))
    held_out = protocol_pwcca(x, y, labels)
    assert abs(held_out.score) < NOISE
    assert len(held_out.trial_scores) == 3 and held_out.num_instances == len(x)


def test_known_correlation(rng):
    # one shared latent with unit variance plus unit noise on each side: correlation 0.5
    z = rng.normal(size=20000)
    x = (z + rng.normal(size=20000))[:, None]
    y = (z + rng.normal(size=20000))[:, None]
    assert pwcca(x, y) == pytest.approx(0.5, abs=0.02)


def _zero_mean_orthonormal_columns(rng, n, k):
    q, _ = np.linalg.qr(rng.normal(size=(n, k)) - rng.normal(size=(n, k)).mean(axis=0))
    q -= q.mean(axis=0)
    q, _ = np.linalg.qr(q)
    return q


def test_projection_weights_against_the_closed_form(rng):
    """Canonical correlations 0.9 and 0.3, planted exactly; the weights of the closed form.

    X = Q[:, :2] M and Y's columns are rho_i q_i + sqrt(1 - rho_i^2) q_{i+2}: the canonical
    variates of X are q_1, q_2, so the projection weight of pair i is sum_j |M_ij| and
    PWCCA = sum_i w_i rho_i / sum_i w_i, not the plain mean of the correlations.
    """
    q = _zero_mean_orthonormal_columns(rng, 500, 4)
    rho = np.array([0.9, 0.3])
    mix = np.array([[3.0, -1.0], [0.5, 0.5]])
    x = q[:, :2] @ mix + 7.0
    y = q[:, :2] * rho + q[:, 2:] * np.sqrt(1 - rho**2)
    weights = np.abs(mix).sum(axis=1)  # 4 and 1
    expected = float(weights @ rho / weights.sum())  # 0.78; the plain mean would be 0.6
    assert pwcca(x, y) == pytest.approx(expected, abs=EXACT)
    fitter = CCAFitter(CovStats.of(x, y))
    score, correlations, found = evaluate_pwcca(fitter.fit(0.0), CovStats.of(x, y))
    np.testing.assert_allclose(correlations, rho, atol=EXACT)
    np.testing.assert_allclose(found / found.sum(), weights / weights.sum(), atol=EXACT)


def _pwcca_by_qr(x, y, weight_on="smaller"):
    """PWCCA computed independently: CCA by QR and SVD of the centred views (Bjorck-Golub), the
    weights of Morcos et al. on the view asked for (by default the one with fewer dimensions),
    centred, as documented."""
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    qx, _ = np.linalg.qr(xc)
    qy, _ = np.linalg.qr(yc)
    u, rho, vt = np.linalg.svd(qx.T @ qy, full_matrices=False)
    if weight_on == "smaller":
        weight_on = "x" if x.shape[1] <= y.shape[1] else "y"
    view, variates = (xc, qx @ u) if weight_on == "x" else (yc, qy @ vt.T)
    weights = np.abs(variates.T @ view).sum(axis=1)
    return float(weights @ rho / weights.sum()), rho


@pytest.mark.parametrize("dims", [(5, 9), (9, 5)], ids=["x smaller", "y smaller"])
def test_unequal_correlations_against_an_independent_computation(rng, dims):
    n, (dx, dy) = 400, dims
    shared = rng.normal(size=(n, 3)) * [3.0, 1.0, 0.3]  # three latents of unequal strength
    x = shared @ rng.normal(size=(3, dx)) + rng.normal(size=(n, dx)) + 2.0
    y = shared @ rng.normal(size=(3, dy)) + rng.normal(size=(n, dy)) - 1.0
    expected, rho = _pwcca_by_qr(x, y)
    assert rho[0] - rho[2] > 0.3  # the correlations differ, so the weighting matters
    assert pwcca(x, y) == pytest.approx(expected, abs=1e-8)
    assert abs(expected - rho.mean()) > 0.05
    stats = CovStats.of(x, y)
    directions = CCAFitter(stats).fit(0.0)
    for view in ("x", "y"):
        assert evaluate_pwcca(directions, stats, view)[0] == pytest.approx(_pwcca_by_qr(x, y, view)[0], abs=1e-8)


def test_protocol_weights_on_the_reference_view_whatever_the_layer_keeps(rng):
    """The layer's kept components fall below the reference's dimensions: the protocol still
    weights on the reference, so its score does not switch rule with the layer's size."""
    n, dy = 4000, 8
    shared = rng.normal(size=(n, 3)) * [3.0, 1.0, 0.3]
    y = shared @ rng.normal(size=(3, dy)) + rng.normal(size=(n, dy))
    layer = shared @ rng.normal(size=(3, 12)) + rng.normal(size=(n, 12))
    labels = rng.integers(0, 4, size=n)
    settings = CCASettings(n_trials=1, regularisers=(1e-11,), reduction=Reduction(rows_per_dim=800))
    result = protocol_pwcca(layer, y, labels, settings)
    assert result.dims == [4]  # 3200 training rows / 800: fewer than the reference's 8, where the old rule weighted the layer
    folds = stratified_folds(labels, settings.n_folds)
    train = folds >= 2
    directions = CCAFitter(CovStats.of(layer[train], y[train]), settings.reduction).fit(1e-11)
    test = CovStats.of(layer[folds == 0], y[folds == 0])
    on_y, on_x = (evaluate_pwcca(directions, test, view)[0] for view in ("y", "x"))
    assert result.score == pytest.approx(on_y, abs=1e-9)
    assert abs(on_y - on_x) > 0.01


def test_unknown_weight_view_fails_clearly(rng):
    stats = CovStats.of(rng.normal(size=(50, 2)), rng.normal(size=(50, 2)))
    with pytest.raises(ValueError, match="weight_on"):
        evaluate_pwcca(CCAFitter(stats).fit(0.0), stats, "z")


def test_one_hot_view_of_the_labels_a_layer_encodes(rng):
    labels = rng.integers(0, 6, size=3000)
    one_hot = np.eye(6)[labels]
    layer = one_hot @ rng.normal(size=(6, 20)) + 0.05 * rng.normal(size=(3000, 20))
    result = protocol_pwcca(layer, one_hot, labels)
    assert result.score > 0.95
    assert all(reg in REGULARISERS for reg in result.regularisers)
    assert REGULARISERS[0] == 1e-11 and REGULARISERS[-1] == pytest.approx(1e-1) and len(REGULARISERS) == 11


def test_reduction_keeps_the_smaller_of_n_over_10_and_99_percent_of_the_variance():
    reduction = Reduction(rows_per_dim=10, variance=0.99)
    # ascending eigenvalues: 3 strong directions hold 99.9% of the variance
    eigenvalues = np.array([1e-3] * 7 + [100.0, 200.0, 300.0])
    assert reduction.dims(eigenvalues, n_train=10000) == 3
    assert reduction.dims(eigenvalues, n_train=20) == 2  # n / 10 is the smaller
    assert reduction.dims(np.ones(10), n_train=10000) == 10  # flat spectrum: 99% needs all 10
    assert reduction.dims(np.ones(10), n_train=5) == 1  # never below one dimension


def test_reduced_view_is_scored_in_its_principal_components(rng):
    """A view with 2 strong directions and 6 near-empty ones: reduced to the 2, its PWCCA with a
    view that holds exactly those 2 is 1, and the variates live in the 2-d component space."""
    latent = rng.normal(size=(3000, 2))
    x = np.hstack([latent * [5.0, 3.0], 1e-3 * rng.normal(size=(3000, 6))]) @ np.linalg.qr(rng.normal(size=(8, 8)))[0]
    y = latent @ rng.normal(size=(2, 4))
    fitter = CCAFitter(CovStats.of(x, y), Reduction(rows_per_dim=10, variance=0.99))
    assert fitter.dims_x == 2
    directions = fitter.fit(0.0)
    assert directions.basis_x.shape == (8, 2) and directions.dirs_x.shape[0] == 2
    score, rho, _ = evaluate_pwcca(directions, CovStats.of(x, y))
    assert score == pytest.approx(1.0, abs=1e-6) and len(rho) == 2


def test_reduction_stops_cca_fitting_noise_on_small_samples(rng):
    """300 instances of a 200-d layer whose label information sits in 5 strong directions: without
    the reduction (and a regulariser) CCA fits the noise dimensions and its held-out score
    collapses; with it the score reflects the labels (measured: 0.54 against 0.80)."""
    labels = np.repeat(np.arange(6), 50)
    one_hot = np.eye(6)[labels]
    signal = one_hot @ rng.normal(size=(6, 5)) * 3.0
    layer = np.hstack([signal + rng.normal(size=(300, 5)), 0.5 * rng.normal(size=(300, 195))])
    plain = protocol_pwcca(layer, one_hot, labels, CCASettings(reduction=None, regularisers=(1e-11,)))
    reduced = protocol_pwcca(layer, one_hot, labels, CCASettings(regularisers=(1e-11,)))
    assert all(d <= 24 for d in reduced.dims)  # at most 240 training rows / 10
    assert reduced.score > 0.75
    assert reduced.score - plain.score > 0.2


def test_statistics_merge_like_the_concatenation(rng):
    a, b = rng.normal(size=(50, 4)) + 100, rng.normal(size=(70, 4)) - 7
    ya, yb = rng.normal(size=(50, 3)), rng.normal(size=(70, 3)) + 2
    merged = CovStats.of(a, ya) + CovStats.of(b, yb)
    direct = CovStats.of(np.vstack([a, b]), np.vstack([ya, yb]))
    for got, want in zip(merged.covariances(), direct.covariances()):
        np.testing.assert_allclose(got, want, atol=1e-10)


def test_streamed_folds_match_in_memory_protocol(rng):
    x = rng.normal(size=(600, 6))
    y = x[:, :3] + rng.normal(size=(600, 3))
    labels = rng.integers(0, 4, size=600)
    folds = stratified_folds(labels, 10, seed=3)
    streamed = FoldedStats(6, 3)
    for i in range(0, 600, 7):  # rows arrive in small batches, folds interleaved
        for fold in range(10):
            rows = np.arange(i, min(i + 7, 600))
            rows = rows[folds[rows] == fold]
            streamed.add(fold, x[rows], y[rows])
    from espnet_hubert_ae.analysis.cca import run_protocol

    assert run_protocol(streamed).score == pytest.approx(protocol_pwcca(x, y, labels, seed=3).score, abs=1e-9)


def test_folds_are_stratified_and_deterministic():
    labels = np.repeat(["a", "b", "c"], [30, 20, 11])
    folds = stratified_folds(labels, 10, seed=0)
    np.testing.assert_array_equal(folds, stratified_folds(labels, 10, seed=0))
    for label, count in (("a", 30), ("b", 20)):
        assert np.bincount(folds[labels == label], minlength=10).tolist() == [count // 10] * 10
    assert np.bincount(folds, minlength=10).max() - np.bincount(folds, minlength=10).min() <= 1


def test_trials_test_and_tune_on_distinct_folds():
    assert trial_folds(10, 3) == [(0, 1), (1, 2), (2, 3)]
    with pytest.raises(AnalysisError, match="at least 3 folds"):
        trial_folds(2, 1)


def test_rank_deficient_views_are_handled(rng):
    # a one-hot view is rank-deficient once centred; a duplicated column adds no dimension
    labels = rng.integers(0, 3, size=500)
    one_hot = np.eye(3)[labels]
    x = np.hstack([one_hot @ rng.normal(size=(3, 2)), np.zeros((500, 1))]) + 0.1 * rng.normal(size=(500, 3))
    fitter = CCAFitter(CovStats.of(x, one_hot))
    score, rho, weights = evaluate_pwcca(fitter.fit(1e-8), CovStats.of(x, one_hot))
    assert len(rho) == 2 and 0.9 < score <= 1.0 + EXACT


def test_constant_view_fails_clearly(rng):
    with pytest.raises(AnalysisError, match="constant"):
        pwcca(rng.normal(size=(100, 3)), np.ones((100, 2)))
