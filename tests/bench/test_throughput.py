"""bench throughput: a few updates of the tiny model on the CPU through stage 5's training path."""

from __future__ import annotations

import json

from espnet_hubert_ae.bench.throughput import main, parse_steps


def test_per_update_figures_are_read_from_espnet_log_lines(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(
        "12:00:01 INFO 1epoch:train:1-1batch: iter_time=0.250, forward_time=1.000, loss=4.605, train_time=2.000\n"
        "12:00:02 INFO 1epoch:train:2-2batch: forward_time=1.000, loss=4.600, train_time=1.500\n"  # iter_time < 1e-3
        "12:00:03 INFO 1epoch:train:1-2batch: iter_time=0.125, train_time=1.750\n"  # an interval of two: not a step
        "12:00:04 INFO 1epoch results: [train] iter_time=0.125, train_time=1.750\n"
    )
    assert parse_steps(log) == [{"iter_time": 0.25, "train_time": 2.0}, {"iter_time": 0.0, "train_time": 1.5}]


def test_tiny_model_on_the_cpu(tmp_path, capsys):
    argv = ["--model", "tiny", "--steps", "2", "--warmup_steps", "1", "--synthetic_minutes", "1",
            "--workdir", str(tmp_path), "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["model"] == "tiny" and figures["device"] == "cpu" and figures["amp"] is False
    assert figures["audio_s_per_s_per_device"] > 0 and figures["step_s"] > 0
    assert 0 <= figures["data_loading_share"] < 1 and figures["peak_host_memory_gb"] > 0
    # The audio of an update is what the model config's batch_bins holds at most (tiny: 256000 samples).
    assert 0 < figures["audio_s_per_step"] <= 16.0
    log = tmp_path / "exp" / "throughput_tiny" / "phase1" / "train.log"
    assert len(parse_steps(log)) == 3
