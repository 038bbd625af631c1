"""Stages 8 and 9 end to end on tiny spoken corpora, and their clear failures on bad input.

Each run trains through ESPnet's ASR task for a few steps on CPU, decodes and scores. The
trainings run in the test process, so ESPnet is imported once for all of them.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from espnet_hubert_ae.asr.random_init import random_init_checkpoint
from espnet_hubert_ae.bin import finetune, phone_recognition, superb_asr


def _sets(corpus, *names):
    return [str(corpus[n]) for n in names]


def _summary(exp_dir):
    return json.loads((exp_dir / "summary.json").read_text())


def _check_seed_results(exp_dir, corpus, seeds, rates=("wer", "cer")):
    """Per seed: results.json, hypotheses for every utterance; the summary aggregates them."""
    summary = _summary(exp_dir)
    assert summary["seeds"] == seeds
    for seed in seeds:
        results = json.loads((exp_dir / f"seed{seed}" / "results.json").read_text())
        by_set = {s["set"]: s for s in results["sets"]}
        assert set(by_set) == set(summary["sets"])
        for name, score in by_set.items():
            refs = (corpus[name] / "text").read_text().splitlines()
            hyps = (next((exp_dir / f"seed{seed}").glob(f"decode_*/{name}")) / "hyp.txt").read_text().splitlines()
            assert score["num_utts"] == len(refs) == len(hyps)
            for rate in rates:
                assert summary["sets"][name][rate]["per_seed"][seeds.index(seed)] == score[rate]
    return summary


@pytest.fixture
def random_init(asr_tiny_checkpoint, tmp_path):
    return Path(random_init_checkpoint(str(asr_tiny_checkpoint), tmp_path / "controls"))


def test_frozen_asr_on_cached_features_with_seeds_and_controls(asr_corpus, asr_tiny_checkpoint, random_init,
                                                               quick_config, tmp_path):
    config = quick_config("superb_tiny", max_epoch=1, num_iters_per_epoch=3, batch_bins=600)
    argv = ["--upstream", "fbank", str(asr_tiny_checkpoint), "--random_init", str(random_init),
            "--config", str(config), "--train_set", str(asr_corpus["train_pretrain"]),
            "--valid_set", str(asr_corpus["dev_clean"]), "--eval_sets", *_sets(asr_corpus, "dev_clean", "test_clean"),
            "--seeds", "1 2", "--exp_root", str(tmp_path / "asr"), "--cache_root", str(tmp_path / "features")]
    assert superb_asr.main(argv) == 0
    root = tmp_path / "asr" / config.stem
    fbank, trained = root / "fbank", root / "asr_ckpt0_model"
    control = next(d for d in root.iterdir() if d not in (fbank, trained))
    assert _check_seed_results(fbank, asr_corpus, [1, 2])["control"] == "fbank"
    assert _check_seed_results(trained, asr_corpus, [1, 2])["control"] is None
    assert _check_seed_results(control, asr_corpus, [1, 2])["control"] == "random_init"
    generated = yaml.safe_load((trained / "seed1" / "train_config.yaml").read_text())
    assert generated["frontend"] == "layer_sum" and generated["encoder"] == "blstm"
    assert generated["frontend_conf"].items() >= {"num_layers": 5, "layer_dim": 128}.items()  # 4 layers + input
    assert yaml.safe_load((fbank / "seed1" / "train_config.yaml").read_text())["frontend_conf"]["layer_dim"] == 80
    assert len(_summary(trained)["layer_weights"]) == 5
    # The seed drives the training: the two seeds end with different weights.
    models = [torch.load(next((trained / f"seed{s}" / "train").glob("valid.*.pth")), weights_only=True) for s in (1, 2)]
    assert not torch.equal(models[0]["frontend.weights"], models[1]["frontend.weights"])
    # One cache per upstream and set, read as ESPnet kaldi_ark features.
    assert sorted(p.name for p in (tmp_path / "features").iterdir()) == sorted(
        ["fbank", "asr_ckpt0_model", random_init.parent.name + "_step0"])
    train_sh = (trained / "seed1" / "train" / "train.sh").read_text()
    assert "feats.scp,speech,kaldi_ark" in train_sh and "espnet_hubert_ae.bin.asr_train" in train_sh
    before = _summary(trained)
    assert superb_asr.main(argv) == 0  # done: a rerun skips everything
    assert _summary(trained) == before


def test_frozen_asr_on_the_live_upstream(asr_corpus, asr_tiny_checkpoint, quick_config, tmp_path):
    config = quick_config("superb_s3prl_tiny", max_epoch=1, num_iters_per_epoch=2, batch_size=4)
    exp_dir = tmp_path / "live"
    argv = ["--upstream", str(asr_tiny_checkpoint), "--config", str(config),
            "--train_set", str(asr_corpus["train_pretrain"]), "--valid_set", str(asr_corpus["dev_clean"]),
            "--eval_sets", str(asr_corpus["dev_clean"]), "--exp_dir", str(exp_dir), "--seeds", "1"]
    assert superb_asr.main(argv) == 0
    assert _check_seed_results(exp_dir, asr_corpus, [1])["input"] == "live"
    generated = (exp_dir / "seed1" / "train_config.yaml").read_text()
    assert "hubert_ae_local" in generated and "multilayer_feature: true" in generated


def test_phone_recognition_from_the_alignments(builtin_corpus, tiny_hubert_checkpoint, quick_config, tmp_path):
    config = quick_config("pr_tiny", max_epoch=1, num_iters_per_epoch=3, batch_bins=800)
    exp_root = tmp_path / "pr"
    argv = ["--upstream", "fbank", str(tiny_hubert_checkpoint), "--config", str(config),
            "--train_set", str(builtin_corpus["train_pretrain"]), "--valid_set", str(builtin_corpus["dev_clean"]),
            "--eval_sets", str(builtin_corpus["dev_clean"]), "--exp_root", str(exp_root),
            "--cache_root", str(tmp_path / "features"), "--seeds", "1"]
    assert phone_recognition.main(argv) == 0
    for exp_dir in (exp_root / config.stem).iterdir():
        summary = _summary(exp_dir)
        assert summary["kind"] == "pr" and summary["units"] == "phone"
        dev = summary["sets"]["dev_clean"]
        assert set(dev) >= {"per", "empty_hyps", "num_utts"} and "cer" not in dev
        refs = (exp_dir / "phones" / "dev_clean" / "text").read_text().splitlines()
        assert len(refs) == dev["num_utts"] and "SIL" not in " ".join(refs)
        generated = yaml.safe_load((exp_dir / "seed1" / "train_config.yaml").read_text())
        assert generated["encoder"] == "identity"
        assert "--token_type word" in (exp_dir / "seed1" / "train" / "train.sh").read_text().replace(" \\\n    ", " ")


def test_finetune_sweep_with_both_controls(asr_corpus, asr_tiny_checkpoint, random_init, quick_config, tmp_path):
    config = quick_config(
        "finetune_tiny", max_epoch=1, num_iters_per_epoch=3,
        scheduler_conf={"max_steps": 3, "warmup_ratio": 0.34, "hold_ratio": 0.33, "decay_ratio": 0.33},
    )
    frozen = quick_config("superb_tiny", max_epoch=1, num_iters_per_epoch=2, batch_bins=600)
    exp_root = tmp_path / "ft"
    argv = ["--upstream", "fbank", str(asr_tiny_checkpoint), "--random_init", str(random_init),
            "--reset_top_layers", "0", "2", "--config", str(config), "--frozen_config", str(frozen),
            "--train_set", str(asr_corpus["train_10min"]), "--valid_set", str(asr_corpus["dev_clean"]),
            "--eval_sets", str(asr_corpus["dev_clean"]), "--token_text_sets", str(asr_corpus["train_pretrain"]),
            "--exp_root", str(exp_root), "--cache_root", str(tmp_path / "features"), "--seeds", "1"]
    assert finetune.main(argv) == 0
    runs = {p.parent.relative_to(exp_root / config.stem).as_posix(): _summary(p.parent)
            for p in (exp_root / config.stem).glob("*/*/summary.json")}
    control_tag = random_init.parent.name + "_step0"
    assert sorted(runs) == sorted(["fbank/train_10min_frozen", "asr_ckpt0_model/train_10min_reset0",
                                   "asr_ckpt0_model/train_10min_reset2", f"{control_tag}/train_10min_reset0"])
    assert runs["fbank/train_10min_frozen"]["kind"] == "finetune"
    assert runs["fbank/train_10min_frozen"]["control"] == "fbank"
    assert runs[f"{control_tag}/train_10min_reset0"]["control"] == "random_init"
    reset2 = exp_root / config.stem / "asr_ckpt0_model" / "train_10min_reset2" / "seed1"
    info = json.loads((reset2 / "experiment.json").read_text())
    assert info["reset_top_layers"] == 2 and info["reset_tensors"] > 0
    assert "Loading pretrained params from" in (reset2 / "train" / "train.log").read_text()


def _finetune_argv(corpus, checkpoint, tmp_path, **changes):
    args = {"--upstream": str(checkpoint), "--config": "finetune_tiny",
            "--train_set": str(corpus["train_10min"]), "--valid_set": str(corpus["dev_clean"]),
            "--exp_dir": str(tmp_path / "exp"), **changes}
    argv = [x for kv in args.items() for x in kv]
    return argv + ["--eval_sets", str(corpus["test_clean"])]


def test_missing_checkpoint_fails_clearly(asr_corpus, tmp_path, capsys, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    argv = _finetune_argv(asr_corpus, tmp_path / "none" / "model.pth", tmp_path)
    assert finetune.main(argv) == 1
    assert "none/model.pth" in capsys.readouterr().err


def test_missing_split_fails_clearly(asr_corpus, asr_tiny_checkpoint, tmp_path, capsys, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    argv = _finetune_argv(asr_corpus, asr_tiny_checkpoint, tmp_path, **{"--train_set": str(tmp_path / "train_1h")})
    assert finetune.main(argv) == 1
    err = capsys.readouterr().err
    assert "train_1h is missing" in err and "db.sh" in err


def test_lm_is_refused_clearly(asr_corpus, asr_tiny_checkpoint, tmp_path, capsys, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    argv = _finetune_argv(asr_corpus, asr_tiny_checkpoint, tmp_path, **{"--lm": "4gram.arpa"})
    assert finetune.main(argv) == 1
    assert "n-gram LM decoding" in capsys.readouterr().err


def test_one_exp_dir_for_several_upstreams_is_refused(asr_corpus, asr_tiny_checkpoint, tmp_path, capsys, repo_root,
                                                      monkeypatch):
    monkeypatch.chdir(repo_root)
    argv = _finetune_argv(asr_corpus, asr_tiny_checkpoint, tmp_path) + ["--reset_top_layers", "0", "1"]
    assert finetune.main(argv) == 1
    assert "--exp_dir names one experiment, but 2" in capsys.readouterr().err


def test_validation_characters_outside_token_list(asr_corpus, asr_tiny_checkpoint, tmp_path, capsys, repo_root,
                                                  monkeypatch):
    monkeypatch.chdir(repo_root)
    odd_dev = tmp_path / "dev_odd"
    shutil.copytree(asr_corpus["dev_clean"], odd_dev)
    lines = (odd_dev / "text").read_text().splitlines()
    lines[0] += " QUIZ"  # Q, U, I, Z: never in the training words
    (odd_dev / "text").write_text("\n".join(lines) + "\n")
    argv = _finetune_argv(asr_corpus, asr_tiny_checkpoint, tmp_path, **{"--valid_set": str(odd_dev)})
    assert finetune.main(argv) == 1
    err = capsys.readouterr().err
    assert "characters outside the token list" in err and "'Q'" in err
