"""The log-mel front end: Kaldi filterbank frames of a batch, normalised and stacked, in the model.

MelHuBERT (Lin, Lee, Tang, ASRU 2023) trains HuBERT's objective on log-mel frames instead of
raw audio through a convolutional feature extractor. Here that front end sits *inside* the
model, in the feature extractor's place, so a checkpoint still takes 16 kHz audio and every
stage (targets of later phases, upstream, analysis, feature cache, fine-tuning) runs it as it
runs the waveform model.

What it computes, per utterance of a padded batch:

1. 80 log-mel energies per window, as Kaldi's ``compute-fbank-feats`` with torchaudio's
   ``compliance.kaldi.fbank`` defaults and no dither (16-bit sample scale, DC removal,
   pre-emphasis 0.97, Povey window, power spectrum of the window zero-padded to a power of two,
   mel banks from 20 Hz to Nyquist, natural log floored at float32's epsilon) -- batched, on the
   model's device, as two matrix products;
2. each mel bin normalised to zero mean and unit variance over the utterance's own frames
   (``normalize: utterance``) or left as is (``none``);
3. ``stack`` consecutive frames concatenated into one, the last group of an utterance completed
   by repeating its last frame. With windows of ``L`` samples every ``h`` samples this puts an
   utterance's frames on the grid ``FrameGrid(L, stack * h)``: stacking two 25 ms / 10 ms frames
   gives exactly the frame count of HuBERT's conv stack (400-sample field, 320-sample hop),
   frame ``i`` starting with the 10 ms frame whose MFCC label the 50 Hz targets keep.

Padding never changes an utterance's output: statistics use its valid frames only, and frames
past its end repeat its last valid 10 ms frame. The front end has no parameters (its mel matrix and
spectrum matrices are non-persistent buffers), so checkpoints hold none of it.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from espnet_hubert_ae.model.frames import FrameGrid

SAMPLE_RATE = 16000
KALDI_SAMPLE_SCALE = 32768.0  # Kaldi reads 16-bit integer sample values
PREEMPHASIS = 0.97
LOW_FREQ = 20.0
NORMALIZE_MODES = ("utterance", "none")
VARIANCE_FLOOR = 1e-5


@dataclasses.dataclass(frozen=True)
class LogMelConfig:
    """Settings of the log-mel front end (the ``logmel_*`` keys of an encoder config)."""

    bins: int = 80
    frame_length: float = 25.0  # ms
    frame_shift: float = 10.0  # ms
    stack: int = 2
    normalize: str = "utterance"

    KEY_PREFIX = "logmel_"

    @classmethod
    def from_encoder_conf(cls, encoder_conf: dict) -> "LogMelConfig":
        """The settings among an encoder config's keys (``logmel_bins``, ``logmel_stack``, ...)."""
        prefix = cls.KEY_PREFIX
        given = {key[len(prefix):]: value for key, value in encoder_conf.items() if key.startswith(prefix)}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(prefix + key for key in given.keys() - known)
        if unknown:
            raise ValueError(f"unknown log-mel front end option(s) {', '.join(unknown)} in encoder_conf; "
                             f"known: {', '.join(prefix + k for k in sorted(known))}")
        return cls(**given)

    def to_encoder_conf(self) -> dict:
        return {self.KEY_PREFIX + f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __post_init__(self):
        if self.normalize not in NORMALIZE_MODES:
            raise ValueError(f"logmel_normalize must be one of {NORMALIZE_MODES}, not {self.normalize!r}")
        if self.bins < 1 or self.stack < 1:
            raise ValueError(f"logmel_bins and logmel_stack must be positive (got {self.bins}, {self.stack})")
        for name in ("window", "shift"):
            samples = getattr(self, name)
            if samples < 1 or samples != int(samples):
                raise ValueError(f"the log-mel frame {name} must be a positive whole number of samples at "
                                 f"{SAMPLE_RATE} Hz, got {samples}")

    @property
    def window(self) -> int:
        return round(self.frame_length * SAMPLE_RATE / 1000) if _whole(self.frame_length) else -1

    @property
    def shift(self) -> int:
        return round(self.frame_shift * SAMPLE_RATE / 1000) if _whole(self.frame_shift) else -1

    @property
    def grid(self) -> FrameGrid:
        return FrameGrid(self.window, self.shift * self.stack)

    @property
    def output_dim(self) -> int:
        return self.bins * self.stack


def _whole(ms: float) -> bool:
    samples = ms * SAMPLE_RATE / 1000
    return abs(samples - round(samples)) < 1e-6


def _padded_window(window: int) -> int:
    """Kaldi's FFT size: the window rounded up to a power of two."""
    return 1 << (window - 1).bit_length()


def kaldi_mel_banks(bins: int, window: int) -> Tensor:
    """``(fft_bins, bins)`` Kaldi mel filterbank matrix (torchaudio's, zero for the Nyquist bin)."""
    from torchaudio.compliance.kaldi import get_mel_banks

    banks, _ = get_mel_banks(bins, _padded_window(window), float(SAMPLE_RATE), LOW_FREQ, 0.0, 100.0, -500.0, 1.0)
    return nn.functional.pad(banks, (0, 1)).t().contiguous()


def povey_window(window: int) -> Tensor:
    return torch.hann_window(window, periodic=False, dtype=torch.float64).pow(0.85)


def kaldi_spectrum_matrix(window: int) -> Tensor:
    """``(window, 2 * fft_bins)``: the real and imaginary DFT parts of a Kaldi-prepared frame.

    Kaldi's per-frame preparation (mean removal, pre-emphasis ``y[j] = x[j] - 0.97 x[max(0, j-1)]``,
    Povey window) and the zero-padded DFT are all linear in the frame's samples, so they fold into
    one matrix: a batch's spectra are then a single matrix product instead of a chain of
    element-wise passes over every frame.
    """
    n = window
    fft_size = _padded_window(n)
    centre = torch.eye(n, dtype=torch.float64) - 1.0 / n
    emphasis = torch.eye(n, dtype=torch.float64)
    emphasis[1:, :-1] -= PREEMPHASIS * torch.eye(n - 1, dtype=torch.float64)
    emphasis[0, 0] -= PREEMPHASIS
    prepare = povey_window(n)[:, None] * (emphasis @ centre)  # (n, n): prepared = prepare @ frame
    k = torch.arange(fft_size // 2 + 1, dtype=torch.float64)
    angle = 2 * torch.pi * torch.arange(n, dtype=torch.float64)[:, None] * k[None, :] / fft_size
    dft = torch.cat([angle.cos(), -angle.sin()], dim=1)  # (n, 2 * bins)
    return (prepare.t() @ dft).float()


def kaldi_log_mel(wavs: Tensor, window: int, shift: int, mel_banks: Tensor, spectrum_matrix: Tensor) -> Tensor:
    """``(B, frames, bins)`` Kaldi log-mel of every whole window of a ``(B, T)`` batch in [-1, 1].

    Frames are counted on the padded length: those past an utterance's own end are the caller's
    to discard.
    """
    frames = (wavs.float() * KALDI_SAMPLE_SCALE).unfold(-1, window, shift)  # (B, F, window)
    parts = frames @ spectrum_matrix
    real, imaginary = parts.chunk(2, dim=-1)
    energies = (real.square() + imaginary.square()) @ mel_banks
    return energies.clamp_min(torch.finfo(torch.float32).eps).log()


class LogMelFrontEnd(nn.Module):
    """A parameter-free feature extractor with the interface of torchaudio's conv one.

    ``forward(waveforms (B, T), lengths (B,) or None) -> (features (B, F, bins * stack), frame
    lengths (B,) or None)``, ``F`` being the grid's frame count of the longest utterance.
    """

    def __init__(self, config: LogMelConfig = LogMelConfig()):
        super().__init__()
        self.config = config
        self.grid = config.grid
        self.register_buffer("mel_banks", kaldi_mel_banks(config.bins, config.window), persistent=False)
        self.register_buffer("spectrum_matrix", kaldi_spectrum_matrix(config.window), persistent=False)

    @property
    def output_dim(self) -> int:
        return self.config.output_dim

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        """Frames of each utterance on the grid (none below one window)."""
        grid = self.grid
        return torch.where(lengths >= grid.window, torch.div(lengths - grid.window, grid.hop, rounding_mode="floor") + 1,
                           torch.zeros_like(lengths))

    def forward(self, waveforms: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        c = self.config
        batch = waveforms.shape[0]
        if lengths is None:
            sample_lengths = torch.full((batch,), waveforms.shape[1], dtype=torch.long, device=waveforms.device)
        else:
            sample_lengths = lengths.to(device=waveforms.device, dtype=torch.long)
        out_lengths = self.frame_lengths(sample_lengths)
        total = int(out_lengths.max()) if batch else 0
        if total == 0:
            empty = waveforms.new_zeros((batch, 0, c.output_dim), dtype=torch.float32)
            return empty, None if lengths is None else out_lengths
        device_type = waveforms.device.type
        with torch.autocast(device_type=device_type, enabled=False):  # features in float32 under AMP too
            mel = kaldi_log_mel(waveforms, c.window, c.shift, self.mel_banks, self.spectrum_matrix)
            # Mel frames of each utterance: every whole window in its own samples.
            mel_lengths = torch.div(sample_lengths - c.window, c.shift, rounding_mode="floor") + 1
            mel_lengths = mel_lengths.clamp_min(0)
            steps = torch.arange(mel.shape[1], device=mel.device)
            valid = steps[None, :] < mel_lengths[:, None]  # (B, F)
            if c.normalize == "utterance":
                mel = _normalise(mel, valid, mel_lengths)
            # Frames past an utterance's end (and the completion of its last stack) repeat its last frame.
            needed = total * c.stack
            if mel.shape[1] < needed:
                mel = torch.cat([mel, mel[:, -1:].expand(-1, needed - mel.shape[1], -1)], dim=1)
            last = (mel_lengths - 1).clamp_min(0)
            index = torch.minimum(torch.arange(needed, device=mel.device)[None, :], last[:, None])
            mel = mel.gather(1, index[:, :, None].expand(-1, -1, c.bins))
            features = mel.reshape(batch, total, c.output_dim)
        return features, None if lengths is None else out_lengths


def _normalise(mel: Tensor, valid: Tensor, counts: Tensor) -> Tensor:
    """Each bin to zero mean and unit variance over the valid frames of its utterance."""
    weight = valid.unsqueeze(-1).to(mel.dtype)
    n = counts.clamp_min(1).to(mel.dtype)[:, None, None]
    mean = (mel * weight).sum(dim=1, keepdim=True) / n
    variance = (((mel - mean) * weight) ** 2).sum(dim=1, keepdim=True) / n
    return (mel - mean) / variance.clamp_min(VARIANCE_FLOOR).sqrt()


class LogMelProjection(nn.Module):
    """Stacked log-mel frames to the transformer's width: linear, then layer norm (and dropout).

    It takes the place of the encoder's feature projection (layer norm of the conv features,
    then linear): log-mel frames are normalised already, and the layer norm after the linear
    map keeps the transformer's input at unit scale whatever the input width.
    """

    def __init__(self, in_features: int, out_features: int, dropout: float):
        super().__init__()
        self.projection = nn.Linear(in_features, out_features)
        self.layer_norm = nn.LayerNorm(out_features)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.layer_norm(self.projection(x)))
