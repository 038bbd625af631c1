"""Frame grids of the models' front ends, and frames against time alignments.

Every stage that counts frames or maps a frame to a moment of the audio goes through here:
targets (label counts, quality against phones), the analysis (pooling over phone and word
spans, the frame sample of the probe) and the model (``hubert.frame_grid``). Nothing here
needs torch, so light callers stay light.

A front end's frames lie on a :class:`FrameGrid`: frame ``i`` starts at sample ``hop * i``, and
an utterance has one frame per whole ``window`` that fits at that hop. Both front ends of the
project's models are such grids: HuBERT's conv stack (window = its receptive field, hop = the
product of its strides) and the log-mel front end (``model.logmel``). The presets all use
HuBERT's 50 Hz grid (400-sample window, 320-sample hop), which is the grid of the MFCC labels
(every second 10 ms frame), the analysis and the FBANK control as well.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import Sequence

from espnet_hubert_ae.data.datadir import Segment

# (kernel, stride) of HuBERT Base's convolutional feature extractor: 400-sample receptive
# field, 320-sample hop, i.e. 50 frames per second at 16 kHz.
BASE_CONV_LAYERS: tuple[tuple[int, int], ...] = ((10, 5), (3, 2), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2))

# Centre of frame i of that stack (400-sample window, 320-sample hop, 16 kHz), which is also
# the centre of 100 Hz MFCC frame 2i: 0.0125 s + 0.02 s * i.
FRAME_SHIFT = 0.02
FRAME_CENTRE = 0.0125


@dataclasses.dataclass(frozen=True)
class FrameGrid:
    """Frames of ``window`` samples every ``hop`` samples, starting at the first sample."""

    window: int
    hop: int

    def count(self, num_samples: int) -> int:
        """Frames in ``num_samples`` samples: ``floor((n - window) / hop) + 1``, none below one window."""
        n = int(num_samples)
        return 0 if n < self.window else (n - self.window) // self.hop + 1

    def min_samples(self) -> int:
        """The shortest input that makes one frame."""
        return self.window

    def frame_rate(self, sample_rate: int = 16000) -> float:
        return sample_rate / self.hop


def _kernel_stride(layer: Sequence[int]) -> tuple[int, int]:
    """``(kernel, stride)`` of a ``(kernel, stride)`` or ESPnet ``(channels, kernel, stride)`` entry."""
    return (int(layer[1]), int(layer[2])) if len(layer) == 3 else (int(layer[0]), int(layer[1]))


def conv_grid(conv_layers: Sequence[Sequence[int]] = BASE_CONV_LAYERS) -> FrameGrid:
    """The grid of a stack of unpadded conv layers: its receptive field every product-of-strides.

    Each layer maps ``n`` inputs to ``floor((n - kernel) / stride) + 1`` outputs (torchaudio's
    ``ConvLayerBlock``); nested floor divisions compose, so the whole stack maps ``n`` to
    ``floor((n - field) / hop) + 1`` with ``field = k1 + (k2 - 1) s1 + (k3 - 1) s1 s2 + ...``.
    """
    field, hop = 1, 1
    for layer in conv_layers:
        kernel, stride = _kernel_stride(layer)
        field += (kernel - 1) * hop
        hop *= stride
    return FrameGrid(field, hop)


# The grid of HuBERT's conv stack, of the MFCC labels at 50 Hz and of the analysis.
HUBERT_GRID = conv_grid(BASE_CONV_LAYERS)


def conv_frame_count(num_samples: int, conv_layers: Sequence[Sequence[int]] = BASE_CONV_LAYERS) -> int:
    """Number of frames a conv feature extractor (HuBERT Base's by default) makes of ``num_samples``."""
    return conv_grid(conv_layers).count(num_samples)


def frame_phones(segments: Sequence[Segment], num_frames: int) -> list[str | None]:
    """Phone at each frame's centre (None where the CTM has no segment)."""
    starts = [s.start for s in segments]
    phones: list[str | None] = []
    for i in range(num_frames):
        t = FRAME_CENTRE + FRAME_SHIFT * i
        j = bisect.bisect_right(starts, t) - 1
        phones.append(segments[j].label if j >= 0 and t < segments[j].end else None)
    return phones
