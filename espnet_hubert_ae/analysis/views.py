"""The views a layer is compared with: log-mel frames, phone and word identity, word embeddings.

Layer frames are at 50 Hz: frame t sees samples [320 t, 320 t + 400), so its centre lies at
``t * 0.02 + 0.0125`` s. A frame belongs to a CTM segment when its centre falls inside it.

- mel view: 80-d log-mel (25 ms / 10 ms Kaldi filterbank), every second frame (50 Hz), trimmed
  with the layer frames to the shorter of the two.
- phone view: one-hot phone vs the layer's mean over the middle third (in time) of the phone.
- word view: one-hot word vs the layer's mean over the whole word.
- semantic view: the word's embedding (GloVe text format) vs the same word means.

Instances are sampled per label before any feature is computed, from the CTMs alone, so the
features of an utterance can be pooled and dropped as soon as they are computed.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from espnet_hubert_ae.analysis import AnalysisError
from espnet_hubert_ae.data.datadir import SAMPLE_RATE, SILENCE, Segment
from espnet_hubert_ae.model.frames import FRAME_CENTRE, FRAME_SHIFT

logger = logging.getLogger(__name__)

NUM_MEL_BINS = 80
# Layer and mel frame counts may differ by the edge frames only; more means misalignment.
MAX_FRAME_MISMATCH = 2


# --- mel view --------------------------------------------------------------------------------


def log_mel_50hz(wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """80-d log-mel frames (25 ms windows, 10 ms shift), every second frame: (frames, 80) at 50 Hz."""
    import torch
    from torchaudio.compliance import kaldi

    if sample_rate != SAMPLE_RATE:
        raise AnalysisError(f"audio must be {SAMPLE_RATE} Hz for the mel view, got {sample_rate} Hz")
    waveform = torch.as_tensor(np.asarray(wav, dtype=np.float32)).reshape(1, -1)
    if waveform.shape[1] < 400:
        return np.zeros((0, NUM_MEL_BINS), dtype=np.float32)
    fbank = kaldi.fbank(
        waveform * 32768.0,  # Kaldi's scale: 16-bit integer range
        num_mel_bins=NUM_MEL_BINS,
        frame_length=25.0,
        frame_shift=10.0,
        dither=0.0,
        sample_frequency=SAMPLE_RATE,
    )
    return fbank[::2].numpy()


def align_frames(layer: np.ndarray, mel: np.ndarray, utt_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Trim a layer's frames and the 50 Hz mel frames to the shorter; fail if they disagree."""
    if abs(len(layer) - len(mel)) > MAX_FRAME_MISMATCH:
        raise AnalysisError(
            f"utterance {utt_id!r}: {len(layer)} layer frames but {len(mel)} mel frames at 50 Hz; "
            "the model's frame rate is not 50 Hz or the audio does not match utt2num_samples"
        )
    n = min(len(layer), len(mel))
    return layer[:n], mel[:n]


# --- segments and pooling --------------------------------------------------------------------


def frame_range(start: float, end: float, num_frames: int) -> tuple[int, int]:
    """Frames [lo, hi) whose centres lie in [start, end); the nearest frame if none does."""
    lo = max(0, math.ceil((start - FRAME_CENTRE) / FRAME_SHIFT - 1e-9))
    hi = min(num_frames, math.ceil((end - FRAME_CENTRE) / FRAME_SHIFT - 1e-9))
    if hi > lo:
        return lo, hi
    nearest = round(((start + end) / 2 - FRAME_CENTRE) / FRAME_SHIFT)
    nearest = min(max(nearest, 0), num_frames - 1)
    return nearest, nearest + 1


def middle_third(segment: Segment) -> tuple[float, float]:
    third = segment.duration / 3
    return segment.start + third, segment.end - third


def pool_span(frames: np.ndarray, start: float, end: float) -> np.ndarray:
    """Mean of the frames whose centres lie in [start, end) (nearest frame for a short span)."""
    lo, hi = frame_range(start, end, len(frames))
    return frames[lo:hi].mean(axis=0)


