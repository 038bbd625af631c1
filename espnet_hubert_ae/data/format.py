"""Stage 2: checked, length-filtered copies of the data directories, ``data/<set>`` -> ``dump/raw/<set>``.

The pretraining set is first filtered by length (``min_seconds``..``max_seconds``, from
``utt2num_samples``); evaluation and fine-tuning sets never are. Then every remaining audio file
is decoded once (over ``nj`` processes): a file that cannot be decoded, has NaN/inf samples,
or no longer has the length ``utt2num_samples`` records is excluded. Everything excluded, here
or already in stage 1, is listed with its file and reason in ``dump/raw/<set>/excluded.tsv``.
Audio is not copied: ``wav.scp`` keeps pointing at the files stage 1 found (16 kHz mono
flac/wav, which every reader takes as is). Alignments are not copied either: stage 3 writes
them into the formatted set, for its kept utterances only. Each set is written atomically and
marked ``.done`` with its inputs; a set whose inputs did not change is skipped, and one whose
inputs changed is written anew (its alignments then come again from stage 3).
"""

from __future__ import annotations

import collections
import json
import logging
import os
from pathlib import Path
from typing import Sequence

from espnet_hubert_ae.data.audio import AudioError, inspect_many
from espnet_hubert_ae.data.datadir import SAMPLE_RATE, DataDirError, Excluded, Utterance, read_datadir, write_datadir
# The pretraining set's length range (seconds); evaluation and fine-tuning sets are never filtered.
from espnet_hubert_ae.defaults import MAX_SECONDS, MIN_SECONDS, PRETRAIN_SET
from espnet_hubert_ae.utils.fileio import atomic_write_text, done_marker

logger = logging.getLogger(__name__)

# Files whose change means the set must be checked again.
_INPUT_FILES = ("wav.scp", "utt2spk", "utt2num_samples", "text", "excluded.tsv")


class FormatError(ValueError):
    """A data directory cannot be formatted (missing, or nothing usable left in it)."""


def read_excluded(path: str | os.PathLike) -> list[Excluded]:
    """Read an ``excluded.tsv`` (``<utt>\\t<file>\\t<reason>``); a missing file is an empty list."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3:
                raise DataDirError(f"{path}:{lineno}: expected '<utt>\\t<file>\\t<reason>', got {line.strip()!r}")
            rows.append(Excluded(*fields))
    return rows


def length_problem(utt: Utterance, min_seconds: float, max_seconds: float) -> str | None:
    """Why ``utt`` is outside the pretraining length range, or None when it is inside."""
    if utt.seconds < min_seconds:
        return f"{utt.seconds:.2f} s, shorter than min_seconds={min_seconds:g}"
    if utt.seconds > max_seconds:
        return f"{utt.seconds:.2f} s, longer than max_seconds={max_seconds:g}"
    return None


def check_utterances(
    utts: Sequence[Utterance], *, nj: int = 1, desc: str = "decode"
) -> tuple[list[Utterance], list[Excluded]]:
    """Decode every utterance's audio; keep those that decode to their recorded length."""
    counts = inspect_many([u.audio for u in utts], decode=True, nj=nj, desc=desc)
    kept, excluded = [], []
    for utt, count in zip(utts, counts):
        if isinstance(count, AudioError):
            excluded.append(Excluded(utt.utt_id, utt.audio, count.problem))
        elif count != utt.num_samples:
            reason = f"decodes to {count} samples but utt2num_samples says {utt.num_samples} (audio changed since stage 1?)"
            excluded.append(Excluded(utt.utt_id, utt.audio, reason))
        else:
            kept.append(utt)
    return kept, excluded


def _fingerprint(src: Path, length_range: tuple[float, float] | None) -> str:
    stats = {}
    for name in _INPUT_FILES:
        if (src / name).is_file():
            st = (src / name).stat()
            stats[name] = [st.st_size, st.st_mtime_ns]
    return json.dumps({"src": str(src.resolve()), "length_range": length_range, "inputs": stats}, sort_keys=True) + "\n"


