"""RESULTS.md: every stage's numbers for every pretraining run, in one generated page."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Sequence

from espnet_hubert_ae.analysis.stats import checkpoint_score
from espnet_hubert_ae.report.collect import PretrainRun, Results
from espnet_hubert_ae.report.compare import TimeToTarget, all_time_to_target, probing_progress

STAGE_NAMES = {
    1: "data", 2: "format audio / filter", 3: "alignments", 4: "initial targets", 5: "pretraining",
    6: "register upstreams", 7: "layerwise analysis", 8: "SUPERB-style ASR", 9: "fine-tuning", 10: "report",
}
PACKAGES = ("torch", "torchaudio", "espnet", "s3prl", "faiss-cpu", "numpy", "scikit-learn")
SUMMARY_MEASURES = ("phone_probe_acc", "phone_cca", "word_cca", "pnmi")  # top-layer drop is reported for these


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
    rows = [(t.stage, STAGE_NAMES.get(t.stage, "?"), t.started, _minutes(t.seconds)) for t in results.stage_times]
    total = sum(t.seconds for t in results.stage_times)
    rows.append(("", "**total**", "", f"**{_minutes(total)}**"))
    return lines + _table(["stage", "what", "last run started", "minutes"], rows)


def data_section(results: Results) -> list[str]:
    lines = ["## Data", ""]
    if not results.data_sets:
        return lines + _not_run("formatted data", "run stages 1-2")
    rows = [(name, info["utterances"], f"{info['hours']:.2f}") for name, info in results.data_sets.items()]
    return lines + _table(["set", "utterances", "hours"], rows)


def pretraining_section(runs: Sequence[PretrainRun]) -> list[str]:
    lines = ["## Pretraining cost", ""]
    if not runs:
        return lines + _not_run("pretraining run", "run stage 5")
    lines += ["Wall time in minutes; targets = feature extraction + k-means + labels before each phase "
              "(the first phase's MFCC features are dumped by stage 4).", ""]
    rows = []
    for run in runs:
        rows.append((
            run.name + ("" if run.complete else " (incomplete)"), run.strategy, len(run.phases), run.steps,
            _minutes(run.seconds()), _minutes(run.seconds("training")), _minutes(run.seconds("features")),
            _minutes(run.seconds("kmeans")), _minutes(run.seconds("labels")),
        ))
    return lines + _table(["run", "strategy", "phases", "steps", "total", "training", "features", "k-means",
                           "labels"], rows)


def targets_section(runs: Sequence[PretrainRun]) -> list[str]:
    lines = ["## Target quality per phase", ""]
    rows = []
    for run in runs:
        for phase in run.phases:
            for set_name, q in sorted(phase.quality.items()):
                rows.append((run.name, phase.index, f"{phase.start_step}-{phase.end_step}", phase.init,
                             phase.source, phase.k, set_name, f"{q['pnmi']:.3f}", f"{q['phone_purity']:.3f}",
                             f"{q['cluster_purity']:.3f}"))
    if not rows:
        return lines + _not_run("target quality", "run stage 5")
    lines += ["Labels of each phase against the phone alignments (definitions in the README).", ""]
    return lines + _table(["run", "phase", "steps", "init", "targets from", "K", "set", "PNMI", "phone purity",
                           "cluster purity"], rows)


def analysis_section(results: Results, recipe_dir: Path) -> list[str]:
    lines = ["## Layerwise analysis", ""]
    if not results.analyses:
        return lines + _not_run("analysis", "run stages 6-7")
    lines += ["Last checkpoint of each run. Top-layer drop = best layer's value minus the last layer's "
              "(how much the top gave back); input rebound = last layer's mel CCA minus its minimum over "
              "layers (how input-like the top became again).", ""]
    finals = {run: ref.name for run, ref in results.registry.last_per_run().items()}
    for analysis in results.analyses:
        summary = analysis.summary.get("checkpoints", {})
        rows = []
        for run, checkpoint in sorted(finals.items()):
            if checkpoint not in analysis.curves:
                continue
            stats = summary.get(checkpoint, {})
            curves = analysis.curves[checkpoint]
            row = [run, checkpoint, f"{stats.get('mel_cca', {}).get('input_rebound', float('nan')):.3f}"]
            for measure in SUMMARY_MEASURES:
                if measure in curves:
                    row.append(f"{checkpoint_score(curves[measure]):.3f} @L{stats.get(measure, {}).get('best_layer', '?')}"
                               f" / {stats.get(measure, {}).get('top_layer_drop', float('nan')):.3f}")
                else:
                    row.append("-")
            rows.append(row)
        lines += [f"### {analysis.set_name}", ""]
        if not rows:
            lines += _not_run(f"analysed final checkpoint on {analysis.set_name}", "run stage 7 after stage 6")
            continue
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
    """``better`` / ``worse`` when the mean error rates differ by more than the sum of their
    standard deviations (two seeds or more on each side), else ``within spread``."""
    if len(row[rate].get("per_seed", [])) < 2 or len(control[rate].get("per_seed", [])) < 2:
        return "n/a (1 seed)"
    difference = row[rate]["mean"] - control[rate]["mean"]
    if abs(difference) <= row[rate]["std"] + control[rate]["std"]:
        return "within spread"
    return "better" if difference < 0 else "worse"


def downstream_section(results: Results, kind: str) -> list[str]:
    title, how, rates = DOWNSTREAM_SECTIONS[kind]
    lines = [f"## {title}", ""]
    found = [r for r in results.asr if r.kind == kind]
    if not found:
        return lines + _not_run("results", how)
    lines += ["Greedy CTC decoding. Error rates in %, mean ± standard deviation over the seeds (n - 1); "
              "empty = share of utterances with an empty hypothesis (the worst seed). A difference between two "
              "rows counts as significant only when their means differ by more than the sum of their standard "
              f"deviations; the `vs` columns apply this rule to {rates[0].upper()} against each control trained "
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


def time_to_target_section(targets: Sequence[TimeToTarget], reference_strategy: str) -> list[str]:
    lines = [f"## Time to target (against {reference_strategy})", ""]
    if not targets:
        return lines + _not_run(f"complete '{reference_strategy}' run with analysed or evaluated checkpoints",
                                f"run it too, e.g. ./run.sh --strategy \"{reference_strategy} progressive\"")
    lines += ["The fraction of the reference run's pretraining cost (wall time; steps in brackets) at which "
              "each run first reaches the reference's final score; `not reached` when none of its "
              "checkpoints does.", ""]
    for found in targets:
        sense = "higher is better" if found.higher_is_better else "lower is better"
        lines += [f"**{found.metric}**: target {found.target:.3f} ({found.reference_run}'s final, {sense})", ""]
        rows = []
        for run, reached in found.reached.items():
            if reached is None:
                rows.append((run, "not reached", "-", "-"))
            else:
                rows.append((run, reached.step, _minutes(reached.seconds),
                             f"{reached.cost_fraction:.2f} ({reached.step_fraction:.2f})"))
        lines += _table(["run", "first step at target", "minutes spent", "fraction of reference cost"], rows)
    return lines


def plot_probing_cost(results: Results, measure: str, path: Path) -> Path | None:
    """Best-layer probing score against pretraining wall time, one line per run."""
    progress = probing_progress(results, measure)
    if not progress:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = sorted(progress)
    fig, axes = plt.subplots(1, len(sets), figsize=(6 * len(sets), 4), squeeze=False)
    for ax, set_name in zip(axes[0], sets):
        for run_name, points in sorted(progress[set_name].items()):
            run = results.runs.get(run_name)
            if run is None:
                continue
            points = sorted(points)
            ax.plot([run.cost_at(s) / 60 for s, _ in points], [v for _, v in points], marker="o", ms=3,
                    label=run_name)
        ax.set_xlabel("pretraining wall time (minutes)")
        ax.set_ylabel(f"{measure} (best layer)")
        ax.set_title(set_name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


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


def render(results: Results, repo: Path, reference_strategy: str = "baseline",
           probe_measure: str = "phone_probe_acc", report_dir: Path | None = None) -> str:
    recipe_dir = results.recipe_dir
    runs = list(results.runs.values())
    extra = []
    if report_dir is not None:
        plot = plot_probing_cost(results, probe_measure, report_dir / f"{probe_measure}_vs_cost.png")
        extra = [plot] if plot else []
    lines = [
        "# RESULTS", "",
        "Generated by stage 10 of `run.sh` from the files the other stages wrote; rerun it to refresh.",
        "Pretraining runs are named `<strategy>_<model>[_<steps>]`; checkpoints `<run>/p<phase>/step<N>`.", "",
    ]
    lines += environment_section(repo)
    lines += stages_section(results, repo)
    lines += data_section(results)
    lines += pretraining_section(runs)
    lines += targets_section(runs)
    lines += analysis_section(results, recipe_dir)
    for kind in DOWNSTREAM_SECTIONS:
        lines += downstream_section(results, kind)
    lines += time_to_target_section(all_time_to_target(results, reference_strategy, probe_measure),
                                    reference_strategy)
    lines += plots_section(results, extra, recipe_dir)
    return "\n".join(lines).rstrip() + "\n"
