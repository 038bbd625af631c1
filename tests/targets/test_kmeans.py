"""k-means: recovers separated clusters, seeded and deterministic, streamed, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from espnet_hubert_ae.targets.kmeans import ArrayFrames, KMeansModel, fit_kmeans
from espnet_hubert_ae.targets.sources import TargetError


def _blobs(k=6, per_cluster=300, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=20.0, size=(k, dim))
    truth = np.repeat(np.arange(k), per_cluster)
    points = centres[truth] + rng.normal(scale=0.5, size=(len(truth), dim))
    order = rng.permutation(len(truth))
    return points[order].astype(np.float32), truth[order]


def _same_partition(a, b):
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("engine", ["faiss", "sklearn"])
def test_recovers_separated_clusters(engine):
    points, truth = _blobs()
    model = fit_kmeans(points, 6, seed=3, engine=engine)
    labels, _ = model.assign(points)
    assert _same_partition(labels, truth)
    assert model.settings["engine"] == engine and model.k == 6


def test_same_seed_same_model_and_labels():
    points, _ = _blobs(k=10, dim=5, seed=4)
    points += np.random.default_rng(9).normal(scale=8.0, size=points.shape).astype(np.float32)  # overlapping
    first = fit_kmeans(points, 10, seed=7)
    second = fit_kmeans(points, 10, seed=7)
    np.testing.assert_array_equal(first.centroids, second.centroids)
    np.testing.assert_array_equal(first.assign(points)[0], second.assign(points)[0])


def test_streaming_in_small_chunks_gives_the_same_model():
    points, _ = _blobs(k=4, seed=2)
    whole = fit_kmeans(ArrayFrames(points, chunk_frames=10**6), 4, seed=1)
    chunked = fit_kmeans(ArrayFrames(points, chunk_frames=97), 4, seed=1)
    np.testing.assert_allclose(whole.centroids, chunked.centroids, rtol=1e-5, atol=1e-4)


def test_inertia_and_save_load(tmp_path):
    points, _ = _blobs(k=3, seed=5)
    model = fit_kmeans(points, 3, seed=1)
    assert model.inertia(ArrayFrames(points)) == pytest.approx(0.25 * 8, rel=0.15)  # noise variance x dim
    loaded = KMeansModel.load(model.save(tmp_path / "km"))
    np.testing.assert_array_equal(loaded.centroids, model.centroids)
    assert loaded.settings == model.settings


def test_torch_search_finds_the_nearest_centroids():
    """The GPU fall-back without faiss's GPU build (a torch matrix product), run here on the CPU:
    the nearest centroids by exact distances, as faiss finds them."""
    from espnet_hubert_ae.targets.kmeans import _TorchFlatL2

    rng = np.random.default_rng(0)
    centroids = rng.standard_normal((7, 5)).astype(np.float32)
    frames = rng.standard_normal((300, 5)).astype(np.float32)
    exact = ((frames[:, None, :].astype(np.float64) - centroids[None]) ** 2).sum(-1)
    distances, ids = _TorchFlatL2(centroids, "cpu").search(frames, 1)
    np.testing.assert_array_equal(ids[:, 0], exact.argmin(1))
    np.testing.assert_allclose(distances[:, 0], exact.min(1), rtol=1e-4, atol=1e-4)
    model = KMeansModel(centroids)
    np.testing.assert_array_equal(model.assigner()(frames), exact.argmin(1))


def test_k_larger_than_frames():
    with pytest.raises(TargetError, match="K=11 is larger than the number of frames \\(10\\) in array"):
        fit_kmeans(np.zeros((10, 3), dtype=np.float32), 11)


def test_nan_features():
    points, _ = _blobs(k=2, per_cluster=20)
    points[7, 3] = np.nan
    with pytest.raises(TargetError, match="NaN"):
        fit_kmeans(ArrayFrames(points, name="features of train"), 2)


def test_unknown_engine_and_bad_k():
    with pytest.raises(TargetError, match="unknown k-means engine"):
        fit_kmeans(np.zeros((10, 3), dtype=np.float32), 2, engine="cuml")
    with pytest.raises(TargetError, match="at least 1"):
        fit_kmeans(np.zeros((10, 3), dtype=np.float32), 0)


FAISS_THREADS_IN_A_THREAD = """
import threading
import torch  # first, as in every recipe process: faiss then shares torch's OpenMP runtime
import faiss
from espnet_hubert_ae.targets.kmeans import set_faiss_threads

torch.set_num_threads(3)
seen = []

def work():
    set_faiss_threads(1)
    torch.ones(1_000_000).mul_(2)  # torch's first computation in this thread
    seen.append(faiss.omp_get_max_threads())

thread = threading.Thread(target=work)
thread.start()
thread.join()
print(seen[0])
"""


def test_faiss_threads_set_in_a_thread_hold_when_torch_computes_there():
    out = subprocess.run([sys.executable, "-c", FAISS_THREADS_IN_A_THREAD], capture_output=True, text=True,
                         check=True, env={**os.environ, "OMP_NUM_THREADS": "3"})
    assert out.stdout.split()[-1] == "1"
