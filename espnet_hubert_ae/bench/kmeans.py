"""Benchmark: the project's k-means against the reference sklearn setting, and its memory bound.

    python -m espnet_hubert_ae.bench kmeans                      # defaults: ~5 min on 2 busy cores
    python -m espnet_hubert_ae.bench kmeans --frames_768 200000  # the full 768-d case (reference: long)

The reference's cost is mostly its 20 k-means++ initialisations (on up to 30000 frames): with
K=500 on 768-d frames that alone takes minutes on one core, so the 768-d default is small.

Cases, each clustered by both engines in this process on the same frames:

- ``mfcc``: MFCC (39-d, K=100) of the built-in corpus' pretraining set (generated on the fly
  when ``espnet_hubert_ae.data.builtin`` is available; otherwise synthetic clustered 39-d
  frames, said so in the output);
- ``768d``: K=500 on synthetic 768-d frames drawn from a Gaussian mixture with low-rank
  structure (a stand-in for layer features).

Printed per case: wall and CPU time of each engine, their ratios, and inertia (mean squared distance to
the nearest centroid, computed identically for both) with the relative difference. Then peak
memory of fitting streamed from disk at 1x, 2x, 4x the frames, each in a fresh process. The
last line is all figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from espnet_hubert_ae.defaults import SEED

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m espnet_hubert_ae.bench kmeans", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--cases", nargs="*", choices=["mfcc", "768d"], default=["mfcc", "768d"])
    p.add_argument("--builtin_minutes", type=float, default=10.0,
                   help="mfcc case: minutes of built-in audio (this benchmark's own size, not the recipe's "
                        "--builtin_minutes: enough frames for K=100, minutes of generation)")
    p.add_argument("--mfcc_frames", type=int, default=100000, help="mfcc case, synthetic fallback: frames")
    p.add_argument("--k_mfcc", type=int, default=100)
    p.add_argument("--frames_768", type=int, default=10000, help="768d case: frames (200000 for a HuBERT-scale fit: about 15 min for the sklearn reference on 2 cores)")
    p.add_argument("--k_768", type=int, default=500)
    p.add_argument("--max_iter", type=int, default=30, help="project engine: Lloyd passes at most")
    p.add_argument("--memory_frames", type=int, default=40000, help="memory test: 768-d frames at 1x")
    p.add_argument("--memory_scales", type=int, nargs="*", default=[1, 2, 4])
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--workdir", type=Path, default=None, help="scratch folder [a temporary one]")
    p.add_argument("--fit_dump", type=Path, default=None, help=argparse.SUPPRESS)  # memory-test child
    p.add_argument("--fit_k", type=int, default=100, help=argparse.SUPPRESS)
    return p


# ---------------------------------------------------------------------------------------------
# Data


def clustered_frames(frames: int, dim: int, components: int, rank: int, seed: int) -> np.ndarray:
    """Gaussian-mixture frames: random centres in a ``rank``-d subspace plus isotropic noise."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((rank, dim)) / np.sqrt(rank)
    centres = rng.standard_normal((components, rank)) * 3.0
    weights = rng.dirichlet(np.full(components, 2.0))
    which = rng.choice(components, size=frames, p=weights)
    latent = centres[which] + rng.standard_normal((frames, rank))
    return (latent @ basis + 0.3 * rng.standard_normal((frames, dim))).astype(np.float32)


def builtin_mfcc(minutes: float, seed: int, workdir: Path) -> tuple[np.ndarray, str] | None:
    """MFCC frames of a freshly generated built-in corpus, or None when it is not available."""
    try:
        from espnet_hubert_ae.data.builtin import prepare_builtin
    except ImportError:
        return None
    from espnet_hubert_ae.data.audio import read_utterance
    from espnet_hubert_ae.data.datadir import read_datadir
    from espnet_hubert_ae.targets.mfcc import mfcc_features

    datadir = workdir / "builtin" / "data"
    prepare_builtin(datadir, minutes=minutes, seed=seed)
    utts = read_datadir(datadir / "train_pretrain")
    frames = np.concatenate([mfcc_features(read_utterance(u)) for u in utts])
    return frames, f"built-in corpus train_pretrain MFCC ({minutes:g} min, {len(utts)} utterances)"


# ---------------------------------------------------------------------------------------------
# Measurements


