"""Our ESPnet HuBERT task: stock ``HubertTask`` training with the schedule's hooks.

One call of ``PhaseHubertTask.main`` trains one phase of a schedule. The model, its checkpoints
and its ``config.yaml`` stay ESPnet's (``model: torchaudio``, encoder ``torchaudio_hubert``, or
the log-mel ``torchaudio_hubert_logmel`` that ``model.encoders`` adds to the task's encoder
table), so ``HubertTask.build_model_from_file`` and s3prl load them. What is ours:

- ``PhaseLR``: the learning rate as a pure function of the global step (``schedule.LRCurve``);
  its step count *is* the global step, saved and resumed by ESPnet with the other states;
  a phase starts it at the phase's first global step. It also carries what the phase's training
  has cost so far (wall and CPU seconds, seconds of audio), so that a resumed phase still knows
  what the work before its interruption cost.
- ``PhaseTrainer``: ends the phase at its last global step, keeps snapshots at scheduled global
  steps (the phase's first step too when it is scheduled: a run's untrained model), warm-starts
  a continued phase (``warmstart.warm_start``), counts the audio of every batch, and in
  distributed runs checks that every rank holds the same weights at the end.
- ``WeightedLossHubertModel``: the stock model with configurable masked / unmasked /
  feature-penalty weights (ESPnet's torchaudio path fixes them at 1 / 0 / 10), read from
  ``model_conf`` keys that stock ESPnet ignores (no feature penalty on a parameter-free front
  end); its statistics are all floating point, which ESPnet's distributed averaging needs (the
  stock model's integer counts break DDP runs).
  Its logits are computed as a matrix product (``model.logits``): the same values as
  torchaudio's, without the ``[classes, frames, dim]`` tensor that made a K=500 step 2.8x slower
  than a K=100 one on a CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import logging
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

import torch

from espnet_hubert_ae.data.datadir import SAMPLE_RATE
from espnet_hubert_ae.model.encoders import register_in_espnet
from espnet_hubert_ae.model.logits import use_matmul_logits
from espnet_hubert_ae.pretrain.schedule import LRCurve
from espnet_hubert_ae.utils.cost import cpu_seconds
from espnet_hubert_ae.utils.fileio import atomic_open, atomic_write_text
from espnet_hubert_ae.utils.naming import snapshot_file

with contextlib.redirect_stdout(io.StringIO()):
    # ESPnet prints a notice about optional flash attention on import.
    from espnet2.hubert.espnet_model import TorchAudioHubertPretrainModel
    from espnet2.schedulers.abs_scheduler import AbsBatchStepScheduler
    from espnet2.tasks import abs_task
    from espnet2.tasks.hubert import HubertTask
    from espnet2.train.trainer import Trainer, TrainerOptions
    from espnet2.utils.types import int_or_none, str_or_none

logger = logging.getLogger(__name__)

SCHEDULER_NAME = "phaselr"
TRAINING_COST = "training_cost.json"  # written to the output dir when a phase's training ends
# The parameters that depend on the label set: re-created when a phase changes the targets.
DEFAULT_REINIT = ("logit_generator.label_embeddings", "logit_generator.final_proj")


class WeightedLossHubertModel(TorchAudioHubertPretrainModel):
    """The stock torchaudio HuBERT pretraining model with configurable loss weights."""

    def __init__(self, *args, masked_weight: float = 1.0, unmasked_weight: float = 0.0,
                 feature_weight: float = 10.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.masked_weight = float(masked_weight)
        self.unmasked_weight = float(unmasked_weight)
        self.feature_weight = float(feature_weight)

    def forward(self, *args, **kwargs):
        loss, stats, weight = super().forward(*args, **kwargs)
        # The stock model reports frame counts as integer tensors; ESPnet's distributed stats
        # averaging (torch.nanmean) fails on them, so every stat is made floating point.
        stats = {k: v.float() if torch.is_tensor(v) and not v.is_floating_point() else v for k, v in stats.items()}
        return loss, stats, weight

    def _calc_hubert_loss(self, logit_m, logit_u, feature_penalty, **_ignored):
        # A zero-weighted term still costs its backward pass (HuBERT's default unmasked 0).
        return super()._calc_hubert_loss(
            logit_m,
            logit_u if self.unmasked_weight else None,
            feature_penalty,
            masked_weight=self.masked_weight,
            unmasked_weight=self.unmasked_weight,
            feature_weight=self.feature_weight,
        )


class PhaseLR(torch.optim.lr_scheduler.LRScheduler, AbsBatchStepScheduler):
    """Learning rate = peak (the optimizer's lr) x ``LRCurve.factor(global step)``.

    ``last_epoch`` counts global updates: it starts at the phase's first global step, and ESPnet
    saves and restores it with the checkpoint, so a resumed phase continues the same curve.
    ``cost`` (what training this phase has cost so far, kept up to date by ``PhaseTrainer``) is
    saved and restored with it. Callbacks in ``step_hooks`` are called with the new global step
    after every update.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, run_start: int, run_end: int, run_warmup: int = 0,
                 phase_start: int = 0, phase_warmup: int = 0, decay: str = "linear", final_ratio: float = 0.0,
                 last_epoch: int = -1):
        self.curve = LRCurve(run_start, run_end, run_warmup, phase_start, phase_warmup, decay, final_ratio)
        self.step_hooks: list[Callable[[int], None]] = []
        self.cost = {"wall_s": 0.0, "cpu_s": 0.0, "audio_s": 0.0, "loop_s": 0.0}
        super().__init__(optimizer, last_epoch)
        if last_epoch == -1:
            self.last_epoch = phase_start
            for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
                group["lr"] = lr
            self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    @property
    def global_step(self) -> int:
        return self.last_epoch

    def get_lr(self) -> list[float]:
        factor = self.curve.factor(self.last_epoch)
        return [base * factor for base in self.base_lrs]

    def step(self, epoch=None):
        super().step(epoch)
        for hook in getattr(self, "step_hooks", ()):
            hook(self.last_epoch)

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "step_hooks", "curve")}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update({k: v for k, v in state_dict.items() if k not in ("step_hooks", "curve")})

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.curve})"


