"""The phase runner: every phase of a schedule in order -- targets, then ESPnet training.

For each phase: make its labels (k-means over MFCC, or over a layer of the previous phase's
final model, via ``targets.pipeline.make_targets``), write the ESPnet config, and train in a
subprocess (``python -m espnet_hubert_ae.bin.hubert_train``). A subprocess per phase is how
ESPnet recipes run training: ESPnet's ``main`` owns logging, spawns its own DDP workers and
exits the process; a crash or an out-of-memory kill stays inside one phase, and the runner
(which holds nothing heavy) reports it with the log's tail.

Layout, one directory per strategy, model and budget::

    exp/pretrain/<strategy>_<model>[_<steps>]/
        schedule.json            the plan (global steps of every phase); a rerun must match it
        checkpoints.json         every kept checkpoint: path, config, strategy, phase, global step
        phase<N>/                ESPnet output dir: config.yaml, checkpoint.pth, train.log,
                                 <strategy>_phase<N>_step<G>.pth snapshots, tensorboard/,
                                 summary.json and .done when finished

Kill it at any point and rerun the same command: finished phases (``.done``) are skipped,
labels are reused (their own ``.done``), and the phase in progress resumes from its last ESPnet
checkpoint, ending at the same global step.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from espnet_hubert_ae.pretrain.schedule import PhasePlan, Schedule, ScheduleError, load_schedule
from espnet_hubert_ae.targets.kmeans import KMEANS_PORTION
from espnet_hubert_ae.utils.fileio import atomic_write_text, done_marker
from espnet_hubert_ae.utils.naming import phase_tag, run_tag, snapshot_name, snapshot_prefix, target_tag, upstream_name
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
    seed: int = 1
    kmeans_portion: float = KMEANS_PORTION
    checkpoint_interval: int | None = None  # steps between resumable checkpoints (model config's default)
    train_args: list[str] = dataclasses.field(default_factory=list)  # extra ESPnet options
    launcher: str | None = None  # e.g. "torchrun --nproc_per_node 8": runs "-m <trainer> ..." itself
    python: str = sys.executable


LabelMaker = Callable[[PretrainJob, str, PhasePlan, "Path | None", dict], Labels]


def make_labels_with_pipeline(job: PretrainJob, strategy: str, plan: PhasePlan, source_checkpoint: Path | None,
                              train_config: dict) -> Labels:
    """Labels of a phase via the targets pipeline (features -> k-means -> labels), kept by tag."""
    from espnet_hubert_ae.model.hubert import frame_counter
    from espnet_hubert_ae.targets.pipeline import MFCC, Layer, make_targets

    if plan.layer is None:
        source = MFCC()
    else:
        # Named by the whole run, so runs of one strategy with another model or budget keep their own.
        run = run_tag(strategy, job.model, job.pretrain_steps)
        source = Layer(source_checkpoint, plan.layer, tag=phase_tag(run, plan.index - 1))
    out_dir = Path(job.targets_root) / target_tag(strategy, plan.index, source.name, plan.k)
    sets = {name: job.sets[name] for name in (job.train_set, job.valid_set)}
    target_set = make_targets(
        sets=sets, train_set=job.train_set, source=source, k=plan.k, out_dir=out_dir, portion=job.kmeans_portion,
        seed=job.seed, nj=job.nj, device="cuda" if job.ngpu > 0 else "cpu",
        expected_frames=frame_counter(train_config), feature_root=Path(job.targets_root) / "features",
    )  # fmt: skip
    return Labels({s: target_set.text(s) for s in sets}, target_set.tokens, plan.k, target_set.summary)


def run_schedule(job: PretrainJob, make_labels: LabelMaker = make_labels_with_pipeline) -> Path:
    """Run (or resume) every phase of ``job.strategy``; returns the experiment directory."""
    schedule = load_schedule(job.strategy, job.pretrain_steps)
    model_config_path = resolve_preset("model", job.model)
    model_config = yaml.safe_load(model_config_path.read_text())
    num_layers = int(model_config.get("encoder_conf", {}).get("encoder_num_layers", 12))
    plans = schedule.plan(num_layers)
    exp_dir = Path(job.exp_root) / run_tag(schedule.name, job.model, job.pretrain_steps)
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

    start = time.perf_counter()
    base_config = {**model_config, "num_classes": plan.k}
    labels = make_labels(job, schedule.name, plan, previous_final, base_config)
    targets_seconds = time.perf_counter() - start

    config = training_config(job, schedule, plan, model_config, labels, phase_dir, previous_dir)
    config_path = phase_dir / "train.yaml"
    atomic_write_text(config_path, yaml.safe_dump(config, sort_keys=False))

    start = time.perf_counter()
    train(job, config_path, phase_dir / "train.log", plan)
    training_seconds = time.perf_counter() - start

    final = final_snapshot(phase_dir, schedule.name, plan.index, plan.end_step)
    if not final.is_file():
        raise PretrainError(f"phase {plan.index}: training ended without its final model {final}; see {phase_dir}/train.log")
    summary = phase_summary(schedule, plan, phase_dir, labels, targets_seconds, training_seconds)
    atomic_write_text(phase_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    done_marker(phase_dir).touch()
    remove_epoch_copies(phase_dir)
    return summary


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
    shapes = {name: write_shape_file(job.sets[name], labels.texts[name], phase_dir / f"{name}_speech_shape")
              for name in (job.train_set, job.valid_set)}
    # An ESPnet "epoch" is `interval` updates (accum_grad iterations each): the checkpoint
    # interval. The phase ends at its global step (PhaseTrainer); mixed precision may skip
    # updates on overflow, so it gets one spare epoch, which ends empty when not needed.
    interval = job.checkpoint_interval or int(model_config.get("num_iters_per_epoch") or 1000)
    interval = max(1, min(interval, plan.steps))
    accum_grad = int(model_config.get("accum_grad") or 1)
    spare_epochs = 1 if model_config.get("use_amp") else 0
    curve = plan.lr_curve
    config = dict(model_config)
    config.update(
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


def write_shape_file(data_dir: Path, text: Path, path: Path) -> Path:
    """ESPnet's ``speech_shape`` (utterance, samples) for the utterances of a data directory.

    Every utterance must have labels: a missing one is an error, never silently dropped.
    """
    from espnet_hubert_ae.data.datadir import read_table

    samples = read_table(Path(data_dir) / "utt2num_samples")
    labelled = {line.split(maxsplit=1)[0] for line in Path(text).read_text().splitlines() if line.strip()}
    missing = sorted(set(samples) - labelled)
    if missing:
        raise PretrainError(f"{text}: no labels for {len(missing)} utterance(s) of {data_dir}, e.g. {missing[0]}")
    atomic_write_text(path, "".join(f"{utt} {int(samples[utt])}\n" for utt in sorted(samples)))
    return path


def train(job: PretrainJob, config_path: Path, log_path: Path, plan: PhasePlan) -> None:
    """One phase of ESPnet training in a subprocess, its output in ``log_path``."""
    launcher = shlex.split(job.launcher) if job.launcher else [job.python]
    cmd = [*launcher, "-m", "espnet_hubert_ae.bin.hubert_train", "--config", str(config_path),
           "--ngpu", str(job.ngpu), *job.train_args]  # fmt: skip
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    logger.info("phase %d: training, log in %s", plan.index, log_path)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write("# " + " ".join(cmd) + "\n")
        log.flush()
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if rc != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        raise PretrainError(f"phase {plan.index}: training failed (exit code {rc}); see {log_path}:\n{tail}")


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


def phase_summary(schedule: Schedule, plan: PhasePlan, phase_dir: Path, labels: Labels, targets_seconds: float,
                  training_seconds: float) -> dict:
    """What the phase did: steps, wall time split, final loss and accuracy, labels used."""
    label_seconds = labels.summary.get("seconds", {})
    start_info = phase_dir / "phase_start.json"
    return {
        "strategy": schedule.name,
        "phase": plan.index,
        "plan": plan.to_dict(),
        "steps": plan.steps,
        "global_steps": [plan.start_step, plan.end_step],
        "seconds": {
            "training": round(training_seconds, 2),
            "targets": round(targets_seconds, 2),
            "features": label_seconds.get("features"),
            "kmeans": label_seconds.get("kmeans"),
            "labels": label_seconds.get("labels"),
        },
        "steps_per_second": round(plan.steps / training_seconds, 3) if training_seconds > 0 else None,
        "final": last_epoch_stats(phase_dir / "checkpoint.pth"),
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
    record = {"strategy": schedule.name, "source": schedule.source, "model": job.model,
              "pretrain_steps": job.pretrain_steps, "loss": dataclasses.asdict(schedule.loss),
              "phases": [p.to_dict() for p in plans]}  # fmt: skip
    path = exp_dir / "schedule.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("phases") != json.loads(json.dumps(record["phases"])):
            raise ScheduleError(
                f"{exp_dir} was run with another plan for strategy '{schedule.name}' ({path}); "
                "remove that directory or use another --pretrain_steps"
            )
        return
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
