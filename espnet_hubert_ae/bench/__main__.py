"""Benchmarks: ``python -m espnet_hubert_ae.bench <name> [options]`` (``--help`` per benchmark).

Each benchmark prints its figures, the last line being JSON. To add one, add a line to
BENCHMARKS naming the module whose ``main(argv)`` runs it.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "kmeans": ("espnet_hubert_ae.bench.kmeans", "project k-means vs the sklearn reference; memory bound"),
    "features": ("espnet_hubert_ae.bench.features", "early-exit layer features vs a full forward pass"),
    "train-step": ("espnet_hubert_ae.bench.train_step", "training throughput: project path vs a bare loop"),
    "logits": ("espnet_hubert_ae.bench.logits", "HuBERT's logits: matmul form vs torchaudio's, s/step per K"),
    "phases": ("espnet_hubert_ae.bench.phases", "steps/s per phase and the phase-switch overhead of a schedule"),
    "downstream": ("espnet_hubert_ae.bench.downstream", "frozen-upstream ASR: cached hidden states vs the live upstream"),
    "targets": ("espnet_hubert_ae.bench.targets", "k-means targets per hour of audio: streaming labels vs full dumps"),
    "throughput": ("espnet_hubert_ae.bench.throughput", "pretraining audio-s/s per device, peak memory, data-loading share"),
}


def usage() -> str:
    lines = ["usage: python -m espnet_hubert_ae.bench <benchmark> [options]", "", "benchmarks:"]
    lines += [f"  {name:12s} {about}" for name, (_, about) in BENCHMARKS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[name][0])
    return module.main(rest) or 0


if __name__ == "__main__":
    raise SystemExit(main())
