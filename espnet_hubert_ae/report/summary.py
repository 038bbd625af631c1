"""``exp/report/results.json``: the numbers of RESULTS.md for programs, one schema for every recipe.

    {"runs": {"<run>": {"strategy", "steps", "final_checkpoint", "budget",
                        "cost": {"wall_s", "cpu_s", "gpu_s", "audio_s"},
                        "probe": {"set", "per_layer", "per_layer_std", "seeds", "best_layer", "best",
                                  "best_std"},
                        "health": {"min_ln_gain", "dead_layers", "collapsing_layers"}}},
     "controls": {"set", "majority", "random_init_best", "logmel", "logmel_std", "mfcc", "mfcc_std"},
     "time_to_target": {"<run>": {"reference", "measure", "set", "cost_ratio", "tolerance",
                                  "target", "step", "cpu_s", "wall_s" (null when never reached),
                                  "best", "best_step", "budget_ratio" (its best score, and its whole
                                  pretraining's CPU seconds against the reference's)}},
     "time_to_target_asr": {"<run>": the same, for the frozen-ASR CER ("measure": "cer", lower
                                     is better) of the checkpoints stage 8 evaluated},
     "pnmi": {"<target set>": {"set", "k", "frames", "plugin", "corrected", "held_out"}},
     "asr": {"<run>" or "fbank" or "random_init": {"set", "cer": {"mean", "std"}, "wer": {...}, "empty_hyps",
                                                   "seeds", ...}},
     "pr": {"<run>" or a control: {"set", "per": {"mean", "std"}, "empty_hyps", "seeds", ...}}}

``asr`` and ``pr`` hold the final checkpoint of every run and the controls, on the analysed set
(:func:`espnet_hubert_ae.asr.results.downstream_json`).

The probe's best layer is chosen among the transformer layers (1 and above): layer 0 is the
input of the first transformer layer, so a best layer 0 means the transformer added nothing. A
measure that was not run is absent, never made up; a ``time_to_target`` entry whose run never
reached the target has ``cost_ratio`` null.
"""

from __future__ import annotations

import functools
import statistics
from pathlib import Path
from typing import Sequence

from espnet_hubert_ae.asr.results import downstream_json
from espnet_hubert_ae.asr.seeds import SUMMARY
from espnet_hubert_ae.defaults import ANALYSIS_SET
from espnet_hubert_ae.report.collect import Analysis, PretrainRun, Results
from espnet_hubert_ae.report.compare import Score, TimeToTarget, reference_run, time_to_target
from espnet_hubert_ae.utils.fileio import file_digest, file_identity

PROBE = "phone_probe_acc"
CER = "cer"  # frozen-ASR character error rate (stage 8), in %
INPUT_CONTROLS = ("logmel", "mfcc")  # the analysis' input controls, under the same names in results.json


def probe_score(result: dict) -> Score | None:
    """The probe of one analysed checkpoint: its best transformer layer's mean, std and seeds."""
    stats = (result.get("summary") or {}).get(PROBE)
    if not stats or "best_from_1" not in stats:
        return None
    seeds = (result.get("probe") or {}).get("seeds") or [None]
    return Score(stats["best_from_1"], stats.get("best_from_1_std", 0.0), len(seeds))


def probe_progress(results: Results, analysis: Analysis) -> dict[str, list[tuple[int, Score]]]:
    """Run -> (global step, probe score) of every analysed checkpoint of the run."""
    progress: dict[str, list[tuple[int, Score]]] = {}
    for name, result in analysis.results.items():
        ref = results.registry.get(name)
        score = probe_score(result)
        if ref is None or ref.run is None or ref.step is None or score is None:
            continue
        progress.setdefault(ref.run, []).append((ref.step, score))
    return progress


def probe_time_to_target(results: Results, analysis: Analysis, reference_strategy: str) -> TimeToTarget | None:
    reference = reference_run(results, reference_strategy)
    if reference is None:
        return None
    return time_to_target(results, reference, PROBE, analysis.set_name, probe_progress(results, analysis))


