"""Projection-weighted CCA (PWCCA) and the fold / trial / regulariser protocol of Pasad et al.

Everything here works on sufficient statistics (count, sums and cross products of two paired
views), never on the raw frames: the statistics of a data set are accumulated utterance by
utterance, so the mel view of hundreds of utterances needs a few covariance matrices, not
every frame of every layer in memory.

- CCA (Hotelling) is fitted on training statistics: each view is whitened inside its principal
  subspace with a ridge regulariser ``reg`` (relative to the view's largest covariance entry)
  added to the covariance, and the SVD of the whitened cross covariance gives the canonical
  directions.
- In the protocol the first view (a layer) is first reduced to its leading principal
  components: at most n_train / 10 of them, or as many as hold 99% of its training variance if
  that is fewer (the training covariance's top eigenvectors). With a few hundred instances and
  ~200 dimensions CCA otherwise fits noise: its held-out score then depends on the sample size
  more than on the layer.
- The canonical directions are scored on held-out statistics: the correlation of each pair of
  projections, weighted as in Morcos et al. (2018): the weight of pair i is the summed absolute
  projection of the view's (centred) dimensions onto the orthonormalised canonical variate i.
  :func:`pwcca` takes them on the view with fewer dimensions, as the reference implementation
  does. The protocol always takes them on its second view, the reference (mel, phones, words):
  the first view's kept dimensions change with the layer and the checkpoint, and a weighting
  that followed them would switch views where they cross the reference's size, a jump that is
  not the layer's (measured: mel PWCCA 0.50 at a layer keeping 83 components, 0.16 at the
  next keeping 77, against 80 mel bins). In Pasad et al.'s setting (768-d layers, smaller
  references) the two rules coincide.
- Protocol (Pasad et al. 2021/2023): instances split into label-stratified folds; trial t tests
  on fold t, picks the regulariser on fold t+1 and trains on the others; the score is the mean
  test PWCCA over the trials. The regulariser grid reaches 1e-1 (Pasad et al.: up to 1e-5),
  which the reduced, small-sample views need.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Sequence

import numpy as np
from scipy import linalg

from espnet_hubert_ae.analysis import AnalysisError

logger = logging.getLogger(__name__)

# Regularisers searched on the dev fold (Pasad et al.: 1e-11 ... 1e-5; extended for small samples).
REGULARISERS: tuple[float, ...] = tuple(10.0**e for e in range(-11, 0))
# Views that can weight the canonical correlations (see evaluate_pwcca).
WEIGHT_VIEWS = ("smaller", "x", "y")
# Directions of a view whose variance is below this fraction of its largest are treated as
# empty (e.g. the sum of a one-hot view's columns is constant): CCA on them is undefined.
RANK_RTOL = 1e-10


class CovStats:
    """Sufficient statistics of two paired views (rows are instances) for CCA.

    Sums are taken around a fixed shift (the mean of the first batch added) so that the
    centred covariances stay accurate in float64 when the views have large means.
    """

    def __init__(self, dim_x: int, dim_y: int):
        self.n = 0
        self.shift_x = np.zeros(dim_x)
        self.shift_y = np.zeros(dim_y)
        self.sum_x = np.zeros(dim_x)
        self.sum_y = np.zeros(dim_y)
        self.xx = np.zeros((dim_x, dim_x))
        self.xy = np.zeros((dim_x, dim_y))
        self.yy = np.zeros((dim_y, dim_y))

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray) -> "CovStats":
        stats = cls(x.shape[1], y.shape[1])
        stats.add(x, y)
        return stats

    @property
    def dims(self) -> tuple[int, int]:
        return self.sum_x.shape[0], self.sum_y.shape[0]

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        """Accumulate a batch of paired rows."""
        if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
            raise ValueError(f"paired views must be 2-D with equal row counts, got {x.shape} and {y.shape}")
        if (x.shape[1], y.shape[1]) != self.dims:
            raise ValueError(f"views of dimensions {x.shape[1]}, {y.shape[1]} added to statistics of {self.dims}")
        if x.shape[0] == 0:
            return
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if self.n == 0:
            self.shift_x = x.mean(axis=0)
            self.shift_y = y.mean(axis=0)
        xs = x - self.shift_x
        ys = y - self.shift_y
        self.n += x.shape[0]
        self.sum_x += xs.sum(axis=0)
        self.sum_y += ys.sum(axis=0)
        self.xx += xs.T @ xs
        self.xy += xs.T @ ys
        self.yy += ys.T @ ys

    def __add__(self, other: "CovStats") -> "CovStats":
        if other.dims != self.dims:
            raise ValueError(f"cannot add statistics of dimensions {other.dims} to {self.dims}")
        total = CovStats(*self.dims)
        for part in (self, other):
            if part.n:
                total._merge(part)
        return total

    def _merge(self, other: "CovStats") -> None:
        if self.n == 0:
            self.shift_x, self.shift_y = other.shift_x.copy(), other.shift_y.copy()
        # Re-express the other's sums around this shift: x - s = (x - s_o) + d.
        dx = other.shift_x - self.shift_x
        dy = other.shift_y - self.shift_y
        n = other.n
        self.xx += other.xx + np.outer(other.sum_x, dx) + np.outer(dx, other.sum_x) + n * np.outer(dx, dx)
        self.yy += other.yy + np.outer(other.sum_y, dy) + np.outer(dy, other.sum_y) + n * np.outer(dy, dy)
        self.xy += other.xy + np.outer(other.sum_x, dy) + np.outer(dx, other.sum_y) + n * np.outer(dx, dy)
        self.sum_x += other.sum_x + n * dx
        self.sum_y += other.sum_y + n * dy
        self.n += n

    def covariances(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centred covariances (Cxx, Cxy, Cyy) of the accumulated rows."""
        if self.n < 2:
            raise AnalysisError(f"CCA needs at least 2 instances, got {self.n}")
        mx = self.sum_x / self.n
        my = self.sum_y / self.n
        cxx = self.xx / self.n - np.outer(mx, mx)
        cxy = self.xy / self.n - np.outer(mx, my)
        cyy = self.yy / self.n - np.outer(my, my)
        return (cxx + cxx.T) / 2, cxy, (cyy + cyy.T) / 2


