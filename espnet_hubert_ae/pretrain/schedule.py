"""Pretraining schedules: the phases of HuBERT's iterative procedure, read from YAML and checked.

A schedule (``conf/strategy/NAME.yaml``) lists phases. Each phase trains for ``steps`` updates on
labels made by k-means with ``k`` clusters over MFCC features (``targets: mfcc``) or over one
layer of the model that ended the previous phase (``targets: 6``, ``targets: top``, or
``targets: 6/12``: layer 6 of a 12-layer model, scaled to the depth of the model trained). It
starts from scratch or continues the previous phase's model (``init: continue``: a warm start).

Everything the training hooks need is a pure function of one global step, counted from the
first update of the first phase (icefall's ScheduledFloat idea): where a phase ends, when a
snapshot is kept, the learning rate. Nothing keeps a private counter, so a resumed run
recomputes the same values.

    schedule = load_schedule("progressive", pretrain_steps=600)
    plan = schedule.plan(num_layers=4)      # PhasePlan per phase, with global steps
    lr_factor(plan[1], step=250)            # multiplier of the peak learning rate
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import yaml

from espnet_hubert_ae.defaults import BUDGET
from espnet_hubert_ae.utils.presets import resolve_preset

SCHEDULE_KEYS = {"name", "description", "phases", "loss", "lr", "control_of"}
PHASE_KEYS = {"steps", "targets", "k", "init", "warmup", "snapshots", "notes"}
LOSS_KEYS = {"masked", "unmasked", "feature_penalty"}
LR_KEYS = {"warmup", "decay", "final_ratio"}
INITS = ("scratch", "continue")
DECAYS = ("linear", "constant")


class ScheduleError(ValueError):
    """A schedule file that cannot be run; the message names the file, phase and key."""


@dataclasses.dataclass(frozen=True)
class Targets:
    """Where a phase's labels come from: MFCC, or one layer of the previous phase's model.

    ``layer`` is absolute (project convention: 0 = input of the first transformer layer, L =
    output of layer L); ``of`` set means ``layer`` is given for an ``of``-layer model and is
    scaled to the trained model's depth; ``top`` means the last layer.
    """

    kind: str  # "mfcc" or "layer"
    layer: int | None = None
    of: int | None = None
    top: bool = False

    def resolve(self, num_layers: int) -> int | None:
        """The absolute layer index for a model with ``num_layers`` layers (None for MFCC)."""
        if self.kind == "mfcc":
            return None
        if self.top:
            return num_layers
        if self.of is not None:
            return max(1, round(self.layer * num_layers / self.of))
        return self.layer

    def describe(self) -> str:
        if self.kind == "mfcc":
            return "mfcc"
        if self.top:
            return "top"
        return f"{self.layer}/{self.of}" if self.of else str(self.layer)


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase as written in the schedule (after budget scaling)."""

    steps: int
    targets: Targets
    k: int
    init: str = "scratch"
    warmup: int = 0
    snapshots: tuple[int, ...] = ()  # steps inside the phase (1..steps); the end is always kept


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """HuBERT loss weights: masked / unmasked cross-entropy, feature penalty (HuBERT: 1 / 0 / 10)."""

    masked: float = 1.0
    unmasked: float = 0.0
    feature_penalty: float = 10.0


@dataclasses.dataclass(frozen=True)
class LRSchedule:
    """Learning-rate shape of one training run (a scratch phase and the phases continuing it).

    Linear warm-up over ``warmup`` steps from the run's start, then ``decay`` to
    ``final_ratio`` of the peak at the run's end (HuBERT: linear to 0).
    """

    warmup: int = 0
    decay: str = "linear"
    final_ratio: float = 0.0


@dataclasses.dataclass(frozen=True)
class LRCurve:
    """The learning-rate multiplier as a pure function of the global step, for one phase.

    The run's warm-up and decay span every phase of the run (a scratch phase and the phases
    continuing it), so a continued phase carries on the curve where the previous one left it;
    ``phase_warmup`` re-warms a continued phase from 0 up to that curve over its first steps.
    """

    run_start: int
    run_end: int
    run_warmup: int = 0
    phase_start: int = 0
    phase_warmup: int = 0
    decay: str = "linear"
    final_ratio: float = 0.0

    def factor(self, step: int) -> float:
        """Multiplier of the peak learning rate for the update after ``step`` global updates."""
        into_run = step - self.run_start
        factor = 1.0
        if self.run_warmup > 0 and into_run < self.run_warmup:
            factor = (into_run + 1) / self.run_warmup
        elif self.decay == "linear":
            decay_len = max(1, self.run_end - self.run_start - self.run_warmup)
            done = min(1.0, max(0.0, (into_run - self.run_warmup) / decay_len))
            factor = 1.0 - (1.0 - self.final_ratio) * done
        if self.phase_warmup > 0:
            factor *= min(1.0, (step - self.phase_start + 1) / self.phase_warmup)
        return factor