def asr_progress(results: Results, set_name: str, config: str) -> dict[str, list[tuple[int, Score]]]:
    """Run -> (global step, frozen-ASR CER over seeds) of every checkpoint of the run that stage 8
    evaluated on ``set_name`` with the downstream ``config``. The random-init control is step 0
    of its run, and of every run whose step-0 snapshot has the same bytes (runs of one model and
    seed start from the same weights), so that every run's curve starts from the same point."""
    progress: dict[str, dict[int, Score]] = {}
    untrained: dict[str, Score] = {}  # weights digest -> score of an evaluated step 0
    for result in results.asr:
        if result.kind != "superb" or result.config != config or set_name not in result.sets:
            continue
        if result.run is None or result.step is None:
            continue
        cer = result.sets[set_name][CER]
        score = Score(cer["mean"], cer.get("std", 0.0), len(result.seeds))
        progress.setdefault(result.run, {})[result.step] = score
        if result.step == 0 and result.checkpoint_sha256:
            untrained[result.checkpoint_sha256] = score
    if untrained:
        for ref in results.registry.values():
            if ref.step == 0 and ref.run in progress and 0 not in progress[ref.run] and Path(ref.checkpoint).is_file():
                score = untrained.get(_weights_digest(**file_identity(ref.checkpoint)))
                if score is not None:
                    progress[ref.run][0] = score
    return {run: sorted(points.items()) for run, points in progress.items()}


@functools.lru_cache(maxsize=None)
def _weights_digest(path: str, size: int, mtime: int) -> str:
    """A snapshot's digest, once per report (the progress is built per set, for the text, the
    plot and results.json alike; a Base-size snapshot takes a second to read)."""
    return file_digest(path)


def reference_asr_progress(results: Results, set_name: str, reference_strategy: str
                           ) -> tuple[PretrainRun, dict[str, list[tuple[int, Score]]]] | None:
    """The reference run, and :func:`asr_progress` with the downstream config of the reference's
    final evaluation on ``set_name`` (the newest, where it was evaluated with several); None
    when that final checkpoint was not evaluated."""
    reference = reference_run(results, reference_strategy)
    if reference is None:
        return None
    finals = [r for r in results.asr if r.kind == "superb" and r.run == reference.name
              and r.step == reference.steps and set_name in r.sets]
    if not finals:
        return None
    config = max(finals, key=lambda r: (r.directory / SUMMARY).stat().st_mtime).config
    return reference, asr_progress(results, set_name, config)


def asr_time_to_target(results: Results, set_name: str, reference_strategy: str) -> TimeToTarget | None:
    """Time to the reference's final frozen-ASR CER on ``set_name`` (see :func:`reference_asr_progress`)."""
    found = reference_asr_progress(results, set_name, reference_strategy)
    if found is None:
        return None
    reference, progress = found
    return time_to_target(results, reference, CER, set_name, progress, higher_is_better=False)


def _run_record(results: Results, run: PretrainRun, analysis: Analysis | None) -> dict:
    cost = run.cost()
    record = {
        "strategy": run.strategy,
        "steps": run.steps,
        "complete": run.complete,
        "budget": run.budget,
        "cost": {"wall_s": round(cost.wall_s, 1), "cpu_s": round(cost.cpu_s, 1), "gpu_s": round(cost.gpu_s, 1),
                 "audio_s": round(cost.audio_s, 1)},
    }
    final = results.registry.last_per_run().get(run.name)
    if final is not None:
        record["final_checkpoint"] = final.name
        result = analysis.results.get(final.name) if analysis else None
        if result and PROBE in result.get("measures", {}):
            stats = result["summary"][PROBE]
            record["probe"] = {
                "set": analysis.set_name,
                "per_layer": result["measures"][PROBE],
                "per_layer_std": (result.get("std") or {}).get(PROBE),
                "seeds": (result.get("probe") or {}).get("seeds"),
                "best_layer": stats.get("best_layer_from_1"),
                "best": stats.get("best_from_1"),
                "best_std": stats.get("best_from_1_std"),
            }
    if run.phases and run.phases[-1].health:
        health = run.phases[-1].health
        record["health"] = {"min_ln_gain": health["min_ln_gain"], "dead_layers": health["dead_layers"],
                            "collapsing_layers": health["collapsing_layers"]}
    return record