def compare_engines(data: np.ndarray, k: int, seed: int, max_iter: int, threads: int) -> dict:
    """Fit both engines on ``data``; wall times, ratio, inertia of each on all of ``data``."""
    from threadpoolctl import threadpool_limits

    from espnet_hubert_ae.targets.kmeans import ArrayFrames, fit_kmeans, set_faiss_threads

    set_faiss_threads(threads)
    frames = ArrayFrames(data, name="benchmark frames")
    results = {}
    with threadpool_limits(threads):
        for engine in ("sklearn", "faiss"):
            start, cpu_start = time.perf_counter(), time.process_time()
            model = fit_kmeans(frames, k, seed=seed, engine=engine, max_iter=max_iter, threads=threads)
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
            results[engine] = {"seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
                               "inertia": model.inertia(frames), "iterations": model.settings.get("iterations")}  # fmt: skip
            print(f"  {engine:8s} {seconds:8.1f} s wall {cpu_seconds:8.1f} s CPU  "
                  f"inertia {results[engine]['inertia']:.6g}", flush=True)  # fmt: skip
    speedup = results["sklearn"]["seconds"] / max(results["faiss"]["seconds"], 1e-9)
    cpu_speedup = results["sklearn"]["cpu_seconds"] / max(results["faiss"]["cpu_seconds"], 1e-9)
    inertia_change = results["faiss"]["inertia"] / results["sklearn"]["inertia"] - 1
    print(f"  speed-up x{speedup:.1f} wall, x{cpu_speedup:.1f} CPU; inertia {100 * inertia_change:+.2f}% "
          "vs reference", flush=True)  # fmt: skip
    return {
        "frames": int(data.shape[0]), "dim": int(data.shape[1]), "k": k, "threads": threads,
        "reference_seconds": results["sklearn"]["seconds"], "project_seconds": results["faiss"]["seconds"],
        "reference_cpu_seconds": results["sklearn"]["cpu_seconds"],
        "project_cpu_seconds": results["faiss"]["cpu_seconds"], "speedup": round(speedup, 2),
        "cpu_speedup": round(cpu_speedup, 2), "reference_inertia": results["sklearn"]["inertia"],
        "project_inertia": results["faiss"]["inertia"], "inertia_change_pct": round(100 * inertia_change, 3),
        "project_iterations": results["faiss"]["iterations"],
    }  # fmt: skip


def fit_child(dump: Path, k: int, seed: int) -> None:
    """Memory-test child: fit streamed from a dump on disk, print peak memory as JSON."""
    from espnet_hubert_ae.targets.features import FeatureSet
    from espnet_hubert_ae.targets.kmeans import DumpFrames, fit_kmeans
    from espnet_hubert_ae.targets.pipeline import peak_memory_mb

    features = FeatureSet(dump)
    baseline = peak_memory_mb()
    start = time.perf_counter()
    fit_kmeans(DumpFrames(features, features.utt_ids), k, seed=seed, max_iter=5)
    print(json.dumps({"peak_memory_mb": round(peak_memory_mb(), 1), "before_fit_mb": round(baseline, 1),
                      "seconds": round(time.perf_counter() - start, 2)}))  # fmt: skip


def memory_scaling(base_frames: int, scales: list[int], k: int, seed: int, workdir: Path) -> list[dict]:
    """Peak memory of streamed fitting as the frames grow, each size in a fresh process."""
    from espnet_hubert_ae.targets.features import write_feature_dump

    rows = []
    for scale in scales:
        frames = base_frames * scale
        data = clustered_frames(frames, 768, 200, 32, seed)
        utterances = [(f"utt{i:07d}", chunk) for i, chunk in enumerate(np.array_split(data, max(1, frames // 500)))]
        dump = write_feature_dump(workdir / f"memory_x{scale}", utterances, {"kind": "benchmark"})
        data_mb = data.nbytes / 2**20
        del data, utterances
        child = subprocess.run(
            [sys.executable, "-m", "espnet_hubert_ae.bench", "kmeans", "--fit_dump", str(dump), "--fit_k", str(k)],
            check=True, capture_output=True, text=True,
        )
        row = {"scale": scale, "frames": frames, "data_mb": round(data_mb, 1), **json.loads(child.stdout.splitlines()[-1])}
        row["fit_growth_mb"] = round(row["peak_memory_mb"] - row["before_fit_mb"], 1)
        print(f"  x{scale}: {frames} frames ({data_mb:.0f} MiB on disk): peak {row['peak_memory_mb']:.0f} MiB, "
              f"+{row['fit_growth_mb']:.0f} MiB while fitting, {row['seconds']:.1f} s", flush=True)  # fmt: skip
        shutil.rmtree(dump)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.fit_dump is not None:
        fit_child(args.fit_dump, args.fit_k, args.seed)
        return 0
    from espnet_hubert_ae.utils.cli import limit_threads

    limit_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_kmeans.") as tmp:
        workdir = args.workdir or Path(tmp)
        figures: dict = {"cases": {}}
        if "mfcc" in args.cases:
            found = builtin_mfcc(args.builtin_minutes, args.seed, workdir)
            if found is None:
                data = clustered_frames(args.mfcc_frames, 39, 300, 12, args.seed)
                note = "synthetic clustered 39-d frames (the built-in corpus is not available)"
            else:
                data, note = found
            print(f"mfcc case: {data.shape[0]} x {data.shape[1]}, K={args.k_mfcc}: {note}", flush=True)
            figures["cases"]["mfcc"] = {"data": note, **compare_engines(data, args.k_mfcc, args.seed, args.max_iter, args.threads)}
        if "768d" in args.cases:
            data = clustered_frames(args.frames_768, 768, 1000, 64, args.seed)
            note = "synthetic 768-d Gaussian mixture (1000 components, rank 64, isotropic noise)"
            print(f"768d case: {data.shape[0]} x 768, K={args.k_768}: {note}", flush=True)
            figures["cases"]["768d"] = {"data": note, **compare_engines(data, args.k_768, args.seed, args.max_iter, args.threads)}
        if args.memory_scales:
            print("memory: fitting streamed from 768-d dumps on disk (K=100, 5 passes), fresh process each", flush=True)
            figures["memory"] = memory_scaling(args.memory_frames, args.memory_scales, 100, args.seed, workdir)
    print(json.dumps(figures))
    return 0
