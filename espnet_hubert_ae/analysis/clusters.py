"""Cluster quality of a layer: how well k-means clusters of its frames track phones.

The clustering height of the next pretraining phase can be chosen from this: the layer whose
clusters carry the most phone information (PNMI) at the K the targets will use. k-means and
the measures are the targets' own (:mod:`espnet_hubert_ae.targets`), so the numbers match
those of real target sets: purities and PNMI, plug-in and bias-corrected, with K and the frame
count they were measured at (plug-in values are comparable only at equal K and frame count).
"""

from __future__ import annotations

import numpy as np

from espnet_hubert_ae.analysis import AnalysisError


def cluster_quality(
    fit_frames: np.ndarray, test_frames: np.ndarray, test_labels: np.ndarray, *, k: int, seed: int = 1
) -> dict:
    """Fit K centroids on ``fit_frames``, cluster the held-out ``test_frames`` and score those
    clusters against their phone ``test_labels`` (the analysis: the training and the held-out
    speakers' frames of one speaker split)."""
    from espnet_hubert_ae.targets import quality
    from espnet_hubert_ae.targets.kmeans import fit_kmeans

    if len(fit_frames) < k:
        raise AnalysisError(
            f"cluster quality: K={k} clusters need at least {k} frames to fit, the sample has "
            f"{len(fit_frames)}; lower --kmeans_k or raise --probe_frames"
        )
    if len(test_frames) == 0:
        raise AnalysisError("cluster quality: no held-out frame to score the clusters on")
    model = fit_kmeans(np.ascontiguousarray(fit_frames, dtype=np.float32), k, seed=seed)
    clusters, _ = model.assign(np.ascontiguousarray(test_frames, dtype=np.float32))
    _, phone_ids = np.unique(np.asarray(test_labels), return_inverse=True)
    joint = quality.joint_table(phone_ids, clusters, int(phone_ids.max()) + 1, k)
    return {**quality.quality_of(joint, seed=seed), "fit_frames": int(len(fit_frames)), "held_out": True}