@dataclasses.dataclass(frozen=True)
class PhasePlan:
    """A phase placed on the global step axis, with everything its training run needs."""

    index: int  # 1-based
    start_step: int  # global step when the phase starts (updates done before it)
    end_step: int  # global step when it ends
    targets: Targets
    layer: int | None  # resolved target layer (None: MFCC)
    k: int
    init: str
    warmup: int  # warm-up steps at the phase start (a continued phase's re-warm-up)
    snapshot_steps: tuple[int, ...]  # global steps kept: the phase end, and step 0 in the first phase
    run_start: int  # global step where the current training run (segment) started
    run_end: int  # global step where it ends (the end of its last continuing phase)
    run_warmup: int  # warm-up of that run
    lr: LRSchedule

    @property
    def steps(self) -> int:
        return self.end_step - self.start_step

    @property
    def lr_curve(self) -> "LRCurve":
        return LRCurve(
            run_start=self.run_start,
            run_end=self.run_end,
            run_warmup=self.run_warmup,
            phase_start=self.start_step,
            phase_warmup=self.warmup if self.init == "continue" else 0,
            decay=self.lr.decay,
            final_ratio=self.lr.final_ratio,
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["targets"] = self.targets.describe()
        return d


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A validated schedule: named phases plus loss weights and the learning-rate shape."""

    name: str
    phases: tuple[Phase, ...]
    loss: LossWeights = LossWeights()
    lr: LRSchedule = LRSchedule()
    description: str = ""
    source: str = ""
    control_of: str = ""  # the strategy whose run this one is a control of (report: run against control)

    @property
    def total_steps(self) -> int:
        return sum(p.steps for p in self.phases)

    def plan(self, num_layers: int, snapshot_every: int | None = None) -> list[PhasePlan]:
        """Place the phases on the global step axis for a model with ``num_layers`` layers.

        ``snapshot_every`` replaces the schedule's own snapshots by one every that many global
        steps (the same time resolution for every strategy; phase ends and step 0 are kept).
        """
        check_layers(self, num_layers)
        if snapshot_every is not None and snapshot_every < 1:
            raise ScheduleError(f"snapshot_every must be a positive number of steps, not {snapshot_every}")
        starts = [0]
        for phase in self.phases:
            starts.append(starts[-1] + phase.steps)
        plans = []
        for i, phase in enumerate(self.phases):
            run_first = i
            while self.phases[run_first].init == "continue":
                run_first -= 1
            run_last = i
            while run_last + 1 < len(self.phases) and self.phases[run_last + 1].init == "continue":
                run_last += 1
            start = starts[i]
            # The run's untrained model (global step 0) is kept too: the floor of every analysis.
            if snapshot_every is None:
                inside = {start + s for s in phase.snapshots}
            else:
                inside = set(range(-(-(start + 1) // snapshot_every) * snapshot_every, start + phase.steps, snapshot_every))
            snaps = sorted(inside | {start + phase.steps} | ({0} if i == 0 else set()))
            plans.append(
                PhasePlan(
                    index=i + 1,
                    start_step=start,
                    end_step=start + phase.steps,
                    targets=phase.targets,
                    layer=phase.targets.resolve(num_layers),
                    k=phase.k,
                    init=phase.init,
                    warmup=phase.warmup,
                    snapshot_steps=tuple(snaps),
                    run_start=starts[run_first],
                    run_end=starts[run_last + 1],
                    run_warmup=self.phases[run_first].warmup,
                    lr=self.lr,
                )
            )
        return plans


BUDGET_MODES = ("ratio", "equal")


def budget_steps(strategy: str | Path, pretrain_steps: int | None, mode: str = BUDGET,
                 reference: str | Path | None = None) -> int | None:
    """This strategy's total steps under a budget of ``pretrain_steps`` (None: its schedule's own).

    ``ratio``: one factor scales every strategy, the factor that gives ``reference`` (a strategy;
    default: this one) ``pretrain_steps`` steps, so strategies keep the ratios of their schedule
    files (progressive's 325k against the baseline's 650k stays half). ``equal``: every strategy
    gets ``pretrain_steps``.
    """
    if mode not in BUDGET_MODES:
        raise ScheduleError(f"budget mode must be one of {', '.join(BUDGET_MODES)}, not {mode!r}")
    if pretrain_steps is None:
        return None
    if pretrain_steps < 1:
        raise ScheduleError(f"--pretrain_steps must be positive, not {pretrain_steps}")
    if mode == "equal" or reference is None:
        return pretrain_steps
    own, ref = load_schedule(strategy).total_steps, load_schedule(reference).total_steps
    return max(1, round(pretrain_steps * own / ref))


def lr_factor(plan: PhasePlan, step: int) -> float:
    """Multiplier of the peak learning rate after ``step`` global updates, inside ``plan``."""
    return plan.lr_curve.factor(step)


# --------------------------------------------------------------------------------------------
# Loading and validation


def load_schedule(name_or_path: str | Path, pretrain_steps: int | None = None) -> Schedule:
    """Read and validate a schedule (a preset name or a file); ``pretrain_steps`` rescales every
    phase to that total."""
    path = resolve_preset("strategy", name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ScheduleError(f"{path}: not valid YAML: {err}") from err
    schedule = parse_schedule(raw, source=str(path), default_name=path.stem)
    if pretrain_steps is not None:
        schedule = scale_schedule(schedule, pretrain_steps)
    return schedule


def parse_schedule(raw: Any, source: str = "<schedule>", default_name: str = "schedule") -> Schedule:
    """Build a Schedule from parsed YAML, raising ScheduleError naming the fault."""
    if not isinstance(raw, dict):
        raise ScheduleError(f"{source}: a schedule is a mapping with a 'phases' list")
    _check_keys(raw, SCHEDULE_KEYS, source)
    phases_raw = raw.get("phases")
    if not isinstance(phases_raw, list) or not phases_raw:
        raise ScheduleError(f"{source}: 'phases' must be a non-empty list")
    phases = tuple(_parse_phase(p, i + 1, source) for i, p in enumerate(phases_raw))
    if phases[0].init == "continue":
        raise ScheduleError(f"{source}: phase 1 has init: continue, but there is no previous phase to continue")
    if phases[0].targets.kind != "mfcc":
        raise ScheduleError(f"{source}: phase 1 has targets from a layer, but no model exists yet: use 'mfcc'")
    loss = LossWeights(**_parse_floats(raw.get("loss") or {}, LOSS_KEYS, f"{source}: loss"))
    lr = _parse_lr(raw.get("lr") or {}, source)
    schedule = Schedule(
        name=str(raw.get("name") or default_name),
        phases=phases,
        loss=loss,
        lr=lr,
        description=str(raw.get("description") or "").strip(),
        source=source,
        control_of=str(raw.get("control_of") or ""),
    )
    return _apply_run_warmup(schedule)


def scale_schedule(schedule: Schedule, pretrain_steps: int) -> Schedule:
    """Rescale phase lengths (and their warm-ups and snapshots) to a total of ``pretrain_steps``.

    Proportional, so strategies compare at equal (or half) budget; every phase keeps at least
    one step, and rounding error goes to the last phase so the total is exact.
    """
    if pretrain_steps < len(schedule.phases):
        raise ScheduleError(
            f"--pretrain_steps {pretrain_steps} is less than one step per phase ({len(schedule.phases)} phases)"
        )
    ratio = pretrain_steps / schedule.total_steps
    lengths = [max(1, round(p.steps * ratio)) for p in schedule.phases]
    lengths[-1] += pretrain_steps - sum(lengths)
    if lengths[-1] < 1:
        raise ScheduleError(f"--pretrain_steps {pretrain_steps} is too small for {len(lengths)} phases")
    phases = []
    for phase, steps in zip(schedule.phases, lengths):
        scale = steps / phase.steps
        snaps = tuple(sorted({min(steps, max(1, round(s * scale))) for s in phase.snapshots}))
        warmup = min(steps, round(phase.warmup * scale))
        phases.append(dataclasses.replace(phase, steps=steps, snapshots=snaps, warmup=warmup))
    lr = dataclasses.replace(schedule.lr, warmup=round(schedule.lr.warmup * ratio))
    scaled = dataclasses.replace(schedule, phases=tuple(phases), lr=lr)
    return _apply_run_warmup(scaled)


def check_layers(schedule: Schedule, num_layers: int) -> None:
    """Every layer a phase clusters must exist in a ``num_layers``-layer model."""
    for i, phase in enumerate(schedule.phases, 1):
        layer = phase.targets.resolve(num_layers)
        if layer is not None and not 0 <= layer <= num_layers:
            raise ScheduleError(
                f"{schedule.source}: phase {i} clusters layer {layer}, but the model has layers 0..{num_layers}"
            )


def _apply_run_warmup(schedule: Schedule) -> Schedule:
    """The run-level warm-up (``lr.warmup``) becomes every scratch phase's own warm-up."""
    if schedule.lr.warmup <= 0:
        return schedule
    phases = tuple(
        dataclasses.replace(p, warmup=p.warmup or min(p.steps, schedule.lr.warmup)) if p.init == "scratch" else p
        for p in schedule.phases
    )
    return dataclasses.replace(schedule, phases=phases)


