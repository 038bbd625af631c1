"""Stages 8 and 9 end to end on a tiny spoken corpus, and their clear failures on bad input.

The two end-to-end runs train through stock ESPnet (a child ``asr_train`` process) for a few
steps on CPU, decode and score: about a minute or two each on a busy 2-core machine.
"""

import json
import shutil

from espnet_hubert_ae.bin import finetune, superb_asr


def _sets(corpus, *names):
    return [str(corpus[n]) for n in names]


def _check_results(exp_dir, corpus):
    results = json.loads((exp_dir / "results.json").read_text())
    by_set = {s["set"]: s for s in results["sets"]}
    assert set(by_set) == {"dev_clean", "test_clean"}
    for name, score in by_set.items():
        refs = (corpus[name] / "text").read_text().splitlines()
        assert score["num_utts"] == len(refs)
        assert score["num_words"] == sum(len(line.split()) - 1 for line in refs)
        hyps = (next(exp_dir.glob(f"decode_*/{name}")) / "hyp.txt").read_text().splitlines()
        assert len(hyps) == len(refs)
    assert "| dev_clean |" in (exp_dir / "results.md").read_text()


def test_superb_stage_end_to_end(asr_corpus, asr_tiny_checkpoint, quick_config, tmp_path):
    config = quick_config("superb_tiny", max_epoch=1, num_iters_per_epoch=4, batch_size=4)
    exp_dir = tmp_path / "superb"
    argv = ["--upstream", str(asr_tiny_checkpoint), "--config", str(config),
            "--train_set", str(asr_corpus["train_pretrain"]), "--valid_set", str(asr_corpus["dev_clean"]),
            "--eval_sets", *_sets(asr_corpus, "dev_clean", "test_clean"), "--exp_dir", str(exp_dir)]
    assert superb_asr.main(argv) == 0
    _check_results(exp_dir, asr_corpus)
    generated = (exp_dir / "train_config.yaml").read_text()
    assert "hubert_ae_local" in generated and "multilayer_feature: true" in generated
    assert (exp_dir / "train" / "train.sh").is_file()
    assert superb_asr.main(argv) == 0  # done: a rerun skips everything


def test_finetune_stage_end_to_end_with_reset(asr_corpus, asr_tiny_checkpoint, quick_config, tmp_path):
    config = quick_config(
        "finetune_tiny", max_epoch=1, num_iters_per_epoch=4,
        scheduler_conf={"max_steps": 4, "warmup_ratio": 0.25, "hold_ratio": 0.25, "decay_ratio": 0.5},
    )
    exp_dir = tmp_path / "ft"
    argv = ["--upstream", str(asr_tiny_checkpoint), "--config", str(config),
            "--train_set", str(asr_corpus["train_10min"]), "--valid_set", str(asr_corpus["dev_clean"]),
            "--eval_sets", *_sets(asr_corpus, "dev_clean", "test_clean"), "--reset_top_layers", "2",
            "--token_text_sets", str(asr_corpus["train_pretrain"]), "--exp_dir", str(exp_dir)]
    assert finetune.main(argv) == 0
    _check_results(exp_dir, asr_corpus)
    info = json.loads((exp_dir / "experiment.json").read_text())
    assert info["reset_top_layers"] == 2 and info["reset_tensors"] > 0
    assert "Loading pretrained params from" in (exp_dir / "train" / "train.log").read_text()


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