@dataclasses.dataclass
class PhaseTrainerOptions(TrainerOptions):
    phase_end_step: Optional[int]
    snapshot_steps: Sequence[int]
    snapshot_prefix: str
    warm_start_from: Optional[str]
    warm_start_reinit: Sequence[str]


def _int_list(value: str) -> list[int]:
    return [int(v) for v in str(value).replace(",", " ").split()] if value not in (None, "") else []


class PhaseTrainer(Trainer):
    """ESPnet's trainer with the schedule's hooks, all driven by the scheduler's global step."""

    # One phase per process: set by run() for train_one_epoch, which ESPnet calls per epoch.
    _phase_end_step: Optional[int] = None

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group("Schedule hooks (one phase of a pretraining schedule)")
        group.add_argument("--phase_end_step", type=int_or_none, default=None,
                           help="global step at which the phase ends (training stops there)")
        group.add_argument("--snapshot_steps", type=_int_list, default=[],
                           help="global steps at which the model is kept, e.g. '100,200'")
        group.add_argument("--snapshot_prefix", type=str, default="snapshot_",
                           help="file name prefix of snapshots, in --output_dir")
        group.add_argument("--warm_start_from", type=str_or_none, default=None,
                           help="checkpoint.pth of the previous phase, to continue from it")
        group.add_argument("--warm_start_reinit", type=str, nargs="*", default=list(DEFAULT_REINIT),
                           help="parameter names (substrings) re-created instead of carried")

    @classmethod
    def build_options(cls, args: argparse.Namespace) -> PhaseTrainerOptions:
        from espnet2.utils.build_dataclass import build_dataclass

        return build_dataclass(PhaseTrainerOptions, args)

    @classmethod
    def run(cls, model, optimizers, schedulers, train_iter_factory, valid_iter_factory,
            plot_attention_iter_factory, trainer_options, distributed_option) -> None:
        scheduler = schedulers[0]
        if not isinstance(scheduler, PhaseLR):
            raise ValueError(f"the schedule hooks need --scheduler {SCHEDULER_NAME}, not {type(scheduler).__name__}")
        output_dir = Path(trainer_options.output_dir)
        is_main = not distributed_option.distributed or distributed_option.dist_rank == 0
        resuming = trainer_options.resume and (output_dir / "checkpoint.pth").exists()
        record: dict = {"phase_start_step": scheduler.curve.phase_start}
        if trainer_options.warm_start_from and not resuming:
            from espnet_hubert_ae.pretrain.warmstart import warm_start

            report = warm_start(model, optimizers[0], trainer_options.warm_start_from,
                                reinit=trainer_options.warm_start_reinit)
            record["warm_start"] = report.to_dict()
            # Evidence that training starts from the previous phase's weights: compared with
            # the previous final snapshot by tests and by anyone auditing a run.
            state = model.state_dict()
            record["warm_start"]["carried_sums"] = {n: float(state[n].double().sum()) for n in report.carried}
        record["first_lr"] = [g["lr"] for g in optimizers[0].param_groups]
        if is_main and not resuming:
            atomic_write_text(output_dir / "phase_start.json", json.dumps(record, indent=1) + "\n")

        snapshot_steps = set(trainer_options.snapshot_steps)

        def keep_snapshot(step: int) -> None:
            if step in snapshot_steps:
                save_snapshot(model, snapshot_path(trainer_options, step))

        if is_main and snapshot_steps:
            if not resuming:
                keep_snapshot(scheduler.global_step)  # the model before its first update, when scheduled
            scheduler.step_hooks.append(keep_snapshot)
        clock = CostClock(scheduler)
        scheduler.step_hooks.append(clock.tick)
        cls._phase_end_step = trainer_options.phase_end_step
        try:
            super().run(model, optimizers, schedulers, train_iter_factory, valid_iter_factory,
                        plot_attention_iter_factory, trainer_options, distributed_option)
        finally:
            scheduler.step_hooks.clear()
        clock.tick()  # the last validation and checkpoint
        if is_main:
            world = distributed_option.dist_world_size if distributed_option.distributed else 1
            atomic_write_text(output_dir / TRAINING_COST, json.dumps({**scheduler.cost, "world_size": world}) + "\n")
        end = trainer_options.phase_end_step
        if end is not None and scheduler.global_step != end:
            logger.warning("the phase stopped at global step %d, not at its end %d", scheduler.global_step, end)
        if distributed_option.distributed:
            check_ranks_agree(model, output_dir / "ddp_weights.json", is_main)

    @classmethod
    def train_one_epoch(cls, model, iterator, optimizers, schedulers, scaler, reporter, summary_writer,
                        options, distributed_option) -> bool:
        iterator = _until_step(iterator, schedulers[0], cls._phase_end_step)
        start = time.perf_counter()
        try:
            return super().train_one_epoch(
                model=model, iterator=iterator, optimizers=optimizers, schedulers=schedulers, scaler=scaler,
                reporter=reporter, summary_writer=summary_writer, options=options,
                distributed_option=distributed_option,
            )
        finally:
            # Time in the training loop itself (updates and their batches): steps/s is steps over this.
            schedulers[0].cost["loop_s"] += time.perf_counter() - start


