"""hubert_ae_local through s3prl's own API: S3PRLUpstream, Featurizer, espnet_hubert_local.

Importing s3prl's hub takes ~16 s (it imports every upstream), so it happens once per module.
The hub entry comes from the start-up hook, exactly as in a process that never imports us.
"""

from __future__ import annotations

import pytest
import torch

from espnet_hubert_ae.bin import upstreams as cli
from espnet_hubert_ae.upstream.registry import REGISTRY_ENV, UpstreamError

# s3prl's hub import emits torchaudio deprecation warnings from s3prl's own modules.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def s3prl_nn():
    torch.set_num_threads(1)
    import s3prl.nn

    return s3prl.nn


@pytest.fixture(scope="module")
def upstream(s3prl_nn, hubert_checkpoint):
    return s3prl_nn.S3PRLUpstream("hubert_ae_local", path_or_url=str(hubert_checkpoint)).eval()


def _batch(*lengths, seed=0):
    generator = torch.Generator().manual_seed(seed)
    wavs = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        wavs[i, :n] = torch.randn(n, generator=generator) * 0.1
    return wavs, torch.tensor(lengths)


def test_registered_in_the_hub(s3prl_nn):
    assert "hubert_ae_local" in s3prl_nn.S3PRLUpstream.available_names()


def test_states_shapes_and_lengths(upstream):
    assert upstream.num_layers == 3  # tiny model: 2 transformer layers + index 0
    assert upstream.downsample_rates == [320] * 3 and upstream.hidden_sizes == [64] * 3
    wavs, lengths = _batch(16000, 8000, 1000)
    with torch.no_grad():
        states, state_lengths = upstream(wavs, lengths)
    assert len(states) == 3
    assert all(s.shape == (3, 50, 64) for s in states)
    assert all(n.tolist() == [50, 25, 4] for n in state_lengths)


def test_batched_equals_one_by_one_and_featurizer(s3prl_nn, upstream):
    wavs, lengths = _batch(16000, 7000, 3333, seed=1)
    with torch.no_grad():
        batched, batched_lengths = upstream(wavs, lengths)
        for i, n in enumerate(lengths.tolist()):
            alone, alone_lengths = upstream(wavs[i : i + 1, :n], lengths[i : i + 1])
            frames = int(alone_lengths[0][0])
            assert frames == int(batched_lengths[0][i])
            for b, a in zip(batched, alone):
                torch.testing.assert_close(b[i, :frames], a[0, :frames], atol=1e-4, rtol=1e-4)
        featurizer = s3prl_nn.Featurizer(upstream)
        summed, summed_lengths = featurizer(batched, batched_lengths)
    assert summed.shape == (3, 50, 64) and featurizer.output_size == 64 and featurizer.downsample_rate == 320
    # Zero weights: the weighted sum is the plain mean over layers.
    torch.testing.assert_close(summed, torch.stack(batched).mean(0), atol=1e-5, rtol=1e-5)
    assert summed_lengths.tolist() == batched_lengths[0].tolist()


def test_very_short_and_empty_audio(upstream):
    with torch.no_grad():
        states, state_lengths = upstream(*_batch(200, 100))  # s3prl pads to 0.05 s; we give 1 frame
        assert states[0].shape[:2] == (2, 1) and state_lengths[0].tolist() == [1, 1]
        states, state_lengths = upstream(torch.zeros(1, 0), torch.tensor([0]))
        assert state_lengths[0].tolist() == [0]
        with pytest.raises(UpstreamError, match="is empty"):
            upstream(*_batch(16000, 0))


def test_registered_name_and_sample_rate_through_extra_conf(s3prl_nn, hubert_checkpoint, tmp_path, monkeypatch):
    expdir = tmp_path / "exp"
    (expdir / "pretrain" / "baseline_tiny").mkdir(parents=True)
    (expdir / "pretrain" / "baseline_tiny" / "checkpoints.json").write_text(
        f'[{{"path": "{hubert_checkpoint}", "strategy": "baseline", "phase": 1, "global_step": 10}}]')
    cli.main(["register", "--expdir", str(expdir)])
    monkeypatch.setenv(REGISTRY_ENV, str(expdir / "upstreams.json"))
    at_8k = s3prl_nn.S3PRLUpstream("hubert_ae_local", path_or_url="baseline_tiny/p1/step10",
                                   extra_conf={"sample_rate": 8000}).eval()
    assert at_8k.downsample_rates[0] == 160
    with torch.no_grad():
        _, state_lengths = at_8k(*_batch(8000))
    assert state_lengths[0].tolist() == [50]
    with pytest.raises(UpstreamError, match="close names: baseline_tiny/p1/step10"):
        s3prl_nn.S3PRLUpstream("hubert_ae_local", path_or_url="baseline_tiny/p1/step1")


def test_espnet_hubert_local_loads_the_same_checkpoint(s3prl_nn, hubert_checkpoint, upstream):
    """s3prl's built-in loader sees transformer layers only: its index k is our k + 1. (The
    log-mel encoder is in ESPnet's table through the start-up hook, as in any process.)"""
    builtin = s3prl_nn.S3PRLUpstream("espnet_hubert_local", path_or_url=str(hubert_checkpoint)).eval()
    assert builtin.num_layers == upstream.num_layers - 1
    wavs, lengths = _batch(12000, seed=2)
    with torch.no_grad():
        ours, _ = upstream(wavs, lengths)
        theirs, _ = builtin(wavs, lengths)
    for k, state in enumerate(theirs):
        torch.testing.assert_close(state, ours[k + 1], atol=1e-4, rtol=1e-4)


_EXAMPLE_DOWNSTREAM_CONFIG = """
runner: {total_steps: 2, gradient_clipping: 1, gradient_accumulate_steps: 1, log_step: 1, eval_step: 100,
         save_step: 2, max_keep: 1, eval_dataloaders: [dev]}
optimizer: {name: TorchOptim, torch_optim_name: Adam, lr: 1.0e-3}
downstream_expert:
  datarc: {train_batch_size: 2, eval_batch_size: 2, num_workers: 0}
  modelrc: {input_dim: 16}
"""


@pytest.mark.slow
def test_run_downstream_with_hubert_ae_local(tiny_hubert_checkpoint, tmp_path):
    """s3prl's run_downstream.py (through the wrapper) trains its example task on our upstream."""
    import os
    import subprocess
    import sys

    (tmp_path / "example.yaml").write_text(_EXAMPLE_DOWNSTREAM_CONFIG)
    command = [sys.executable, "-m", "espnet_hubert_ae.bin.run_downstream", "-m", "train",
               "-u", "hubert_ae_local", "-k", str(tiny_hubert_checkpoint), "-d", "example", "-c", "example.yaml",
               "-p", "exp", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "exp" / "states-2.ckpt").is_file()
