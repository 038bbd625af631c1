"""Generated ESPnet configs (cached and live frozen upstream, fine-tuning) and the choice of upstreams."""

import pytest
import yaml

from espnet_hubert_ae.asr.configs import (
    ConfigError,
    cached_config,
    finetune_config,
    load_yaml,
    reads_cache,
    superb_config,
)
from espnet_hubert_ae.asr.pipeline import run_checkpoints
from espnet_hubert_ae.upstream.registry import CheckpointRef, UpstreamError, write_registry
from espnet_hubert_ae.utils.presets import resolve_preset


@pytest.fixture
def pretrain_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"encoder": "torchaudio_hubert", "encoder_conf": {
        "encoder_embed_dim": 768, "encoder_num_layers": 4, "mask_prob": 0.8, "encoder_layer_drop": 0.0}}))
    return path


@pytest.mark.parametrize("name", ["superb", "superb_tiny", "pr", "pr_tiny"])
def test_cached_configs_get_the_layers_of_the_cache(name):
    template = load_yaml(resolve_preset("asr", name))
    assert reads_cache(template)
    config = cached_config(template, num_layers=13, layer_dim=768)
    assert config["frontend"] == "layer_sum" and config["frontend_conf"]["num_layers"] == 13
    assert config["frontend_conf"]["layer_dim"] == 768 and "input_size" not in config
    assert config["encoder"] == ("identity" if name.startswith("pr") else "blstm")
    if config.get("preencoder") == "linear":
        assert config["preencoder_conf"]["input_size"] == 768


def test_a_template_of_another_frontend_is_refused():
    with pytest.raises(ConfigError, match="frontend: layer_sum"):
        reads_cache({"frontend": "default"})


def test_superb_config_points_at_the_upstream(pretrain_config):
    template = load_yaml(resolve_preset("asr", "superb_s3prl"))
    assert not reads_cache(template)
    config = superb_config(template, "/x/model.pth", pretrain_config)
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


def _registry(tmp_path, checkpoints):
    refs = [CheckpointRef(f"{run}/p{phase}/step{step}", tmp_path / f"{run}{phase}{step}.pth", tmp_path / "config.yaml",
                          run, run.split("_")[0], phase, step) for run, phase, step in checkpoints]
    return write_registry(tmp_path / "upstreams.json", refs)


def test_checkpoints_spread_over_a_run(tmp_path):
    run = "progressive_tiny"
    steps = [(1, 0), (1, 100), (1, 200), (1, 300), (2, 400), (2, 500), (2, 600)]
    registry = _registry(tmp_path, [(run, p, s) for p, s in steps] + [("baseline_tiny", 3, 50)])
    assert run_checkpoints(run, 3, registry) == [f"{run}/p1/step200", f"{run}/p2/step400", f"{run}/p2/step600"]
    assert run_checkpoints(run, 1, registry) == [f"{run}/p2/step600"]
    assert run_checkpoints("baseline_tiny", 1, registry) == ["baseline_tiny/p3/step50"]
    # no more than the run kept, and never its untrained step-0 model (the random-init control)
    assert run_checkpoints(run, 10, registry) == [f"{run}/p{p}/step{s}" for p, s in steps[1:]]
    with pytest.raises(ValueError, match="at least 1"):
        run_checkpoints(run, 0, registry)
    with pytest.raises(UpstreamError, match="registered runs: baseline_tiny, progressive_tiny"):
        run_checkpoints("height_tiny", 1, registry)


def test_updates_scale_shortens_epochs_schedule_and_freezing_together():
    from espnet_hubert_ae.asr.configs import ConfigError, scale_updates

    template = {"max_epoch": 8, "num_iters_per_epoch": 25, "scheduler": "tristagelr",
                "scheduler_conf": {"max_steps": 200, "warmup_ratio": 0.1},
                "encoder_conf": {"freeze_encoder_updates": 40, "encoder_embed_dim": 64}}
    half = scale_updates(template, 0.5)
    assert half["max_epoch"] == 4 and half["num_iters_per_epoch"] == 25
    assert half["scheduler_conf"] == {"max_steps": 100, "warmup_ratio": 0.1}
    assert half["encoder_conf"] == {"freeze_encoder_updates": 20, "encoder_embed_dim": 64}
    assert template["max_epoch"] == 8 and template["scheduler_conf"]["max_steps"] == 200  # not changed in place
    # Whole epochs: 0.3 of 8 epochs is 2 (ratio 0.25), and never fewer than one.
    third = scale_updates({"max_epoch": 8, "scheduler_conf": {"warmup_steps": 30}}, 0.3)
    assert third == {"max_epoch": 2, "scheduler_conf": {"warmup_steps": 8}}
    assert scale_updates({"max_epoch": 2}, 0.01)["max_epoch"] == 1
    assert scale_updates(template, 1) == template
    with pytest.raises(ConfigError, match="positive"):
        scale_updates(template, 0)
