"""bench logits: both variants timed on the preset's model, their logits in agreement."""

from __future__ import annotations

import json
import types

import pytest
import torch
from torchaudio.models.wav2vec2.components import LogitGenerator

from espnet_hubert_ae.bench import logits
from espnet_hubert_ae.model.logits import MatmulLogitGenerator


def test_a_step_time_is_the_fastest_timed_step_after_the_warm_up(monkeypatch):
    # Clock readings around each step: a 0.5 s warm-up, then steps of 3, 1.5 and 2 s. The warm-up
    # is the fastest step here, so a time that counted it would be 0.5.
    readings = iter([0.0, 0.5, 0.5, 3.5, 3.5, 5.0, 5.0, 7.0])
    monkeypatch.setattr(logits, "time", types.SimpleNamespace(perf_counter=lambda: next(readings)))
    calls = []

    def model(wav, labels, lengths):
        calls.append(1)
        return torch.zeros(2, 3, requires_grad=True), None, torch.tensor(0.0)

    assert logits.time_steps(model, None, None, None, steps=3) == 1.5
    assert len(calls) == 4  # the warm-up step and the three timed ones


def test_prints_both_timings_per_k_and_their_agreement(capsys, monkeypatch):
    timed = []  # (logit generator class, seconds per step) of each timing, in order
    time_steps = logits.time_steps

    def recording(model, *args, **kwargs):
        seconds = time_steps(model, *args, **kwargs)
        timed.append((type(model.logit_generator), seconds))
        return seconds

    monkeypatch.setattr(logits, "time_steps", recording)
    assert logits.main(["--model", "tiny", "--k", "5", "--seconds", "1", "--steps", "1", "--threads", "1"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (row,) = figures["rows"]
    # torchaudio's logits timed first, then the same model switched to the matmul ones.
    assert [cls for cls, _ in timed] == [LogitGenerator, MatmulLogitGenerator]
    (_, stock), (_, matmul) = timed
    assert row["k"] == 5 and (row["torchaudio_s_per_step"], row["matmul_s_per_step"]) == (stock, matmul)
    assert row["speedup"] == pytest.approx(stock / matmul)
    assert row["max_logit_difference"] < 1e-4
