"""Fixtures of the target tests: small data directories of synthetic audio with phone CTMs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from espnet_hubert_ae.data.datadir import Segment, Utterance, write_datadir

PHONES = ("AA", "IY", "S", "SIL")


def write_synthetic_set(root: Path, name: str, num_utts: int, seed: int, datadir: Path | None = None) -> Path:
    """A data dir whose utterances are runs of 0.1 s tones (one pitch per phone) with a CTM.

    Audio goes to ``root/audio``, the data dir to ``datadir`` (default ``root/data/<name>``).
    """
    import soundfile

    rng = np.random.default_rng(seed)
    pitch = {p: 150.0 * (i + 1) for i, p in enumerate(PHONES)}
    utts, segments = [], []
    for i in range(num_utts):
        labels = rng.choice(PHONES, size=int(rng.integers(8, 16)))
        pieces = []
        for j, phone in enumerate(labels):
            t = np.arange(1600) / 16000
            tone = 0.0 if phone == "SIL" else 0.2 * np.sin(2 * np.pi * pitch[phone] * t)
            pieces.append(tone + 0.003 * rng.standard_normal(1600))
            segments.append(Segment(f"{name}-{i:03d}", 0.1 * j, 0.1, str(phone)))
        wav = np.concatenate(pieces + [0.003 * rng.standard_normal(int(rng.integers(0, 800)))])
        path = root / "audio" / f"{name}-{i:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, wav.astype(np.float32), 16000, subtype="PCM_16")
        utts.append(Utterance(f"{name}-{i:03d}", str(path), f"spk{i % 2}", len(wav)))
    return write_datadir(datadir or root / "data" / name, utts, phones=segments)


@pytest.fixture(scope="session")
def synthetic_sets(tmp_path_factory) -> dict[str, Path]:
    """``{"train": datadir, "dev": datadir}``: 8 and 3 utterances of 0.8-1.6 s tone sequences."""
    root = tmp_path_factory.mktemp("synthetic_sets")
    return {"train": write_synthetic_set(root, "train", 8, seed=1), "dev": write_synthetic_set(root, "dev", 3, seed=2)}