def _controls(results: Results, analysis: Analysis | None) -> dict:
    if analysis is None:
        return {}
    out: dict = {"set": analysis.set_name}
    # Every checkpoint's probe carries the same floors (same frames, splits and seeds): take the first.
    probe = next((r["probe"] for r in analysis.results.values() if (r.get("probe") or {}).get("majority")), None)
    if probe is not None:
        out["majority"] = statistics.mean(probe["majority"].values())  # seed -> accuracy
        controls = probe.get("controls") or {}
        for name in INPUT_CONTROLS:
            if name in controls:  # mean and std over the same splits as the checkpoints
                out[name], out[f"{name}_std"] = controls[name]["mean"], controls[name]["std"]
    untrained = [probe_score(r) for name, r in analysis.results.items()
                 if (ref := results.registry.get(name)) is not None and ref.step == 0]
    untrained = [s for s in untrained if s is not None]
    if untrained:
        out["random_init_best"] = max(s.mean for s in untrained)
    return out


def run_records(results: Results, analysis: Analysis | None) -> tuple[dict, dict]:
    """results.json's "runs" (each with its final checkpoint's probe on ``analysis``' set) and
    "controls" (the probe's floors)."""
    return ({run.name: _run_record(results, run, analysis) for run in results.runs.values()},
            _controls(results, analysis))


def time_to_target_json(found: TimeToTarget | None) -> dict:
    if found is None:
        return {}
    out = {}
    for run, reached in found.reached.items():
        if run == found.reference_run:
            continue
        out[run] = {"reference": found.reference_run, "measure": found.measure, "set": found.where,
                    "target": round(found.target, 4), "tolerance": round(found.tolerance, 4),
                    "cost_ratio": None if reached is None else round(reached.cost_ratio, 4),
                    "step": None if reached is None else round(reached.step, 1),
                    "cpu_s": None if reached is None else round(reached.cpu_s, 1),
                    "wall_s": None if reached is None else round(reached.wall_s, 1)}
        if run in found.best:
            best = found.best[run]
            out[run].update(best=round(best.score, 4), best_step=best.step, budget_ratio=round(best.budget_ratio, 4))
    return out


def _pnmi(runs: Sequence[PretrainRun], analysis_set: str) -> dict:
    """The first-phase targets' quality on the analysed set, per label set (plug-in and corrected)."""
    out = {}
    for run in runs:
        for phase in run.phases:
            quality = phase.quality.get(analysis_set)
            if not quality or "pnmi" not in quality:
                continue
            out[phase.target_set or f"{run.name}_p{phase.index}"] = {
                "set": analysis_set, "k": quality.get("k", phase.k), "frames": quality.get("frames"),
                "plugin": quality["pnmi"], "corrected": quality.get("pnmi_corrected"),
                "held_out": quality.get("held_out"),
            }
    return out


def results_json(results: Results, reference_strategy: str, analysis_set: str = ANALYSIS_SET) -> dict:
    """Everything above, for the runs of ``results``; the probe measured on ``analysis_set``."""
    analysis = next((a for a in results.analyses if a.set_name == analysis_set), None)
    runs, controls = run_records(results, analysis)
    return {
        "runs": runs,
        "controls": controls,
        "time_to_target": time_to_target_json(
            probe_time_to_target(results, analysis, reference_strategy) if analysis else None),
        "time_to_target_asr": time_to_target_json(asr_time_to_target(results, analysis_set, reference_strategy)),
        "pnmi": _pnmi(list(results.runs.values()), analysis_set),
        **downstream_json(results.asr, results.registry, analysis_set),
    }
