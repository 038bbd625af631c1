"""The s3prl upstream expert behind ``hubert_ae_local``: every layer's hidden states of a checkpoint.

s3prl's upstream contract: a list of unpadded 1-D waveforms in, ``{"hidden_states": [...]}``
out, one ``(B, F, D)`` tensor per layer with the project's layer convention (index 0 = input
of the first transformer layer, L = output of transformer layer L; see
:mod:`espnet_hubert_ae.model.hubert`, which computes them, so upstream and feature dumps agree).
Frames past an utterance's end repeat its last frame, so batching does not change results.

The upstream is a frozen feature extractor, as in SUPERB: the model always runs in eval mode
and without gradients, whatever mode its parent is put in. It runs on the device of its
parameters (s3prl and ESPnet move it with ``.to()``); inputs follow.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor, nn

from espnet_hubert_ae.model.hubert import CheckpointError, frame_grid, hidden_states, load_pretrain_model
from espnet_hubert_ae.upstream.registry import UpstreamError

logger = logging.getLogger(__name__)

MODEL_SAMPLE_RATE = 16000


class UpstreamExpert(nn.Module):
    """A pretraining checkpoint as an s3prl upstream (see the module docstring).

    ``sample_rate``: rate of the audio that will be fed. Other rates than 16 kHz are resampled
    to 16 kHz in ``forward``; the downsample rate is then reported in input samples (e.g. 160
    for 8 kHz audio), so s3prl's frame-length arithmetic stays right. Rates for which that is
    not a whole number are refused.
    """

    def __init__(
        self, checkpoint: str | Path, config: str | Path | None = None, sample_rate: int = MODEL_SAMPLE_RATE
    ):
        super().__init__()
        try:
            model, _ = load_pretrain_model(checkpoint, config, device="cpu")
        except CheckpointError as err:
            raise UpstreamError(f"hubert_ae_local: {err}") from None
        self.model = model
        self.model.requires_grad_(False)
        self.model.eval()
        self.checkpoint = str(checkpoint)
        grid = frame_grid(model)
        self.min_samples = grid.min_samples()
        self.model_stride = grid.hop
        self.sample_rate = int(sample_rate)
        self._downsample_rate = self._input_downsample_rate()
        if self.sample_rate != MODEL_SAMPLE_RATE:
            logger.info("hubert_ae_local: audio at %d Hz is resampled to %d Hz",
                        self.sample_rate, MODEL_SAMPLE_RATE)

    def _input_downsample_rate(self) -> int:
        rate = self.model_stride * self.sample_rate / MODEL_SAMPLE_RATE
        if self.sample_rate <= 0 or rate != int(rate):
            raise UpstreamError(
                f"hubert_ae_local: sample_rate={self.sample_rate} is not supported: the model hops "
                f"{self.model_stride} samples at {MODEL_SAMPLE_RATE} Hz, which is no whole number of samples "
                f"at {self.sample_rate} Hz; resample the audio to {MODEL_SAMPLE_RATE} Hz first")
        return int(rate)

    def train(self, mode: bool = True) -> "UpstreamExpert":
        """Follow the parent's mode for bookkeeping, but keep the model itself in eval mode."""
        super().train(mode)
        self.model.eval()
        return self

    def get_downsample_rates(self, key: str | None = None) -> int:
        return self._downsample_rate

    def _prepare(self, wavs: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Resampled, padded batch (B, T) and valid lengths, each at least one frame long."""
        prepared = []
        for index, wav in enumerate(wavs):
            if wav.dim() == 2 and wav.shape[-1] == 1:  # (T, 1), as some loaders return mono audio
                wav = wav[:, 0]
            wav = wav.float()
            if wav.dim() != 1:
                raise UpstreamError(f"hubert_ae_local: waveform {index} of the batch has shape "
                                    f"{tuple(wav.shape)}; expected 1-D mono audio")
            if wav.numel() == 0:
                raise UpstreamError(f"hubert_ae_local: waveform {index} of the batch is empty (0 samples)")
            if self.sample_rate != MODEL_SAMPLE_RATE:
                import torchaudio.functional

                wav = torchaudio.functional.resample(wav, self.sample_rate, MODEL_SAMPLE_RATE)
            prepared.append(wav)
        lengths = torch.tensor([len(w) for w in prepared], dtype=torch.long)
        # Audio shorter than one frame is zero-padded to exactly one frame rather than refused:
        # s3prl itself pads batches of very short audio, and one frame is what it expects back.
        lengths = lengths.clamp(min=self.min_samples)
        padded = torch.zeros(len(prepared), int(lengths.max()), dtype=prepared[0].dtype, device=prepared[0].device)
        for row, wav in enumerate(prepared):
            padded[row, : len(wav)] = wav
        return padded, lengths

    def forward(self, wavs: list[Tensor]) -> dict[str, list[Tensor]]:
        if len(wavs) == 0:
            raise UpstreamError("hubert_ae_local: an empty batch (no waveforms)")
        padded, lengths = self._prepare(wavs)
        self.model.eval()
        states, frame_lengths = hidden_states(self.model, padded, lengths)
        return {"hidden_states": [_repeat_last_valid_frame(s, frame_lengths) for s in states]}


def _repeat_last_valid_frame(states: Tensor, frame_lengths: Tensor) -> Tensor:
    """Fill each utterance's padding frames with its last valid frame.

    s3prl counts ``ceil(samples / 320)`` frames, usually one more than the conv stack makes,
    and fills a lone utterance's missing frame by repeating its last one. Doing the same to
    padding makes an utterance's output independent of the batch it is in.
    """
    frames = torch.arange(states.shape[1], device=states.device)
    last = (frame_lengths.to(states.device) - 1).clamp(min=0)
    index = torch.minimum(frames[None, :], last[:, None])
    return states.gather(1, index[:, :, None].expand(-1, -1, states.shape[2]))
