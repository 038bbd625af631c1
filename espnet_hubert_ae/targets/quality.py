"""How well cluster labels track phones: phone purity, cluster purity and PNMI (HuBERT paper).

With y the phone of a frame (from forced-alignment CTMs, read at the frame's centre) and z its
cluster, and p(y, z) the joint frame frequencies:

- phone purity   = sum_z max_y p(y, z)  (how well a cluster predicts a phone)
- cluster purity = sum_y max_z p(y, z)  (how well a phone predicts a cluster)
- PNMI           = I(y; z) / H(y)       (share of phone uncertainty the clusters remove)

Purities are comparable only at equal K. Silence segments of the CTMs count as a phone.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from espnet_hubert_ae.data.datadir import Segment
from espnet_hubert_ae.model.frames import frame_phones


def phone_purity(joint: np.ndarray) -> float:
    """``joint`` is phones x clusters counts (or probabilities)."""
    p = joint / joint.sum()
    return float(p.max(axis=0).sum())


def cluster_purity(joint: np.ndarray) -> float:
    p = joint / joint.sum()
    return float(p.max(axis=1).sum())


def pnmi(joint: np.ndarray) -> float:
    """Phone-normalised mutual information I(y; z) / H(y) of a phones x clusters table."""
    p = joint / joint.sum()
    py = p.sum(axis=1, keepdims=True)
    pz = p.sum(axis=0, keepdims=True)
    nz = p > 0
    mutual = float((p[nz] * np.log(p[nz] / (py @ pz)[nz])).sum())
    hy = float(-(py[py > 0] * np.log(py[py > 0])).sum())
    return mutual / hy if hy > 0 else 0.0


def joint_counts(
    labels: Mapping[str, np.ndarray], phones: Mapping[str, Sequence[Segment]], k: int
) -> tuple[np.ndarray, list[str], dict]:
    """Phones x clusters frame counts over the utterances having both labels and phones."""
    phone_ids: dict[str, int] = {}
    pairs: list[tuple[int, int]] = []
    unaligned = missing = 0
    for utt_id, ids in labels.items():
        if utt_id not in phones:
            missing += 1
            continue
        for phone, cluster in zip(frame_phones(phones[utt_id], len(ids)), ids.tolist()):
            if phone is None:
                unaligned += 1
                continue
            pairs.append((phone_ids.setdefault(phone, len(phone_ids)), cluster))
    joint = np.zeros((len(phone_ids), k), dtype=np.int64)
    if pairs:
        rows, cols = np.array(pairs).T
        np.add.at(joint, (rows, cols), 1)
    stats = {"frames": len(pairs), "frames_unaligned": unaligned, "utterances_without_phones": missing}
    return joint, sorted(phone_ids, key=phone_ids.get), stats


def target_quality(labels: Mapping[str, np.ndarray], phones: Mapping[str, Sequence[Segment]], k: int) -> dict:
    """Purities and PNMI of 50 Hz ``labels`` against phone CTM segments, with frame counts."""
    joint, phone_list, stats = joint_counts(labels, phones, k)
    if stats["frames"] == 0:
        return {"k": k, **stats, "phone_purity": None, "cluster_purity": None, "pnmi": None}
    return {
        "k": k,
        "phones": len(phone_list),
        **stats,
        "phone_purity": round(phone_purity(joint), 6),
        "cluster_purity": round(cluster_purity(joint), 6),
        "pnmi": round(pnmi(joint), 6),
    }
