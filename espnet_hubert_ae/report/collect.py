"""Gather what every stage left in a recipe directory into plain records for the report.

Nothing here recomputes a result: each record is read from the files the stages wrote
(``exp/pretrain/*/``, ``dump/targets/*/``, ``exp/analysis/*/``, ``exp/asr_superb/``, ``exp/pr/``,
``exp/finetune/``, ``exp/upstreams.json``, ``exp/stage_times.tsv``). A stage that has not run
simply leaves its part empty.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from collections import defaultdict
from pathlib import Path

from espnet_hubert_ae.asr.results import DownstreamResult, collect_downstream
from espnet_hubert_ae.upstream.registry import Registry, read_registry
from espnet_hubert_ae.utils.cost import Cost

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Phase:
    index: int
    start_step: int
    end_step: int
    source: str  # "mfcc" or "layer L"
    k: int
    init: str  # scratch / continue
    targets: Cost  # features (whenever dumped), k-means and labels of its training and validation sets
    training: Cost
    quality: dict[str, dict]  # set -> {pnmi, phone_purity, cluster_purity, ...}
    health: dict = dataclasses.field(default_factory=dict)  # pretrain.health record of its final model
    adopted_from: str | None = None  # the identical phase of another run it took instead of training
    target_set: str | None = None  # the label set it trained on (its folder under dump/targets)

    @property
    def cost(self) -> Cost:
        return self.targets + self.training


@dataclasses.dataclass
class PretrainRun:
    """One pretraining experiment (``exp/pretrain/<strategy>_<model>[_<steps>]``)."""

    name: str
    strategy: str
    model: str
    directory: Path
    phases: list[Phase]
    complete: bool
    budget: dict | None = None  # how its steps were chosen (bin.pretrain --budget), None: the schedule's own
    control_of: str | None = None  # the strategy this run is a control of (its schedule's control_of)

    @property
    def steps(self) -> int:
        return self.phases[-1].end_step if self.phases else 0

    def cost(self, step: float | None = None) -> Cost:
        """What the run cost up to global ``step`` (default: all of it; a fraction is allowed):
        earlier phases whole, then the current phase's targets and its training pro rata."""
        spent = Cost()
        for phase in self.phases:
            if step is None or step >= phase.end_step:
                spent += phase.cost
                continue
            if step > phase.start_step:
                share = (step - phase.start_step) / max(1, phase.end_step - phase.start_step)
                spent += phase.targets + phase.training.scaled(share)
            break
        return spent


@dataclasses.dataclass
class Analysis:
    """One analysed data set: layer curves per checkpoint and measure, plus the summary."""

    set_name: str
    directory: Path
    curves: dict[str, dict[str, list[float]]]  # checkpoint -> measure -> per-layer values
    summary: dict
    plots: list[Path]
    results: dict[str, dict] = dataclasses.field(default_factory=dict)  # checkpoint -> its results.json


@dataclasses.dataclass
class StageTime:
    stage: int
    started: str
    seconds: float  # wall
    command: str
    cpu_seconds: float | None = None  # the recipe's whole process tree (not recorded by older runs)


@dataclasses.dataclass
class Results:
    recipe_dir: Path
    runs: dict[str, PretrainRun]
    registry: Registry
    analyses: list[Analysis]
    asr: list[DownstreamResult]
    stage_times: list[StageTime]
    data_sets: dict[str, dict]  # set -> {utterances, hours}

    def run_of(self, checkpoint_name: str) -> tuple[str | None, int | None]:
        """(pretraining run, global step) of a registered checkpoint name."""
        entry = self.registry.get(checkpoint_name)
        return (entry.run, entry.step) if entry else (None, None)


def _read_json(path: Path) -> dict | list | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); rerun the stage that writes it") from err


def _phase(summary: dict) -> Phase:
    plan = summary["plan"]
    source = "mfcc" if plan.get("layer") is None else f"layer {plan['layer']}"
    quality = {}
    texts = (summary.get("labels") or {}).get("texts", {})
    for set_name, text in texts.items():
        found = _read_json(Path(text).parent / "quality.json")
        if found:
            quality[set_name] = found
    target_set = Path(next(iter(texts.values()))).parent.parent.name if texts else None
    cost = summary.get("cost") or {}
    return Phase(int(plan["index"]), int(plan["start_step"]), int(plan["end_step"]), source, int(plan["k"]),
                 str(plan.get("init", "scratch")), Cost.from_dict(cost.get("targets")),
                 Cost.from_dict(cost.get("training")), quality, summary.get("health") or {},
                 (summary.get("timing") or {}).get("adopted_from"), target_set)


