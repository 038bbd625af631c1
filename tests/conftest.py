"""Shared pytest set-up and test factories (tiny corpora, tiny checkpoints), made by code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPE_DIR = REPO_ROOT / "egs2" / "librilight_ae"

# Two cores are shared by every test process: no thread oversubscription, no OpenMP spinning.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def recipe_dir() -> Path:
    return RECIPE_DIR


@pytest.fixture
def recipe_copy(tmp_path):
    """Factory: a recipe directory of its own, ``tmp_path/recipe`` (data/, dump/, exp/ land there).

    run.sh, its scripts and local/ link to the repository's; conf/ too, or is copied with
    ``copy_conf=True`` so that a test can add configs to it.
    """
    import shutil

    def make(copy_conf: bool = False) -> Path:
        recipe = tmp_path / "recipe"
        recipe.mkdir()
        for name in ("run.sh", "db.sh", "cmd.sh", "path.sh", "local"):
            (recipe / name).symlink_to((RECIPE_DIR / name).resolve())
        if copy_conf:
            shutil.copytree(RECIPE_DIR / "conf", recipe / "conf", symlinks=True)
        else:
            (recipe / "conf").symlink_to((RECIPE_DIR / "conf").resolve())
        return recipe

    return make


# --- Tiny LibriSpeech / Libri-light trees (flac files written by soundfile) ---------------


def _write_test_audio(path, seconds, *, samplerate=16000, channels=1, seed=0, fmt=None):
    """Write a short noisy tone (16-bit) to ``path``; format from the suffix unless ``fmt``."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    n = max(1, int(round(seconds * samplerate)))
    t = np.arange(n) / samplerate
    mono = 0.3 * np.sin(2 * np.pi * (150 + 10 * seed) * t) + 0.01 * rng.standard_normal(n)
    data = mono if channels == 1 else np.stack([mono] * channels, axis=1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data.astype("float32"), samplerate, format=fmt, subtype="PCM_16")
    return Path(path)


def _write_chapter(split_dir, speaker, chapter, texts, *, seconds=0.6):
    """One ``<spk>/<chapter>/`` folder in LibriSpeech layout; returns the utterance ids."""
    folder = Path(split_dir) / str(speaker) / str(chapter)
    ids = [f"{speaker}-{chapter}-{i:04d}" for i in range(len(texts))]
    for i, utt in enumerate(ids):
        _write_test_audio(folder / f"{utt}.flac", seconds + 0.1 * i, seed=i)
    lines = "".join(f"{utt} {text}\n" for utt, text in zip(ids, texts))
    (folder / f"{speaker}-{chapter}.trans.txt").write_text(lines)
    return ids


@pytest.fixture
def write_test_audio():
    """Factory: ``write_test_audio(path, seconds, samplerate=, channels=, seed=)``."""
    return _write_test_audio


@pytest.fixture
def libri_corpora(tmp_path):
    """Tiny LibriSpeech, Libri-light limited and Libri-light unlabelled trees.

    Returns a dict with ``librispeech`` (root with train-clean-100 and the dev/test splits),
    ``limited`` (the ``librispeech_finetuning`` folder) and ``unlab`` (the folder holding
    ``small/``), plus ``write_chapter`` to add more LibriSpeech-layout folders.
    """
    import json

    ls = tmp_path / "LibriSpeech"
    texts = ["HELLO WORLD", "A SHORT LINE", "THE END"]
    _write_chapter(ls / "train-clean-100", 19, 198, texts)
    _write_chapter(ls / "train-clean-100", 19, 227, texts[:2])
    _write_chapter(ls / "train-clean-100", 26, 495, texts[:2])
    for k, split in enumerate(["dev-clean", "dev-other", "test-clean", "test-other"]):
        _write_chapter(ls / split, 100 + k, 2000 + k, texts[:2])
        _write_chapter(ls / split, 200 + k, 3000 + k, texts[:1])
    limited = tmp_path / "librispeech_finetuning"
    for fold in range(6):
        for j, kind in enumerate(["clean", "other"]):
            _write_chapter(limited / "1h" / str(fold) / kind, 1000 + 10 * fold + j, 50 + fold, texts[:1])
    for j, kind in enumerate(["clean", "other"]):
        _write_chapter(limited / "9h" / kind, 2000 + j, 70, texts[:2])
    unlab = tmp_path / "librilight"
    book = unlab / "small" / "500" / "my_book_64kb_mp3"
    _write_test_audio(book / "01_part.flac", 5.0, seed=3)
    (book / "01_part.json").write_text(json.dumps({"voice_activity": [[0.2, 1.5], [1.7, 2.9], [3.5, 4.8]]}))
    _write_test_audio(book / "02_part.flac", 3.0, seed=4)
    (book / "02_part.json").write_text(json.dumps({"voice_activity": [[0.1, 2.9]], "snr": 10.0}))
    return {"librispeech": ls, "limited": limited, "unlab": unlab, "write_chapter": _write_chapter}


# --- Tiny ESPnet HuBERT pretraining checkpoint -----------------------------------------------


@pytest.fixture(scope="session")
def tiny_hubert_checkpoint(tmp_path_factory) -> Path:
    """A seeded, randomly initialised ESPnet HuBERT checkpoint (``model.pth``, config.yaml beside).

    2 transformer layers, 64-d, a 3-layer conv stack with HuBERT Base's frame arithmetic (400-
    sample receptive field, 320-sample hop); see ``espnet_hubert_ae.model.factory``.
    Read-only: copy it before changing anything.
    """
    from espnet_hubert_ae.model.factory import write_random_checkpoint

    return write_random_checkpoint(tmp_path_factory.mktemp("tiny_hubert"), seed=1)


@pytest.fixture(scope="session")
def logmel_hubert_checkpoint(tmp_path_factory) -> Path:
    """The same tiny transformer on the log-mel front end (``torchaudio_hubert_logmel``, two
    25 ms / 10 ms frames stacked: HuBERT Base's frame grid). Read-only."""
    from espnet_hubert_ae.model.factory import write_random_checkpoint
    from espnet_hubert_ae.model.hubert import LOGMEL_ENCODER_NAME

    return write_random_checkpoint(tmp_path_factory.mktemp("logmel_hubert"), seed=1, encoder=LOGMEL_ENCODER_NAME)


@pytest.fixture(scope="session", params=["waveform", "logmel"])
def hubert_checkpoint(request) -> Path:
    """A tiny checkpoint of each model family in turn (conv extractor, log-mel front end)."""
    name = "tiny_hubert_checkpoint" if request.param == "waveform" else "logmel_hubert_checkpoint"
    return request.getfixturevalue(name)


@pytest.fixture(scope="session")
def builtin_corpus(tmp_path_factory) -> dict[str, Path]:
    """A tiny built-in corpus (seed 1, ~1.5 min in train_pretrain, 12 utterances per dev/test set).

    Returns set name -> data dir for the eight sets; the audio lies under the same temporary root.
    """
    from espnet_hubert_ae.data.builtin import prepare_builtin

    root = tmp_path_factory.mktemp("builtin_corpus")
    return prepare_builtin(root / "data", minutes=1.5, seed=1, nj=1, audio_dir=root / "audio", eval_min_utterances=12)
