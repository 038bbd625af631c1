"""bench logits: both variants timed on the preset's model, their logits in agreement."""

from __future__ import annotations

import json

from espnet_hubert_ae.bench.logits import main


def test_prints_both_timings_per_k_and_their_agreement(capsys):
    assert main(["--model", "tiny", "--k", "5", "--seconds", "1", "--steps", "1", "--threads", "1"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (row,) = figures["rows"]
    assert row["k"] == 5 and row["torchaudio_s_per_step"] > 0 and row["matmul_s_per_step"] > 0
    assert row["max_logit_difference"] < 1e-4
