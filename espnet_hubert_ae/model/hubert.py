"""ESPnet HuBERT pretraining checkpoints: loading, their frame grids, layer hidden states.

Every stage that reads a pretraining checkpoint (targets of later phases, upstreams, analysis)
goes through this module, so that they agree on what a layer index means and how many frames
an utterance has.

Layer index convention (one for the whole project, like s3prl's ``hubert`` upstream): index 0
is the input of the first transformer layer -- the front end's features (conv or log-mel) after
feature projection, positional convolution and (post-LN models) the transformer's input layer
norm, as torchaudio's ``Transformer`` prepares them -- and index L (1..N) is the output of
transformer layer L. A 12-layer model therefore has 13 hidden states.

Checkpoints are ESPnet ``HubertTask`` ones: a model state-dict ``.pth`` with the training
``config.yaml`` beside it, model ``torchaudio`` (``TorchAudioHubertPretrainModel``), encoder
``torchaudio_hubert`` (waveform: HuBERT's conv feature extractor) or ``torchaudio_hubert_logmel``
(log-mel front end, :mod:`.encoders`). Both take 16 kHz audio.

How many frames a model makes of an utterance is :func:`frame_grid` of the model or its config,
the one answer every stage asks (labels, upstream, feature cache, analysis checks).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn

from espnet_hubert_ae.model.frames import BASE_CONV_LAYERS, FrameGrid, conv_grid

logger = logging.getLogger(__name__)

ENCODER_NAME = "torchaudio_hubert"
LOGMEL_ENCODER_NAME = "torchaudio_hubert_logmel"  # model.encoders.PRETRAIN_NAME, without importing ESPnet
ENCODER_NAMES = (ENCODER_NAME, LOGMEL_ENCODER_NAME)
MODEL_NAME = "torchaudio"


class CheckpointError(ValueError):
    """A checkpoint or its config is missing, of the wrong kind, or asked for something it lacks."""


# ---------------------------------------------------------------------------------------------
# Frame grid of a model or config (the arithmetic itself: model.frames)


def _config_of(model_or_config: Any) -> dict:
    if isinstance(model_or_config, (str, Path)):
        return _read_config(Path(model_or_config))
    return model_or_config


def frame_grid(model_or_config: Any) -> FrameGrid:
    """The frame grid of a loaded model's front end, or of an ESPnet config dict/file's."""
    if isinstance(model_or_config, nn.Module):
        extractor = wav2vec2_of(model_or_config).feature_extractor
        if hasattr(extractor, "grid"):  # the log-mel front end
            return extractor.grid
        return conv_grid([(int(b.kernel_size), int(b.stride)) for b in extractor.conv_layers])
    config = _config_of(model_or_config)
    encoder_conf = config.get("encoder_conf") or {}
    if config.get("encoder") == LOGMEL_ENCODER_NAME:
        from espnet_hubert_ae.model.logmel import LogMelConfig

        return LogMelConfig.from_encoder_conf(encoder_conf).grid
    spec = encoder_conf.get("extractor_conv_layer_config")
    if spec is None:  # the encoder's default is HuBERT Base's extractor
        return conv_grid(BASE_CONV_LAYERS)
    return conv_grid(spec)


def frame_counter(model_or_config: Any):
    """``num_samples -> frames`` of this model (the ``expected_frames`` of targets)."""
    return frame_grid(model_or_config).count


def embed_dim(model: nn.Module) -> int:
    """Width of the model's hidden states."""
    return int(wav2vec2_of(model).encoder.transformer.pos_conv_embed.embed_dim)


# ---------------------------------------------------------------------------------------------
# Loading


