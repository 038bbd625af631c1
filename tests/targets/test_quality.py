"""Target quality: phone purity, cluster purity and PNMI on hand-built joint counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from espnet_hubert_ae.data.datadir import Segment
from espnet_hubert_ae.targets.quality import (
    cluster_purity,
    joint_counts,
    phone_purity,
    pnmi,
    target_quality,
)


def test_perfect_labels():
    joint = np.diag([10, 20, 30])
    assert phone_purity(joint) == pytest.approx(1.0)
    assert cluster_purity(joint) == pytest.approx(1.0)
    assert pnmi(joint) == pytest.approx(1.0)


def test_independent_labels():
    joint = np.outer([1, 2, 3], [4, 1, 5]) * 7  # p(y, z) = p(y) p(z)
    assert pnmi(joint) == pytest.approx(0.0, abs=1e-12)
    assert phone_purity(joint) == pytest.approx(3 / 6)  # every cluster's best phone is the 3/6 one
    assert cluster_purity(joint) == pytest.approx(5 / 10)


def test_clusters_split_phones():
    """Each phone split over two clusters: clusters fully predict phones, not the reverse."""
    joint = np.array([[5, 5, 0, 0], [0, 0, 5, 5]])
    assert phone_purity(joint) == pytest.approx(1.0)
    assert cluster_purity(joint) == pytest.approx(0.5)
    assert pnmi(joint) == pytest.approx(1.0)


def test_clusters_merge_phones():
    """Four equiprobable phones in two clusters: half the phone entropy is explained."""
    joint = np.array([[5, 0], [5, 0], [0, 5], [0, 5]])
    assert phone_purity(joint) == pytest.approx(0.5)
    assert cluster_purity(joint) == pytest.approx(1.0)
    assert pnmi(joint) == pytest.approx(math.log(2) / math.log(4))


def test_quality_from_labels_and_ctm():
    phones = {"u": [Segment("u", 0.0, 0.04, "A"), Segment("u", 0.04, 0.04, "B")], "other": []}
    labels = {"u": np.array([0, 0, 1, 1]), "unaligned": np.array([0])}
    joint, phone_list, stats = joint_counts(labels, phones, k=3)
    assert phone_list == ["A", "B"]
    assert joint.tolist() == [[2, 0, 0], [0, 2, 0]]
    assert stats == {"frames": 4, "frames_unaligned": 0, "utterances_without_phones": 1}
    quality = target_quality(labels, phones, k=3)
    assert quality["pnmi"] == pytest.approx(1.0) and quality["phone_purity"] == pytest.approx(1.0)
