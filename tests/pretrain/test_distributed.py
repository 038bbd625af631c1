"""Distributed training through the runner: 2 CPU processes (gloo) agree on the weights."""

from __future__ import annotations

import json
import socket
import sys

import pytest
import yaml

from espnet_hubert_ae.pretrain.runner import PretrainJob, run_schedule


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_agree_on_weights(tmp_path, noise_sets, label_maker):
    strategy = tmp_path / "ddp.yaml"
    strategy.write_text(yaml.safe_dump({"name": "ddp", "phases": [{"steps": 4, "targets": "mfcc", "k": 8}]}))
    job = PretrainJob(
        strategy=str(strategy), model="tiny", sets=noise_sets, train_set="train", valid_set="valid",
        exp_root=tmp_path / "exp", targets_root=tmp_path / "targets", checkpoint_interval=2,
        launcher=f"{sys.executable} -m torch.distributed.run --nproc_per_node 2 --master_port {free_port()}",
        train_args=["--multiprocessing_distributed", "false", "--dist_backend", "gloo"],
    )  # fmt: skip
    exp_dir = run_schedule(job, make_labels=label_maker)
    check = json.loads((exp_dir / "phase1" / "ddp_weights.json").read_text())
    assert check["agree"] and len(check["ranks"]) == 2
    assert (exp_dir / "phase1" / "ddp_phase1_step0000004.pth").is_file()
