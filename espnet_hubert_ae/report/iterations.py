"""The paper's question, per run: does a later iteration make the upper layers more phonetic and
less input-like than the first iteration left them?

For every run of two phases or more, the analysed checkpoint that ends each phase is read per
layer: the phone probe (mean ± std over the speaker splits), phone CCA and mel CCA (mean ± std
over the CCA protocol's trials, each scored on its own held-out fold). The end of phase 1 is
compared with the end of every later phase, layer by layer, with the project's rule (a
difference counts beyond twice its standard error, :func:`.compare.called`). Beside them, the
quality of the targets each phase trained on: the held-out, bias-corrected PNMI of its labels
on the analysed set (``quality.json`` of its label set), against the MFCC targets' of phase 1.

The answer for a comparison is ``yes`` when at every upper layer (the top half of the
transformer layers) the probe rose and the mel CCA fell beyond the spread, ``no`` when either
did not, and ``not called`` when the spread is unknown (one seed, one trial).

A run can have a control: a run of the same model and phase ends whose schedule names the run's
strategy in ``control_of`` (``progressive_mfcc``: progressive's phases on MFCC targets). At the
end of each later phase the run is compared with its control, layer by layer, with the same rule
and answers: what the run's targets did beyond what the same training steps did anyway.

results.json's ``second_iteration``, per run::

    {"strategy", "set", "upper_layers",
     "phases": [{"phase", "checkpoint", "step",
                 "targets": {"source", "init", "k", "frames", "held_out", "pnmi", "pnmi_corrected",
                             "mfcc_pnmi_corrected", "minus_mfcc"},
                 "phone_probe_acc" / "phone_cca" / "mel_cca": {"mean", "std" (per layer), "n"}}],
     "comparisons": [{"from_phase": 1, "to_phase",
                      "phone_probe_acc" / "phone_cca" / "mel_cca": {"diff" (later - first), "call" (per
                          layer: better / worse in the asked direction, where a lower mel CCA is
                          better; within spread; n/a (1 seed))},
                      "more_phonetic", "less_input_like" (true, false, null), "answer"}],
     "against_control": [{"control", "control_strategy",
                          "comparisons": [{"phase", "step", "checkpoint", "control_checkpoint",
                                           "run" / "control": {measure: {"mean", "std", "n"}},
                                           measure: {"diff" (run - control), "call"},
                                           "more_phonetic", "less_input_like", "answer"}]}]}
"""

from __future__ import annotations

from typing import Sequence

from espnet_hubert_ae.report.collect import Analysis, PretrainRun, Results
from espnet_hubert_ae.report.compare import Score, called
from espnet_hubert_ae.utils.seeds import sample_std

PROBE = "phone_probe_acc"
# measure -> (metric whose details hold its trials, whether higher is the direction asked for:
# more phonetic for the probe and phone CCA, less input-like for mel CCA)
MEASURES = {PROBE: ("phone_probe", True), "phone_cca": ("phone_cca", True), "mel_cca": ("mel_cca", False)}
ANSWERS = {True: "yes", False: "no", None: "not called"}


