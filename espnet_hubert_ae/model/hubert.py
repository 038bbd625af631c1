"""ESPnet HuBERT pretraining checkpoints: loading, their conv stacks, layer hidden states.

Every stage that reads a pretraining checkpoint (targets of later phases, upstreams, analysis)
goes through this module, so that they agree on what a layer index means and how many frames
an utterance has.

Layer index convention (one for the whole project, like s3prl's ``hubert`` upstream): index 0
is the input of the first transformer layer -- the conv features after feature projection,
positional convolution and (post-LN models) the transformer's input layer norm, as
torchaudio's ``Transformer`` prepares them -- and index L (1..N) is the output of transformer
layer L. A 12-layer model
therefore has 13 hidden states.

Checkpoints are stock ESPnet ``HubertTask`` ones: a model state-dict ``.pth`` with the training
``config.yaml`` beside it, model ``torchaudio`` (``TorchAudioHubertPretrainModel``), encoder
``torchaudio_hubert``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn

from espnet_hubert_ae.model.frames import BASE_CONV_LAYERS, conv_frame_count

logger = logging.getLogger(__name__)

ENCODER_NAME = "torchaudio_hubert"
MODEL_NAME = "torchaudio"


class CheckpointError(ValueError):
    """A checkpoint or its config is missing, of the wrong kind, or asked for something it lacks."""


# ---------------------------------------------------------------------------------------------
# Conv stack of a model or config (the arithmetic itself: model.frames)


def conv_layers_of(model_or_config: Any) -> tuple[tuple[int, int], ...]:
    """``(kernel, stride)`` per conv layer of a loaded model, or of an ESPnet config dict/file."""
    if isinstance(model_or_config, nn.Module):
        blocks = wav2vec2_of(model_or_config).feature_extractor.conv_layers
        return tuple((int(b.kernel_size), int(b.stride)) for b in blocks)
    config = model_or_config
    if isinstance(config, (str, Path)):
        config = _read_config(Path(config))
    spec = (config.get("encoder_conf") or {}).get("extractor_conv_layer_config")
    if spec is None:  # the encoder's default is HuBERT Base's extractor
        return BASE_CONV_LAYERS
    return tuple((int(kernel), int(stride)) for _, kernel, stride in spec)


def frame_counter(model_or_config: Any):
    """``num_samples -> frames`` for this model's conv stack (the ``expected_frames`` of targets)."""
    layers = conv_layers_of(model_or_config)

    def count(num_samples: int) -> int:
        return conv_frame_count(num_samples, layers)

    return count


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
    if encoder != ENCODER_NAME or model != MODEL_NAME:
        raise CheckpointError(
            f"{config_path}: not an ESPnet HuBERT pretraining checkpoint of the supported kind "
            f"(encoder {encoder!r}, model {model!r}; expected encoder {ENCODER_NAME!r}, model {MODEL_NAME!r})"
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


def load_pretrain_model(
    checkpoint: str | Path, config: str | Path | None = None, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict]:
    """Load an ESPnet HuBERT pretraining checkpoint for inference; returns ``(model, config_dict)``.

    ``config`` defaults to ``config.yaml`` beside the checkpoint. The model comes back in eval
    mode on ``device``. Raises :class:`CheckpointError` when either file is missing, when the
    config is not a ``torchaudio_hubert`` pretraining one, or when the state dict does not
    match the model the config describes (e.g. an ASR checkpoint).
    """
    from espnet2.tasks.hubert import HubertTask

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise CheckpointError(f"{checkpoint}: checkpoint not found")
    config_path = Path(config) if config is not None else checkpoint.parent / "config.yaml"
    config_dict = _read_config(config_path)
    _check_kind(config_dict, config_path)
    try:
        model = HubertTask.build_model(argparse.Namespace(**config_dict))
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
    """Group-norm extractors normalise over time, so padding a batch would change the features."""
    return any(isinstance(b.layer_norm, nn.GroupNorm) for b in feature_extractor.conv_layers)


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