def _read_config(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(
            f"{path}: config missing; an ESPnet HuBERT checkpoint needs the config.yaml of its "
            "training run beside it (or pass the config explicitly)"
        )
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: not an ESPnet config (expected a YAML mapping)")
    return config


def _check_kind(config: dict, config_path: Path) -> None:
    encoder, model = config.get("encoder"), config.get("model")
    if encoder not in ENCODER_NAMES or model != MODEL_NAME:
        raise CheckpointError(
            f"{config_path}: not an ESPnet HuBERT pretraining checkpoint of the supported kind "
            f"(encoder {encoder!r}, model {model!r}; expected encoder {' or '.join(map(repr, ENCODER_NAMES))}, "
            f"model {MODEL_NAME!r})"
        )


def _state_dict_of(checkpoint: Path) -> dict[str, Tensor]:
    """The model state dict in a ``.pth``: a bare state dict, or a trainer checkpoint holding one."""
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    except Exception as err:  # unpickling errors of many kinds: all mean "not a checkpoint"
        raise CheckpointError(f"{checkpoint}: cannot be read as a PyTorch checkpoint ({err})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # ESPnet's resumable checkpoint.pth
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{checkpoint}: not a model state dict")
    return state


def build_pretrain_model(config: dict) -> nn.Module:
    """ESPnet's ``HubertTask.build_model`` of a config dict, either front end (freshly initialised)."""
    from espnet2.tasks.hubert import HubertTask

    from espnet_hubert_ae.model.encoders import register_in_espnet

    register_in_espnet()
    return HubertTask.build_model(argparse.Namespace(**config))


def load_pretrain_model(
    checkpoint: str | Path, config: str | Path | None = None, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict]:
    """Load an ESPnet HuBERT pretraining checkpoint for inference; returns ``(model, config_dict)``.

    ``config`` defaults to ``config.yaml`` beside the checkpoint. The model comes back in eval
    mode on ``device``. Raises :class:`CheckpointError` when either file is missing, when the
    config is not a ``torchaudio_hubert`` pretraining one, or when the state dict does not
    match the model the config describes (e.g. an ASR checkpoint).
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise CheckpointError(f"{checkpoint}: checkpoint not found")
    config_path = Path(config) if config is not None else checkpoint.parent / "config.yaml"
    config_dict = _read_config(config_path)
    _check_kind(config_dict, config_path)
    try:
        model = build_pretrain_model(config_dict)
    except Exception as err:
        raise CheckpointError(f"{config_path}: cannot build a HuBERT model from this config ({err})") from None
    state = _state_dict_of(checkpoint)
    expected = model.state_dict().keys()
    missing = sorted(expected - state.keys())
    if missing:
        raise CheckpointError(
            f"{checkpoint}: not a checkpoint of the model in {config_path} "
            f"({len(missing)} parameters missing, e.g. {missing[:3]})"
        )
    try:
        model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{checkpoint}: does not fit the model in {config_path}: {err}") from None
    model.to(device).eval()
    return model, config_dict


def wav2vec2_of(model: nn.Module) -> nn.Module:
    """The torchaudio ``Wav2Vec2Model`` inside an ESPnet HuBERT model, its encoder, or itself."""
    for path in ("encoder.hubert_pretrain_model.wav2vec2", "hubert_pretrain_model.wav2vec2", "wav2vec2", ""):
        module = model
        try:
            for name in filter(None, path.split(".")):
                module = getattr(module, name)
        except AttributeError:
            continue
        if hasattr(module, "feature_extractor") and hasattr(module, "encoder"):
            return module
    raise CheckpointError(f"{type(model).__name__} is not a torchaudio HuBERT / wav2vec 2.0 model")


def num_layers(model: nn.Module) -> int:
    """Number of transformer layers (the highest valid layer index)."""
    return len(wav2vec2_of(model).encoder.transformer.layers)


# ---------------------------------------------------------------------------------------------
# Hidden states


def _uses_group_norm(feature_extractor: nn.Module) -> bool:
    """Group-norm extractors normalise over time, so padding a batch would change the features.

    (The log-mel front end normalises over each utterance's own frames: padding changes nothing.)
    """
    layers = getattr(feature_extractor, "conv_layers", ())
    return any(isinstance(b.layer_norm, nn.GroupNorm) for b in layers)


def _conv_features(feature_extractor: nn.Module, wavs: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Conv features of a padded batch that equal those of each utterance alone."""
    if not _uses_group_norm(feature_extractor) or wavs.shape[0] == 1:
        return feature_extractor(wavs, lengths)
    feats, frame_lengths = [], []
    for wav, length in zip(wavs, lengths):
        x, n = feature_extractor(wav[None, : int(length)], length[None])
        feats.append(x[0])
        frame_lengths.append(n[0])
    padded = nn.utils.rnn.pad_sequence(feats, batch_first=True)
    return padded, torch.stack(frame_lengths)


@torch.no_grad()
def hidden_states(
    model: nn.Module, wavs: Tensor, lengths: Tensor, upto_layer: int | None = None
) -> tuple[list[Tensor], Tensor]:
    """Hidden states 0..``upto_layer`` of a padded batch, running only the layers needed.

    ``wavs`` is ``(B, T)`` 16 kHz audio, ``lengths`` ``(B,)`` valid samples. Returns a list of
    ``upto_layer + 1`` tensors ``(B, F, D)`` (index convention in the module docstring; all
    layers when ``upto_layer`` is None) and the valid frame count of each utterance ``(B,)``.
    Frames past an utterance's length are padding. Results for an utterance do not depend on
    the others in its batch (group-norm extractors run per utterance). The model must be in
    eval mode (no dropout, no layer drop).
    """
    w2v = wav2vec2_of(model)
    total = len(w2v.encoder.transformer.layers)
    if upto_layer is None:
        upto_layer = total
    if not 0 <= upto_layer <= total:
        raise CheckpointError(f"layer {upto_layer} is out of range: this model has layers 0..{total}")
    if w2v.training:
        raise CheckpointError("hidden_states needs the model in eval mode (call model.eval())")
    device = next(w2v.parameters()).device
    wavs, lengths = wavs.to(device), lengths.to(device)
    features, frame_lengths = _conv_features(w2v.feature_extractor, wavs, lengths)
    x, attention_mask = w2v.encoder._preprocess(features, frame_lengths)
    transformer = w2v.encoder.transformer
    x = transformer._preprocess(x)
    states = [x]
    position_bias = None
    for layer in transformer.layers[:upto_layer]:
        x, position_bias = layer(x, attention_mask, position_bias=position_bias)
        states.append(x)
    return states, frame_lengths