def upper_layers(num_states: int) -> list[int]:
    """The top half of the transformer layers (1..L) of a model with ``num_states`` = L + 1 states."""
    top = num_states - 1
    return list(range(top // 2 + 1, top + 1))


def measure_scores(result: dict, measure: str) -> list[Score] | None:
    """Per layer: ``measure``'s mean, spread and sample count (probe: over seeds; CCA: over trials)."""
    curve = (result.get("measures") or {}).get(measure)
    if curve is None:
        return None
    if measure == PROBE:
        spread = (result.get("std") or {}).get(measure) or [0.0] * len(curve)
        n = len((result.get("probe") or {}).get("seeds") or [None])
        return [Score(mean, std, n) for mean, std in zip(curve, spread)]
    layers = ((result.get("details") or {}).get(MEASURES[measure][0]) or {}).get("layers") or []
    scores = []
    for layer, mean in enumerate(curve):
        trials = layers[layer].get("trial_scores") if layer < len(layers) else None
        scores.append(Score(mean, sample_std(trials), len(trials)) if trials else Score(mean, 0.0, 1))
    return scores


def phase_end_results(results: Results, analysis: Analysis, run: str) -> dict[int, tuple[str, int, dict]]:
    """Phase -> (checkpoint, global step, analysed result) of the checkpoint that ends it."""
    ends: dict[int, tuple[str, int, dict]] = {}
    for ref in results.registry.values():
        if ref.run != run or ref.phase is None or ref.step is None or ref.name not in analysis.results:
            continue
        if ref.phase_end and (ref.phase not in ends or ref.step > ends[ref.phase][1]):
            ends[ref.phase] = (ref.name, ref.step, analysis.results[ref.name])
    return ends


def _target_quality(run: PretrainRun, index: int, set_name: str) -> dict | None:
    phases = {phase.index: phase for phase in run.phases}
    phase = phases.get(index)
    if phase is None:
        return None
    quality = phase.quality.get(set_name) or {}
    out = {"source": phase.source, "init": phase.init, "k": quality.get("k", phase.k),
           "frames": quality.get("frames"), "held_out": quality.get("held_out"),
           "pnmi": quality.get("pnmi"), "pnmi_corrected": quality.get("pnmi_corrected")}
    first = (phases[1].quality.get(set_name) or {}) if 1 in phases else {}
    mfcc = first.get("pnmi_corrected")
    out["mfcc_pnmi_corrected"] = mfcc
    out["minus_mfcc"] = None if mfcc is None or out["pnmi_corrected"] is None else out["pnmi_corrected"] - mfcc
    return out


def _scores_json(scores: Sequence[Score] | None) -> dict | None:
    if scores is None:
        return None
    return {"mean": [s.mean for s in scores], "std": [s.std for s in scores], "n": scores[0].n if scores else 0}


def _all_called(calls: Sequence[str]) -> bool | None:
    """Whether every call went the asked way (``better``); None when any is not called."""
    if any(call == "n/a (1 seed)" for call in calls) or not calls:
        return None
    return all(call == "better" for call in calls)


def compare_phases(first: dict, later: dict, upper: Sequence[int]) -> dict:
    """Per measure and layer, ``later`` against ``first`` (difference and call in the asked
    direction), and the answers at the upper layers."""
    out: dict = {}
    for measure, (_, higher) in MEASURES.items():
        a, b = first.get(measure), later.get(measure)
        if a is None or b is None:
            continue
        out[measure] = {"diff": [y.mean - x.mean for x, y in zip(a, b)],
                        "call": [called(y, x, higher) for x, y in zip(a, b)]}
    more = _all_called([out[PROBE]["call"][layer] for layer in upper]) if PROBE in out else None
    less = _all_called([out["mel_cca"]["call"][layer] for layer in upper]) if "mel_cca" in out else None
    answer = False if False in (more, less) else None if None in (more, less) else True
    out.update(more_phonetic=more, less_input_like=less, answer=ANSWERS[answer])
    return out


def control_runs(results: Results, run: PretrainRun) -> list[PretrainRun]:
    """The runs that are controls of ``run``: their schedule names its strategy (``control_of``),
    with the same model and the same phase ends."""
    ends = [phase.end_step for phase in run.phases]
    return [other for other in results.runs.values()
            if other.control_of == run.strategy and other.name != run.name and other.model == run.model
            and [phase.end_step for phase in other.phases] == ends]  # fmt: skip


def against_control(results: Results, analysis: Analysis, ends: dict, scores: dict, control: PretrainRun,
                    upper: Sequence[int]) -> dict | None:
    """A run against ``control`` at the end of each phase after the first, from the run's phase ends
    and their scores (:func:`run_iterations`'s); None when no phase end of both was analysed at the
    same step."""
    control_ends = phase_end_results(results, analysis, control.name)
    comparisons = []
    for index in sorted(set(ends) & set(control_ends)):
        (name, step, _), (control_name, control_step, control_result) = ends[index], control_ends[index]
        if index == 1 or step != control_step:
            continue
        control_scores = {m: measure_scores(control_result, m) for m in MEASURES}
        comparisons.append({"phase": index, "step": step, "checkpoint": name, "control_checkpoint": control_name,
                            "run": {m: _scores_json(s) for m, s in scores[index].items()},
                            "control": {m: _scores_json(s) for m, s in control_scores.items()},
                            **compare_phases(control_scores, scores[index], upper)})  # fmt: skip
    if not comparisons:
        return None
    return {"control": control.name, "control_strategy": control.strategy, "comparisons": comparisons}


def run_iterations(results: Results, analysis: Analysis, run: PretrainRun) -> dict | None:
    """The second-iteration record of one run (None when it has fewer than two analysed phase ends)."""
    ends = phase_end_results(results, analysis, run.name)
    if 1 not in ends or len(ends) < 2:
        return None
    phases, scores = [], {}
    for index in sorted(ends):
        name, step, result = ends[index]
        scores[index] = {m: measure_scores(result, m) for m in MEASURES}
        phases.append({"phase": index, "checkpoint": name, "step": step,
                       "targets": _target_quality(run, index, analysis.set_name),
                       **{m: _scores_json(s) for m, s in scores[index].items()}})
    measured = [s for s in scores[1].values() if s is not None]
    if not measured:  # none of the probe, phone CCA or mel CCA was analysed
        return None
    upper = upper_layers(len(measured[0]))
    comparisons = [{"from_phase": 1, "to_phase": index, **compare_phases(scores[1], scores[index], upper)}
                   for index in sorted(ends) if index > 1]
    controls = [against_control(results, analysis, ends, scores, control, upper)
                for control in control_runs(results, run)]
    return {"strategy": run.strategy, "set": analysis.set_name, "upper_layers": upper, "phases": phases,
            "comparisons": comparisons, "against_control": [c for c in controls if c is not None]}


def iterations_json(results: Results, analysis: Analysis | None) -> dict:
    """results.json's ``second_iteration``: run -> :func:`run_iterations`."""
    if analysis is None:
        return {}
    out = {}
    for run in results.runs.values():
        record = run_iterations(results, analysis, run)
        if record is not None:
            out[run.name] = record
    return out