def _check_keys(raw: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ScheduleError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScheduleError(f"{where} must be an integer, not {value!r}")
    if value <= 0:
        raise ScheduleError(f"{where} must be positive, not {value}")
    return value


_FRACTION = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def _parse_targets(value: Any, where: str) -> Targets:
    if isinstance(value, str) and value.strip().lower() == "mfcc":
        return Targets("mfcc")
    if isinstance(value, str) and value.strip().lower() == "top":
        return Targets("layer", top=True)
    if isinstance(value, bool):
        raise ScheduleError(f"{where}: targets must be mfcc, top, a layer index or 'L/N', not {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ScheduleError(f"{where}: targets layer {value} is negative (layers count from 0)")
        return Targets("layer", layer=value)
    match = _FRACTION.match(str(value)) if isinstance(value, str) else None
    if match:
        layer, of = int(match.group(1)), int(match.group(2))
        if of <= 0 or layer > of:
            raise ScheduleError(f"{where}: targets '{value}' must be layer L of an N-layer model with 0 <= L <= N")
        return Targets("layer", layer=layer, of=of)
    raise ScheduleError(f"{where}: targets must be mfcc, top, a layer index or 'L/N', not {value!r}")


def _parse_phase(raw: Any, index: int, source: str) -> Phase:
    where = f"{source}: phase {index}"
    if not isinstance(raw, dict):
        raise ScheduleError(f"{where} must be a mapping")
    _check_keys(raw, PHASE_KEYS, where)
    for key in ("steps", "targets", "k"):
        if key not in raw:
            raise ScheduleError(f"{where}: missing '{key}'")
    steps = _positive_int(raw["steps"], f"{where}: steps")
    k = _positive_int(raw["k"], f"{where}: k")
    if k < 2:
        raise ScheduleError(f"{where}: k must be at least 2, not {k}")
    init = raw.get("init", "scratch")
    if init not in INITS:
        raise ScheduleError(f"{where}: init must be one of {', '.join(INITS)}, not {init!r}")
    warmup = raw.get("warmup", 0) or 0
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ScheduleError(f"{where}: warmup must be a non-negative integer number of steps, not {warmup!r}")
    if warmup > steps:
        raise ScheduleError(f"{where}: warmup {warmup} is longer than the phase ({steps} steps)")
    return Phase(
        steps=steps,
        targets=_parse_targets(raw["targets"], where),
        k=k,
        init=init,
        warmup=warmup,
        snapshots=_parse_snapshots(raw.get("snapshots"), steps, where),
    )


def _parse_snapshots(value: Any, steps: int, where: str) -> tuple[int, ...]:
    """``N`` evenly spaced snapshots (the last at the phase end) or a list of in-phase steps."""
    if value is None:
        return ()
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ScheduleError(f"{where}: snapshots must be a count >= 0 or a list of steps, not {value}")
        return tuple(sorted({math.ceil(steps * i / value) for i in range(1, value + 1)})) if value else ()
    if isinstance(value, list):
        out = []
        for s in value:
            if isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= steps:
                raise ScheduleError(f"{where}: snapshot step {s!r} is not within the phase (1..{steps})")
            out.append(s)
        return tuple(sorted(set(out)))
    raise ScheduleError(f"{where}: snapshots must be a count or a list of steps inside the phase, not {value!r}")


def _parse_floats(raw: Any, allowed: set[str], where: str) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise ScheduleError(f"{where} must be a mapping")
    _check_keys(raw, allowed, where)
    out = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ScheduleError(f"{where}: {key} must be a number >= 0, not {value!r}")
        out[key] = float(value)
    return out


def _parse_lr(raw: Any, source: str) -> LRSchedule:
    where = f"{source}: lr"
    if not isinstance(raw, dict):
        raise ScheduleError(f"{where} must be a mapping")
    _check_keys(raw, LR_KEYS, where)
    warmup = raw.get("warmup", 0)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ScheduleError(f"{where}: warmup must be a non-negative integer, not {warmup!r}")
    decay = raw.get("decay", "linear")
    if decay not in DECAYS:
        raise ScheduleError(f"{where}: decay must be one of {', '.join(DECAYS)}, not {decay!r}")
    final_ratio = raw.get("final_ratio", 0.0)
    if isinstance(final_ratio, bool) or not isinstance(final_ratio, (int, float)) or not 0 <= final_ratio <= 1:
        raise ScheduleError(f"{where}: final_ratio must be in [0, 1], not {final_ratio!r}")
    return LRSchedule(warmup=warmup, decay=decay, final_ratio=float(final_ratio))
