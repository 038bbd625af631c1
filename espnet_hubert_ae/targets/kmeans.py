"""k-means for HuBERT targets: k-means++ seeding on a subsample, then streamed faiss Lloyd passes.

Engines:

- ``faiss`` (the project's): k-means++ seeds from frames drawn at random (20000, or 100 per
  cluster when K is large), then Lloyd iterations over *all* fitting frames, streamed chunk by
  chunk (nearest centroids by a faiss flat index, sums accumulated in float64), so memory
  stays bounded however many frames there are. Initialisation is what makes k-means good
  here: k-means++ on such a sample followed by up to 30 full Lloyd passes matches or beats the
  reference's inertia at a fraction of its time.
- ``sklearn``: the reference setting of fairseq / ESPnet / torchaudio (MiniBatchKMeans,
  k-means++, n_init 20, batch 10000, max_iter 100, tol 0, max_no_improvement 100,
  reassignment_ratio 0). It holds all frames in memory; kept for comparison.

Both are seeded and deterministic for a given thread count. A fitted model is its centroids
(``centroids.npy``) plus the settings that made it (``kmeans.json``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np
from tqdm import tqdm

from espnet_hubert_ae.targets.sources import TargetError
from espnet_hubert_ae.utils.fileio import atomic_open, atomic_write_text

logger = logging.getLogger(__name__)

ENGINES = ("faiss", "sklearn")
DEFAULT_MAX_ITER = 30
DEFAULT_INIT_SAMPLE = 20000
INIT_FRAMES_PER_CLUSTER = 100  # large K needs a larger seeding sample: 20k frames left K=500 ~1% worse
CHUNK_BYTES = 32 * 2**20  # frames streamed per step: bounds memory whatever the dimension


def chunk_frames_for(dim: int) -> int:
    return max(1024, CHUNK_BYTES // (4 * max(1, dim)))

REFERENCE_SETTINGS = dict(
    init="k-means++", n_init=20, batch_size=10000, max_iter=100, tol=0.0,
    max_no_improvement=100, reassignment_ratio=0.0,
)  # fmt: skip


class Frames(Protocol):
    """Frames to cluster, streamed: ``name`` for messages, ``num_frames``, ``dim``, ``chunks()``."""

    name: str
    num_frames: int
    dim: int

    def chunks(self) -> Iterator[np.ndarray]: ...


@dataclass
class ArrayFrames:
    """Frames held in memory (tests, benchmarks), served in chunks like a dump on disk."""

    array: np.ndarray
    name: str = "array"
    chunk_frames: int | None = None  # default: about CHUNK_BYTES per chunk

    @property
    def num_frames(self) -> int:
        return int(self.array.shape[0])

    @property
    def dim(self) -> int:
        return int(self.array.shape[1])

    def chunks(self) -> Iterator[np.ndarray]:
        step = self.chunk_frames or chunk_frames_for(self.dim)
        for start in range(0, self.num_frames, step):
            yield np.asarray(self.array[start : start + step], dtype=np.float32)


@dataclass
class DumpFrames:
    """The frames of some utterances of a feature dump, streamed from disk."""

    features: "FeatureSet"  # noqa: F821 (espnet_hubert_ae.targets.features)
    utt_ids: list[str]
    chunk_frames: int | None = None  # default: about CHUNK_BYTES per chunk

    def __post_init__(self):
        self.num_frames = sum(self.features.frames(u) for u in self.utt_ids)

    @property
    def name(self) -> str:
        return f"{len(self.utt_ids)} utterances of {self.features.name}"

    @property
    def dim(self) -> int:
        return self.features.dim

    def chunks(self) -> Iterator[np.ndarray]:
        step = self.chunk_frames or chunk_frames_for(self.dim)
        for _, array in self.features.iter_chunks(self.utt_ids, step):
            yield array


@dataclass
class KMeansModel:
    """Fitted centroids and how they were fitted; assigns frames to their nearest centroid."""

    centroids: np.ndarray
    settings: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def save(self, directory: str | os.PathLike) -> Path:
        directory = Path(directory)
        with atomic_open(directory / "centroids.npy", "wb") as f:
            np.save(f, self.centroids.astype(np.float32))
        atomic_write_text(directory / "kmeans.json", json.dumps(self.settings, indent=1) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "KMeansModel":
        directory = Path(directory)
        if not (directory / "centroids.npy").is_file():
            raise TargetError(f"{directory}: no k-means model here (centroids.npy missing)")
        settings = json.loads((directory / "kmeans.json").read_text())
        return cls(np.load(directory / "centroids.npy"), settings)

    def assign(self, frames: np.ndarray, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
        """Nearest centroid of each frame and its squared distance."""
        return _nearest(_index(self.centroids, device), frames)

    def assigner(self, device: str = "cpu") -> Callable[[np.ndarray], np.ndarray]:
        """``frames -> nearest centroid ids``, with the search index built once (labelling loops)."""
        index = _index(self.centroids, device)
        return lambda frames: _nearest(index, frames)[0]

    def inertia(self, frames: Frames, device: str = "cpu") -> float:
        """Mean squared distance of ``frames`` to their nearest centroid."""
        index = _index(self.centroids, device)
        total = 0.0
        for chunk in frames.chunks():
            total += float(_nearest(index, chunk)[1].sum(dtype=np.float64))
        return total / frames.num_frames


# ---------------------------------------------------------------------------------------------
# faiss plumbing


def set_faiss_threads(num_threads: int | None = None) -> int:
    """Give faiss's OpenMP a deliberate thread count (OMP_NUM_THREADS by default), for the
    calling thread and what it runs afterwards (OpenMP keeps the count per thread).

    Set OMP_WAIT_POLICY=PASSIVE in the environment before faiss loads: spinning OpenMP
    threads made it 14x slower on a 2-core machine shared with other work.

    With torch loaded, faiss's OpenMP count is also torch's, and torch sets a thread's count to
    its own the first time it computes in that thread (a k-means fit does): torch's per-thread
    setup is run here first, so that it cannot undo this setting later.
    """
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].get_num_threads()  # torch's lazy per-thread OpenMP setup, now
    import faiss

    n = num_threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or os.cpu_count() or 1
    faiss.omp_set_num_threads(n)
    return n


class _TorchFlatL2:
    """Nearest centroids by a matrix product on a torch device (a GPU without faiss's GPU build):
    ``|x|^2 - 2 x.c + |c|^2``, with faiss's ``search(frames, 1)`` interface."""

    def __init__(self, centroids: np.ndarray, device: str):
        import torch

        self.device = torch.device(device)
        self.centroids = torch.from_numpy(centroids).to(self.device)
        self.norms = (self.centroids.double() ** 2).sum(1).float()

    def search(self, frames: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        x = torch.from_numpy(frames).to(self.device)
        distances = (x * x).sum(1, keepdim=True) - 2.0 * (x @ self.centroids.T) + self.norms
        best, ids = distances.min(dim=1)
        return best[:, None].cpu().numpy(), ids[:, None].cpu().numpy()


def _index(centroids: np.ndarray, device: str = "cpu"):
    """A nearest-centroid searcher: faiss on the CPU, faiss's GPU build on a GPU where it is
    installed, else a torch matrix product on the GPU."""
    import faiss

    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    if device.startswith("cuda"):
        gpu = int(device.split(":")[1]) if ":" in device else 0
        if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
            index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), gpu, faiss.IndexFlatL2(centroids.shape[1]))
            index.add(centroids)
            return index
        return _TorchFlatL2(centroids, device)
    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(centroids)
    return index


