"""Kaldi-style data directories, the currency between all stages.

A data directory ``data/<set>/`` holds, one line per utterance and sorted by utterance id
(C locale):

- ``wav.scp``          ``<utt> <audio path>`` (16 kHz mono wav or flac)
- ``text``             ``<utt> <TRANSCRIPT>`` (absent for unlabelled sets)
- ``utt2spk``          ``<utt> <speaker>``
- ``spk2utt``          ``<speaker> <utt> <utt> ...``
- ``utt2num_samples``  ``<utt> <number of samples>``
- ``phones.ctm`` / ``words.ctm`` (optional) ``<utt> 1 <start> <dur> <label>``, seconds
- ``excluded.tsv``     utterances left out and why (``<utt>\\t<file>\\t<reason>``)

Directories are written whole and atomically, so a reader never sees a partial one.
"""

from __future__ import annotations

import dataclasses
import os
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from espnet_hubert_ae.utils.fileio import atomic_dir

SAMPLE_RATE = 16000
SILENCE = "SIL"  # label of the silence segments that make phone CTMs cover whole utterances


class DataDirError(ValueError):
    """A data directory, or an utterance going into one, is malformed."""


@dataclasses.dataclass(frozen=True)
class Utterance:
    utt_id: str
    audio: str
    speaker: str
    num_samples: int
    text: str | None = None

    @property
    def seconds(self) -> float:
        return self.num_samples / SAMPLE_RATE


@dataclasses.dataclass(frozen=True)
class Segment:
    """One CTM line: a labelled span of an utterance, in seconds."""

    utt_id: str
    start: float
    duration: float
    label: str

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclasses.dataclass(frozen=True)
class Excluded:
    """An utterance left out of a data directory, and why."""

    utt_id: str
    file: str
    reason: str


def _check_token(value: str, what: str, utt_id: str) -> None:
    if not value or any(c.isspace() for c in value):
        raise DataDirError(f"utterance {utt_id!r}: {what} {value!r} must be non-empty and contain no whitespace")


def write_datadir(
    path: str | os.PathLike,
    utterances: Iterable[Utterance],
    *,
    phones: Iterable[Segment] | None = None,
    words: Iterable[Segment] | None = None,
    excluded: Iterable[Excluded] = (),
) -> Path:
    """Write a complete data directory atomically (replacing any previous one)."""
    path = Path(path)
    utts = sorted(utterances, key=lambda u: u.utt_id.encode())
    seen: set[str] = set()
    for u in utts:
        _check_token(u.utt_id, "utterance id", u.utt_id)
        _check_token(u.speaker, "speaker id", u.utt_id)
        if u.utt_id in seen:
            raise DataDirError(f"{path}: duplicated utterance id {u.utt_id!r}")
        seen.add(u.utt_id)
        if u.num_samples <= 0:
            raise DataDirError(f"{path}: utterance {u.utt_id!r} has {u.num_samples} samples")
    labelled = [u.text is not None for u in utts]
    if any(labelled) and not all(labelled):
        missing = next(u.utt_id for u in utts if u.text is None)
        raise DataDirError(f"{path}: some utterances have a transcript and some do not (e.g. {missing!r})")

    with atomic_dir(path) as tmp:
        _write_lines(tmp / "wav.scp", (f"{u.utt_id} {u.audio}" for u in utts))
        _write_lines(tmp / "utt2spk", (f"{u.utt_id} {u.speaker}" for u in utts))
        _write_lines(tmp / "utt2num_samples", (f"{u.utt_id} {u.num_samples}" for u in utts))
        spk2utt = spk2utt_of(utts)
        _write_lines(tmp / "spk2utt", (f"{s} {' '.join(ids)}" for s, ids in sorted(spk2utt.items())))
        if utts and all(labelled):
            _write_lines(tmp / "text", (f"{u.utt_id} {u.text}" for u in utts))
        for name, segments in (("phones.ctm", phones), ("words.ctm", words)):
            if segments is not None:
                write_ctm(tmp / name, segments)
        _write_lines(tmp / "excluded.tsv", (f"{e.utt_id}\t{e.file}\t{e.reason}" for e in excluded))
    return path


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")


def read_table(path: str | os.PathLike) -> dict[str, str]:
    """Read ``<key> <value...>`` lines; errors name the file and line."""
    table: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            key, _, value = line.partition(" ")
            if key in table:
                raise DataDirError(f"{path}:{lineno}: duplicated key {key!r}")
            table[key] = value.strip()
    return table


def read_datadir(path: str | os.PathLike) -> list[Utterance]:
    """Read and cross-check a data directory; returns its utterances sorted by id."""
    path = Path(path)
    if not (path / "wav.scp").is_file():
        raise DataDirError(f"{path}: not a data directory (no wav.scp); run the data stage first")
    wavs = read_table(path / "wav.scp")
    spk = read_table(path / "utt2spk")
    samples = read_table(path / "utt2num_samples")
    text = read_table(path / "text") if (path / "text").is_file() else None
    for name, table in (("utt2spk", spk), ("utt2num_samples", samples), ("text", text)):
        if table is not None and table.keys() != wavs.keys():
            odd = sorted(table.keys() ^ wavs.keys())[:3]
            raise DataDirError(f"{path}/{name} and wav.scp list different utterances (e.g. {odd})")
    utts = []
    for utt_id, audio in wavs.items():
        try:
            num_samples = int(samples[utt_id])
        except ValueError:
            raise DataDirError(f"{path}/utt2num_samples: {utt_id!r} has {samples[utt_id]!r}, not an integer") from None
        utts.append(Utterance(utt_id, audio, spk[utt_id], num_samples, None if text is None else text[utt_id]))
    return sorted(utts, key=lambda u: u.utt_id.encode())


def write_ctm(path: str | os.PathLike, segments: Iterable[Segment]) -> None:
    ordered = sorted(segments, key=lambda s: (s.utt_id.encode(), s.start))
    _write_lines(Path(path), (f"{s.utt_id} 1 {s.start:.3f} {s.duration:.3f} {s.label}" for s in ordered))


def read_ctm(path: str | os.PathLike) -> dict[str, list[Segment]]:
    """Read a CTM file into time-ordered segments per utterance."""
    path = Path(path)
    if not path.is_file():
        raise DataDirError(
            f"{path} is missing: alignments come from stage 3 (built-in corpus: stage 1; "
            "LibriSpeech: set LIBRISPEECH_ALIGNMENTS in db.sh to Montreal-Forced-Aligner TextGrids)"
        )
    by_utt: dict[str, list[Segment]] = defaultdict(list)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 5:
                raise DataDirError(f"{path}:{lineno}: expected '<utt> 1 <start> <dur> <label>', got {line.strip()!r}")
            try:
                start, duration = float(fields[2]), float(fields[3])
            except ValueError:
                raise DataDirError(f"{path}:{lineno}: start/duration are not numbers: {line.strip()!r}") from None
            by_utt[fields[0]].append(Segment(fields[0], start, duration, fields[4]))
    return {utt: sorted(segs, key=lambda s: s.start) for utt, segs in by_utt.items()}


def spk2utt_of(utterances: Sequence[Utterance]) -> Mapping[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for u in utterances:
        groups[u.speaker].append(u.utt_id)
    return groups