class CostClock:
    """Adds the wall and CPU seconds since its last tick to the scheduler's running cost.

    Ticked after every update (and once at the end), so each checkpoint holds the cost of the
    work it saved; a resumed phase restores that and keeps counting. The CPU seconds are this
    process's and its children's (``utils.cost``); in distributed runs, this rank's.
    """

    def __init__(self, scheduler: "PhaseLR"):
        self.scheduler = scheduler
        self.wall = time.perf_counter()
        self.cpu = cpu_seconds()

    def tick(self, step: int | None = None) -> None:
        wall, cpu = time.perf_counter(), cpu_seconds()
        self.scheduler.cost["wall_s"] += wall - self.wall
        self.scheduler.cost["cpu_s"] += cpu - self.cpu
        self.wall, self.cpu = wall, cpu


def _until_step(iterator: Iterable, scheduler: PhaseLR, end_step: int | None) -> Iterator:
    """Batches of ``iterator`` while the global step is before ``end_step``, their audio counted.

    The count is this rank's: the audio of a distributed step is the world size times it.
    """
    for batch in iterator:
        if end_step is not None and scheduler.global_step >= end_step:
            return
        lengths = batch[1].get("speech_lengths")
        if lengths is not None:
            scheduler.cost["audio_s"] += float(lengths.sum()) / SAMPLE_RATE
        yield batch


