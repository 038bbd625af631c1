"""Time-to-target: how much of the reference run's pretraining cost another run needs to reach
the reference's final score.

A score is read per checkpoint: for the probing measures the best layer's value (higher is
better), for WER the value on one evaluation set (lower is better). The target is the score
of the reference run's last evaluated checkpoint; a run reaches it at its first checkpoint
(in step order) scoring at least as well. Its cost there is the wall time spent up to that
step (:meth:`PretrainRun.cost_at`: earlier phases whole, the current one pro rata), given as
a fraction of the reference run's whole cost, and also as a fraction of its steps.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from espnet_hubert_ae.analysis.stats import checkpoint_score, steps_to_target
from espnet_hubert_ae.report.collect import PretrainRun, Results


@dataclasses.dataclass
class Reached:
    step: int
    seconds: float
    cost_fraction: float
    step_fraction: float


@dataclasses.dataclass
class TimeToTarget:
    metric: str  # e.g. "phone_probe_acc (dev_clean)" or "SUPERB WER (dev_clean)"
    reference_run: str
    target: float
    higher_is_better: bool
    reached: dict[str, Reached | None]  # run -> where it first reached the target (None: never)


def reference_run(results: Results, strategy: str) -> PretrainRun | None:
    """The complete run of ``strategy`` with the largest budget (None when none was run)."""
    candidates = [r for r in results.runs.values() if r.strategy == strategy and r.complete]
    return max(candidates, key=lambda r: (r.steps, r.name)) if candidates else None


def time_to_target(
    results: Results,
    reference: PretrainRun,
    metric: str,
    progress: dict[str, Sequence[tuple[int, float]]],
    higher_is_better: bool = True,
) -> TimeToTarget | None:
    """``progress`` maps a run name to its (global step, score) pairs."""
    ref_points = sorted(progress.get(reference.name, ()))
    if not ref_points:
        return None
    target = ref_points[-1][1]
    total = reference.seconds() or 1.0
    reached: dict[str, Reached | None] = {}
    for run_name, points in sorted(progress.items()):
        run = results.runs.get(run_name)
        if run is None:
            continue
        sign = 1.0 if higher_is_better else -1.0  # steps_to_target wants higher-is-better scores
        hit = steps_to_target([(step, sign * score) for step, score in points], sign * target)
        if hit is None:
            reached[run_name] = None
            continue
        seconds = run.cost_at(hit)
        reached[run_name] = Reached(hit, seconds, seconds / total, hit / max(1, reference.steps))
    return TimeToTarget(metric, reference.name, target, higher_is_better, reached)


def probing_progress(results: Results, measure: str) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Analysis set -> run -> (step, best-layer score) of every analysed checkpoint."""
    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for analysis in results.analyses:
        per_run: dict[str, list[tuple[int, float]]] = {}
        for checkpoint, measures in analysis.curves.items():
            run, step = results.run_of(checkpoint)
            if run is None or measure not in measures:
                continue
            per_run.setdefault(run, []).append((step, checkpoint_score(measures[measure])))
        if per_run:
            out[analysis.set_name] = per_run
    return out


def wer_progress(results: Results, kind: str, train_set: str | None, eval_set: str,
                 reset_top_layers: int = 0) -> dict[str, list[tuple[int, float]]]:
    """Run -> (step, mean WER over the seeds on ``eval_set``) of the ASR results of one kind and
    training set."""
    per_run: dict[str, list[tuple[int, float]]] = {}
    for result in results.asr:
        if (result.kind != kind or result.run is None or eval_set not in result.sets
                or (result.reset_top_layers or 0) != reset_top_layers
                or (train_set is not None and result.train_set != train_set)):
            continue
        per_run.setdefault(result.run, []).append((result.step, float(result.sets[eval_set]["wer"]["mean"])))
    return per_run


def all_time_to_target(results: Results, reference_strategy: str, probe_measure: str = "phone_probe_acc",
                       eval_set: str = "dev_clean") -> list[TimeToTarget]:
    """Time-to-target for the probing measure (every analysed set) and every WER available."""
    reference = reference_run(results, reference_strategy)
    if reference is None:
        return []
    found = []
    for set_name, progress in probing_progress(results, probe_measure).items():
        found.append(time_to_target(results, reference, f"{probe_measure} ({set_name})", progress))
    found.append(time_to_target(results, reference, f"SUPERB WER ({eval_set})",
                                wer_progress(results, "superb", None, eval_set), higher_is_better=False))
    for split in sorted({r.train_set for r in results.asr if r.kind == "finetune"}):
        found.append(time_to_target(results, reference, f"fine-tuning {split} WER ({eval_set})",
                                    wer_progress(results, "finetune", split, eval_set), higher_is_better=False))
    return [t for t in found if t is not None]
