"""What a piece of work cost, in units that a loaded machine does not distort.

Wall time on a shared machine swings threefold with load; the CPU seconds a piece of work used
do not. :class:`CostMeter` measures both around a block: the CPU time of this process (every
thread) plus that of the child processes it waited for (data-loader workers, a training
subprocess and everything it started), so the figure covers the whole process tree.

    with CostMeter() as meter:
        do_work()
    meter.cost  # Cost(wall_s=..., cpu_s=...)

GPU seconds are wall seconds times the GPUs held; audio seconds are counted by whoever knows
how much audio passed (the trainer).
"""

from __future__ import annotations

import dataclasses
import resource
import sys
import time


@dataclasses.dataclass
class Cost:
    """Wall, CPU and GPU seconds, and the seconds of audio processed."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    gpu_s: float = 0.0
    audio_s: float = 0.0

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))

    def scaled(self, factor: float) -> "Cost":
        return Cost(*(value * factor for value in dataclasses.astuple(self)))

    def to_dict(self) -> dict[str, float]:
        return {name: round(value, 2) for name, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, record: dict | None) -> "Cost":
        record = record or {}
        return cls(**{f.name: float(record.get(f.name) or 0.0) for f in dataclasses.fields(cls)})


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its children waited for so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CostMeter:
    """Wall and CPU seconds of the block it surrounds; ``gpus`` GPUs held turn wall into GPU seconds."""

    def __init__(self, gpus: int = 0):
        self.gpus = gpus
        self.cost = Cost()

    def __enter__(self) -> "CostMeter":
        self._wall = time.perf_counter()
        self._cpu = cpu_seconds()
        return self

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self._wall
        self.cost = Cost(wall_s=wall, cpu_s=cpu_seconds() - self._cpu, gpu_s=wall * self.gpus)


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (MiB).

    Linux's VmHWM is preferred to getrusage: ru_maxrss carries over the parent's peak through
    fork and exec, so a child started by a big process would report its parent's memory.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
