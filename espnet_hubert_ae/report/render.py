"""RESULTS.md: every stage's numbers for every pretraining run, in one generated page."""

from __future__ import annotations

import datetime
import io
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Sequence

from espnet_hubert_ae.analysis.controls import LABELS as CONTROL_LABELS
from espnet_hubert_ae.defaults import REFERENCE_STRATEGY
from espnet_hubert_ae.pretrain.health import MIN_LN_GAIN, MIN_UPDATE
from espnet_hubert_ae.report.collect import PretrainRun, Results
from espnet_hubert_ae.report.compare import Score, significant
from espnet_hubert_ae.report.iterations import ANSWERS, iterations_json
from espnet_hubert_ae.report.summary import (CER, INPUT_CONTROLS, LEARNT_RULE, PROBE, asr_time_to_target,
                                             probe_progress, probe_time_to_target, reference_asr_progress, run_records)
from espnet_hubert_ae.utils.cost import Cost
from espnet_hubert_ae.utils.fileio import atomic_open

STAGE_NAMES = {
    1: "data", 2: "format audio / filter", 3: "alignments", 4: "initial targets", 5: "pretraining",
    6: "register upstreams", 7: "layerwise analysis", 8: "SUPERB-style ASR", 9: "fine-tuning", 10: "report",
}
PACKAGES = ("torch", "torchaudio", "espnet", "s3prl", "faiss-cpu", "numpy", "scikit-learn")
SUMMARY_MEASURES = ("phone_probe_acc", "phone_cca", "word_cca", "pnmi")  # top-layer drop is reported for these
TARGET_FORMAT = {PROBE: "{:.3f}", CER: "{:.1f} %"}  # how time-to-target shows each measure's scores


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def _not_run(what: str, how: str) -> list[str]:
    return [f"_No {what} yet: {how}._", ""]


# --- environment ---------------------------------------------------------------------------


def _git_revision(repo: Path) -> str:
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" (with uncommitted changes)" if dirty else "")


def _hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
        memory = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        memory = ""
    gpus = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpus = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except ImportError:
        pass
    return f"{cpu}, {os.cpu_count()} cores{memory}, {gpus}"


def environment_section(repo: Path) -> list[str]:
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return [
        "## Environment", "",
        "```",
        f"date      {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"git       {_git_revision(repo)}",
        f"python    {platform.python_version()} ({platform.platform()})",
        f"packages  {', '.join(versions)}",
        f"hardware  {_hardware()}",
        "```", "",
    ]


# --- sections ---------------------------------------------------------------------------------


def stages_section(results: Results, repo: Path) -> list[str]:
    lines = ["## Commands and time per stage", ""]
    if not results.stage_times:
        return lines + _not_run("stage timings", "run.sh records them in exp/stage_times.tsv")
    commands = list(dict.fromkeys(t.command for t in results.stage_times))
    where = results.recipe_dir.resolve()
    if where.is_relative_to(repo.resolve()):
        where = where.relative_to(repo.resolve())
    lines += ["```", f"cd {where}"] + commands + ["```", ""]
    def cpu(seconds: float | None) -> str:
        return "n/a" if seconds is None else _minutes(seconds)

    rows = [(t.stage, STAGE_NAMES.get(t.stage, "?"), t.started, _minutes(t.seconds), cpu(t.cpu_seconds))
            for t in results.stage_times]
    total = sum(t.seconds for t in results.stage_times)
    cpus = [t.cpu_seconds for t in results.stage_times]
    total_cpu = None if None in cpus else sum(cpus)
    rows.append(("", "**total**", "", f"**{_minutes(total)}**", f"**{cpu(total_cpu)}**"))
    return lines + _table(["stage", "what", "last run started", "wall minutes", "CPU minutes"], rows)


def data_section(results: Results) -> list[str]:
    lines = ["## Data", ""]
    if not results.data_sets:
        return lines + _not_run("formatted data", "run stages 1-2")
    rows = [(name, info["utterances"], f"{info['hours']:.2f}") for name, info in results.data_sets.items()]
    return lines + _table(["set", "utterances", "hours"], rows)


