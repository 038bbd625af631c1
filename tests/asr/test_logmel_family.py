"""Stages 8 and 9 on a checkpoint of the log-mel family: feature cache, frozen ASR (cached and
live), phoneme recognition, the random-init control and fine-tuning with top layers reset."""

import json
from pathlib import Path

import torch
import yaml

from espnet_hubert_ae.asr.random_init import random_init_checkpoint
from espnet_hubert_ae.bin import finetune, phone_recognition, superb_asr
from espnet_hubert_ae.model.hubert import LOGMEL_ENCODER_NAME, load_pretrain_model


def _summary(exp_dir: Path) -> dict:
    return json.loads((exp_dir / "summary.json").read_text())


def _scored_every_utterance(summary: dict, corpus: dict, rate: str) -> None:
    for name, scores in summary["sets"].items():
        assert scores["num_utts"] == len((corpus[name] / "text").read_text().splitlines())
        assert 0 <= scores[rate]["mean"] <= 100 * 10  # an error rate, scored


def test_frozen_asr_cached_and_live_with_the_random_init_control(asr_corpus, asr_mel_tiny_checkpoint, quick_config,
                                                                tmp_path):
    random_init = random_init_checkpoint(str(asr_mel_tiny_checkpoint), tmp_path / "controls")
    control_model, control_config = load_pretrain_model(random_init)
    assert control_config["encoder"] == LOGMEL_ENCODER_NAME
    config = quick_config("superb_tiny", max_epoch=1, num_iters_per_epoch=3, batch_bins=600)
    argv = ["--upstream", str(asr_mel_tiny_checkpoint), "--random_init", random_init, "--config", str(config),
            "--train_set", str(asr_corpus["train_pretrain"]), "--valid_set", str(asr_corpus["dev_clean"]),
            "--eval_sets", str(asr_corpus["dev_clean"]), "--exp_root", str(tmp_path / "asr"),
            "--cache_root", str(tmp_path / "features")]
    assert superb_asr.main(argv) == 0
    trained = tmp_path / "asr" / config.stem / "asr_mel_ckpt0_model"
    _scored_every_utterance(_summary(trained), asr_corpus, "cer")
    generated = yaml.safe_load((trained / "seed1" / "train_config.yaml").read_text())
    assert generated["frontend_conf"].items() >= {"num_layers": 5, "layer_dim": 128}.items()  # 4 layers + input
    cache = json.loads(next((tmp_path / "features" / "asr_mel_ckpt0_model").glob("*/cache.json")).read_text())
    assert cache["frame_rate"] == 50

    live = quick_config("superb_s3prl_tiny", max_epoch=1, num_iters_per_epoch=2, batch_size=4)
    argv = ["--upstream", str(asr_mel_tiny_checkpoint), "--config", str(live),
            "--train_set", str(asr_corpus["train_pretrain"]), "--valid_set", str(asr_corpus["dev_clean"]),
            "--eval_sets", str(asr_corpus["dev_clean"]), "--exp_dir", str(tmp_path / "live")]
    assert superb_asr.main(argv) == 0
    assert _summary(tmp_path / "live")["input"] == "live"


def test_phone_recognition(builtin_corpus, asr_mel_tiny_checkpoint, quick_config, tmp_path):
    config = quick_config("pr_tiny", max_epoch=1, num_iters_per_epoch=3, batch_bins=800)
    argv = ["--upstream", str(asr_mel_tiny_checkpoint), "--config", str(config),
            "--train_set", str(builtin_corpus["train_pretrain"]), "--valid_set", str(builtin_corpus["dev_clean"]),
            "--eval_sets", str(builtin_corpus["dev_clean"]), "--exp_root", str(tmp_path / "pr"),
            "--cache_root", str(tmp_path / "features")]
    assert phone_recognition.main(argv) == 0
    (exp_dir,) = (tmp_path / "pr" / config.stem).iterdir()
    _scored_every_utterance(_summary(exp_dir), builtin_corpus, "per")


def test_finetuning_with_the_top_layers_reset(asr_corpus, asr_mel_tiny_checkpoint, quick_config, tmp_path):
    config = quick_config(
        "finetune_tiny", max_epoch=1, num_iters_per_epoch=3,
        scheduler_conf={"max_steps": 3, "warmup_ratio": 0.34, "hold_ratio": 0.33, "decay_ratio": 0.33},
    )
    exp_root = tmp_path / "ft"
    argv = ["--upstream", str(asr_mel_tiny_checkpoint), "--reset_top_layers", "0", "2", "--config", str(config),
            "--train_set", str(asr_corpus["train_10min"]), "--valid_set", str(asr_corpus["dev_clean"]),
            "--eval_sets", str(asr_corpus["dev_clean"]), "--token_text_sets", str(asr_corpus["train_pretrain"]),
            "--exp_root", str(exp_root), "--cache_root", str(tmp_path / "features")]
    assert finetune.main(argv) == 0
    runs = exp_root / config.stem / "asr_mel_ckpt0_model"
    for reset in (0, 2):
        _scored_every_utterance(_summary(runs / f"train_10min_reset{reset}"), asr_corpus, "cer")
    seed_dir = runs / "train_10min_reset2" / "seed1"
    generated = yaml.safe_load((seed_dir / "train_config.yaml").read_text())
    assert generated["encoder"] == "torchaudiohubert_logmel"
    assert "logmel_stack" in generated["encoder_conf"] and "extractor_conv_layer_config" not in generated["encoder_conf"]
    # The fine-tuning starts from the pretrained weights, the top 2 of 4 layers re-initialised.
    init = torch.load(next(seed_dir.glob("init_*.pth")), map_location="cpu")
    pretrained, _ = load_pretrain_model(asr_mel_tiny_checkpoint)
    encoder = pretrained.encoder.state_dict()
    layer = "hubert_pretrain_model.wav2vec2.encoder.transformer.layers.{}.attention.k_proj.weight"
    assert torch.equal(init[layer.format(1)], encoder[layer.format(1)])
    assert not torch.equal(init[layer.format(3)], encoder[layer.format(3)])
