"""ESPnet ASR training configs for one experiment, generated from the templates in conf/asr/.

A template is a plain ESPnet ASR config with everything that does not depend on the
upstream. Generation fills in what does: the layer count and width of the cached hidden
states (``frontend: layer_sum``, frozen downstreams on a feature cache), the s3prl upstream
and its feature size (``frontend: s3prl``, the live frozen upstream), or the encoder
architecture of the pretrained checkpoint (fine-tuning). The result is written into the
experiment, so every run documents exactly what it trained.
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path

import yaml

from espnet_hubert_ae.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)

UPSTREAM_NAME = "hubert_ae_local"
CACHED_FRONTEND = "layer_sum"  # espnet_hubert_ae.asr.components
LIVE_FRONTEND = "s3prl"
FINETUNE_ENCODER = "torchaudiohubert"  # ESPnet ASR's name for TorchAudioHuBERTPretrainEncoder (waveform)
DEFAULT_EMBED_DIM = 768  # TorchAudioHuBERTPretrainEncoder's default encoder_embed_dim


class ConfigError(ValueError):
    """A template or pretraining config cannot make a valid ESPnet ASR config."""


def load_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config {path} does not exist")
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a YAML mapping")
    return config


def write_yaml(path: str | os.PathLike, config: dict) -> Path:
    atomic_write_text(path, yaml.safe_dump(config, sort_keys=False, default_flow_style=None))
    return Path(path)


def reads_cache(template: dict) -> bool:
    """Whether a frozen-downstream template trains on cached features (else on the live upstream)."""
    frontend = template.get("frontend")
    if frontend not in (CACHED_FRONTEND, LIVE_FRONTEND):
        raise ConfigError(f"a frozen-downstream template needs `frontend: {CACHED_FRONTEND}` (cached hidden "
                          f"states) or `frontend: {LIVE_FRONTEND}` (live upstream), not {frontend!r}")
    return frontend == CACHED_FRONTEND


def cached_config(template: dict, num_layers: int, layer_dim: int) -> dict:
    """The config of a downstream on cached features of ``num_layers`` states of ``layer_dim``."""
    config = copy.deepcopy(template)
    if config.get("frontend") != CACHED_FRONTEND:
        raise ConfigError(f"a cached-feature template needs `frontend: {CACHED_FRONTEND}`")
    frontend = config.setdefault("frontend_conf", {}) or {}
    frontend.update(num_layers=int(num_layers), layer_dim=int(layer_dim))
    config["frontend_conf"] = frontend
    config.pop("input_size", None)  # ESPnet builds the frontend only when input_size is unset
    if config.get("preencoder") == "linear":
        config.setdefault("preencoder_conf", {})["input_size"] = int(layer_dim)
    return config


def superb_config(template: dict, upstream: str, upstream_config: str | os.PathLike,
                  upstream_name: str = UPSTREAM_NAME) -> dict:
    """The SUPERB-style config for ``upstream`` (a checkpoint path or a registered name).

    ``upstream_config`` is the upstream's ESPnet HuBERT config.yaml, read for its feature
    size (the input of the linear pre-encoder).
    """
    config = copy.deepcopy(template)
    if config.get("frontend") != LIVE_FRONTEND:
        raise ConfigError(f"a live-upstream template needs `frontend: {LIVE_FRONTEND}`")
    frontend = config.setdefault("frontend_conf", {})
    s3prl_conf = frontend.setdefault("frontend_conf", {})
    s3prl_conf["upstream"] = upstream_name
    s3prl_conf["path_or_url"] = str(upstream)
    frontend["multilayer_feature"] = True
    if config.get("preencoder") == "linear":
        embed_dim = _encoder_conf_of(upstream_config).get("encoder_embed_dim", DEFAULT_EMBED_DIM)
        config.setdefault("preencoder_conf", {})["input_size"] = int(embed_dim)
    return config


def finetune_config(template: dict, pretrain_config: str | os.PathLike) -> dict:
    """The fine-tuning config: the template with the pretrained encoder's architecture.

    Every ``encoder_conf`` key of the pretraining config is kept unless the template sets it
    (masking, dropout, layer drop and the freezing schedule are fine-tuning choices).
    """
    from espnet_hubert_ae.model.encoders import asr_encoder_name

    config = copy.deepcopy(template)
    if config.get("encoder") != FINETUNE_ENCODER:
        raise ConfigError(f"a fine-tuning template needs `encoder: {FINETUNE_ENCODER}`")
    pretrained = load_yaml(pretrain_config)
    _check_pretrain_config(pretrained, pretrain_config)
    # The template names the waveform encoder; the checkpoint's front end decides.
    config["encoder"] = asr_encoder_name(pretrained["encoder"])
    encoder_conf = {**(pretrained.get("encoder_conf") or {}), **(config.get("encoder_conf") or {})}
    encoder_conf["finetuning"] = True
    config["encoder_conf"] = encoder_conf
    _check_channel_mask(encoder_conf)
    _check_schedule(config)
    return config


def _check_channel_mask(encoder_conf: dict) -> None:
    """Refuse channel masking that would sometimes draw no span at all.

    torchaudio draws ``int(prob * channels / length + U(0, 1))`` channel spans without a
    minimum, and fails on a batch where that is 0: the expected count must reach 1.
    """
    prob = float(encoder_conf.get("mask_channel_prob", 0.0))
    if prob <= 0:
        return
    channels = int(encoder_conf.get("encoder_embed_dim", DEFAULT_EMBED_DIM))
    length = int(encoder_conf.get("mask_channel_length", 10))
    if prob * channels / length < 1:
        raise ConfigError(
            f"mask_channel_prob {prob} x {channels} channels / mask_channel_length {length} < 1: "
            "torchaudio would fail on batches drawing no channel span; raise the probability or shorten the span"
        )


def _check_pretrain_config(config: dict, path: str | os.PathLike) -> None:
    from espnet_hubert_ae.model.hubert import ENCODER_NAMES

    if config.get("encoder") not in ENCODER_NAMES:
        raise ConfigError(
            f"{path}: not an ESPnet torchaudio HuBERT pretraining config (encoder {config.get('encoder')!r})"
        )


def _encoder_conf_of(pretrain_config: str | os.PathLike) -> dict:
    config = load_yaml(pretrain_config)
    _check_pretrain_config(config, pretrain_config)
    return dict(config.get("encoder_conf") or {})


def _check_schedule(config: dict) -> None:
    """Warn when the scheduler's length disagrees with the number of optimizer updates."""
    max_steps = (config.get("scheduler_conf") or {}).get("max_steps")
    epochs, iters = config.get("max_epoch"), config.get("num_iters_per_epoch")
    if max_steps is None or epochs is None or iters is None:
        return
    updates = int(epochs) * int(iters) // int(config.get("accum_grad", 1))
    if updates != int(max_steps):
        logger.warning(
            "scheduler max_steps %s differs from the %d optimizer updates of training "
            "(max_epoch x num_iters_per_epoch / accum_grad)", max_steps, updates
        )