def format_set(
    src: Path, dst: Path, *, length_range: tuple[float, float] | None = None, nj: int = 1
) -> Path:
    """Check (and, given ``length_range`` in seconds, filter) one data directory into ``dst``."""
    src, dst = Path(src), Path(dst)
    fingerprint = _fingerprint(src, length_range)
    marker = done_marker(dst)
    if marker.is_file() and marker.read_text(encoding="utf-8") == fingerprint:
        logger.info("%s: already formatted (%s), skipping", dst.name, marker)
        return dst

    utts = read_datadir(src)
    in_range, excluded = _filter_length(utts, length_range)
    kept, bad_audio = check_utterances(in_range, nj=nj, desc=f"decode {src.name}")
    excluded += bad_audio
    if not kept:
        examples = "; ".join(f"{e.utt_id}: {e.reason}" for e in excluded[:5]) or "the set is empty"
        raise FormatError(f"{src}: no utterance left to write to {dst} ({len(excluded)} excluded, e.g. {examples})")

    write_datadir(dst, kept, excluded=read_excluded(src / "excluded.tsv") + excluded)
    atomic_write_text(marker, fingerprint)
    _log_result(dst, len(utts), kept, excluded)
    return dst


def _filter_length(
    utts: Sequence[Utterance], length_range: tuple[float, float] | None
) -> tuple[list[Utterance], list[Excluded]]:
    """Split off the utterances outside ``length_range`` (before decoding: no need to read them)."""
    if length_range is None:
        return list(utts), []
    kept, excluded = [], []
    for utt in utts:
        problem = length_problem(utt, *length_range)
        if problem:
            excluded.append(Excluded(utt.utt_id, utt.audio, problem))
        else:
            kept.append(utt)
    return kept, excluded


def _log_result(dst: Path, total: int, kept: list[Utterance], excluded: list[Excluded]) -> None:
    hours = sum(u.num_samples for u in kept) / SAMPLE_RATE / 3600
    logger.info("%s: %d of %d utterances kept (%.2f h)", dst.name, len(kept), total, hours)
    if excluded:
        kinds = collections.Counter(_reason_kind(e.reason) for e in excluded)
        summary = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
        logger.warning("%s: %d utterance(s) excluded (%s); see %s", dst.name, len(excluded), summary, dst / "excluded.tsv")


def _reason_kind(reason: str) -> str:
    """A short class of a reason for the log summary (the numbers stripped)."""
    for kind in ("shorter than", "longer than", "sample rate", "channels", "NaN", "decodes to", "corrupt", "unreadable", "not found"):
        if kind in reason:
            return kind
    return reason.split("(")[0].strip()


def format_sets(
    src_root: Path,
    dst_root: Path,
    sets: Sequence[str],
    *,
    optional_sets: Sequence[str] = (),
    filter_sets: Sequence[str] = (PRETRAIN_SET,),
    min_seconds: float = MIN_SECONDS,
    max_seconds: float = MAX_SECONDS,
    nj: int = 1,
) -> dict[str, Path]:
    """Format ``sets`` (each must exist) and ``optional_sets`` (skipped, with a message, when absent)."""
    if not 0 <= min_seconds < max_seconds:
        raise FormatError(f"need 0 <= min_seconds < max_seconds, got min_seconds={min_seconds} max_seconds={max_seconds}")
    src_root, dst_root = Path(src_root), Path(dst_root)
    for name in sets:
        if not (src_root / name / "wav.scp").is_file():
            raise FormatError(f"{src_root / name} is missing or has no wav.scp: run stage 1 (data preparation) first")
    done = {}
    for name in [*sets, *(s for s in optional_sets if s not in sets)]:
        if not (src_root / name / "wav.scp").is_file():
            logger.info("%s: not in %s, skipping this optional set (not in the corpus, or its path is not "
                        "set in db.sh)", name, src_root)
            continue
        length_range = (min_seconds, max_seconds) if name in filter_sets else None
        done[name] = format_set(src_root / name, dst_root / name, length_range=length_range, nj=nj)
    return done
