"""Frame arithmetic of the conv stack, and frames read against time alignments."""

from __future__ import annotations

import pytest

from espnet_hubert_ae.data.datadir import Segment
from espnet_hubert_ae.model.frames import BASE_CONV_LAYERS, conv_frame_count, conv_grid, frame_phones


@pytest.mark.parametrize("num_samples", [0, 399, 400, 719, 720, 16000, 16001, 123457])
def test_base_frame_count_is_hubert_arithmetic(num_samples):
    expected = max(0, (num_samples - 400) // 320 + 1)
    assert conv_frame_count(num_samples) == expected
    assert conv_frame_count(num_samples, [[512, k, s] for k, s in BASE_CONV_LAYERS]) == expected


@pytest.mark.parametrize("layers", [BASE_CONV_LAYERS, [(5, 5), (8, 8), (10, 8)], [(3, 1), (4, 2)], [(7, 3), (2, 2), (5, 1)]])
def test_a_conv_stack_is_one_grid(layers):
    """Layer-by-layer conv arithmetic equals one window/hop grid (receptive field, stride product)."""
    grid = conv_grid(layers)
    for num_samples in range(0, 3000):
        n = num_samples
        for kernel, stride in layers:
            n = max(0, (n - kernel) // stride + 1)
        assert grid.count(num_samples) == n, (layers, num_samples)


def test_frames_read_phones_at_their_centres():
    segments = [Segment("u", 0.0, 0.03, "A"), Segment("u", 0.03, 0.02, "B"), Segment("u", 0.05, 0.05, "C")]
    # centres 0.0125, 0.0325, 0.0525, 0.0725, 0.0925, 0.1125
    assert frame_phones(segments, 6) == ["A", "B", "C", "C", "C", None]
