"""Comparing runs fairly: time-to-target in CPU seconds with a tolerance, and when a difference counts.

A *score* is measured at a checkpoint over several seeds: its mean, the standard deviation over
seeds and their number (:class:`Score`). Two rules use the spread:

- A difference between two scores is *significant* when it exceeds twice its standard error,
  ``|mean_a - mean_b| > 2 sqrt(std_a^2 / n_a + std_b^2 / n_b)``; with one seed each nothing is
  significant, since nothing is known of the spread.
- A layer or run has *learnt* where it beats its own untrained state (step 0) beyond the
  spread, and, for the probe, the widest input-context control too (:func:`beats`).
- Time-to-target: the target is the reference run's final score, defined only where that
  score beats the reference's untrained (step-0) score beyond the spread: a reference that did
  not learn sets no target, and nothing is timed against it. Its tolerance is twice the
  standard error of that score, ``2 std / sqrt(n)``. A run reaches the target at the first point
  of its pretraining where its score comes within the tolerance (for an accuracy, at least
  ``target - tolerance``; for an error rate, at most ``target + tolerance``). Between two
  evaluated checkpoints the crossing is placed by linear interpolation in cost. The cost there is
  CPU seconds of the whole process tree (:meth:`PretrainRun.cost`: targets and training of
  earlier phases whole, the current phase's targets and its training pro rata), given as a
  fraction of the reference run's whole CPU cost; wall seconds are kept beside it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

from espnet_hubert_ae.report.collect import PretrainRun, Results


@dataclasses.dataclass(frozen=True)
class Score:
    """A measure at one checkpoint over seeds."""

    mean: float
    std: float = 0.0
    n: int = 1

    @property
    def stderr(self) -> float:
        return self.std / math.sqrt(self.n) if self.n > 0 else math.inf


def significant(a: Score, b: Score) -> bool:
    """Whether ``a`` and ``b`` differ by more than twice the standard error of their difference."""
    if a.n < 2 or b.n < 2:
        return False
    return abs(a.mean - b.mean) > 2.0 * math.sqrt(a.stderr**2 + b.stderr**2)


def beats(a: Score, b: Score, higher_is_better: bool = True) -> bool | None:
    """Whether ``a`` is better than ``b`` beyond the spread (:func:`significant`); None with one
    seed on either side, where the spread is unknown and nothing is called."""
    if a.n < 2 or b.n < 2:
        return None
    better = a.mean > b.mean if higher_is_better else a.mean < b.mean
    return better and significant(a, b)


def called(a: Score, b: Score, higher_is_better: bool = True) -> str:
    """``a`` against ``b`` in words: ``better`` / ``worse`` beyond the spread, ``within spread``,
    or ``n/a (1 seed)``."""
    if a.n < 2 or b.n < 2:
        return "n/a (1 seed)"
    if not significant(a, b):
        return "within spread"
    return "better" if (a.mean > b.mean) == higher_is_better else "worse"


@dataclasses.dataclass
class Reached:
    step: float  # global step of the crossing (interpolated)
    cpu_s: float
    wall_s: float
    cost_ratio: float  # CPU seconds against the reference run's total


@dataclasses.dataclass
class TimeToTarget:
    measure: str  # e.g. "phone_probe_acc"
    where: str  # the set it is measured on, e.g. "dev_clean"
    reference_run: str
    target: float
    tolerance: float
    higher_is_better: bool
    reached: dict[str, Reached | None]  # run -> where it first came within the tolerance (None: never)
    best: dict[str, "Best"] = dataclasses.field(default_factory=dict)  # run -> its best score and budget
    final: Score | None = None  # the reference's final score
    untrained: Score | None = None  # the reference's step-0 score (None: not measured)

    @property
    def defined(self) -> bool:
        """Whether there is a target: the reference's final beats its untrained state beyond the spread."""
        return bool(self.untrained is not None and beats(self.final, self.untrained, self.higher_is_better))

    @property
    def undefined_reason(self) -> str | None:
        """Why there is no target, in words (None when there is one)."""
        if self.defined:
            return None
        if self.untrained is None:
            return "its untrained (step-0) state was not measured, so whether it learnt is unknown"
        if self.final.n < 2 or self.untrained.n < 2:
            return "with one seed the spread is unknown and no difference is called, so whether it learnt is unknown"
        return "it did not learn: its final score is not better than its untrained (step-0) score beyond the spread"


@dataclasses.dataclass
class Best:
    """A run's best measured score, and its whole pretraining's CPU cost against the reference's:
    what a run that never reaches the target got for the budget it had."""

    score: float
    step: int
    budget_ratio: float


def reference_run(results: Results, strategy: str) -> PretrainRun | None:
    """The complete run of ``strategy`` with the largest budget (None when none was run)."""
    candidates = [r for r in results.runs.values() if r.strategy == strategy and r.complete]
    return max(candidates, key=lambda r: (r.steps, r.name)) if candidates else None


def _crossing(points: Sequence[tuple[int, Score]], distance) -> float | None:
    """The (interpolated) global step at which ``points`` first reach the target: where
    ``distance`` of their mean to it, positive short of it, first falls to 0 or below."""
    previous = None
    for step, score in sorted(points, key=lambda p: p[0]):
        gap = distance(score.mean)
        if gap <= 0:
            if previous is None:
                return float(step)
            step0, gap0 = previous
            return step0 + gap0 / (gap0 - gap) * (step - step0)  # gap0 > 0 >= gap
        previous = (step, gap)
    return None


def time_to_target(results: Results, reference: PretrainRun, measure: str, where: str,
                   progress: Mapping[str, Sequence[tuple[int, Score]]],
                   higher_is_better: bool = True) -> TimeToTarget | None:
    """``progress`` maps a run name to its (global step, score) points. Without a target (the
    reference did not learn, or its step 0 was not measured) nothing is timed: ``reached`` and
    ``best`` stay empty, and :attr:`TimeToTarget.undefined_reason` says why."""
    ref_points = sorted(progress.get(reference.name, ()), key=lambda p: p[0])
    if not ref_points or ref_points[-1][0] != reference.steps:
        return None  # the reference's final checkpoint was not measured
    final = ref_points[-1][1]
    untrained = ref_points[0][1] if ref_points[0][0] == 0 and len(ref_points) > 1 else None
    tolerance = 2.0 * final.stderr if final.n > 1 else 0.0
    found = TimeToTarget(measure, where, reference.name, final.mean, tolerance, higher_is_better, {}, {}, final,
                         untrained)
    if not found.defined:
        return found
    sign = 1.0 if higher_is_better else -1.0  # +1: an accuracy, -1: an error rate
    threshold = final.mean - sign * tolerance
    total = reference.cost().cpu_s or 1.0
    reached: dict[str, Reached | None] = {}
    best: dict[str, Best] = {}
    for run_name, points in sorted(progress.items()):
        run = results.runs.get(run_name)
        if run is None or not points:
            continue
        top_step, top = max(points, key=lambda p: (sign * p[1].mean, -p[0]))
        best[run_name] = Best(top.mean, top_step, run.cost().cpu_s / total)
        step = _crossing(points, lambda v: sign * (threshold - v))
        if step is None:
            reached[run_name] = None
            continue
        cost = run.cost(step)
        reached[run_name] = Reached(step, cost.cpu_s, cost.wall_s, cost.cpu_s / total)
    found.reached, found.best = reached, best
    return found
