"""Our ESPnet task's pieces in-process: loss weights, the global-step scheduler, warm start."""

from __future__ import annotations

import argparse

import pytest
import torch

from espnet_hubert_ae.model.factory import TINY_ENCODER_CONF, pretrain_config
from espnet_hubert_ae.pretrain.task import DEFAULT_REINIT, PhaseHubertTask, PhaseLR, WeightedLossHubertModel
from espnet_hubert_ae.pretrain.warmstart import WarmStartError, warm_start


def build(k: int, seed: int = 0, **model_conf) -> WeightedLossHubertModel:
    config = pretrain_config(TINY_ENCODER_CONF, k)
    config["model_conf"] = model_conf
    torch.manual_seed(seed)
    return PhaseHubertTask.build_model(argparse.Namespace(**config))


def batch(k: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    speech = 0.1 * torch.randn(2, 16000, generator=g)
    frames = (16000 - 400) // 320 + 1
    return {
        "speech": speech,
        "speech_lengths": torch.tensor([16000, 16000]),
        "text": torch.randint(0, k, (2, frames), generator=g),
        "text_lengths": torch.tensor([frames, frames]),
    }


def test_loss_weights_are_configurable_and_default_to_hubert():
    default = build(8)
    assert (default.masked_weight, default.unmasked_weight, default.feature_weight) == (1.0, 0.0, 10.0)
    logit_m, logit_u = torch.randn(5, 9), torch.randn(7, 9)
    penalty = torch.tensor(0.5)
    ce = torch.nn.functional.cross_entropy
    zeros = lambda n: torch.zeros(n, dtype=torch.long)  # noqa: E731
    weighted = build(8, masked_weight=0.5, unmasked_weight=2.0, feature_weight=1.0)
    expected = 0.5 * 1.0 * 5 + 0.5 * ce(logit_m, zeros(5), reduction="sum") + 2.0 * ce(logit_u, zeros(7), reduction="sum")
    assert weighted._calc_hubert_loss(logit_m, logit_u, penalty) == pytest.approx(float(expected), rel=1e-5)
    loss, stats, _ = weighted(**batch(8))
    assert torch.isfinite(loss) and "acc_m" in stats


def test_scheduler_step_is_the_global_step_and_survives_a_restart():
    model = build(8)
    conf = dict(run_start=0, run_end=100, run_warmup=10, phase_start=40)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = PhaseLR(optimizer, **conf)
    assert scheduler.global_step == 40
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 - 30 / 90))
    seen = []
    scheduler.step_hooks.append(seen.append)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert seen == [41, 42, 43]
    state = scheduler.state_dict()
    assert "step_hooks" not in state

    restarted = PhaseLR(torch.optim.Adam(model.parameters(), lr=1e-3), **conf)
    restarted.load_state_dict(state)
    assert restarted.global_step == 43
    assert restarted.get_lr()[0] == pytest.approx(1e-3 * (1 - 33 / 90))


def train_steps(model, optimizer, k, steps=2):
    for i in range(steps):
        loss, _, _ = model(**batch(k, seed=i))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def test_warm_start_carries_encoder_and_optimizer_and_recreates_label_layers(tmp_path):
    previous = build(10, seed=1)
    prev_opt = torch.optim.Adam(previous.parameters(), lr=1e-3)
    train_steps(previous, prev_opt, 10)
    checkpoint = tmp_path / "checkpoint.pth"
    torch.save({"model": previous.state_dict(), "optimizers": [prev_opt.state_dict()]}, checkpoint)

    model = build(17, seed=2)  # another K, another seed
    fresh_embeddings = model.encoder.hubert_pretrain_model.logit_generator.label_embeddings.detach().clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    report = warm_start(model, optimizer, checkpoint, reinit=DEFAULT_REINIT)

    prev_state = previous.state_dict()
    for name, tensor in model.state_dict().items():
        if any(p in name for p in DEFAULT_REINIT):
            assert name in report.reinitialised
        else:
            assert torch.equal(tensor, prev_state[name]), name
    assert torch.equal(model.encoder.hubert_pretrain_model.logit_generator.label_embeddings, fresh_embeddings)
    assert len(report.reinitialised) == 3  # label embeddings, final projection weight and bias

    names = [n for n, _ in model.named_parameters()]
    state = optimizer.state_dict()["state"]
    prev_opt_state = prev_opt.state_dict()["state"]
    for i, name in enumerate(names):
        if any(p in name for p in DEFAULT_REINIT):
            assert i not in state, name
        elif i in prev_opt_state:
            assert torch.equal(state[i]["exp_avg"], prev_opt_state[i]["exp_avg"]), name
            assert int(state[i]["step"]) == 2
    assert report.optimizer_states_carried == len(state) > 0
    train_steps(model, optimizer, 17, steps=1)  # the warm-started model trains


def test_warm_start_refuses_another_architecture(tmp_path):
    small = build(10)
    torch.save({"model": small.state_dict()}, tmp_path / "c.pth")
    config = pretrain_config({**TINY_ENCODER_CONF, "encoder_num_layers": 3}, 10)
    deeper = PhaseHubertTask.build_model(argparse.Namespace(**config))
    with pytest.raises(WarmStartError, match="lacks .* parameter"):
        warm_start(deeper, None, tmp_path / "c.pth")
    with pytest.raises(WarmStartError, match="not found"):
        warm_start(deeper, None, tmp_path / "missing.pth")
