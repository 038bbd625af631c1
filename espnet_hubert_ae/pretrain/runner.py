"""The phase runner: every phase of a schedule in order -- targets, then ESPnet training.

For each phase: make its labels (k-means over MFCC, or over a layer of the previous phase's
final model, via ``targets.pipeline.make_targets``), write the ESPnet config, train, and check
the health of every layer of the result (``health``). Training runs ESPnet's HuBERT task in this
process, so that the imports and start-up are paid once per run, not once per phase; with a
``launcher`` (torchrun, srun) it runs in the processes that the launcher starts.

Every phase records what it cost (``utils.cost``): wall, CPU seconds of the whole process tree
(GPU seconds where GPUs are used) and seconds of audio trained on, for its targets -- the
features it clusters, whenever they were dumped, the k-means fit and the labels -- and for its
training.

Layout, one directory per strategy, model and budget::

    exp/pretrain/<strategy>_<model>[_<steps>]/
        schedule.json            the plan (global steps of every phase); a rerun must match it
        checkpoints.json         every kept checkpoint: path, config, strategy, phase, global step
        phase<N>/                ESPnet output dir: config.yaml, checkpoint.pth, train.log,
                                 <strategy>_phase<N>_step<G>.pth snapshots (global step 0 too in
                                 phase 1: the untrained model), tensorboard/, summary.json (cost,
                                 final accuracy, layer health) and .done when finished

Kill it at any point and rerun the same command: finished phases (``.done``) are skipped,
labels are reused (their own ``.done``), and the phase in progress resumes from its last ESPnet
checkpoint, ending at the same global step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import logging
import os
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from espnet_hubert_ae.data.datadir import SAMPLE_RATE
from espnet_hubert_ae.defaults import KEEP_FEATURES, KMEANS_PORTION, SEED
from espnet_hubert_ae.pretrain.health import checkpoint_health
from espnet_hubert_ae.pretrain.schedule import PhasePlan, Schedule, ScheduleError, load_schedule
from espnet_hubert_ae.pretrain.sharing import PHASE_KEY, adopt_phase, find_trained_phase, phase_key
from espnet_hubert_ae.targets.features import DEFAULT_FEATURE_DTYPE
from espnet_hubert_ae.utils.cost import Cost
from espnet_hubert_ae.utils.fileio import atomic_write_text, done_marker
from espnet_hubert_ae.utils.naming import phase_tag, run_tag, snapshot_name, snapshot_prefix, upstream_name
from espnet_hubert_ae.utils.presets import resolve_preset

logger = logging.getLogger(__name__)

class PretrainError(RuntimeError):
    """A phase could not be prepared or trained; the message names the phase and its log."""


@dataclasses.dataclass
class Labels:
    """A phase's label set: ESPnet ``text`` files per set and the token list."""

    texts: dict[str, Path]
    tokens: Path
    k: int
    summary: dict = dataclasses.field(default_factory=dict)
    cost: Cost = dataclasses.field(default_factory=Cost)  # features, k-means and labels of these sets


@dataclasses.dataclass
class PretrainJob:
    """Everything one strategy run needs. ``sets`` maps set names to data directories."""

    strategy: str
    model: str
    sets: dict[str, Path]
    train_set: str
    valid_set: str
    exp_root: Path = Path("exp/pretrain")
    targets_root: Path = Path("dump/targets")
    pretrain_steps: int | None = None
    ngpu: int = 0
    nj: int = 1
    seed: int = SEED
    kmeans_portion: float = KMEANS_PORTION
    keep_features: bool = KEEP_FEATURES  # store every set's layer features whole before labelling (default: stream)
    feature_dtype: str = DEFAULT_FEATURE_DTYPE  # precision of the stored k-means features
    label_cmd: str | None = None  # job runner for the label shards, e.g. "local/run_job.sh --gpu 1" (None: here)
    label_jobs: int | None = None  # label shards (None: nj)
    checkpoint_interval: int | None = None  # steps between resumable checkpoints (model config's default)
    valid_seconds: float | None = 240.0  # audio of the validation subset scored at each checkpoint (None: all)
    snapshot_every: int | None = None  # a snapshot every N global steps instead of the schedule's own
    budget: dict | None = None  # how pretrain_steps was chosen (schedule.budget_steps), for the record
    train_args: list[str] = dataclasses.field(default_factory=list)  # extra ESPnet options
    launcher: str | None = None  # e.g. "torchrun --nproc_per_node 8": runs "-m <trainer> ..." itself
    python: str = sys.executable


