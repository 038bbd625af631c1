"""The model configs' optimizer decays weights the way HuBERT's does: decoupled from the gradient.

With a zero gradient, one update may shrink a weight by at most the factor lr x weight_decay
(fairseq's Adam, i.e. AdamW). Coupled L2 under Adam (torch's Adam(weight_decay)) moves it by about
lr in absolute terms instead, which over a few thousand steps drives LayerNorm gains to zero.
"""

from __future__ import annotations

import argparse

import pytest
import torch
import yaml

from espnet_hubert_ae.utils.presets import preset_dir, preset_names


def one_zero_gradient_step(config: dict) -> tuple[float, float]:
    """(smallest LayerNorm gain after one update with zero gradients, the config's lr x wd).

    The gains are float32: comparisons allow 1e-7 of rounding.
    """
    from espnet_hubert_ae.pretrain.task import PhaseHubertTask

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    args = argparse.Namespace(optim=config["optim"], optim_conf=dict(config["optim_conf"]), sharded_ddp=False,
                              exclude_weight_decay=False)  # fmt: skip
    (optimizer,) = PhaseHubertTask.build_optimizers(args, model)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    conf = config["optim_conf"]
    return float(model[1].weight.min()), conf["lr"] * conf.get("weight_decay", 0.0)


@pytest.mark.parametrize("name", preset_names("model"))
def test_model_configs_decay_weights_decoupled(name):
    config = yaml.safe_load((preset_dir("model") / f"{name}.yaml").read_text())
    gain, shrink = one_zero_gradient_step(config)
    assert gain >= 1.0 - shrink - 1e-7, f"{name}: one zero-gradient step took a LayerNorm gain to {gain}"


def test_coupled_l2_fails_the_check():
    """The check tells the two apart: torch's Adam with weight_decay moves the gain by about lr."""
    coupled = {"optim": "adam", "optim_conf": {"lr": 1e-3, "weight_decay": 0.01}}
    gain, shrink = one_zero_gradient_step(coupled)
    assert 1.0 - gain > 50 * shrink  # lr, against lr x wd: 100 times more
    assert 1.0 - gain == pytest.approx(1e-3, rel=0.05)
