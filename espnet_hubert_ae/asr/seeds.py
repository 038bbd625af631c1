"""Downstream evaluations over several seeds, summarised as mean and standard deviation.

Each seed is a complete experiment in ``<exp_dir>/seed<N>/`` (see
:mod:`espnet_hubert_ae.asr.experiment`); ``<exp_dir>/summary.{json,md}`` gathers them: per
evaluation set, the mean and the sample standard deviation (n - 1; 0 for a single seed) of
each error rate over the seeds, the per-seed values, and the empty hypotheses of each seed
with their maximum. The seed drives everything random in a run: initialisation, batch order,
dropout and SpecAugment, and (fine-tuning) the re-initialised layers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Sequence

from espnet_hubert_ae.utils.fileio import atomic_write_text
from espnet_hubert_ae.utils.seeds import sample_std

SUMMARY = "summary.json"
RATES = ("cer", "wer", "per")


def seed_dir(exp_dir: str | os.PathLike, seed: int) -> Path:
    return Path(exp_dir) / f"seed{seed}"


def mean_std(values: Sequence[float]) -> dict:
    """``{"mean", "std"}`` with the sample standard deviation (0 for one value)."""
    return {"mean": round(sum(values) / len(values), 3), "std": round(sample_std(values), 3)}


def run_seeds(run_one: Callable[[int], object], exp_dir: str | os.PathLike, seeds: Sequence[int],
              info: dict) -> dict:
    """``run_one(seed)`` for every seed (each writes ``seed<N>/results.json``), then the summary."""
    for seed in seeds:
        run_one(seed)
    return write_summary(exp_dir, seeds, info)


def summarise_sets(per_seed: Sequence[dict]) -> dict[str, dict]:
    """Set name -> mean/std of each error rate, empty hypotheses per seed and their maximum."""
    sets: dict[str, dict] = {}
    names = [s["set"] for s in per_seed[0]["sets"]]
    for name in names:
        rows = [next(s for s in result["sets"] if s["set"] == name) for result in per_seed]
        summary = {"num_utts": rows[0]["num_utts"]}
        for rate in RATES:
            if rate in rows[0]:
                values = [row[rate] for row in rows]
                summary[rate] = {**mean_std(values), "per_seed": values}
        empty = [row["empty_hyps"] for row in rows]
        summary["empty_hyps"] = max(empty)
        summary["empty_hyps_per_seed"] = empty
        sets[name] = summary
    return sets


def write_summary(exp_dir: str | os.PathLike, seeds: Sequence[int], info: dict) -> dict:
    """Write ``summary.json`` and ``summary.md`` from the seeds' results; returns the summary."""
    exp_dir = Path(exp_dir)
    per_seed = []
    for seed in seeds:
        path = seed_dir(exp_dir, seed) / "results.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: seed {seed} of {exp_dir} did not finish")
        per_seed.append(json.loads(path.read_text(encoding="utf-8")))
    summary = {**info, "seeds": list(seeds), "sets": summarise_sets(per_seed)}
    weights = [r["layer_weights"] for r in per_seed if "layer_weights" in r]
    if weights:
        summary["layer_weights"] = [round(sum(w) / len(w), 4) for w in zip(*weights)]
    atomic_write_text(exp_dir / SUMMARY, json.dumps(summary, indent=2) + "\n")
    atomic_write_text(exp_dir / "summary.md", summary_table(summary, title=str(exp_dir)))
    return summary


def format_rate(rate: dict | None) -> str:
    """``12.3 ± 0.4`` for a summarised rate (``-`` when absent)."""
    return "-" if rate is None else f"{rate['mean']:.1f} ± {rate['std']:.1f}"


def summary_table(summary: dict, title: str | None = None) -> str:
    """A Markdown table of one summary: a row per evaluation set."""
    rates = [r for r in RATES if any(r in s for s in summary["sets"].values())]
    lines = [f"### {title}", ""] if title else []
    lines += [f"Seeds {', '.join(map(str, summary['seeds']))}: mean ± standard deviation.", ""]
    lines += ["| set | utts | empty hyps (max over seeds) | " + " | ".join(f"{r.upper()} %" for r in rates) + " |",
              "|---|---:|---:|" + "---:|" * len(rates)]
    for name, s in summary["sets"].items():
        lines.append(f"| {name} | {s['num_utts']} | {s['empty_hyps']} | "
                     + " | ".join(format_rate(s.get(r)) for r in rates) + " |")
    return "\n".join(lines) + "\n"