# --- instance sampling -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Sampling:
    """How many labels and instances per label a view uses.

    ``num_labels`` None keeps every label; otherwise the most frequent ones. Each label keeps at
    most ``per_label`` instances and needs at least ``min_per_label`` (one per fold of the
    protocol). With ``strict`` (phones: the inventory is the label set) a chosen label below
    that minimum is an error; otherwise (words: there are always rare ones) only labels with
    enough instances are candidates, and fewer labels than asked is a warning.
    """

    num_labels: int | None
    per_label: int
    min_per_label: int
    strict: bool = True


@dataclasses.dataclass(frozen=True)
class Instances:
    """Sampled segments of one view, grouped by utterance; ``labels[row]`` is the label of a row."""

    view: str
    by_utt: Mapping[str, list[Segment]]
    rows: Mapping[str, list[int]]  # row of each of by_utt[utt] in the instance matrix
    labels: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def rows_of(self, utt_id: str) -> list[int]:
        return self.rows.get(utt_id, [])

    @property
    def label_set(self) -> list[str]:
        return sorted(set(self.labels))


def sample_instances(
    ctm: Mapping[str, Sequence[Segment]],
    utt_ids: Iterable[str],
    sampling: Sampling,
    *,
    view: str,
    option: str,
    seed: int = 0,
    exclude: Iterable[str] = (SILENCE,),
    keep: Iterable[str] | None = None,
) -> Instances:
    """Choose the labels and the instances of a view from a CTM, restricted to ``utt_ids``.

    ``option`` names the command-line option that sets the number of labels, for the error
    raised when labels have too few instances. ``keep`` restricts the candidate labels.
    """
    utt_ids = list(utt_ids)
    excluded = set(exclude)
    allowed = None if keep is None else set(keep)
    candidates: dict[str, list[Segment]] = defaultdict(list)
    for utt in utt_ids:
        for seg in ctm.get(utt, ()):
            if seg.label in excluded or (allowed is not None and seg.label not in allowed):
                continue
            candidates[seg.label].append(seg)
    if not candidates:
        raise AnalysisError(f"{view} view: the alignments hold no {view} segments for the {len(utt_ids)} utterances analysed")

    counts = Counter({label: len(segs) for label, segs in candidates.items()})
    ranked = sorted(counts, key=lambda label: (-counts[label], label))
    if not sampling.strict:
        rare = [label for label in ranked if counts[label] < sampling.min_per_label]
        if rare:
            logger.info("%s view: %d labels have fewer than %d instances and are left out (e.g. %s)",
                        view, len(rare), sampling.min_per_label, ", ".join(rare[-5:]))
        ranked = [label for label in ranked if counts[label] >= sampling.min_per_label]
        if len(ranked) < 2:
            raise AnalysisError(
                f"{view} view: CCA needs at least 2 labels with {sampling.min_per_label} instances or more "
                f"(one per fold), the {len(utt_ids)} utterances analysed have {len(ranked)}; "
                "analyse more utterances or use a larger data set"
            )
    chosen = ranked if sampling.num_labels is None else ranked[: sampling.num_labels]
    too_few = [label for label in chosen if counts[label] < sampling.min_per_label]
    if too_few:
        usable = sum(1 for label in ranked if counts[label] >= sampling.min_per_label)
        shown = ", ".join(f"{label} ({counts[label]})" for label in too_few[:10])
        more = f" and {len(too_few) - 10} more" if len(too_few) > 10 else ""
        raise AnalysisError(
            f"{view} view: {len(too_few)} of the {len(chosen)} labels have fewer than the "
            f"{sampling.min_per_label} instances the protocol needs (one per fold): {shown}{more}. "
            f"Only {usable} labels have enough: pass {option} {usable} (or fewer) to keep the most frequent, "
            "--rare_phones drop to leave the rare ones out, analyse more utterances, or use a larger data set"
        )
    if len(chosen) < 2:
        raise AnalysisError(f"{view} view: CCA needs at least 2 labels, the data has {len(chosen)}")
    if sampling.num_labels is not None and len(chosen) < sampling.num_labels:
        logger.warning("%s view: only %d labels have %d instances or more, fewer than the %d asked for",
                       view, len(chosen), sampling.min_per_label, sampling.num_labels)

    rng = np.random.default_rng(seed)
    picked: list[Segment] = []
    for label in sorted(chosen):
        segs = candidates[label]
        if len(segs) > sampling.per_label:
            idx = np.sort(rng.choice(len(segs), size=sampling.per_label, replace=False))
            segs = [segs[i] for i in idx]
        picked.extend(segs)
    return _group_instances(view, picked, utt_ids)


