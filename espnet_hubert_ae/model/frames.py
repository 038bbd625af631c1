"""Frame arithmetic of HuBERT's conv feature extractor, and frames against time alignments.

Every stage that counts frames or maps a frame to a moment of the audio goes through here:
targets (label counts, quality against phones), the analysis (pooling over phone and word
spans, the frame sample of the probe) and the model (``hubert.frame_counter``). Nothing here
needs torch, so light callers stay light.
"""

from __future__ import annotations

import bisect
from typing import Sequence

from espnet_hubert_ae.data.datadir import Segment

# (kernel, stride) of HuBERT Base's convolutional feature extractor: 400-sample receptive
# field, 320-sample hop, i.e. 50 frames per second at 16 kHz.
BASE_CONV_LAYERS: tuple[tuple[int, int], ...] = ((10, 5), (3, 2), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2))

# Centre of frame i of that stack (400-sample window, 320-sample hop, 16 kHz), which is also
# the centre of 100 Hz MFCC frame 2i: 0.0125 s + 0.02 s * i.
FRAME_SHIFT = 0.02
FRAME_CENTRE = 0.0125


def conv_frame_count(num_samples: int, conv_layers: Sequence[Sequence[int]] = BASE_CONV_LAYERS) -> int:
    """Number of frames the conv feature extractor makes of ``num_samples`` samples.

    ``conv_layers`` lists ``(kernel, stride)`` per layer (an ``(channels, kernel, stride)``
    triple as in ESPnet's ``extractor_conv_layer_config`` is accepted too). Each unpadded conv
    layer maps ``n`` to ``floor((n - kernel) / stride) + 1``, and never below zero, exactly as
    torchaudio's ``ConvLayerBlock`` computes output lengths.
    """
    n = int(num_samples)
    for layer in conv_layers:
        kernel, stride = (layer[1], layer[2]) if len(layer) == 3 else (layer[0], layer[1])
        n = max(0, (n - kernel) // stride + 1)
    return n


def frame_phones(segments: Sequence[Segment], num_frames: int) -> list[str | None]:
    """Phone at each frame's centre (None where the CTM has no segment)."""
    starts = [s.start for s in segments]
    phones: list[str | None] = []
    for i in range(num_frames):
        t = FRAME_CENTRE + FRAME_SHIFT * i
        j = bisect.bisect_right(starts, t) - 1
        phones.append(segments[j].label if j >= 0 and t < segments[j].end else None)
    return phones