def sum_stats(parts: Sequence[CovStats]) -> CovStats:
    total = CovStats(*parts[0].dims)
    for part in parts:
        total = total + part
    return total


@dataclasses.dataclass(frozen=True)
class CCADirections:
    """Canonical directions fitted on training data (columns pair up, strongest first).

    With ``basis_x`` the first view was reduced: ``dirs_x`` are in the coordinates of its
    principal components ``basis_x`` (dim_x, d), which are then the view's dimensions.
    """

    dirs_x: np.ndarray  # (dim_x or d, k)
    dirs_y: np.ndarray  # (dim_y, k)
    rho_train: np.ndarray  # (k,)
    basis_x: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Reduction:
    """How far the first view is reduced before CCA: at most n_train / ``rows_per_dim`` principal
    components, and no more than hold ``variance`` of its training variance."""

    rows_per_dim: int = 10
    variance: float = 0.99

    def dims(self, eigenvalues: np.ndarray, n_train: int) -> int:
        """Components kept of a view with these (ascending) covariance eigenvalues."""
        share = np.cumsum(eigenvalues[::-1]) / eigenvalues.sum()
        for_variance = int(np.searchsorted(share, self.variance - 1e-12) + 1)
        return max(1, min(n_train // self.rows_per_dim, for_variance, len(eigenvalues)))


def _principal_subspace(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = linalg.eigh(cov)
    keep = values > RANK_RTOL * max(values[-1], 0.0)
    if not keep.any():
        raise AnalysisError("a CCA view is constant over the instances (zero variance)")
    return values[keep], vectors[:, keep]


class CCAFitter:
    """Fits CCA on one set of training statistics for any regulariser (eigen-decompositions shared),
    the first view reduced to its leading principal components when ``reduction`` is given."""

    def __init__(self, train: CovStats, reduction: Reduction | None = None):
        cxx, self.cxy, cyy = train.covariances()
        lx, vx = _principal_subspace(cxx)
        self.basis_x = None
        if reduction is not None:
            d = reduction.dims(lx, train.n)
            self.basis_x = vx[:, -d:]
            # In the components' coordinates the view's covariance is diagonal.
            lx, vx, self.cxy, cxx = lx[-d:], np.eye(d), self.basis_x.T @ self.cxy, np.diag(lx[-d:])
        self.eig_x = lx, vx
        self.eig_y = _principal_subspace(cyy)
        # The regulariser is relative to each view's largest covariance entry, as in the
        # reference SVCCA code, which rescales the covariances by it before adding epsilon.
        self.scale_x = float(np.abs(cxx).max())
        self.scale_y = float(np.abs(cyy).max())

    @property
    def dims_x(self) -> int:
        """Dimensions of the first view CCA sees (its kept components when reduced)."""
        return self.eig_x[1].shape[1]

    def fit(self, reg: float = 0.0) -> CCADirections:
        (lx, vx), (ly, vy) = self.eig_x, self.eig_y
        white_x = vx / np.sqrt(lx + reg * self.scale_x)
        white_y = vy / np.sqrt(ly + reg * self.scale_y)
        u, s, vt = linalg.svd(white_x.T @ self.cxy @ white_y, full_matrices=False)
        return CCADirections(white_x @ u, white_y @ vt.T, s, self.basis_x)


def _variate_weights(dirs: np.ndarray, cov: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """Projection weights: |<orthonormalised variate i, centred dimension j>| summed over j.

    With H = X A the variates and H = Q R, Q^T X = R^{-T} A^T X^T X, and R^T R = A^T Cxx A
    (up to the instance count, which the normalisation removes).
    """
    jitter = 1e-12 * max(np.trace(gram), 1e-300)
    chol = linalg.cholesky(gram + jitter * np.eye(len(gram)), lower=True)
    loadings = linalg.solve_triangular(chol, dirs.T @ cov, lower=True)
    return np.abs(loadings).sum(axis=1)


def evaluate_pwcca(
    directions: CCADirections, test: CovStats, weight_on: str = "smaller"
) -> tuple[float, np.ndarray, np.ndarray]:
    """Score fitted directions on held-out statistics: (PWCCA, correlations, weights).

    ``weight_on``: the view whose dimensions weight the correlations: ``x``, ``y`` or
    ``smaller`` (the one with fewer dimensions, ``x`` on a tie).
    """
    if weight_on not in WEIGHT_VIEWS:
        raise ValueError(f"weight_on must be one of {', '.join(WEIGHT_VIEWS)}, not {weight_on!r}")
    cxx, cxy, cyy = test.covariances()
    if directions.basis_x is not None:
        basis = directions.basis_x
        cxx, cxy = basis.T @ cxx @ basis, basis.T @ cxy
    a, b = directions.dirs_x, directions.dirs_y
    gram_x = a.T @ cxx @ a
    gram_y = b.T @ cyy @ b
    var_x, var_y = np.diag(gram_x), np.diag(gram_y)
    denom = np.sqrt(np.clip(var_x, 0, None) * np.clip(var_y, 0, None))
    scale = max(denom.max(initial=0.0), 1e-300)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(denom > 1e-12 * scale, np.diag(a.T @ cxy @ b) / denom, 0.0)
    if weight_on == "smaller":
        weight_on = "x" if a.shape[0] <= b.shape[0] else "y"
    if weight_on == "x":
        weights = _variate_weights(a, cxx, gram_x)
    else:
        weights = _variate_weights(b, cyy, gram_y)
    total = weights.sum()
    if not np.isfinite(total) or total <= 0:
        raise AnalysisError("PWCCA weights vanish: the held-out view has no variance")
    return float(np.dot(weights, rho) / total), rho, weights


def pwcca(x: np.ndarray, y: np.ndarray, reg: float = 0.0) -> float:
    """PWCCA of two paired views (n, dx) and (n, dy), fitted and scored on the same rows."""
    stats = CovStats.of(x, y)
    return evaluate_pwcca(CCAFitter(stats).fit(reg), stats)[0]


# --- protocol -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ProtocolResult:
    """Mean held-out PWCCA over the trials, with what each trial chose."""

    score: float
    trial_scores: list[float]
    regularisers: list[float]
    num_instances: int
    dims: list[int]  # dimensions of the first view CCA saw in each trial (after the reduction)

    @property
    def std(self) -> float:
        return float(np.std(self.trial_scores))


@dataclasses.dataclass(frozen=True)
class CCASettings:
    """The protocol's settings: folds, trials, the regulariser grid and the first view's reduction
    (``None``: the view as it is)."""

    n_folds: int = 10
    n_trials: int = 3
    regularisers: tuple[float, ...] = REGULARISERS
    reduction: Reduction | None = Reduction()

    def __post_init__(self):
        check_protocol(self.n_folds, self.n_trials)


def check_protocol(n_folds: int, n_trials: int) -> None:
    if n_folds < 3:
        raise AnalysisError(f"the CCA protocol needs at least 3 folds (train/dev/test), got {n_folds}")
    if not 1 <= n_trials <= n_folds:
        raise AnalysisError(f"the number of trials must be between 1 and the number of folds ({n_folds}), got {n_trials}")


def trial_folds(n_folds: int, n_trials: int) -> list[tuple[int, int]]:
    """(test fold, dev fold) of each trial; every other fold trains."""
    check_protocol(n_folds, n_trials)
    return [(t, (t + 1) % n_folds) for t in range(n_trials)]


class FoldedStats:
    """CCA statistics accumulated per fold, ready for the train / dev / test trials.

    Folds that train in every trial are merged on the fly, so memory grows with the number
    of trials, not folds.
    """

    def __init__(self, dim_x: int, dim_y: int, n_folds: int = 10, n_trials: int = 3):
        self.trials = trial_folds(n_folds, n_trials)
        self.n_folds = n_folds
        held_out = sorted({f for trial in self.trials for f in trial})
        self._group_of = {f: i for i, f in enumerate(held_out)}
        self._rest = len(held_out)
        self.groups = [CovStats(dim_x, dim_y) for _ in range(len(held_out) + 1)]

    def add(self, fold: int, x: np.ndarray, y: np.ndarray) -> None:
        if not 0 <= fold < self.n_folds:
            raise ValueError(f"fold {fold} outside 0..{self.n_folds - 1}")
        self.groups[self._group_of.get(fold, self._rest)].add(x, y)

    @property
    def num_instances(self) -> int:
        return sum(g.n for g in self.groups)

    def splits(self) -> list[tuple[CovStats, CovStats, CovStats]]:
        """(train, dev, test) statistics of each trial."""
        out = []
        for test, dev in self.trials:
            gi_test, gi_dev = self._group_of[test], self._group_of[dev]
            train = [g for i, g in enumerate(self.groups) if i not in (gi_test, gi_dev)]
            out.append((sum_stats(train), self.groups[gi_dev], self.groups[gi_test]))
        return out


def run_protocol(folded: FoldedStats, settings: CCASettings = CCASettings()) -> ProtocolResult:
    """Pick the regulariser on each trial's dev fold, score on its test fold, average; the
    correlations weighted on the second (reference) view."""
    scores, chosen, dims = [], [], []
    for train, dev, test in folded.splits():
        fitter = CCAFitter(train, settings.reduction)
        dev_scores = [evaluate_pwcca(fitter.fit(reg), dev, "y")[0] for reg in settings.regularisers]
        best = settings.regularisers[int(np.argmax(dev_scores))]
        scores.append(evaluate_pwcca(fitter.fit(best), test, "y")[0])
        chosen.append(best)
        dims.append(fitter.dims_x)
    return ProtocolResult(float(np.mean(scores)), scores, chosen, folded.num_instances, dims)


def stratified_folds(labels: Sequence, n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold index of each instance: every label's instances spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    folds = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for label in sorted(set(labels.tolist()), key=str):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        # Rotating start: labels with few instances do not all land in the first folds.
        folds[members] = (offset + np.arange(len(members))) % n_folds
        offset += len(members)
    return folds


def protocol_pwcca(
    x: np.ndarray,
    y: np.ndarray,
    labels: Sequence,
    settings: CCASettings = CCASettings(),
    *,
    seed: int = 0,
) -> ProtocolResult:
    """The full protocol on in-memory paired views, folds stratified by ``labels``."""
    folded = FoldedStats(x.shape[1], y.shape[1], settings.n_folds, settings.n_trials)
    folds = stratified_folds(labels, settings.n_folds, seed)
    for fold in range(settings.n_folds):
        rows = folds == fold
        folded.add(fold, x[rows], y[rows])
    return run_protocol(folded, settings)
