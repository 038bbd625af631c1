"""Cluster quality of a layer: how well k-means clusters of its frames track phones.

The clustering height of the next pretraining phase can be chosen from this: the layer whose
clusters carry the most phone information (PNMI) at the K the targets will use. k-means and
the measures are the targets' own (:mod:`espnet_hubert_ae.targets`), so the numbers match
those of real target sets.
"""

from __future__ import annotations

import numpy as np

from espnet_hubert_ae.analysis import AnalysisError


def cluster_quality(fit_frames: np.ndarray, frames: np.ndarray, labels: np.ndarray, *, k: int, seed: int = 1) -> dict:
    """Fit K centroids on ``fit_frames``, cluster ``frames`` and score them against their phone ``labels``.

    The analysis fits on the frames of its training utterances and scores every sampled frame:
    held-out frames alone would leave too few frames per cluster on small sets.
    """
    from espnet_hubert_ae.targets import quality
    from espnet_hubert_ae.targets.kmeans import fit_kmeans

    if len(fit_frames) < k:
        raise AnalysisError(
            f"cluster quality: K={k} clusters need at least {k} frames to fit, the sample has "
            f"{len(fit_frames)}; lower --kmeans_k or raise --probe_frames"
        )
    model = fit_kmeans(np.ascontiguousarray(fit_frames, dtype=np.float32), k, seed=seed)
    clusters, _ = model.assign(np.ascontiguousarray(frames, dtype=np.float32))
    phones, phone_ids = np.unique(np.asarray(labels), return_inverse=True)
    joint = np.zeros((len(phones), k), dtype=np.int64)
    np.add.at(joint, (phone_ids, np.asarray(clusters, dtype=np.int64)), 1)
    return {
        "k": k,
        "fit_frames": int(len(fit_frames)),
        "frames": int(len(frames)),
        "phones": int(len(phones)),
        "pnmi": quality.pnmi(joint),
        "phone_purity": quality.phone_purity(joint),
        "cluster_purity": quality.cluster_purity(joint),
    }
