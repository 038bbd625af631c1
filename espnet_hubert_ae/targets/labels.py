"""Frame labels in the form ESPnet's HubertTask reads, checked against the model's frame count.

ESPnet reads HuBERT targets as a transcript: a data-dir style ``text`` file of
``<utt> <id> <id> ...`` lines (one id per 50 Hz frame), tokenised with ``token_type: word``
against ``token_list: tokens.txt``. The token list maps each id to its line number, and
ESPnet's tokeniser insists on an ``<unk>`` entry, so ``tokens.txt`` lists ``0 .. K-1`` in
order (line number == cluster id) and then ``<unk>``, which no label uses.

MFCC labels are computed at 100 Hz and halved by taking every second one, as in fairseq.
Kaldi's framing and the conv stack's framing may then differ by one frame at the end of an
utterance; such a label sequence is trimmed (or its last label repeated) to the model's count.
A larger difference means the labels belong to other audio and is an error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from espnet_hubert_ae.targets.sources import TargetError
from espnet_hubert_ae.utils.fileio import atomic_open

UNK = "<unk>"


class LabelLengthError(TargetError):
    """An utterance's label count is off from its audio's frame count by more than one."""


def downsample(labels: np.ndarray, step: int) -> np.ndarray:
    """Every ``step``-th label, starting with the first (100 Hz MFCC labels -> 50 Hz: step 2)."""
    return labels[::step]


def fit_label_count(labels: np.ndarray, expected: int, utt_id: str, where: str = "") -> np.ndarray:
    """``labels`` made exactly ``expected`` long when off by at most one frame; error otherwise."""
    diff = len(labels) - expected
    if abs(diff) > 1 or (diff == -1 and len(labels) == 0):
        place = f" in {where}" if where else ""
        raise LabelLengthError(
            f"utterance {utt_id!r}{place}: {len(labels)} labels but its audio makes {expected} frames "
            "(labels and audio do not match)"
        )
    if diff == 1:
        return labels[:expected]
    if diff == -1:
        return np.concatenate([labels, labels[-1:]])
    return labels


def format_label_line(utt_id: str, labels: np.ndarray) -> str:
    return f"{utt_id} {' '.join(map(str, labels.tolist()))}\n"


def write_label_text(path: str | os.PathLike, items: Iterable[tuple[str, np.ndarray]]) -> None:
    """Write ``<utt> <id> <id> ...`` lines atomically (``items`` in the order to write)."""
    with atomic_open(path) as f:
        for utt_id, labels in items:
            f.write(format_label_line(utt_id, labels))


def read_label_text(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Labels per utterance from a ``text`` file; errors name the file and line."""
    labels: dict[str, np.ndarray] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                labels[fields[0]] = np.array([int(v) for v in fields[1:]], dtype=np.int64)
            except ValueError:
                raise TargetError(f"{path}:{lineno}: labels must be integers") from None
    return labels


def write_tokens(path: str | os.PathLike, k: int) -> None:
    """ESPnet token list for K clusters: ``0 .. K-1`` then ``<unk>``."""
    with atomic_open(path) as f:
        f.write("".join(f"{i}\n" for i in range(k)) + f"{UNK}\n")


def check_label_counts(
    path: str | os.PathLike,
    num_samples: Mapping[str, int],
    expected_frames: Callable[[int], int],
    exact: bool = False,
) -> int:
    """Check every utterance of a label file against its audio; returns the utterance count.

    Raises :class:`LabelLengthError` naming the first utterance whose label count differs from
    ``expected_frames(num_samples)`` by more than one (by anything when ``exact``), and
    :class:`TargetError` when the label file and the audio list different utterances.
    """
    labels = read_label_text(path)
    if labels.keys() != num_samples.keys():
        odd = sorted(labels.keys() ^ num_samples.keys())[:3]
        raise TargetError(f"{path}: labels and audio list different utterances (e.g. {odd})")
    for utt_id, ids in labels.items():
        expected = expected_frames(num_samples[utt_id])
        if exact and len(ids) != expected:
            raise LabelLengthError(f"utterance {utt_id!r} in {path}: {len(ids)} labels, expected exactly {expected}")
        fit_label_count(ids, expected, utt_id, str(path))
    return len(labels)