def _group_instances(view: str, picked: list[Segment], utt_ids: Sequence[str]) -> Instances:
    rank = {utt: i for i, utt in enumerate(utt_ids)}
    picked.sort(key=lambda s: (rank[s.utt_id], s.start))
    by_utt: dict[str, list[Segment]] = defaultdict(list)
    rows: dict[str, list[int]] = defaultdict(list)
    for row, seg in enumerate(picked):
        by_utt[seg.utt_id].append(seg)
        rows[seg.utt_id].append(row)
    return Instances(view, dict(by_utt), dict(rows), [seg.label for seg in picked])


def one_hot(labels: Sequence[str]) -> np.ndarray:
    """One-hot rows over the sorted label set."""
    classes = {label: i for i, label in enumerate(sorted(set(labels)))}
    out = np.zeros((len(labels), len(classes)), dtype=np.float64)
    out[np.arange(len(labels)), [classes[label] for label in labels]] = 1.0
    return out


# --- word embeddings -------------------------------------------------------------------------


def normalise_word(word: str) -> str:
    """Words are matched to embeddings case-insensitively (CTMs are upper case, GloVe lower)."""
    return word.lower()


def read_word_embeddings(
    path: str | os.PathLike,
    vocabulary: Iterable[str],
    expected_dim: int | None = None,
) -> dict[str, np.ndarray]:
    """Vectors of the ``vocabulary`` words from a GloVe-format text file (``word v1 ... vD``).

    Keys are the vocabulary's own spelling. Raises when the file is missing, its vectors do
    not all have the same (or the expected) dimension, or it shares no word with the vocabulary.
    """
    path = Path(path)
    if not path.is_file():
        raise AnalysisError(f"word-embedding file {path} does not exist (GloVe text format: '<word> <v1> ... <vD>' per line)")
    wanted: dict[str, list[str]] = defaultdict(list)
    for word in vocabulary:
        wanted[normalise_word(word)].append(word)
    found: dict[str, np.ndarray] = {}
    dim = expected_dim
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.rstrip("\n").rstrip().split(" ")
            if len(fields) < 2:
                continue
            if dim is None:
                dim = len(fields) - 1
            if len(fields) - 1 != dim:
                how = "the expected" if expected_dim is not None else "the first line's"
                raise AnalysisError(
                    f"{path}:{lineno}: vector of dimension {len(fields) - 1}, but {how} is {dim}; "
                    "the file must be GloVe text format, one '<word> <v1> ... <vD>' per line"
                    + ("" if expected_dim is None else " (or fix --word_embedding_dim)")
                )
            key = normalise_word(fields[0])
            if key in wanted and key not in found:
                try:
                    found[key] = np.asarray(fields[1:], dtype=np.float64)
                except ValueError:
                    raise AnalysisError(f"{path}:{lineno}: the vector of {fields[0]!r} holds non-numbers") from None
    if not found:
        sample = ", ".join(sorted(wanted)[:5])
        raise AnalysisError(
            f"{path} has no vector for any of the {len(wanted)} words analysed (e.g. {sample}); "
            "use embeddings of the corpus language in GloVe text format"
        )
    return {word: found[key] for key, words in wanted.items() if key in found for word in words}