def _budget_line(runs: Sequence[PretrainRun]) -> str:
    if all(run.budget is None for run in runs):
        return "Budgets: each schedule's own number of steps."
    lines = []
    for run in runs:
        b = run.budget or {}
        if b.get("mode") == "equal":
            lines.append(f"{run.name}: {run.steps} steps (equal budgets: every strategy {b.get('reference_steps')})")
        elif b:
            lines.append(f"{run.name}: {run.steps} steps (one factor for every strategy: "
                         f"{b.get('reference') or run.strategy} gets {b.get('reference_steps')}, the others keep "
                         "their schedules' ratios to it)")
        else:
            lines.append(f"{run.name}: {run.steps} steps (its schedule's own)")
    return "Budgets: " + "; ".join(lines) + "."


def pretraining_section(runs: Sequence[PretrainRun]) -> list[str]:
    lines = ["## Pretraining cost", ""]
    if not runs:
        return lines + _not_run("pretraining run", "run stage 5")
    lines += [_budget_line(runs), "",
              "CPU minutes of the whole process tree (GPU minutes where GPUs were used), wall minutes beside: "
              "wall time on a shared machine swings with its load, CPU time does not. Targets = features "
              "(the first phase's MFCC included, whenever stage 4 dumped them) + k-means + labels; "
              "audio = hours of audio trained on.", ""]
    rows = []
    for run in runs:
        total = run.cost()
        targets = sum((p.targets for p in run.phases), Cost())
        training = sum((p.training for p in run.phases), Cost())
        adopted = [str(p.index) for p in run.phases if p.adopted_from]
        rows.append((
            run.name + ("" if run.complete else " (incomplete)"), run.strategy, len(run.phases), run.steps,
            _minutes(total.cpu_s), _minutes(training.cpu_s), _minutes(targets.cpu_s), _minutes(total.wall_s),
            _minutes(total.gpu_s), f"{training.audio_s / 3600:.1f}", ", ".join(adopted) or "-",
        ))
    lines += _table(["run", "strategy", "phases", "steps", "CPU min", "training CPU", "targets CPU", "wall min",
                     "GPU min", "audio h", "phases shared with another run"], rows)
    return lines + health_section(runs)


def health_section(runs: Sequence[PretrainRun]) -> list[str]:
    """Layer health of each phase's final model: collapsing or dead layers are called out."""
    rows, warnings = [], []
    for run in runs:
        for phase in run.phases:
            health = phase.health
            if not health:
                continue
            gains = " ".join(f"{layer['ln_gain']:.2f}" for layer in health["layers"])
            updates = " ".join(f"{layer['update']:.3f}" for layer in health["layers"])
            rows.append((run.name, phase.index, gains, updates))
            warnings += [f"- **{run.name} phase {phase.index}**: {w}" for w in health.get("warnings", [])]
    if not rows:
        return []
    lines = ["### Layer health", "",
             "Per transformer layer (1 first) of each phase's final model: mean LayerNorm gain (initialised at "
             f"1.0; below {MIN_LN_GAIN} the layer is collapsing) and how much the layer changes its input "
             f"(relative norm of its update; below {MIN_UPDATE} it is dead).", ""]
    lines += _table(["run", "phase", "LayerNorm gain per layer", "update per layer"], rows)
    if warnings:
        lines += ["**Warnings**:", ""] + warnings + [""]
    else:
        lines += ["No layer of any phase is collapsing or dead.", ""]
    return lines


def targets_section(runs: Sequence[PretrainRun]) -> list[str]:
    lines = ["## Target quality per phase", ""]
    rows = []
    for run in runs:
        for phase in run.phases:
            for set_name, q in sorted(phase.quality.items()):
                corrected = q.get("pnmi_corrected")
                rows.append((run.name, phase.index, f"{phase.start_step}-{phase.end_step}", phase.init,
                             phase.source, phase.k, set_name, q.get("frames", "-"),
                             {True: "yes", False: "no"}.get(q.get("held_out"), "-"), f"{q['pnmi']:.3f}",
                             "-" if corrected is None else f"{corrected:.3f}", f"{q['phone_purity']:.3f}",
                             f"{q['cluster_purity']:.3f}"))
    if not rows:
        return lines + _not_run("target quality", "run stage 5")
    lines += ["Labels of each phase against the phone alignments (definitions in the README). Held out: the "
              "set's frames were not among those k-means was fitted on. PNMI plug-in and bias-corrected; compare "
              "values only at equal K and frame count.", ""]
    return lines + _table(["run", "phase", "steps", "init", "targets from", "K", "set", "frames", "held out",
                           "PNMI", "PNMI corrected", "phone purity", "cluster purity"], rows)


