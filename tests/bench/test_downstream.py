"""bench downstream: both sides train on the same batches, figures parse from ESPnet's logs."""

import json

import yaml

from espnet_hubert_ae.bench import downstream
from espnet_hubert_ae.utils.presets import resolve_preset


def test_cached_and_live_sides_on_a_tiny_corpus(builtin_corpus, tiny_hubert_checkpoint, tmp_path, capsys):
    config = yaml.safe_load(resolve_preset("asr", "superb_tiny").read_text())
    config.update(max_epoch=1, batch_bins=800)
    (tmp_path / "quick.yaml").write_text(yaml.safe_dump(config))
    argv = ["--checkpoint", str(tiny_hubert_checkpoint), "--train_set", str(builtin_corpus["train_pretrain"]),
            "--eval_set", str(builtin_corpus["dev_clean"]), "--config", str(tmp_path / "quick.yaml"),
            "--seeds", "1 2", "--updates", "3", "--out_dir", str(tmp_path / "out"), "--min_speedup", "0"]
    code = downstream.main(argv)
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["updates"] == 3 and figures["seeds"] == [1, 2] and len(figures["cached_cer"]) == 2
    assert figures["cached_updates_per_second"] > 0 and figures["live_updates_per_second"] > 0
    assert code == (0 if figures["cer_within_spread"] else 1)
    # The same batches on both sides: identical batch sampling in both ESPnet logs.
    logs = [(tmp_path / "out" / side / "seed1" / "train" / "train.log").read_text() for side in ("cached", "live")]
    samplers = [next(line.split("INFO: ")[1] for line in log.splitlines() if "[train] Batch sampler" in line)
                for log in logs]
    assert samplers[0] == samplers[1]
    live = yaml.safe_load((tmp_path / "out" / "live" / "seed1" / "train_config.yaml").read_text())
    assert live["frontend"] == "s3prl" and live["frontend_conf"]["frontend_conf"]["normalize"] is True
