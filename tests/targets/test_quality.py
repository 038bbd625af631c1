"""Target quality: phone purity, cluster purity and PNMI on hand-built joint counts, and the
bias correction of PNMI on sampled tables with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from espnet_hubert_ae.data.datadir import Segment
from espnet_hubert_ae.targets.quality import (
    cluster_purity,
    joint_counts,
    joint_table,
    phone_purity,
    pnmi,
    quality_of,
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
    quality = target_quality(labels, phones, k=3, held_out=True)
    assert quality["pnmi"] == pytest.approx(1.0) and quality["phone_purity"] == pytest.approx(1.0)
    assert quality["held_out"] is True and quality["k"] == 3 and quality["frames"] == 4
    assert target_quality(labels, {}, k=3, held_out=False)["pnmi_corrected"] is None  # nothing aligned


def _sampled_table(rng, joint_probabilities, frames):
    num_phones, k = joint_probabilities.shape
    cells = rng.choice(num_phones * k, size=frames, p=joint_probabilities.ravel())
    return joint_table(*np.divmod(cells, k), num_phones, k)


def _zipf_phones_and_clusters(rng, num_phones=40, k=100):
    phones = 1 / np.arange(1, num_phones + 1)
    return phones / phones.sum(), rng.dirichlet(np.full(k, 2.0))


def test_independent_phones_and_clusters_plugin_is_biased_corrected_is_not():
    """Phones and clusters drawn independently: the true PNMI is 0. On 5000 frames of a 40 x 100
    table the plug-in estimate is far above 0 (~(P-1)(K-1)/2N nats), the corrected one is not."""
    rng = np.random.default_rng(0)
    phones, clusters = _zipf_phones_and_clusters(rng)
    for seed in range(3):
        quality = quality_of(_sampled_table(np.random.default_rng(seed), np.outer(phones, clusters), 5000), seed=seed)
        assert quality["pnmi"] > 0.05
        assert abs(quality["pnmi_corrected"]) < 0.01
        assert quality["frames"] == 5000 and quality["k"] == 100


def test_dependent_phones_and_clusters_corrected_is_closer_to_the_truth():
    """Each cluster prefers one phone: a known PNMI, computed from the exact table."""
    rng = np.random.default_rng(1)
    phones, clusters = _zipf_phones_and_clusters(rng)
    preferred = rng.integers(0, len(phones), size=len(clusters))
    given_phone = np.tile(0.5 * clusters, (len(phones), 1))
    for phone in range(len(phones)):
        mine = preferred == phone
        given_phone[phone] += 0.5 * (mine / mine.sum() if mine.any() else clusters)
    exact = phones[:, None] * given_phone
    truth = pnmi(exact)
    assert 0.2 < truth < 0.6
    quality = quality_of(_sampled_table(rng, exact, 20000))
    assert quality["pnmi"] - truth > 0.02  # the plug-in bias at this size
    assert abs(quality["pnmi_corrected"] - truth) < quality["pnmi"] - truth