def _signed(value: float, digits: int = 3) -> str:
    """A difference with its sign; one that rounds to zero is +0.000 (never -0.000)."""
    return f"{round(value, digits) + 0.0:+.{digits}f}"


def _score(score: Score, form) -> str:
    """A score as "mean ± std (n seeds)" in the measure's format."""
    return f"{form(score.mean)} ± {form(score.std)} ({score.n} seed{'s' if score.n != 1 else ''})"


def _mean_std(value: float | None, std: float | None = None, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" + (f" ± {std:.{digits}f}" if std else "")


CALLS = {"better": "above", "worse": "below", "within spread": "within spread", "n/a (1 seed)": "n/a (1 seed)",
         None: "-"}


def probe_section(results: Results, analysis) -> list[str]:
    """The learning: the probe per layer of every run's final checkpoint, against the floors."""
    runs, controls = run_records(results, analysis)
    finals = {name: run for name, run in runs.items() if "probe" in run}
    if not finals:
        return []
    seeds = next(iter(finals.values()))["probe"].get("seeds") or [None]
    widest = controls.get("widest_context")
    lines = [f"### The learning: phone probe on {analysis.set_name}", "",
             f"Frame phone accuracy of a linear probe trained on some speakers of {analysis.set_name} and tested "
             f"on the others (mean ± standard deviation over {len(seeds)} speaker split(s), seeds "
             f"{', '.join(str(s) for s in seeds)}), per hidden state of each run's final checkpoint (0 = input "
             "of the first transformer layer). Floors on the same frames and splits: the majority class, the "
             "untrained model (step 0) and the input itself: log-mel frames alone and stacked with their "
             "neighbours (the input context a layer could merely copy), and an MFCC frame.", ""]
    rows = [("majority class", _mean_std(controls.get("majority")), "", ""),
            ("untrained model (best layer)", _mean_std(controls.get("random_init_best")), "", "")]
    rows += [(CONTROL_LABELS.get(name, name), _mean_std(controls.get(name), controls.get(f"{name}_std")), "", "")
             for name in INPUT_CONTROLS if name in controls]
    for name, run in finals.items():
        probe = run["probe"]
        stds = probe.get("per_layer_std") or [None] * len(probe["per_layer"])
        per_layer = " / ".join(_mean_std(v, s) for v, s in zip(probe["per_layer"], stds))
        rows.append((f"**{name}**", _mean_std(probe["best"], probe.get("best_std")), probe["best_layer"], per_layer))
    lines += _table(["model or control", "best (layers >= 1)", "best layer", "per layer 0 / 1 / ..."], rows)
    if widest is None:
        return lines
    label = CONTROL_LABELS.get(widest, widest)
    lines += [f"Every layer against its own untrained state and the widest input context ({label}): {LEARNT_RULE}. "
              "`above` / `below`: beyond that spread.", ""]
    for name, run in finals.items():
        probe, learnt = run["probe"], run["probe"]["learning"]
        stds = probe.get("per_layer_std") or [None] * len(probe["per_layer"])
        floor = learnt.get("untrained_per_layer")
        floor_std = learnt.get("untrained_per_layer_std") or [None] * len(probe["per_layer"])
        rows = []
        for layer, value in enumerate(probe["per_layer"]):
            untrained = "-" if floor is None else _mean_std(floor[layer], floor_std[layer])
            minus_floor = "-" if floor is None else \
                f"{_signed(value - floor[layer])} ({CALLS[learnt['vs_untrained'][layer]]})"
            minus_widest = "-" if learnt["widest"] is None else \
                f"{_signed(value - learnt['widest']['mean'])} ({CALLS[learnt['vs_widest'][layer]]})"
            verdict = {True: "**yes**", False: "no", None: "not called"}[learnt["learnt"][layer]]
            rows.append((layer, _mean_std(value, stds[layer]), untrained, minus_floor, minus_widest, verdict))
        lines += [f"**{name}** (final checkpoint {run['final_checkpoint']}; untrained: "
                  f"{learnt['untrained_checkpoint'] or 'not analysed'})", ""]
        lines += _table(["layer", "final", "untrained (step 0)", "final - untrained", f"final - {widest}", "learnt"],
                        rows)
        lines += [_learnt_sentence(name, learnt), ""]
    return lines


def seeds_note(results: Results) -> list[str]:
    """Said first when every measure with a spread has one seed: nothing can be called."""
    counts = [len(r.seeds) for r in results.asr]
    for analysis in results.analyses:
        counts += [len(((result.get("probe") or {}).get("seeds")) or [])
                   for result in analysis.results.values() if result.get("probe")]
    if not counts or max(counts) > 1:
        return []
    return ["**One seed.** Every table shows its measures, but with one seed the spread is unknown and no "
            "difference is called (not between runs, nor against a control). `make study` (three seeds) "
            "gives the spread.", ""]


def _learnt_sentence(run: str, learnt: dict) -> str:
    if None in learnt["learnt"] and not learnt["learnt_layers"]:
        return (f"{run}: not called: with one seed (or without an analysed step 0) the spread is unknown; "
                "`make study` (three seeds) gives it.")
    transformer = [layer for layer in learnt["learnt_layers"] if layer >= 1]
    if not transformer:
        return (f"{run}: **no transformer layer has learnt** more than its untrained state and "
                f"{learnt['widest_control']} show.")
    return f"{run}: transformer layer(s) {', '.join(map(str, transformer))} have learnt."


MEASURE_LABELS = {PROBE: "probe", "phone_cca": "phone CCA", "mel_cca": "mel CCA"}


def _pnmi_cell(targets: dict | None) -> str:
    if not targets or targets.get("pnmi_corrected") is None:
        return "-"
    cell = f"{targets['pnmi_corrected']:.3f} (K={targets['k']}, {targets['source']})"
    if targets.get("minus_mfcc") is not None and targets["source"] != "mfcc":
        cell += f", {_signed(targets['minus_mfcc'])} vs MFCC"
    return cell


def iterations_section(results: Results, analysis) -> list[str]:
    """The paper's question: a later iteration against the first, per run and layer."""
    found = iterations_json(results, analysis)
    if not found:
        return []
    lines = [f"### Does a later iteration make the upper layers more phonetic and less input-like? ({analysis.set_name})",
             "",
             "Per run, the checkpoint that ends each phase, per layer: the phone probe (mean ± std over the speaker "
             "splits), phone CCA and mel CCA (mean ± std over the CCA protocol's trials, each on its own held-out "
             "fold). The end of phase 1 (the first iteration) against the end of each later phase: a difference "
             "is `up` / `down` only beyond twice its standard error. Upper layers: the top half of the transformer "
             "layers. The answer is yes only where at every upper layer the probe rose and the mel CCA fell beyond "
             "the spread. Targets: the held-out, bias-corrected PNMI of the labels each phase trained on "
             f"({analysis.set_name}), against the MFCC targets' (compare values only at equal K).", ""]
    for run, record in found.items():
        upper = record["upper_layers"]
        phases = {p["phase"]: p for p in record["phases"]}
        lines += [f"**{run}** ({record['strategy']}; upper layers {', '.join(map(str, upper))})", ""]
        rows = [(p["phase"], p["step"], p["checkpoint"], (p["targets"] or {}).get("init", "-"),
                 _pnmi_cell(p["targets"])) for p in record["phases"]]
        lines += _table(["phase", "ends at step", "checkpoint", "init", "its targets: PNMI corrected"], rows)
        for comparison in record["comparisons"]:
            first, later = phases[comparison["from_phase"]], phases[comparison["to_phase"]]
            lines += [f"End of phase {first['phase']} (step {first['step']}) → end of phase {later['phase']} "
                      f"(step {later['step']}):", ""]
            lines += _comparison_table(first, later, comparison, upper)
            lines += [_iteration_answer(f"after phase {later['phase']}, {run}'s upper layers",
                                        f"phase {first['phase']} left them", comparison, upper), ""]
        for control in record.get("against_control") or []:
            lines += [f"**{run} against its control {control['control']}** ({control['control_strategy']}: the "
                      "same model, steps and phase ends, its own targets): the control's value → the run's, at "
                      "the end of each later phase; what the run's targets did beyond what the same training "
                      "did anyway.", ""]
            for comparison in control["comparisons"]:
                lines += [f"End of phase {comparison['phase']} (step {comparison['step']}), "
                          f"{comparison['control_checkpoint']} → {comparison['checkpoint']}:", ""]
                lines += _comparison_table(comparison["control"], comparison["run"], comparison, upper)
                lines += [_iteration_answer(f"at the end of phase {comparison['phase']}, {run}'s upper layers",
                                            "its control's", comparison, upper), ""]
    return lines


def _comparison_table(first: dict, later: dict, comparison: dict, upper: Sequence[int]) -> list[str]:
    """Per layer and measure: ``first``'s value → ``later``'s (mean ± std), their difference and
    its call in words (upper layers in bold)."""
    rows = []
    for layer in range(len(first[PROBE]["mean"]) if first.get(PROBE) else 0):
        row = [layer if layer not in upper else f"**{layer}**"]
        for measure in MEASURE_LABELS:
            if measure not in comparison:
                row.append("-")
                continue
            a, b = first[measure], later[measure]
            word = _moved(measure, comparison[measure]["call"][layer])
            row.append(f"{_mean_std(a['mean'][layer], a['std'][layer])} → "
                       f"{_mean_std(b['mean'][layer], b['std'][layer])} "
                       f"({_signed(comparison[measure]['diff'][layer])}, {word})")
        rows.append(row)
    return _table(["layer"] + [MEASURE_LABELS[m] for m in MEASURE_LABELS], rows)


def _moved(measure: str, call: str) -> str:
    """A call of a later phase against the first in words of its direction: ``up`` / ``down``
    (the asked direction of mel CCA is down), else the call itself."""
    asked, other = ("down", "up") if measure == "mel_cca" else ("up", "down")
    return {"better": asked, "worse": other, "n/a (1 seed)": "not called"}.get(call, call)


def _iteration_answer(subject: str, than: str, comparison: dict, upper: Sequence[int]) -> str:
    """The answer line of a comparison: whether ``subject`` are more phonetic and less input-like
    than ``than``, and the calls behind it."""
    parts = []
    for key, measure, want in (("more_phonetic", PROBE, "more phonetic (probe)"),
                               ("less_input_like", "mel_cca", "less input-like (mel CCA)")):
        value = comparison.get(key)
        if measure not in comparison:
            parts.append(f"{want}: not measured")
            continue
        calls = ", ".join(f"L{layer} {_signed(comparison[measure]['diff'][layer])} "
                          f"({_moved(measure, comparison[measure]['call'][layer])})" for layer in upper)
        parts.append(f"{want}: {ANSWERS[value]} ({calls})")
    answer = comparison["answer"]
    claim = f"{subject} are {'not both ' if answer == 'no' else ''}more phonetic and less input-like than {than}"
    lead = {"yes": f"Yes: {claim}", "no": f"**No**: {claim}",
            "not called": f"Not called (the spread is unknown): whether {claim}"}[answer]
    return f"{lead}. " + "; ".join(parts) + "."


def analysis_section(results: Results, recipe_dir: Path) -> list[str]:
    lines = ["## Layerwise analysis", ""]
    if not results.analyses:
        return lines + _not_run("analysis", "run stages 6-7")
    finals = {run: ref.name for run, ref in results.registry.last_per_run().items()}
    for analysis in results.analyses:
        lines += probe_section(results, analysis)
        lines += iterations_section(results, analysis)
        rows = []
        for run, checkpoint in sorted(finals.items()):
            result = analysis.results.get(checkpoint)
            if result is None:
                continue
            stats = result.get("summary", {})
            row = [run, checkpoint, _mean_std(stats.get("mel_cca", {}).get("input_rebound"))]
            for measure in SUMMARY_MEASURES:
                if measure in stats:
                    s = stats[measure]
                    row.append(f"{s['best']:.3f} @L{s['best_layer']} / {s['top_layer_drop']:.3f}")
                else:
                    row.append("-")
            rows.append(row)
        lines += [f"### Summary on {analysis.set_name}", ""]
        if not rows:
            lines += _not_run(f"analysed final checkpoint on {analysis.set_name}", "run stage 7 after stage 6")
            continue
        lines += ["Last checkpoint of each run. Top-layer drop = best layer's value minus the last layer's "
                  "(how much the top gave back); input rebound = last layer's mel CCA minus its minimum over "
                  "layers (how input-like the top became again). PNMI is held-out and bias-corrected "
                  "(pnmi_corrected) beside the plug-in value (pnmi), at the K and frames the analysis states.", ""]
        header = ["run", "checkpoint", "input rebound"] + [f"{m}: best @layer / top drop" for m in SUMMARY_MEASURES]
        lines += _table(header, rows)
        lines += [f"Per-layer values of every checkpoint: `{_rel(analysis.directory / 'table.tsv', recipe_dir)}`.", ""]
    return lines


# kind -> (title, how to get it, error rates shown)
DOWNSTREAM_SECTIONS = {
    "superb": ("SUPERB-style ASR (frozen upstream)", "run stage 8", ("cer", "wer")),
    "pr": ("Phoneme recognition (frozen upstream, linear CTC probe)", "run stage 8", ("per",)),
    "finetune": ("Libri-light fine-tuning", "run stage 9", ("cer", "wer")),
}
CONTROLS = ("fbank", "random_init")


def spread_verdict(row: dict, control: dict, rate: str) -> str:
    """``better`` / ``worse`` when the mean error rates differ significantly (more than twice the
    standard error of the difference, :func:`report.compare.significant`), else ``within spread``."""
    mine, theirs = (Score(r[rate]["mean"], r[rate]["std"], len(r[rate].get("per_seed", []))) for r in (row, control))
    if mine.n < 2 or theirs.n < 2:
        return "n/a (1 seed)"
    if not significant(mine, theirs):
        return "within spread"
    return "better" if mine.mean < theirs.mean else "worse"


def downstream_section(results: Results, kind: str) -> list[str]:
    title, how, rates = DOWNSTREAM_SECTIONS[kind]
    lines = [f"## {title}", ""]
    found = [r for r in results.asr if r.kind == kind]
    if not found:
        return lines + _not_run("results", how)
    lines += ["Greedy CTC decoding. Error rates in %, mean ± standard deviation over the seeds (n - 1); "
              "empty = share of utterances with an empty hypothesis (the worst seed). A difference between two "
              "rows counts as significant only when their means differ by more than twice the standard error "
              f"of the difference; the `vs` columns apply this rule to {rates[0].upper()} against each control trained "
              "the same way." + (" The fbank row of fine-tuning is the frozen downstream of stage 8 trained "
                                 "on the fine-tuning split (log-mel frames have no encoder to fine-tune)."
                                 if kind == "finetune" else ""), ""]
    controls = {(r.control, r.train_set): r for r in found if r.control}
    rows = []

    def order(r):
        return (r.control is None, CONTROLS.index(r.control) if r.control in CONTROLS else 0, r.run or "",
                r.step or 0, r.train_set, r.reset_top_layers or 0)

    for r in sorted(found, key=order):
        lead = [r.name, r.upstream, r.step if r.step is not None else "-"]
        if kind == "finetune":
            lead += [r.train_set, "-" if r.reset_top_layers is None else r.reset_top_layers]
        for set_name, scores in r.sets.items():
            cells = [f"{scores[k]['mean']:.1f} ± {scores[k]['std']:.1f}" for k in rates]
            empty = 100.0 * scores["empty_hyps"] / max(1, scores["num_utts"])
            versus = []
            for name in CONTROLS:
                control = controls.get((name, r.train_set))
                same = control is not None and control is not r and set_name in control.sets
                versus.append(spread_verdict(scores, control.sets[set_name], rates[0]) if same else "-")
            rows.append(lead + [set_name, len(r.seeds)] + cells + [f"{empty:.1f}"] + versus)
    header = ["run / control", "upstream", "step"] + (["fine-tuned on", "top layers reset"] if kind == "finetune"
                                                       else [])
    header += ["set", "seeds"] + [f"{k.upper()} %" for k in rates] + ["empty %", "vs fbank", "vs random init"]
    return lines + _table(header, rows)


def _superb_sets(results: Results) -> list[str]:
    """The sets stage 8's ASR was scored on."""
    return sorted({name for r in results.asr if r.kind == "superb" for name in r.sets})


def time_to_target_section(results: Results, reference_strategy: str) -> list[str]:
    lines = [f"## Time to target (against {reference_strategy})", ""]
    found = [probe_time_to_target(results, a, reference_strategy) for a in results.analyses]
    found += [asr_time_to_target(results, name, reference_strategy) for name in _superb_sets(results)]
    found = [f for f in found if f is not None]
    if not found:
        return lines + _not_run(f"complete '{reference_strategy}' run with an analysed final checkpoint",
                                f"run it too, e.g. ./run.sh --strategy \"{reference_strategy} progressive\"")
    lines += ["The share of the reference run's pretraining cost (CPU seconds of the whole process tree, "
              "targets included) at which each run first comes within the tolerance of the reference's final "
              "score (probe: best transformer layer, mean over seeds; frozen-ASR CER of the checkpoints stage 8 "
              "evaluated, `--asr_checkpoints_per_run`, mean over seeds, lower is better); between two evaluated "
              "checkpoints the crossing is interpolated. Tolerance = twice the standard error over seeds of the "
              "reference's final score. Wall minutes beside. A target exists only where the reference learnt: "
              "its final score beats its untrained (step-0) score beyond the spread.", ""]
    for tt in found:
        form = TARGET_FORMAT.get(tt.measure, "{:.3f}").format
        if not tt.defined:
            untrained = "not measured" if tt.untrained is None else _score(tt.untrained, form)
            lines += [f"**{tt.measure} on {tt.where}**: no target. {tt.reference_run}'s final "
                      f"{_score(tt.final, form)} against its untrained (step 0) {untrained}: "
                      f"{tt.undefined_reason}. No run is timed against it.", ""]
            continue
        lines += [f"**{tt.measure} on {tt.where}**: target {form(tt.target)} ± {form(tt.tolerance)} "
                  f"({tt.reference_run}'s final), {_score(tt.final, form)} against "
                  f"{_score(tt.untrained, form)} untrained", ""]
        rows = []
        for run, reached in tt.reached.items():
            if reached is None:
                best = tt.best.get(run)
                note = "" if best is None else (f" (best {form(best.score)} at step {best.step}, the whole run "
                                                f"{best.budget_ratio:.2f} of the reference's CPU)")
                rows.append((run, "not reached" + note, "-", "-", "-"))
            else:
                rows.append((run, f"{reached.step:.0f}", _minutes(reached.cpu_s), _minutes(reached.wall_s),
                             f"{reached.cost_ratio:.2f}"))
        lines += _table(["run", "global step at target", "CPU minutes", "wall minutes", "share of the reference's CPU"],
                        rows)
    return lines


def plot_cost_curves(results: Results, progress: dict[str, dict[str, list[tuple[int, Score]]]], ylabel: str,
                     path: Path, references: dict[str, dict[str, float]] | None = None) -> Path | None:
    """A measure against pretraining CPU time, one line per run, one panel per set: ``progress``
    maps a set to each run's (global step, score) points; error bars are twice the standard
    error over seeds. ``references`` (set -> label -> value: the controls) are drawn as
    horizontal lines; each run's untrained model is its point at cost 0."""
    progress = {name: runs for name, runs in progress.items() if runs}
    if not progress:
        return None
    from espnet_hubert_ae.analysis.plots import draw_references  # chooses the Agg backend first

    import matplotlib.pyplot as plt  # noqa: I001

    sets = sorted(progress)
    fig, axes = plt.subplots(1, len(sets), figsize=(6 * len(sets), 4), squeeze=False)
    for ax, set_name in zip(axes[0], sets):
        for run_name, points in sorted(progress[set_name].items()):
            run = results.runs.get(run_name)
            if run is None:
                continue
            points = sorted(points, key=lambda p: p[0])
            x = [run.cost(step).cpu_s / 60 for step, _ in points]
            y = [score.mean for _, score in points]
            err = [2 * score.stderr if score.n > 1 else 0.0 for _, score in points]
            ax.errorbar(x, y, yerr=err, marker="o", ms=3, capsize=2, label=run_name)
        draw_references(ax, (references or {}).get(set_name) or {}, with_values=True)
        ax.set_xlabel("pretraining cost (CPU minutes)")
        ax.set_ylabel(ylabel)
        ax.set_title(set_name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, bbox_to_anchor=(1.02, 1), loc="upper left")
    buffer = io.BytesIO()  # the canvas grows to hold the legends beside the panels
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    with atomic_open(path, "wb") as f:
        f.write(buffer.getvalue())
    return path


def cost_plots(results: Results, reference_strategy: str, report_dir: Path) -> list[Path]:
    """The probe's and the frozen-ASR CER's progress against pretraining CPU time (the plots of
    time-to-target), where they were measured."""
    probe = {a.set_name: probe_progress(results, a) for a in results.analyses}
    floors = {}
    for analysis in results.analyses:
        controls = run_records(results, analysis)[1]
        lines = {"majority class": controls.get("majority")}
        lines.update({CONTROL_LABELS.get(name, name): controls.get(name) for name in INPUT_CONTROLS})
        floors[analysis.set_name] = {label: value for label, value in lines.items() if value is not None}
    cer = {name: found[1] for name in _superb_sets(results)
           if (found := reference_asr_progress(results, name, reference_strategy)) is not None}
    plots = [plot_cost_curves(results, probe, "phone probe accuracy (best layer >= 1)",
                              report_dir / "phone_probe_vs_cpu.png", floors),
             plot_cost_curves(results, cer, "frozen-ASR CER % (lower is better)", report_dir / "asr_cer_vs_cpu.png")]
    return [p for p in plots if p is not None]


def _rel(path: Path, base: Path) -> str:
    return os.path.relpath(path, base)


def plots_section(results: Results, extra: Sequence[Path], recipe_dir: Path) -> list[str]:
    lines = ["## Plots", ""]
    for path in extra:  # shown in the page
        lines += [f"![{path.stem}]({_rel(path, recipe_dir)})", ""]
    linked = [p for a in results.analyses for p in a.plots if p.stem.endswith("_strategies") or "_heatmap_" in p.stem]
    if not extra and not linked:
        return lines + _not_run("plots", "run stage 7")
    if linked:
        lines += ["Layerwise analysis: each measure per strategy (`_strategies`) and layer x step per run (`_heatmap_`).",
                  ""]
    lines += [f"- [{path.stem}]({_rel(path, recipe_dir)})" for path in linked]
    return lines + [""]


def render(results: Results, repo: Path, reference_strategy: str = REFERENCE_STRATEGY, report_dir: Path | None = None) -> str:
    recipe_dir = results.recipe_dir
    runs = list(results.runs.values())
    extra = []
    if report_dir is not None:
        extra = cost_plots(results, reference_strategy, report_dir)
    where = "`exp/report/results.json`" if report_dir is None else f"`{_rel(report_dir / 'results.json', recipe_dir)}`"
    lines = [
        "# RESULTS", "",
        "Generated by stage 10 of `run.sh` from the files the other stages wrote; rerun it to refresh. "
        f"The same numbers for programs: {where}.",
        "Pretraining runs are named `<strategy>_<model>[_<steps>]`; checkpoints `<run>/p<phase>/step<N>`.", "",
    ]
    lines += seeds_note(results)
    lines += environment_section(repo)
    lines += stages_section(results, repo)
    lines += data_section(results)
    lines += pretraining_section(runs)
    lines += targets_section(runs)
    lines += analysis_section(results, recipe_dir)
    for kind in DOWNSTREAM_SECTIONS:
        lines += downstream_section(results, kind)
    lines += time_to_target_section(results, reference_strategy)
    lines += plots_section(results, extra, recipe_dir)
    return "\n".join(lines).rstrip() + "\n"
