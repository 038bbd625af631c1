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
from espnet_hubert_ae.asr.pipeline import final_upstream, run_checkpoints, upstream_tag


@pytest.fixture
def pretrain_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"encoder": "torchaudio_hubert", "encoder_conf": {
        "encoder_embed_dim": 768, "encoder_num_layers": 4, "mask_prob": 0.8, "encoder_layer_drop": 0.0}}))
    return path


@pytest.mark.parametrize("name", ["superb", "superb_tiny", "pr", "pr_tiny"])
def test_cached_configs_get_the_layers_of_the_cache(repo_root, name):
    template = load_yaml(repo_root / f"conf/asr/{name}.yaml")
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


def test_superb_config_points_at_the_upstream(repo_root, pretrain_config):
    template = load_yaml(repo_root / "conf/asr/superb_s3prl.yaml")
    assert not reads_cache(template)
    config = superb_config(template, "/x/model.pth", pretrain_config)
    assert config["frontend_conf"]["frontend_conf"] == {"upstream": "hubert_ae_local", "path_or_url": "/x/model.pth"}
    assert config["frontend_conf"]["multilayer_feature"] is True
    assert config["freeze_param"] == ["frontend.upstream"]
    assert config["preencoder_conf"] == {"input_size": 768, "output_size": 1024}
    assert config["encoder_conf"]["hidden_size"] == 1024 and config["encoder_conf"]["num_layers"] == 2


@pytest.mark.parametrize("split", ["10h", "1h", "10min", "tiny"])
def test_finetune_config_keeps_architecture_and_overrides_masking(repo_root, pretrain_config, split):
    template = load_yaml(repo_root / f"conf/asr/finetune_{split}.yaml")
    config = finetune_config(template, pretrain_config)
    conf = config["encoder_conf"]
    assert conf["encoder_embed_dim"] == 768 and conf["encoder_num_layers"] == 4  # from pretraining
    assert conf["finetuning"] is True and conf["mask_prob"] == template["encoder_conf"]["mask_prob"]
    steps = config["max_epoch"] * config["num_iters_per_epoch"] // config.get("accum_grad", 1)
    assert config["scheduler_conf"]["max_steps"] == steps


def test_channel_mask_that_torchaudio_cannot_draw_is_refused(repo_root, tmp_path):
    small = tmp_path / "config.yaml"
    small.write_text(yaml.safe_dump({"encoder": "torchaudio_hubert", "encoder_conf": {"encoder_embed_dim": 32}}))
    with pytest.raises(ConfigError, match="mask_channel_prob"):
        finetune_config(load_yaml(repo_root / "conf/asr/finetune_10h.yaml"), small)


def test_final_upstream_of_a_strategy(tmp_path):
    from espnet_hubert_ae.upstream.registry import RegistryEntry, UpstreamError, write_registry

    def entry(strategy, phase, step):
        ckpt = tmp_path / f"{strategy}{phase}{step}.pth"
        return RegistryEntry(f"{strategy}/{phase}/step{step}", ckpt, tmp_path / "config.yaml", strategy, phase, step,
                             f"{strategy}_tiny")

    registry = write_registry(tmp_path / "upstreams.json", [
        entry("progressive", "p1", 900), entry("progressive", "p2", 100), entry("progressive", "p2", 300),
        entry("baseline", "p3", 50)])
    assert final_upstream("progressive", registry) == "progressive/p2/step300"
    assert final_upstream("baseline_tiny", registry) == "baseline/p3/step50"
    with pytest.raises(UpstreamError, match="registered strategies: baseline, progressive"):
        final_upstream("height", registry)


def test_checkpoints_spread_over_a_run(tmp_path):
    from espnet_hubert_ae.upstream.registry import RegistryEntry, write_registry

    def entry(phase, step):
        return RegistryEntry(f"progressive/{phase}/step{step}", tmp_path / f"{phase}{step}.pth", tmp_path / "c.yaml",
                             "progressive", phase, step, "progressive_tiny")

    steps = [("p1", 100), ("p1", 200), ("p1", 300), ("p2", 400), ("p2", 500), ("p2", 600)]
    registry = write_registry(tmp_path / "upstreams.json", [entry(p, s) for p, s in steps])
    assert run_checkpoints("progressive", 3, registry) == [
        "progressive/p1/step200", "progressive/p2/step400", "progressive/p2/step600"]
    assert run_checkpoints("progressive", 1, registry) == ["progressive/p2/step600"]
    assert len(run_checkpoints("progressive", 10, registry)) == 6  # no more than the run kept
    with pytest.raises(ValueError, match="at least 1"):
        run_checkpoints("progressive", 0, registry)


def test_upstream_tags():
    assert upstream_tag("progressive/p2/step300") == "progressive_p2_step300"
    assert upstream_tag("/exp/pretrain/base/model.pth") == "base_model"