def _nearest(index, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distances, ids = index.search(np.ascontiguousarray(frames, dtype=np.float32), 1)
    return ids[:, 0].astype(np.int64), np.maximum(distances[:, 0], 0.0)


# ---------------------------------------------------------------------------------------------
# Fitting


def _check_fit_input(frames: Frames, k: int) -> None:
    if k < 1:
        raise TargetError(f"K must be at least 1, not {k}")
    if frames.num_frames == 0:
        raise TargetError(f"{frames.name}: no frames to cluster")
    if k > frames.num_frames:
        raise TargetError(f"K={k} is larger than the number of frames ({frames.num_frames}) in {frames.name}")


def _check_finite(chunk: np.ndarray, frames: Frames) -> None:
    if not np.isfinite(chunk).all():
        raise TargetError(f"{frames.name}: features contain NaN or infinite values")


def _sample_frames(frames: Frames, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` frames drawn uniformly without replacement, in one streamed pass (checks values)."""
    count = min(count, frames.num_frames)
    wanted = np.sort(rng.choice(frames.num_frames, size=count, replace=False))
    picked, start = [], 0
    for chunk in frames.chunks():
        _check_finite(chunk, frames)
        lo, hi = np.searchsorted(wanted, [start, start + len(chunk)])
        picked.append(chunk[wanted[lo:hi] - start])
        start += len(chunk)
    return np.concatenate(picked)


def _lloyd_pass(index, frames: Frames, k: int) -> tuple[np.ndarray, np.ndarray, float]:
    """One assignment pass: per-cluster sums (float64), counts, and mean squared distance."""
    import torch

    sums = torch.zeros(k, frames.dim, dtype=torch.float64)
    counts = np.zeros(k, dtype=np.int64)
    total = 0.0
    for chunk in frames.chunks():
        ids, distances = _nearest(index, chunk)
        # Sum a chunk in float32 (few frames per cluster), accumulate chunks in float64.
        chunk_sums = torch.zeros(k, frames.dim).index_add_(0, torch.from_numpy(ids), torch.from_numpy(chunk))
        sums += chunk_sums
        counts += np.bincount(ids, minlength=k)
        total += float(distances.sum(dtype=np.float64))
    return sums.numpy(), counts, total / frames.num_frames


def _fit_faiss(
    frames: Frames, k: int, seed: int, max_iter: int, init_sample: int, tol: float, device: str
) -> tuple[np.ndarray, dict]:
    from sklearn.cluster import kmeans_plusplus

    rng = np.random.default_rng(seed)
    sample = _sample_frames(frames, max(init_sample, k), rng)
    # sklearn's k-means++ runs ~3x faster on float64 than on float32 input.
    centroids, _ = kmeans_plusplus(sample.astype(np.float64), k, random_state=seed)
    centroids = centroids.astype(np.float32)
    history: list[float] = []
    bar = tqdm(range(max_iter), desc=f"k-means K={k}", unit="iter", leave=False, disable=None)
    for _ in bar:
        sums, counts, inertia = _lloyd_pass(_index(centroids, device), frames, k)
        filled = counts > 0  # an empty cluster keeps its centroid
        centroids[filled] = (sums[filled] / counts[filled, None]).astype(np.float32)
        history.append(inertia)
        bar.set_postfix(inertia=f"{inertia:.4g}", empty=int((~filled).sum()))
        if len(history) > 1 and history[-2] - inertia <= tol * history[-2]:
            break
    bar.close()
    info = {"iterations": len(history), "init_sample": len(sample), "inertia_history": history}
    return centroids, info


def _fit_sklearn(frames: Frames, k: int, seed: int) -> tuple[np.ndarray, dict]:
    from sklearn.cluster import MiniBatchKMeans

    data = np.concatenate(list(frames.chunks()))
    _check_finite(data, frames)
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, compute_labels=False, verbose=0, **REFERENCE_SETTINGS)
    km.fit(data)
    return km.cluster_centers_.astype(np.float32), {"iterations": int(km.n_iter_), "steps": int(km.n_steps_)}


def fit_kmeans(
    frames: Frames | np.ndarray,
    k: int,
    *,
    seed: int = 1,
    engine: str = "faiss",
    max_iter: int = DEFAULT_MAX_ITER,
    init_sample: int | None = None,
    tol: float = 1e-4,
    device: str = "cpu",
    threads: int | None = None,
) -> KMeansModel:
    """Fit ``k`` centroids to ``frames`` (a :class:`Frames` stream or an in-memory array).

    ``engine="faiss"``: k-means++ on ``init_sample`` random frames (default: the larger of
    20000 and 100 per cluster), then at most ``max_iter``
    streamed Lloyd passes, stopping early when a pass improves inertia by less than ``tol``
    (relative). ``engine="sklearn"``: the reference MiniBatchKMeans setting (all in memory).
    ``threads``: faiss's OpenMP threads, set for the calling thread (OpenMP thread counts are
    per thread); None leaves the calling thread's own (OMP_NUM_THREADS unless
    :func:`set_faiss_threads` changed it), so that a caller's setting holds.
    Raises :class:`TargetError` for K < 1, K above the number of frames, or non-finite values.
    """
    if isinstance(frames, np.ndarray):
        frames = ArrayFrames(frames)
    if engine not in ENGINES:
        raise TargetError(f"unknown k-means engine {engine!r}: choose from {', '.join(ENGINES)}")
    _check_fit_input(frames, k)
    if threads is not None:
        set_faiss_threads(threads)
    start = time.perf_counter()
    if engine == "faiss":
        init_sample = init_sample or max(DEFAULT_INIT_SAMPLE, INIT_FRAMES_PER_CLUSTER * k)
        centroids, info = _fit_faiss(frames, k, seed, max_iter, init_sample, tol, device)
        settings = {"max_iter": max_iter, "tol": tol}
    else:
        centroids, info = _fit_sklearn(frames, k, seed)
        settings = dict(REFERENCE_SETTINGS)
    settings = {
        "engine": engine, "k": k, "seed": seed, "dim": frames.dim, "num_frames": frames.num_frames,
        **settings, **info, "seconds": round(time.perf_counter() - start, 3),
    }  # fmt: skip
    logger.info("k-means (%s) K=%d on %d frames: %.1f s", engine, k, frames.num_frames, settings["seconds"])
    return KMeansModel(centroids, settings)

