"""Generated ESPnet configs (SUPERB-style and fine-tuning)."""

import pytest
import yaml

from espnet_hubert_ae.asr.configs import ConfigError, finetune_config, load_yaml, superb_config
from espnet_hubert_ae.utils.presets import resolve_preset


@pytest.fixture
def pretrain_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"encoder": "torchaudio_hubert", "encoder_conf": {
        "encoder_embed_dim": 768, "encoder_num_layers": 4, "mask_prob": 0.8, "encoder_layer_drop": 0.0}}))
    return path


def test_superb_config_points_at_the_upstream(pretrain_config):
    config = superb_config(load_yaml(resolve_preset("asr", "superb")), "/x/model.pth", pretrain_config)
    assert config["frontend_conf"]["frontend_conf"] == {"upstream": "hubert_ae_local", "path_or_url": "/x/model.pth"}
    assert config["frontend_conf"]["multilayer_feature"] is True
    assert config["freeze_param"] == ["frontend.upstream"]
    assert config["preencoder_conf"] == {"input_size": 768, "output_size": 1024}
    assert config["encoder_conf"]["hidden_size"] == 1024 and config["encoder_conf"]["num_layers"] == 2


@pytest.mark.parametrize("split", ["10h", "1h", "10min", "tiny"])
def test_finetune_config_keeps_architecture_and_overrides_masking(pretrain_config, split):
    template = load_yaml(resolve_preset("asr", f"finetune_{split}"))
    config = finetune_config(template, pretrain_config)
    conf = config["encoder_conf"]
    assert conf["encoder_embed_dim"] == 768 and conf["encoder_num_layers"] == 4  # from pretraining
    assert conf["finetuning"] is True and conf["mask_prob"] == template["encoder_conf"]["mask_prob"]
    steps = config["max_epoch"] * config["num_iters_per_epoch"] // config.get("accum_grad", 1)
    assert config["scheduler_conf"]["max_steps"] == steps


def test_channel_mask_that_torchaudio_cannot_draw_is_refused(tmp_path):
    small = tmp_path / "config.yaml"
    small.write_text(yaml.safe_dump({"encoder": "torchaudio_hubert", "encoder_conf": {"encoder_embed_dim": 32}}))
    with pytest.raises(ConfigError, match="mask_channel_prob"):
        finetune_config(load_yaml(resolve_preset("asr", "finetune_10h")), small)

