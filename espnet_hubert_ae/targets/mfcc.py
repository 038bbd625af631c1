"""MFCC features of HuBERT's first iteration: 13 Kaldi MFCCs + deltas + delta-deltas, 100 Hz.

Computed as fairseq's and ESPnet's MFCC dumpers do: torchaudio's Kaldi-compliance MFCC with
``use_energy=False`` (Kaldi defaults otherwise: 25 ms window, 10 ms shift, no dither,
``snip_edges``) on the float waveform, then first and second order deltas along time.
"""

from __future__ import annotations

import numpy as np

from espnet_hubert_ae.data.datadir import SAMPLE_RATE

MFCC_DIM = 39
MFCC_FRAME_RATE = 100  # frames per second; labels are halved to the model's 50 Hz
_WINDOW = 400  # 25 ms at 16 kHz
_SHIFT = 160  # 10 ms at 16 kHz


def mfcc_frame_count(num_samples: int) -> int:
    """Frames Kaldi's MFCC makes of ``num_samples`` samples (``snip_edges``: whole windows only)."""
    return 0 if num_samples < _WINDOW else 1 + (num_samples - _WINDOW) // _SHIFT


def mfcc_features(waveform: np.ndarray | torch.Tensor) -> np.ndarray:
    """``(frames, 39)`` float32 MFCC + delta + delta-delta of a 1-D 16 kHz waveform in [-1, 1]."""
    import torch  # here, not at the top: the targets' tags, settings and readers stay light to import
    import torchaudio

    x = torch.as_tensor(waveform, dtype=torch.float32).reshape(1, -1)
    mfcc = torchaudio.compliance.kaldi.mfcc(x, sample_frequency=SAMPLE_RATE, use_energy=False)
    by_time = mfcc.transpose(0, 1)  # compute_deltas works along the last axis
    deltas = torchaudio.functional.compute_deltas(by_time)
    delta_deltas = torchaudio.functional.compute_deltas(deltas)
    return torch.cat([by_time, deltas, delta_deltas], dim=0).transpose(0, 1).contiguous().numpy()
