"""Randomly initialised ESPnet HuBERT checkpoints, for tests and benchmarks (no download).

A checkpoint written here is exactly what ESPnet's ``HubertTask`` training leaves behind -- a
model state dict ``.pth`` with a ``config.yaml`` beside it -- so every loader can be exercised
on it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from espnet_hubert_ae.model.hubert import ENCODER_NAME, LOGMEL_ENCODER_NAME, MODEL_NAME, build_pretrain_model
from espnet_hubert_ae.utils.fileio import atomic_open, atomic_write_text

# A model small enough to run in a test: 2 layers, 64-d, a 3-layer conv stack with HuBERT's
# 400-sample receptive field and 320-sample hop (so frame counts match HuBERT Base's).
TINY_ENCODER_CONF = {
    "extractor_mode": "group_norm",
    "extractor_conv_layer_config": [[32, 5, 5], [32, 8, 8], [32, 10, 8]],
    "encoder_embed_dim": 64,
    "encoder_pos_conv_kernel": 16,
    "encoder_pos_conv_groups": 4,
    "encoder_num_layers": 2,
    "encoder_num_heads": 4,
    "encoder_ff_interm_features": 128,
    "final_dim": 32,
}

# The same transformer on the log-mel front end (two 25 ms / 10 ms frames stacked: the same
# 50 Hz frame grid).
TINY_LOGMEL_ENCODER_CONF = {
    **{k: v for k, v in TINY_ENCODER_CONF.items() if not k.startswith("extractor_")},
    "logmel_bins": 80,
    "logmel_stack": 2,
}

# HuBERT Base's encoder (the torchaudio_hubert defaults): for realistic timings.
BASE_ENCODER_CONF: dict = {}


def pretrain_config(encoder_conf: dict, num_classes: int, encoder: str = ENCODER_NAME) -> dict:
    """A complete ESPnet HubertTask config for a ``torchaudio_hubert`` model (``encoder``: or
    ``torchaudio_hubert_logmel``) on raw audio."""
    from espnet2.tasks.hubert import HubertTask

    config = vars(HubertTask.get_parser().parse_args(["--token_list", "tokens.txt"]))
    config.update(
        token_list=[str(i) for i in range(num_classes)] + ["<unk>"],
        input_size=1,
        frontend=None,
        frontend_conf={},
        normalize=None,
        normalize_conf={},
        specaug=None,
        encoder=encoder,
        encoder_conf=dict(encoder_conf),
        model=MODEL_NAME,
        model_conf={},
        num_classes=num_classes,
    )
    return config


def write_random_checkpoint(
    directory: str | Path, encoder_conf: dict | None = None, *, num_classes: int = 20, seed: int = 1,
    encoder: str = ENCODER_NAME,
) -> Path:
    """Write ``directory/model.pth`` + ``config.yaml`` of a seeded random model; returns the .pth.

    ``encoder_conf`` defaults to the tiny model of ``encoder``'s family.
    """
    directory = Path(directory)
    if encoder_conf is None:
        encoder_conf = TINY_LOGMEL_ENCODER_CONF if encoder == LOGMEL_ENCODER_NAME else TINY_ENCODER_CONF
    config = pretrain_config(encoder_conf, num_classes, encoder)
    torch.manual_seed(seed)
    model = build_pretrain_model(config)
    atomic_write_text(directory / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    checkpoint = directory / "model.pth"
    with atomic_open(checkpoint, "wb") as f:
        torch.save(model.state_dict(), f)
    return checkpoint