def collect_runs(pretrain_root: Path) -> dict[str, PretrainRun]:
    runs = {}
    for schedule_path in sorted(pretrain_root.glob("*/schedule.json")):
        directory = schedule_path.parent
        schedule = _read_json(schedule_path)
        planned = len(schedule.get("phases", []))
        phases = [_phase(_read_json(p)) for p in sorted(directory.glob("phase*/summary.json"))]
        phases.sort(key=lambda p: p.index)
        runs[directory.name] = PretrainRun(
            name=directory.name, strategy=str(schedule.get("strategy", directory.name)),
            model=Path(str(schedule.get("model", "?"))).stem, directory=directory, phases=phases,
            complete=bool(phases) and len(phases) == planned, budget=schedule.get("budget"),
            control_of=schedule.get("control_of"),
        )
    return runs


def collect_analyses(analysis_root: Path) -> list[Analysis]:
    analyses = []
    for table in sorted(analysis_root.glob("*/table.tsv")):
        curves: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        with open(table, newline="", encoding="utf-8") as f:
            rows = sorted(csv.DictReader(f, delimiter="\t"), key=lambda r: int(r["layer"]))
        for row in rows:
            curves[row["checkpoint"]][row["measure"]].append(float(row["value"]))
        summary = _read_json(table.parent / "summary.json") or {}
        plots = sorted((table.parent / "plots").glob("*.png"))
        results = {}
        for path in sorted(table.parent.glob("**/results.json")):
            result = _read_json(path)
            if result and "checkpoint" in result:
                results[result["checkpoint"]["name"]] = result
        analyses.append(Analysis(table.parent.name, table.parent, {k: dict(v) for k, v in curves.items()},
                                 summary, plots, results))
    return analyses


def collect_asr(exp_root: Path, registry: Registry) -> list[DownstreamResult]:
    """Frozen ASR, phoneme recognition and fine-tuning evaluations (see espnet_hubert_ae.asr.results)."""
    return collect_downstream(exp_root, registry)


def collect_stage_times(path: Path) -> list[StageTime]:
    """Latest recorded duration of every stage (run.sh appends one line per finished stage:
    stage, start, wall seconds, CPU seconds, command; older records lack the CPU seconds)."""
    if not path.is_file():
        return []
    latest: dict[int, StageTime] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) >= 5 and fields[0].isdigit():
            latest[int(fields[0])] = StageTime(int(fields[0]), fields[1], float(fields[2]), fields[4], float(fields[3]))
        elif len(fields) == 4 and fields[0].isdigit():
            latest[int(fields[0])] = StageTime(int(fields[0]), fields[1], float(fields[2]), fields[3])
    return [latest[k] for k in sorted(latest)]


def collect_data_sets(dumpdir: Path) -> dict[str, dict]:
    sets = {}
    for lengths in sorted(dumpdir.glob("*/utt2num_samples")):
        samples = [int(line.split()[1]) for line in lengths.read_text().splitlines() if line.strip()]
        sets[lengths.parent.name] = {"utterances": len(samples), "hours": sum(samples) / 16000 / 3600}
    return sets


def collect(recipe_dir: str | Path, expdir: str = "exp", dumpdir: str = "dump/raw") -> Results:
    recipe_dir = Path(recipe_dir)
    exp_root = recipe_dir / expdir
    registry_path = exp_root / "upstreams.json"
    registry = read_registry(registry_path) if registry_path.is_file() else Registry()
    return Results(
        recipe_dir=recipe_dir,
        runs=collect_runs(exp_root / "pretrain"),
        registry=registry,
        analyses=collect_analyses(exp_root / "analysis"),
        asr=collect_asr(exp_root, registry),
        stage_times=collect_stage_times(exp_root / "stage_times.tsv"),
        data_sets=collect_data_sets(recipe_dir / dumpdir),
    )
