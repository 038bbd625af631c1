"""ESPnet ASR components for downstream training on cached hidden states.

- :class:`WeightedLayerSum` (frontend ``layer_sum``): a cached utterance holds every hidden
  state of the upstream side by side, ``(frames, num_layers x layer_dim)`` (see
  :mod:`espnet_hubert_ae.asr.cache`); the frontend splits them and returns their
  softmax-weighted sum with learnable weights, SUPERB's weighted layer sum. Each state can
  first be standardised over its features (parameter-free layer norm), so that layers of
  very different scales, and log-mel energies, enter the sum on one scale.
- :class:`BiLSTMEncoder` (encoder ``blstm``): a bidirectional LSTM stack, the downstream of
  SUPERB's ASR task. ESPnet's own ``rnn`` encoder packs padded batches, and on a CPU the
  backward pass through packed sequences is several times slower than through padded ones
  (measured: 4.5 s against 0.6 s for 12 utterances of up to 250 frames, 2 x 128 units); this
  one runs padded batches and reverses each utterance within its own length for the
  backward direction, which gives the packed result exactly on every valid frame.
- :class:`IdentityEncoder` (encoder ``identity``): passes the weighted sum through unchanged,
  so that the CTC output layer alone is the model: SUPERB's linear phoneme-recognition probe.

:func:`register` adds them to ESPnet ASR's class choices (plain module dictionaries), as the
pretraining task registers its scheduler; :func:`train` (the training entry point) and
decoding call it before ESPnet builds a model.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.asr.frontend.abs_frontend import AbsFrontend

FRONTEND_NAME = "layer_sum"
BLSTM_NAME = "blstm"
IDENTITY_NAME = "identity"


class WeightedLayerSum(AbsFrontend):
    """Learnable softmax-weighted sum of the hidden states stored side by side in each frame."""

    def __init__(self, num_layers: int, layer_dim: int, normalize: bool = True):
        super().__init__()
        if num_layers < 1 or layer_dim < 1:
            raise ValueError(f"layer_sum needs num_layers >= 1 and layer_dim >= 1 (got {num_layers}, {layer_dim})")
        self.num_layers = int(num_layers)
        self.layer_dim = int(layer_dim)
        self.normalize = bool(normalize)
        # Zeros: every layer starts with the same weight, as in SUPERB.
        self.weights = torch.nn.Parameter(torch.zeros(self.num_layers))

    def output_size(self) -> int:
        return self.layer_dim

    def layer_weights(self) -> list[float]:
        """The current softmax weight of each layer (index 0 first)."""
        return [float(w) for w in F.softmax(self.weights.detach(), dim=0)]

    def forward(self, input: torch.Tensor, input_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, frames, channels = input.shape
        if channels != self.num_layers * self.layer_dim:
            raise ValueError(
                f"layer_sum: features have {channels} values per frame, but the config says "
                f"{self.num_layers} layers x {self.layer_dim}; the cache and the config disagree"
            )
        states = input.view(batch, frames, self.num_layers, self.layer_dim)
        if self.normalize:
            states = F.layer_norm(states, (self.layer_dim,))
        weighted = torch.einsum("btld,l->btd", states, F.softmax(self.weights, dim=0))
        return weighted, input_lengths


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each utterance of a padded batch ``(B, T, D)`` reversed in time over its own length;
    padding frames stay where they are. Its own inverse."""
    steps = torch.arange(x.shape[1], device=x.device)[None, :]
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[2]))


class BiLSTMEncoder(AbsEncoder):
    """Bidirectional LSTM layers on a padded batch; output ``2 x hidden_size`` per frame."""

    def __init__(self, input_size: int, hidden_size: int = 256, num_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        sizes = [int(input_size)] + [2 * int(hidden_size)] * (int(num_layers) - 1)
        self.forward_layers = torch.nn.ModuleList(torch.nn.LSTM(n, hidden_size, batch_first=True) for n in sizes)
        self.backward_layers = torch.nn.ModuleList(torch.nn.LSTM(n, hidden_size, batch_first=True) for n in sizes)
        self.dropout = torch.nn.Dropout(dropout)
        self._output_size = 2 * int(hidden_size)

    def output_size(self) -> int:
        return self._output_size

    def forward(self, xs_pad: torch.Tensor, ilens: torch.Tensor,
                prev_states: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor, None]:
        x = xs_pad
        for index, (forward, backward) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if index > 0:
                x = self.dropout(x)
            ahead, _ = forward(x)
            behind, _ = backward(reverse_within_lengths(x, ilens))
            x = torch.cat([ahead, reverse_within_lengths(behind, ilens)], dim=-1)
        return x, ilens, None


class IdentityEncoder(AbsEncoder):
    """No encoder: the frontend's output goes straight to the CTC output layer."""

    def __init__(self, input_size: int):
        super().__init__()
        self._output_size = int(input_size)

    def output_size(self) -> int:
        return self._output_size

    def forward(self, xs_pad: torch.Tensor, ilens: torch.Tensor,
                prev_states: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor, None]:
        return xs_pad, ilens, None


def register() -> None:
    """Make ``frontend: layer_sum`` and ``encoder: blstm / identity`` known to ESPnet's ASR task,
    with the log-mel HuBERT encoder (fine-tuning the log-mel family)."""
    from espnet2.tasks import asr

    from espnet_hubert_ae.model.encoders import register as register_logmel_encoder

    register_logmel_encoder(asr)
    asr.frontend_choices.classes.setdefault(FRONTEND_NAME, WeightedLayerSum)
    asr.encoder_choices.classes.setdefault(BLSTM_NAME, BiLSTMEncoder)
    asr.encoder_choices.classes.setdefault(IDENTITY_NAME, IdentityEncoder)


def train(argv: list[str]) -> None:
    """ESPnet's ASR training (the options of ``espnet2.bin.asr_train``) with these components
    registered: what ``espnet_hubert_ae.bin.asr_train`` runs, and stages 8-9 in their process."""
    register()
    from espnet2.tasks.asr import ASRTask

    ASRTask.main(cmd=argv)
