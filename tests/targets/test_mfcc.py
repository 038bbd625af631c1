"""MFCC features: Kaldi-compliance MFCC (use_energy=False) + deltas + delta-deltas, 100 Hz."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchaudio

from espnet_hubert_ae.targets.mfcc import MFCC_DIM, mfcc_features, mfcc_frame_count


def test_equals_kaldi_compliance_mfcc_with_deltas():
    wav = 0.1 * torch.randn(16000 + 1234, generator=torch.Generator().manual_seed(0))
    mfcc = torchaudio.compliance.kaldi.mfcc(wav[None], sample_frequency=16000, use_energy=False)  # (T, 13)
    d1 = torchaudio.functional.compute_deltas(mfcc.T)
    d2 = torchaudio.functional.compute_deltas(d1)
    expected = torch.cat([mfcc.T, d1, d2]).T.numpy()
    ours = mfcc_features(wav.numpy())
    assert ours.shape == (mfcc_frame_count(len(wav)), MFCC_DIM) == expected.shape
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("num_samples", [400, 559, 560, 16000, 48321])
def test_frame_count_is_kaldi_snip_edges(num_samples):
    wav = np.random.default_rng(1).standard_normal(num_samples).astype(np.float32) * 0.1
    assert len(mfcc_features(wav)) == mfcc_frame_count(num_samples) == 1 + (num_samples - 400) // 160
