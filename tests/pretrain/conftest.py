"""Fixtures of the pretraining tests: tiny data sets and a fast stand-in for the targets stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from espnet_hubert_ae.model.hubert import frame_counter
from espnet_hubert_ae.pretrain.runner import Labels

SAMPLE_RATE = 16000


def write_noise_set(directory: Path, count: int, seed: int) -> Path:
    """A data directory (wav.scp, utt2spk, utt2num_samples) of ``count`` 1-2 s noise utterances."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    scp, samples, speakers = [], [], []
    for i in range(count):
        utt = f"{directory.name}-{i:03d}"
        n = int(rng.integers(SAMPLE_RATE, 2 * SAMPLE_RATE))
        path = directory / "wav" / f"{utt}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, (0.1 * rng.standard_normal(n)).astype("float32"), SAMPLE_RATE)
        scp.append(f"{utt} {path}\n")
        samples.append(f"{utt} {n}\n")
        speakers.append(f"{utt} {directory.name}\n")
    (directory / "wav.scp").write_text("".join(scp))
    (directory / "utt2num_samples").write_text("".join(samples))
    (directory / "utt2spk").write_text("".join(speakers))
    return directory


@pytest.fixture(scope="session")
def noise_sets(tmp_path_factory) -> dict[str, Path]:
    """A 16-utterance training set and a 3-utterance validation set of noise."""
    root = tmp_path_factory.mktemp("pretrain_data")
    return {"train": write_noise_set(root / "train", 16, seed=1), "valid": write_noise_set(root / "valid", 3, seed=2)}


def random_labels(job, strategy, plan, source_checkpoint, train_config) -> Labels:
    """Seeded random labels with the model's frame count: the runner's contract without k-means."""
    frames = frame_counter(train_config)
    out = Path(job.targets_root) / f"{strategy}_p{plan.index}_k{plan.k}"
    rng = np.random.default_rng(plan.index)
    texts = {}
    for name in (job.train_set, job.valid_set):
        lines = []
        for line in (Path(job.sets[name]) / "utt2num_samples").read_text().splitlines():
            utt, n = line.split()
            lines.append(utt + " " + " ".join(map(str, rng.integers(0, plan.k, frames(int(n))))) + "\n")
        texts[name] = out / name / "text"
        texts[name].parent.mkdir(parents=True, exist_ok=True)
        texts[name].write_text("".join(lines))
    tokens = out / "tokens.txt"
    tokens.write_text("".join(f"{i}\n" for i in range(plan.k)) + "<unk>\n")
    source = "mfcc" if plan.layer is None else {"layer": plan.layer, "checkpoint": str(source_checkpoint)}
    return Labels(texts, tokens, plan.k, {"source": source, "seconds": {"features": 0.0, "kmeans": 0.0}})


@pytest.fixture
def label_maker():
    """The runner's ``make_labels`` stand-in (see ``random_labels``)."""
    return random_labels