LabelMaker = Callable[[PretrainJob, str, PhasePlan, "Path | None", dict], Labels]


def make_labels_with_pipeline(job: PretrainJob, strategy: str, plan: PhasePlan, source_checkpoint: Path | None,
                              train_config: dict) -> Labels:
    """Labels of a phase via the targets pipeline (features -> k-means -> labels), kept under the
    name of what determines them: a phase asking for labels another run already made reuses them."""
    from espnet_hubert_ae.model.hubert import frame_counter
    from espnet_hubert_ae.targets.jobs import job_array
    from espnet_hubert_ae.targets.pipeline import MFCC, Layer, make_targets, target_dir

    if plan.layer is None:
        source = MFCC()
    else:
        # Named by the whole run, so runs of one strategy with another model or budget keep their own.
        run = run_tag(strategy, job.model, job.pretrain_steps)
        source = Layer(source_checkpoint, plan.layer, tag=phase_tag(run, plan.index - 1))
    key = dict(train_set=job.train_set, portion=job.kmeans_portion, seed=job.seed, feature_dtype=job.feature_dtype)
    out_dir = target_dir(job.targets_root, source, plan.k, expected_frames=frame_counter(train_config), **key)
    sets = {name: job.sets[name] for name in (job.train_set, job.valid_set)}
    target_set = make_targets(
        sets=sets, source=source, k=plan.k, out_dir=out_dir, nj=job.label_jobs or job.nj,
        device="cuda" if job.ngpu > 0 else "cpu", frames_from=train_config,
        feature_root=Path(job.targets_root) / "features", keep_features=job.keep_features,
        label_jobs=job_array(job.label_cmd) if job.label_cmd else None, **key,
    )  # fmt: skip
    return Labels({s: target_set.text(s) for s in sets}, target_set.tokens, plan.k, target_set.summary,
                  target_set.cost(list(sets)))


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What a job will run: its schedule, model config, phases (global steps, snapshots) and directory."""

    schedule: Schedule
    model_config: dict
    phases: list[PhasePlan]
    exp_dir: Path

    def to_dict(self) -> dict:
        return {"run": self.exp_dir.name, "strategy": self.schedule.name, "exp_dir": str(self.exp_dir),
                "steps": self.phases[-1].end_step, "phases": [p.to_dict() for p in self.phases]}


def plan_run(job: PretrainJob) -> RunPlan:
    """The plan of ``job``, from its strategy, model, budget and snapshot interval; nothing is run."""
    schedule = load_schedule(job.strategy, job.pretrain_steps)
    model_config = yaml.safe_load(resolve_preset("model", job.model).read_text())
    num_layers = int(model_config.get("encoder_conf", {}).get("encoder_num_layers", 12))
    plans = schedule.plan(num_layers, job.snapshot_every)
    return RunPlan(schedule, model_config, plans, Path(job.exp_root) / run_tag(schedule.name, job.model, job.pretrain_steps))


def run_schedule(job: PretrainJob, make_labels: LabelMaker = make_labels_with_pipeline) -> Path:
    """Run (or resume) every phase of ``job.strategy``; returns the experiment directory."""
    run = plan_run(job)
    schedule, model_config, plans, exp_dir = run.schedule, run.model_config, run.phases, run.exp_dir
    _check_same_plan(exp_dir, schedule, job, plans)
    logger.info("strategy %s: %d phases, %d steps in all -> %s", schedule.name, len(plans), plans[-1].end_step, exp_dir)

    previous_dir: Path | None = None
    for plan in plans:
        phase_dir = exp_dir / f"phase{plan.index}"
        if done_marker(phase_dir).is_file():
            logger.info("phase %d is done (%s); skipping it", plan.index, phase_dir)
        else:
            run_phase(job, schedule, plan, model_config, phase_dir, previous_dir, make_labels)
        write_checkpoint_list(exp_dir, schedule, plans)
        previous_dir = phase_dir
    return exp_dir


def run_phase(job: PretrainJob, schedule: Schedule, plan: PhasePlan, model_config: dict, phase_dir: Path,
              previous_dir: Path | None, make_labels: LabelMaker) -> dict:
    """Labels, config, training and summary of one phase."""
    phase_dir.mkdir(parents=True, exist_ok=True)
    logger.info("phase %d: steps %d..%d, targets %s (layer %s), K=%d, init %s", plan.index, plan.start_step,
                plan.end_step, plan.targets.describe(), plan.layer, plan.k, plan.init)
    previous_final = final_snapshot(previous_dir, schedule.name, plan.index - 1, plan.start_step) if previous_dir else None
    if previous_final is not None and not previous_final.is_file():
        raise PretrainError(f"phase {plan.index}: the previous phase's final model {previous_final} is missing")

    phase_started = time.perf_counter()
    base_config = {**model_config, "num_classes": plan.k}
    labels = make_labels(job, schedule.name, plan, previous_final, base_config)
    targets_s = time.perf_counter() - phase_started

    config = training_config(job, schedule, plan, model_config, labels, phase_dir, previous_dir)
    config_path = phase_dir / "train.yaml"
    atomic_write_text(config_path, yaml.safe_dump(config, sort_keys=False))

    key = phase_key(config, previous_dir)
    atomic_write_text(phase_dir / PHASE_KEY, key + "\n")
    twin = find_trained_phase(Path(job.exp_root), key, exclude=phase_dir, snapshot_steps=plan.snapshot_steps)
    started = time.perf_counter()
    if twin is None:
        train(job, config_path, phase_dir / "train.log", plan)
    else:  # the same training was done for another run: take it, do not repeat it
        twin_summary = json.loads((twin / "summary.json").read_text())
        adopt_phase(twin, phase_dir, twin_summary["snapshot_prefix"], config["snapshot_prefix"],
                    snapshot_steps=plan.snapshot_steps)
    timing = {"targets_s": round(targets_s, 2), "train_call_s": round(time.perf_counter() - started, 2),
              "loop_s": round(_training_record(phase_dir).get("loop_s", 0.0), 2),
              "adopted_from": None if twin is None else str(twin)}
    training = training_cost(phase_dir, job.ngpu)

    final = final_snapshot(phase_dir, schedule.name, plan.index, plan.end_step)
    if not final.is_file():
        raise PretrainError(f"phase {plan.index}: training ended without its final model {final}; see {phase_dir}/train.log")
    health = checkpoint_health(final, job.sets[job.valid_set])
    for warning in health["warnings"]:
        logger.warning("phase %d: %s (%s)", plan.index, warning, final.name)
    timing["phase_s"] = round(time.perf_counter() - phase_started, 2)  # this call: targets to health check
    summary = phase_summary(schedule, plan, phase_dir, labels, training, timing, health)
    atomic_write_text(phase_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    done_marker(phase_dir).touch()
    remove_epoch_copies(phase_dir)
    return summary


def training_cost(phase_dir: Path, ngpu: int) -> Cost:
    """What training a phase cost, as its trainer recorded it (``task.CostClock``), over every rank."""
    record = _training_record(phase_dir)
    world = int(record.get("world_size", 1))
    gpus = world if ngpu > 0 else 0  # one GPU per rank (ESPnet's own DDP and launchers alike)
    return Cost(wall_s=record["wall_s"], cpu_s=record["cpu_s"] * world, gpu_s=record["wall_s"] * gpus,
                audio_s=record["audio_s"] * world)


def _training_record(phase_dir: Path) -> dict:
    from espnet_hubert_ae.pretrain.task import TRAINING_COST

    return json.loads((Path(phase_dir) / TRAINING_COST).read_text())


def remove_epoch_copies(phase_dir: Path) -> None:
    """Drop ESPnet's per-epoch model copies and averages: the snapshots are the kept models.

    ``checkpoint.pth`` (model, optimizer and scheduler state at the phase end) stays: the next
    phase warm-starts from it.
    """
    # Links first: once their targets are gone, glob no longer sees them.
    for pattern in ("latest.pth", "valid.*.pth", "train.*.pth", "*epoch.pth"):
        for path in phase_dir.glob(pattern):
            path.unlink()


def training_config(job: PretrainJob, schedule: Schedule, plan: PhasePlan, model_config: dict, labels: Labels,
                    phase_dir: Path, previous_dir: Path | None) -> dict:
    """The ESPnet config of one phase: the model config plus data, schedule hooks and loss weights."""
    shapes = {
        job.train_set: write_shape_file(job.sets[job.train_set], labels.texts[job.train_set],
                                        phase_dir / f"{job.train_set}_speech_shape"),
        job.valid_set: write_shape_file(job.sets[job.valid_set], labels.texts[job.valid_set],
                                        phase_dir / f"{job.valid_set}_speech_shape", max_seconds=job.valid_seconds),
    }  # fmt: skip
    # An ESPnet "epoch" is `interval` updates (accum_grad iterations each): the checkpoint
    # interval. The phase ends at its global step (PhaseTrainer); mixed precision may skip
    # updates on overflow, so it gets one spare epoch, which ends empty when not needed.
    interval = job.checkpoint_interval or int(model_config.get("num_iters_per_epoch") or 1000)
    interval = max(1, min(interval, plan.steps))
    accum_grad = int(model_config.get("accum_grad") or 1)
    spare_epochs = 1 if model_config.get("use_amp") else 0
    curve = plan.lr_curve
    config = dict(model_config)
    from espnet_hubert_ae.model.hubert import frame_grid

    # ESPnet crops a batch's audio and labels together on the model's frame grid (in ms).
    grid = frame_grid(model_config)
    collate = {**(model_config.get("collate_fn_conf") or {}),
               "window_size": grid.window * 1000 / SAMPLE_RATE, "window_shift": grid.hop * 1000 / SAMPLE_RATE}
    config.update(
        collate_fn_conf=collate,
        token_list=str(labels.tokens),
        token_type="word",
        num_classes=labels.k,
        train_data_path_and_name_and_type=[[str(Path(job.sets[job.train_set]) / "wav.scp"), "speech", "sound"],
                                           [str(labels.texts[job.train_set]), "text", "text"]],
        valid_data_path_and_name_and_type=[[str(Path(job.sets[job.valid_set]) / "wav.scp"), "speech", "sound"],
                                           [str(labels.texts[job.valid_set]), "text", "text"]],
        train_shape_file=[str(shapes[job.train_set])],
        valid_shape_file=[str(shapes[job.valid_set])],
        output_dir=str(phase_dir),
        model="torchaudio",
        model_conf={**(model_config.get("model_conf") or {}), "masked_weight": schedule.loss.masked,
                    "unmasked_weight": schedule.loss.unmasked, "feature_weight": schedule.loss.feature_penalty},
        scheduler="phaselr",
        scheduler_conf=dataclasses.asdict(curve),
        num_iters_per_epoch=interval * accum_grad,
        max_epoch=-(-plan.steps // interval) + spare_epochs,
        phase_end_step=plan.end_step,
        snapshot_steps=list(plan.snapshot_steps),
        snapshot_prefix=snapshot_prefix(schedule.name, plan.index),
        warm_start_from=str(previous_dir / "checkpoint.pth") if plan.init == "continue" else None,
        resume=True,
        seed=job.seed + plan.index - 1,
        keep_nbest_models=1,
        best_model_criterion=[["valid", "loss", "min"]],
        num_att_plot=0,
        use_matplotlib=False,
        use_tensorboard=True,
    )  # fmt: skip
    return config


def write_shape_file(data_dir: Path, text: Path, path: Path, max_seconds: float | None = None) -> Path:
    """ESPnet's ``speech_shape`` (utterance, samples) for the utterances of a data directory.

    Every utterance must have labels: a missing one is an error, never silently dropped. With
    ``max_seconds``, a fixed subset of about that much audio, spread evenly over the id-sorted
    utterances (so over speakers): validation at every checkpoint then costs seconds, not minutes.
    """
    from espnet_hubert_ae.data.datadir import SAMPLE_RATE, read_table

    samples = read_table(Path(data_dir) / "utt2num_samples")
    labelled = {line.split(maxsplit=1)[0] for line in Path(text).read_text().splitlines() if line.strip()}
    missing = sorted(set(samples) - labelled)
    if missing:
        raise PretrainError(f"{text}: no labels for {len(missing)} utterance(s) of {data_dir}, e.g. {missing[0]}")
    utts = sorted(samples)
    total = sum(int(n) for n in samples.values()) / SAMPLE_RATE
    if max_seconds and total > max_seconds:
        stride = total / max_seconds
        utts = utts[:: max(1, int(stride))]
        while len(utts) > 1 and sum(int(samples[u]) for u in utts) / SAMPLE_RATE > max_seconds:
            utts.pop()
    atomic_write_text(path, "".join(f"{utt} {int(samples[utt])}\n" for utt in utts))
    return path


def train(job: PretrainJob, config_path: Path, log_path: Path, plan: PhasePlan) -> None:
    """One phase of ESPnet training, its output in ``log_path``.

    In this process (imports and start-up paid once per run), unless ``job.launcher`` starts
    the training processes (torchrun, srun): then in those, as a subprocess.
    """
    args = ["--config", str(config_path), "--ngpu", str(job.ngpu), *job.train_args]
    logger.info("phase %d: training, log in %s", plan.index, log_path)
    if job.launcher is None:
        _train_here(args, log_path, plan)
        return
    cmd = [*shlex.split(job.launcher), "-m", "espnet_hubert_ae.bin.hubert_train", *args]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    with open(log_path, "a", encoding="utf-8") as log:
        log.write("# " + " ".join(cmd) + "\n")
        log.flush()
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if rc != 0:
        raise PretrainError(f"phase {plan.index}: training failed (exit code {rc}); see {log_path}:\n{_tail(log_path)}")


def _train_here(args: list[str], log_path: Path, plan: PhasePlan) -> None:
    """ESPnet's HuBERT task in this process, everything it logs or prints going to ``log_path``."""
    from espnet_hubert_ae.pretrain.task import PhaseHubertTask

    failure = None
    with open(log_path, "a", encoding="utf-8") as log, _logging_to(log):
        log.write("# hubert_train " + " ".join(args) + "\n")
        log.flush()
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                PhaseHubertTask.main(cmd=args)
        except SystemExit as err:  # ESPnet's argument parser exits on a bad option
            if err.code not in (0, None):
                failure = f"exit code {err.code}"
        except Exception as err:  # noqa: BLE001 -- any failure of a phase is reported with its log
            traceback.print_exc(file=log)
            failure = f"{type(err).__name__}: {err}"
    gc.collect()  # the phase's model and optimizer go before the next phase builds its own
    if failure:
        raise PretrainError(f"phase {plan.index}: training failed ({failure}); see {log_path}:\n{_tail(log_path)}")


