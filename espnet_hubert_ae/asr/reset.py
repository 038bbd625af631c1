"""Initial encoder weights for CTC fine-tuning, with the top N transformer layers reset.

Re-initialising the top layers before fine-tuning is the direct test of the "autoencoder
behaviour": if the last layers of a pretrained model mostly reconstruct input-like
information, starting them afresh should cost nothing or even help.

"Afresh" means exactly as at the start of pretraining: the layers are copied from a new
encoder built from the same config (torchaudio's HuBERT initialisation), with a fixed seed.
Everything else -- conv extractor, feature projection, positional convolution, the other
layers, the encoder's layer norm and the mask embedding -- keeps its pretrained value.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import Tensor

from espnet_hubert_ae.utils.fileio import atomic_open

logger = logging.getLogger(__name__)

# Where the parts live in the state dict of ESPnet's TorchAudioHuBERTPretrainEncoder (the
# ``encoder`` of both the pretraining model and the fine-tuning ASR model).
LAYERS_PREFIX = "hubert_pretrain_model.wav2vec2.encoder.transformer.layers."
# The pretraining head (label embeddings, final projection) has no use in CTC fine-tuning and
# its shape depends on the number of clusters: it is not carried over.
PRETRAINING_HEAD_PREFIX = "hubert_pretrain_model.logit_generator."


class ResetError(ValueError):
    """The number of layers to reset does not fit the model."""


def layer_prefix(index: int) -> str:
    """State-dict prefix of transformer layer ``index`` (1-based, the project's layer index)."""
    return f"{LAYERS_PREFIX}{index - 1}."


def num_transformer_layers(encoder_state: dict[str, Tensor]) -> int:
    indices = {int(k[len(LAYERS_PREFIX):].split(".", 1)[0]) for k in encoder_state if k.startswith(LAYERS_PREFIX)}
    if not indices:
        raise ResetError("no transformer layers in this encoder state dict")
    return max(indices) + 1


def fresh_encoder_state(encoder_conf: dict, seed: int, encoder: str = "torchaudio_hubert") -> dict[str, Tensor]:
    """State dict of a newly initialised encoder built from a pretraining config's ``encoder``
    (name) and ``encoder_conf``."""
    from espnet_hubert_ae.model.encoders import pretrain_encoder_class

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # input_size is unused by this encoder (it reads raw audio) but type-checked.
        module = pretrain_encoder_class(encoder)(**{"input_size": 1, **encoder_conf})
    return module.state_dict()


def reset_top_layers(
    encoder_state: dict[str, Tensor], encoder_conf: dict, num_reset: int, seed: int = 0,
    encoder: str = "torchaudio_hubert",
) -> tuple[dict[str, Tensor], list[str]]:
    """Copy of ``encoder_state`` whose top ``num_reset`` transformer layers are re-initialised.

    Returns the new state dict and the keys that were reset. ``num_reset`` 0 returns an
    unchanged copy; it may be as large as the number of layers.
    """
    total = num_transformer_layers(encoder_state)
    if not 0 <= num_reset <= total:
        raise ResetError(f"--reset_top_layers {num_reset}: the model has {total} transformer layers (0..{total})")
    state = dict(encoder_state)
    if num_reset == 0:
        return state, []
    fresh = fresh_encoder_state(encoder_conf, seed, encoder)
    prefixes = tuple(layer_prefix(i) for i in range(total - num_reset + 1, total + 1))
    reset_keys = sorted(k for k in state if k.startswith(prefixes))
    for key in reset_keys:
        if fresh[key].shape != state[key].shape:
            raise ResetError(f"{key}: the config builds shape {tuple(fresh[key].shape)}, "
                             f"the checkpoint has {tuple(state[key].shape)}")
        state[key] = fresh[key].clone()
    logger.info("re-initialised transformer layers %d..%d (%d tensors)", total - num_reset + 1, total, len(reset_keys))
    return state, reset_keys


def finetuning_init_state(pretrain_state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The encoder part of a pretraining model state dict, without the pretraining head.

    Keys come back relative to the encoder, as ESPnet's ``--init_param <file>::encoder``
    expects them; the ``global_step`` counter of the fine-tuning encoder is left to start at 0.
    """
    prefix = "encoder."
    state = {
        k[len(prefix):]: v
        for k, v in pretrain_state.items()
        if k.startswith(prefix) and not k[len(prefix):].startswith(PRETRAINING_HEAD_PREFIX)
    }
    state.pop("global_step", None)
    if not any(k.startswith(LAYERS_PREFIX) for k in state):
        raise ResetError("not a HuBERT pretraining state dict: no encoder transformer layers under 'encoder.'")
    return state


def write_init_state(
    path: str | os.PathLike,
    checkpoint: str | os.PathLike,
    config: str | os.PathLike | None = None,
    num_reset: int = 0,
    seed: int = 0,
) -> list[str]:
    """Write the fine-tuning start point of ``checkpoint`` to ``path``; returns the reset keys."""
    from espnet_hubert_ae.model.hubert import load_pretrain_model

    model, config_dict = load_pretrain_model(checkpoint, config)
    state = finetuning_init_state(model.state_dict())
    state, reset_keys = reset_top_layers(state, config_dict.get("encoder_conf") or {}, num_reset, seed,
                                         config_dict["encoder"])
    with atomic_open(path, "wb") as f:
        torch.save(state, f)
    return reset_keys
