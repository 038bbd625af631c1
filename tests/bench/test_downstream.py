"""bench downstream: both sides train on the same batches, figures parse from ESPnet's logs, and
the verdict: fast enough, and the live CER within the cached seeds' spread."""

import json

import pytest
import yaml

from espnet_hubert_ae.bench import downstream
from espnet_hubert_ae.utils.presets import resolve_preset


@pytest.mark.parametrize("cached, live, speedup, fast, within", [
    ([40.0, 42.0, 41.0], 41.5, 6.0, True, True),    # |41.5 - 40| = 1.5 <= spread 2: passes
    ([40.0, 42.0, 41.0], 42.5, 6.0, True, False),   # |42.5 - 40| = 2.5 > spread 2
    ([40.0, 42.0, 41.0], 38.0, 6.0, True, True),    # the difference counts either way: 2 <= 2
    ([40.0, 42.0, 41.0], 37.5, 6.0, True, False),
    ([40.0, 42.0, 41.0], 41.5, 4.9, False, True),   # below the 5x default threshold
    ([40.0, 42.0, 41.0], 41.5, 5.0, True, True),    # at the threshold is enough
    ([45.0], 45.0, 9.0, True, True),                # one seed: no spread, the CERs must be equal
    ([45.0], 45.1, 9.0, True, False),
])
def test_verdict_on_constructed_figures(cached, live, speedup, fast, within):
    judged = downstream.verdict(cached, live, speedup, min_speedup=5.0)
    assert (judged["fast_enough"], judged["cer_within_spread"]) == (fast, within)
    assert judged["passed"] == (fast and within)
    assert judged["cer_seed_spread"] == pytest.approx(max(cached) - min(cached))


def test_default_threshold_is_five():
    assert downstream.build_parser().get_default("min_speedup") == 5.0


def test_cached_and_live_sides_on_a_tiny_corpus(builtin_corpus, tiny_hubert_checkpoint, tmp_path, capsys):
    config = yaml.safe_load(resolve_preset("asr", "superb_tiny").read_text())
    config.update(max_epoch=1, batch_bins=800)
    (tmp_path / "quick.yaml").write_text(yaml.safe_dump(config))
    argv = ["--checkpoint", str(tiny_hubert_checkpoint), "--train_set", str(builtin_corpus["train_pretrain"]),
            "--eval_set", str(builtin_corpus["dev_clean"]), "--config", str(tmp_path / "quick.yaml"),
            "--seeds", "1 2", "--updates", "3", "--out_dir", str(tmp_path / "out"), "--min_speedup", "1e9"]
    code = downstream.main(argv)
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["updates"] == 3 and figures["seeds"] == [1, 2] and len(figures["cached_cer"]) == 2
    # No cache is a billion times faster: the verdict fails, whatever the CERs.
    assert code == 1 and not figures["fast_enough"] and not figures["passed"]
    cers, live_cer = figures["cached_cer"], figures["live_cer"]
    assert figures["cer_within_spread"] == (abs(live_cer - cers[0]) <= max(cers) - min(cers))
    # The speed-up is the cached side's mean updates/s over the live side's, as printed per seed.
    assert figures["speedup"] == pytest.approx(figures["cached_updates_per_second"] / figures["live_updates_per_second"],
                                               rel=0.01, abs=0.01)
    # The same batches on both sides: identical batch sampling in both ESPnet logs.
    logs = [(tmp_path / "out" / side / "seed1" / "train" / "train.log").read_text() for side in ("cached", "live")]
    samplers = [next(line.split("INFO: ")[1] for line in log.splitlines() if "[train] Batch sampler" in line)
                for log in logs]
    assert samplers[0] == samplers[1]
    live = yaml.safe_load((tmp_path / "out" / "live" / "seed1" / "train_config.yaml").read_text())
    assert live["frontend"] == "s3prl" and live["frontend_conf"]["frontend_conf"]["normalize"] is True