def snapshot_path(options: PhaseTrainerOptions, step: int) -> Path:
    return Path(options.output_dir) / snapshot_file(options.snapshot_prefix, step)


def save_snapshot(model: torch.nn.Module, path: Path) -> None:
    """Keep the model's state dict (stock ESPnet ``.pth``) beside the phase's config.yaml."""
    with atomic_open(path, "wb") as f:
        torch.save(model.state_dict(), f)
    logger.info("kept snapshot %s", path)


def weight_digest(model: torch.nn.Module) -> list[float]:
    """Per-parameter sums in float64: equal across ranks exactly when the weights agree (in practice)."""
    return [float(p.detach().double().sum()) for p in model.parameters()]


def check_ranks_agree(model: torch.nn.Module, path: Path, is_main: bool) -> None:
    """All ranks compare their weights; rank 0 writes the digests and whether they agree."""
    # On the model's device: NCCL gathers only CUDA tensors (gloo takes CPU ones).
    digest = torch.tensor(weight_digest(model), dtype=torch.float64, device=next(model.parameters()).device)
    gathered = [torch.zeros_like(digest) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(gathered, digest)
    agree = all(torch.equal(gathered[0], g) for g in gathered[1:])
    if is_main:
        sums = [float(g.sum()) for g in gathered]
        atomic_write_text(path, json.dumps({"agree": agree, "ranks": sums}) + "\n")
    if not agree:
        raise RuntimeError("distributed ranks ended the phase with different weights")


class PhaseHubertTask(HubertTask):
    """ESPnet's HubertTask with our trainer, our scheduler and configurable loss weights."""

    trainer = PhaseTrainer

    @classmethod
    def build_model(cls, args: argparse.Namespace):
        stock = super().build_model(args)
        if not isinstance(stock, TorchAudioHubertPretrainModel):
            raise ValueError(f"pretraining needs --model torchaudio (the torchaudio HuBERT), not {args.model}")
        weights = {k: args.model_conf[k] for k in ("masked_weight", "unmasked_weight", "feature_weight")
                   if k in args.model_conf}
        extractor = stock.encoder.hubert_pretrain_model.wav2vec2.feature_extractor
        if not any(True for _ in extractor.parameters()):
            # HuBERT's feature penalty (mean square of the extractor's output) trains the conv
            # features; on a parameter-free front end (log-mel) it is a constant with no gradient
            # that would only shift the reported loss.
            weights["feature_weight"] = 0.0
        model = WeightedLossHubertModel(
            vocab_size=stock.vocab_size,
            token_list=stock.token_list,
            frontend=stock.frontend,
            specaug=stock.specaug,
            normalize=stock.normalize,
            preencoder=stock.preencoder,
            encoder=stock.encoder,
            ignore_id=stock.ignore_id,
            **weights,
        )
        if use_matmul_logits(model) != 1:
            raise ValueError("expected one torchaudio LogitGenerator in the HuBERT pretraining model")
        return model


def register_scheduler() -> None:
    """Make ``--scheduler phaselr`` known to ESPnet (its scheduler table is a module dict)."""
    abs_task.scheduler_classes.setdefault(SCHEDULER_NAME, PhaseLR)


register_scheduler()
register_in_espnet()  # the log-mel encoder, before any parser lists the encoder choices
