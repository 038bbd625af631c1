"""The log-mel HuBERT encoder, and its place in ESPnet's HuBERT and ASR tasks.

``LogMelHuBERTPretrainEncoder`` is ESPnet's ``TorchAudioHuBERTPretrainEncoder`` (torchaudio's
HuBERT pretraining model: masking, positional convolution, transformer, logits, fine-tuning
modes) with the conv feature extractor replaced by :class:`~.logmel.LogMelFrontEnd` and the
feature projection by :class:`~.logmel.LogMelProjection`. Its config is the torchaudio one
without the ``extractor_*`` keys, plus ``logmel_*`` keys (:class:`~.logmel.LogMelConfig`).

ESPnet picks encoders by name from a table per task. :func:`register` adds this one to the
HuBERT task's table as ``torchaudio_hubert_logmel`` and to the ASR task's as
``torchaudiohubert_logmel`` (beside ESPnet's ``torchaudiohubert``), so a checkpoint's
``config.yaml`` builds it with ``HubertTask.build_model_from_file``. The project calls it
before building any model; the start-up hook (``upstream.startup``) calls it whenever a
process imports those tasks, so stock ESPnet and s3prl tools load these checkpoints too
wherever the package is installed.
"""

from __future__ import annotations

import copy
import sys

from espnet2.asr.encoder.hubert_encoder import TorchAudioHuBERTPretrainEncoder

from espnet_hubert_ae.model.logmel import LogMelConfig, LogMelFrontEnd, LogMelProjection

PRETRAIN_NAME = "torchaudio_hubert_logmel"  # in espnet2.tasks.hubert (beside torchaudio_hubert)
ASR_NAME = "torchaudiohubert_logmel"  # in espnet2.tasks.asr (beside torchaudiohubert)
TASK_MODULES = {"espnet2.tasks.hubert": PRETRAIN_NAME, "espnet2.tasks.asr": ASR_NAME}
CONV_EXTRACTOR_KEYS = ("extractor_mode", "extractor_conv_layer_config", "extractor_conv_bias")
# The smallest conv stack torchaudio builds; replaced at once by the log-mel front end.
_PLACEHOLDER_CONV = [[1, 400, 320]]


class LogMelHuBERTPretrainEncoder(TorchAudioHuBERTPretrainEncoder):
    """torchaudio's HuBERT on Kaldi log-mel frames (MelHuBERT's input) instead of conv features."""

    def __init__(self, input_size: int | None = None, **encoder_conf):
        given = sorted(set(encoder_conf) & set(CONV_EXTRACTOR_KEYS))
        if given:
            raise ValueError(f"encoder {PRETRAIN_NAME} has a log-mel front end, not a conv extractor: "
                             f"remove {', '.join(given)} from encoder_conf")
        frontend = LogMelConfig.from_encoder_conf(encoder_conf)
        encoder_conf = {k: v for k, v in encoder_conf.items() if not k.startswith(LogMelConfig.KEY_PREFIX)}
        super().__init__(input_size=input_size, extractor_conv_layer_config=_PLACEHOLDER_CONV, **encoder_conf)
        wav2vec2 = self.hubert_pretrain_model.wav2vec2
        wav2vec2.feature_extractor = LogMelFrontEnd(frontend)
        wav2vec2.encoder.feature_projection = LogMelProjection(
            frontend.output_dim, self.output_size(), float(encoder_conf.get("encoder_projection_dropout", 0.1)))
        # ESPnet keeps the initial weights for reload_pretrained_parameters: of this model, not the placeholder's.
        self.pretrained_params = copy.deepcopy(self.hubert_pretrain_model.state_dict())


def pretrain_encoder_class(name: str) -> type:
    """The encoder class of a HuBERT pretraining config's ``encoder`` name."""
    classes = {"torchaudio_hubert": TorchAudioHuBERTPretrainEncoder, PRETRAIN_NAME: LogMelHuBERTPretrainEncoder}
    if name not in classes:
        raise ValueError(f"encoder {name!r} is not a torchaudio HuBERT encoder ({', '.join(classes)})")
    return classes[name]


def asr_encoder_name(pretrain_name: str) -> str:
    """ESPnet ASR's name for the fine-tuning encoder of a pretraining config's ``encoder``."""
    pretrain_encoder_class(pretrain_name)
    return ASR_NAME if pretrain_name == PRETRAIN_NAME else "torchaudiohubert"


def register(task_module) -> None:
    """Add the log-mel encoder to one ESPnet task module's encoder table (idempotent)."""
    name = TASK_MODULES[task_module.__name__]
    task_module.encoder_choices.classes.setdefault(name, LogMelHuBERTPretrainEncoder)


def register_in_espnet() -> None:
    """Make ESPnet's HuBERT and ASR tasks know the log-mel encoder (imports them if needed)."""
    import importlib

    for module_name in TASK_MODULES:
        module = sys.modules.get(module_name) or importlib.import_module(module_name)
        register(module)
