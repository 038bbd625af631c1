"""Seeds given on a command line, and values summarised over them (mean and spread)."""

from __future__ import annotations

import math
import re
from typing import Iterable, Sequence


def parse_seeds(values: Iterable[str | int]) -> list[int]:
    """Seeds from ``--seeds`` values: "1 2 3", "1,2" or separate words; each once, in order."""
    seeds: list[int] = []
    for value in values:
        for word in re.split(r"[\s,]+", str(value).strip()):
            if not word:
                continue
            if not word.isdigit():
                raise ValueError(f"--seeds: {word!r} is not a non-negative integer")
            if int(word) not in seeds:
                seeds.append(int(word))
    if not seeds:
        raise ValueError("--seeds: give at least one seed")
    return seeds


def sample_std(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1 in the denominator; 0 for a single value)."""
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