@contextlib.contextmanager
def _logging_to(stream) -> Iterator[None]:
    """Route every log record to ``stream`` in ESPnet's own format (as its CLI would write it)."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    handler = logging.StreamHandler(stream)
    host = os.uname()[1].split(".")[0]
    handler.setFormatter(logging.Formatter(f"[{host}] %(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def _tail(log_path: Path, lines: int = 20) -> str:
    return "\n".join(Path(log_path).read_text(errors="replace").splitlines()[-lines:])


def final_snapshot(phase_dir: Path, strategy: str, phase: int, step: int) -> Path:
    return Path(phase_dir) / snapshot_name(strategy, phase, step)


def last_epoch_stats(checkpoint: Path) -> dict[str, Any]:
    """Train/valid loss and masked accuracy of the last ESPnet epoch (from its reporter state)."""
    import torch

    if not checkpoint.is_file():
        return {}
    reporter = torch.load(checkpoint, map_location="cpu", weights_only=False)["reporter"]
    trained = [epoch for epoch, stats in reporter["stats"].items() if stats.get("train", {}).get("loss") is not None]
    if not trained:
        return {}
    stats = reporter["stats"][max(trained)]
    out = {}
    for mode in ("train", "valid"):
        for key in ("loss", "acc_m", "acc_u"):
            value = stats.get(mode, {}).get(key)
            if value is not None:
                out[f"{mode}_{key}"] = float(value)
    return out


def phase_summary(schedule: Schedule, plan: PhasePlan, phase_dir: Path, labels: Labels, training: Cost,
                  timing: dict, health: dict) -> dict:
    """What the phase did: steps, cost, final loss and accuracy, labels used, layer health.

    ``timing``: wall seconds of this call's parts -- the targets, the training call (start-up,
    validation and checkpoints included), the whole phase -- and of the training loops alone,
    whose ratio to the steps is the throughput.
    """
    start_info = phase_dir / "phase_start.json"
    return {
        "strategy": schedule.name,
        "phase": plan.index,
        "plan": plan.to_dict(),
        "steps": plan.steps,
        "global_steps": [plan.start_step, plan.end_step],
        "cost": {"targets": labels.cost.to_dict(), "training": training.to_dict(),
                 "total": (labels.cost + training).to_dict()},
        "timing": timing,
        "snapshot_prefix": snapshot_prefix(schedule.name, plan.index),
        "steps_per_second": round(plan.steps / timing["loop_s"], 3) if timing["loop_s"] > 0 else None,
        "final": last_epoch_stats(phase_dir / "checkpoint.pth"),
        "health": health,
        "labels": {"texts": {k: str(Path(v).resolve()) for k, v in labels.texts.items()},
                   "tokens": str(Path(labels.tokens).resolve()), "k": labels.k,
                   "source": labels.summary.get("source")},
        "start": json.loads(start_info.read_text()) if start_info.is_file() else None,
        "snapshots": [str(final_snapshot(phase_dir, schedule.name, plan.index, s).resolve()) for s in plan.snapshot_steps],
    }  # fmt: skip


def write_checkpoint_list(exp_dir: Path, schedule: Schedule, plans: list[PhasePlan]) -> Path:
    """``checkpoints.json``: every kept checkpoint of the finished phases, for upstream registration."""
    entries = []
    for plan in plans:
        phase_dir = exp_dir / f"phase{plan.index}"
        if not done_marker(phase_dir).is_file():
            continue
        for step in plan.snapshot_steps:
            path = final_snapshot(phase_dir, schedule.name, plan.index, step)
            if path.is_file():
                entries.append({
                    "path": str(path.resolve()), "config": str((phase_dir / "config.yaml").resolve()),
                    "strategy": schedule.name, "phase": plan.index, "global_step": step,
                    "phase_end": step == plan.end_step, "layer_targets": plan.targets.describe(), "k": plan.k,
                    "run": exp_dir.name, "name": upstream_name(exp_dir.name, plan.index, step),
                })  # fmt: skip
    path = exp_dir / "checkpoints.json"
    atomic_write_text(path, json.dumps(entries, indent=1) + "\n")
    return path


def _check_same_plan(exp_dir: Path, schedule: Schedule, job: PretrainJob, plans: list[PhasePlan]) -> None:
    """A rerun in the same directory must run the same plan, or finished phases would not fit."""
    record = {"strategy": schedule.name, "source": schedule.source, "control_of": schedule.control_of or None,
              "model": job.model, "pretrain_steps": job.pretrain_steps, "budget": job.budget,
              "loss": dataclasses.asdict(schedule.loss), "phases": [p.to_dict() for p in plans]}  # fmt: skip
    record = json.loads(json.dumps(record))  # as it reads back (tuples as lists)
    path = exp_dir / "schedule.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("phases") != record["phases"]:
            raise ScheduleError(
                f"{exp_dir} was run with another plan for strategy '{schedule.name}' ({path}); "
                "remove that directory or use another --pretrain_steps"
            )
        if old == record:
            return
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")  # the same plan: its description refreshed
