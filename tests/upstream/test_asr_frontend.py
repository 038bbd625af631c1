"""A stock ESPnet ASR training with ``frontend: s3prl`` on ``hubert_ae_local``, in a fresh process.

The training process is plain ``python -m espnet2.bin.asr_train``: it never imports this package
by itself; the upstream name reaches s3prl's hub through the start-up hook. The checkpoint is
given by its registered name, so the registry lookup is exercised too. One epoch on four
utterances of the built-in corpus (or synthetic tones while that corpus is unavailable).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from espnet_hubert_ae.bin import upstreams as cli
from espnet_hubert_ae.data.datadir import SAMPLE_RATE, Utterance, read_datadir
from espnet_hubert_ae.upstream.registry import REGISTRY_ENV

UPSTREAM_NAME = "tiny/p1/step10"


def _tone_utterances(directory: Path, count: int) -> list[Utterance]:
    """Short synthetic utterances (tones) with text, for when the built-in corpus is missing."""
    directory.mkdir(parents=True, exist_ok=True)
    texts = ["a cat sat", "the dog ran", "we can go", "it is on"]
    utts = []
    for i in range(count):
        samples = int(SAMPLE_RATE * (0.8 + 0.2 * i))
        t = np.arange(samples) / SAMPLE_RATE
        audio = (0.2 * np.sin(2 * math.pi * (200 + 50 * i) * t) * 32767).astype(np.int16)
        path = directory / f"tone{i}.wav"
        with wave.open(str(path), "wb") as f:
            f.setnchannels(1), f.setsampwidth(2), f.setframerate(SAMPLE_RATE), f.writeframes(audio.tobytes())
        utts.append(Utterance(f"tone{i}", str(path), "spk", samples, texts[i % len(texts)]))
    return utts


@pytest.fixture
def asr_utterances(request, tmp_path) -> list[Utterance]:
    try:
        corpus = request.getfixturevalue("builtin_corpus")
    except pytest.FixtureLookupError:
        return _tone_utterances(tmp_path / "audio", 4)
    utts = [u for u in read_datadir(corpus.get("dev_clean") or next(iter(corpus.values()))) if u.text]
    return sorted(utts, key=lambda u: u.num_samples)[:4]


def _write_espnet_inputs(directory: Path, utts: list[Utterance]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "wav.scp").write_text("".join(f"{u.utt_id} {u.audio}\n" for u in utts))
    (directory / "text").write_text("".join(f"{u.utt_id} {u.text}\n" for u in utts))
    (directory / "speech_shape").write_text("".join(f"{u.utt_id} {u.num_samples}\n" for u in utts))
    chars = sorted({c for u in utts for c in u.text if c != " "})
    tokens = ["<blank>", "<unk>", "<space>", *chars, "<sos/eos>"]  # ESPnet's char tokens
    (directory / "tokens.txt").write_text("\n".join(tokens) + "\n")


def _asr_config(upstream: str) -> dict:
    """A tiny CTC model on the s3prl frontend: the config a user would copy (frontend part)."""
    return {
        "frontend": "s3prl",
        "frontend_conf": {
            "frontend_conf": {"upstream": "hubert_ae_local", "path_or_url": upstream},
            "multilayer_feature": True,
        },
        "freeze_param": ["frontend.upstream"],
        "normalize": "utterance_mvn",
        "encoder": "transformer",
        "encoder_conf": {"output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 1,
                         "input_layer": "linear", "dropout_rate": 0.0},
        "model_conf": {"ctc_weight": 1.0},
        "optim": "adam",
        "optim_conf": {"lr": 0.001},
        "batch_type": "unsorted",
        "batch_size": 2,
        "max_epoch": 1,
        "num_att_plot": 0,
        "num_workers": 0,
    }


def _register(checkpoint: Path, expdir: Path) -> None:
    (expdir / "pretrain" / "tiny").mkdir(parents=True)
    (expdir / "pretrain" / "tiny" / "checkpoints.json").write_text(
        f'[{{"path": "{checkpoint}", "strategy": "tiny", "phase": 1, "global_step": 10}}]')
    assert cli.main(["register", "--expdir", str(expdir)]) == 0


def test_stock_asr_train_with_hubert_ae_local_frontend(tmp_path, asr_utterances, hubert_checkpoint):
    """Each model family as the frontend of stock ESPnet ASR training, in a fresh process."""
    torch.set_num_threads(1)
    _register(hubert_checkpoint, tmp_path / "exp")
    data = tmp_path / "data"
    _write_espnet_inputs(data, asr_utterances)
    (tmp_path / "asr.yaml").write_text(yaml.safe_dump(_asr_config(UPSTREAM_NAME)))
    out = tmp_path / "asr_out"
    command = [
        sys.executable, "-m", "espnet2.bin.asr_train", "--config", "asr.yaml", "--output_dir", str(out),
        "--ngpu", "0", "--use_preprocessor", "true", "--token_type", "char",
        "--token_list", str(data / "tokens.txt"), "--resume", "false", "--use_tensorboard", "false",
    ]
    for split in ("train", "valid"):
        command += [f"--{split}_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
                    f"--{split}_data_path_and_name_and_type", f"{data}/text,text,text",
                    f"--{split}_shape_file", str(data / "speech_shape")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
           REGISTRY_ENV: str(tmp_path / "exp" / "upstreams.json")}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    state = torch.load(out / "1epoch.pth", map_location="cpu")
    assert state["frontend.featurizer.weights"].shape == (3,)  # one weight per hidden state
    assert any(k.startswith("frontend.upstream.upstream.model.") for k in state)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["frontend_conf"]["frontend_conf"]["upstream"] == "hubert_ae_local"
