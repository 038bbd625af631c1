"""Stage 3: phone and word alignments for the layerwise analysis, as CTM files, and their checks.

Alignments have one home: the formatted sets of stage 2 (``dump/raw/<set>/{phones,words}.ctm``),
written by stage 3 for the utterances those sets kept. Their sources are MFA TextGrids
(LibriSpeech) or the synthesiser's own timings in the stage 1 sets (the built-in corpus).

LibriSpeech alignments come from Montreal-Forced-Aligner TextGrids (``<utt-id>.TextGrid``
anywhere under ``LIBRISPEECH_ALIGNMENTS``, e.g. ``<spk>/<utt-id>.TextGrid``), read with praatio:

- tier ``phones``: MFA's ARPAbet labels lose their stress digit (``AH0`` -> ``AH``), leaving
  the 39 ARPAbet phones of the analysis; empty intervals and MFA's silence marks (``sil``,
  ``sp``) become ``SIL``, and every gap is filled with ``SIL`` so the phone segments tile the
  utterance from 0 to its duration (like the built-in corpus' CTMs). MFA's ``spn`` (spoken
  noise, out-of-vocabulary words) is kept as ``SPN``; other labels are kept upper-cased and
  reported, so a non-ARPAbet (e.g. IPA) model is noticed.
- tier ``words``: non-empty intervals, upper-cased like LibriSpeech transcripts; silences are
  skipped, so words need not tile.

(Tier names may carry MFA's speaker prefix, ``<speaker> - phones``.)

:func:`check_alignments` checks a data directory's CTMs against its utterances: phones tile
each utterance, words lie inside it in order and match its transcript. It serves stage 3 for
both corpora and the tests of the built-in corpus.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import re
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from espnet_hubert_ae.data.datadir import SILENCE, Segment, Utterance, read_ctm, read_datadir, read_table, write_ctm
from espnet_hubert_ae.utils.fileio import atomic_open, atomic_write_text

logger = logging.getLogger(__name__)

ARPABET_39 = frozenset(
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH".split()
)
SPOKEN_NOISE = "SPN"
_SILENCE_MARKS = frozenset({"", "sil", "sp", "<eps>", "silence", "<sil>"})
_MIN_GAP = 5e-4  # seconds: gaps shorter than this are rounding, not silence
CTM_FILES = ("phones.ctm", "words.ctm")
TEXTGRID_TOLERANCE = 0.05  # seconds a TextGrid may overrun its audio


class AlignmentError(ValueError):
    """A TextGrid or CTM that does not describe its utterance."""


def normalize_phone(label: str) -> str:
    """The analysis label of an MFA phone: stress-less ARPAbet, ``SIL`` or ``SPN``."""
    label = label.strip()
    if label.lower() in _SILENCE_MARKS:
        return SILENCE
    if label.lower() == "spn":
        return SPOKEN_NOISE
    return re.sub(r"[0-2]$", "", label).upper()


def index_textgrids(root: str | os.PathLike) -> dict[str, Path]:
    """``{utterance id: TextGrid path}`` for every ``*.TextGrid`` under ``root``."""
    index: dict[str, Path] = {}
    for path in sorted(Path(root).rglob("*")):
        if path.suffix.lower() != ".textgrid" or not path.is_file():
            continue
        if path.stem in index:
            raise AlignmentError(f"two TextGrids for utterance {path.stem!r}: {index[path.stem]} and {path}")
        index[path.stem] = path
    return index


def tile_phones(utt_id: str, intervals: Iterable[tuple[float, float, str]], duration: float) -> list[Segment]:
    """Phone segments covering ``[0, duration]``: the given ones (clipped) with ``SIL`` in every gap."""
    segments: list[Segment] = []

    def add(start: float, end: float, label: str) -> None:
        if segments and label == SILENCE and segments[-1].label == SILENCE:
            last = segments.pop()
            start = last.start
        segments.append(Segment(utt_id, start, end - start, label))

    t = 0.0
    for start, end, label in sorted(intervals):
        start, end = max(start, t), min(end, duration)
        if end - start < _MIN_GAP:
            continue
        if start - t >= _MIN_GAP:
            add(t, start, SILENCE)
        add(t if start - t < _MIN_GAP else start, end, label)
        t = end
    if duration - t >= _MIN_GAP:
        add(t, duration, SILENCE)
    elif segments:  # stretch the last segment over a rounding-sized remainder
        last = segments.pop()
        segments.append(Segment(utt_id, last.start, duration - last.start, last.label))
    return segments


def _tier(textgrid, name: str, path: Path):
    for tier_name in textgrid.tierNames:
        if tier_name.strip().lower() == name or tier_name.strip().lower().endswith(f"- {name}"):
            return textgrid.getTier(tier_name)
    raise AlignmentError(f"{path}: no {name!r} tier (tiers: {', '.join(textgrid.tierNames)})")


def read_textgrid(path: Path, utt: Utterance, *, tolerance: float = TEXTGRID_TOLERANCE) -> tuple[list[Segment], list[Segment]]:
    """Phone and word segments of one utterance from its MFA TextGrid."""
    from praatio import textgrid as praat_textgrid

    try:
        grid = praat_textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    except Exception as err:  # praatio raises a variety of parse errors
        detail = " ".join(str(err).split())  # one line: it goes into unaligned.tsv
        raise AlignmentError(f"{path}: unreadable TextGrid ({type(err).__name__}: {detail})") from None
    duration = utt.seconds
    phones = [(e.start, e.end, normalize_phone(e.label)) for e in _tier(grid, "phones", path).entries]
    words = [(e.start, e.end, e.label.strip().upper()) for e in _tier(grid, "words", path).entries]
    last_end = max((end for _, end, label in phones + words if label and label != SILENCE), default=0.0)
    if last_end > duration + tolerance:
        raise AlignmentError(f"{path}: aligned speech ends at {last_end:.2f} s but {utt.utt_id} lasts {duration:.2f} s")
    phone_segments = tile_phones(utt.utt_id, [p for p in phones if p[2] != SILENCE], duration)
    word_segments = [
        Segment(utt.utt_id, start, min(end, duration) - start, label)
        for start, end, label in words
        if label.lower() not in _SILENCE_MARKS and min(end, duration) > start
    ]
    return phone_segments, word_segments


# --- checking ----------------------------------------------------------------------------


@dataclasses.dataclass
class AlignmentReport:
    """How completely and how well a data directory's CTMs describe its utterances."""

    datadir: Path
    utterances: int = 0
    aligned: int = 0
    seconds: float = 0.0
    speech_seconds: float = 0.0  # time in non-SIL phones
    words: int = 0
    phone_counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    missing: list[str] = dataclasses.field(default_factory=list)  # utterances without phones or words
    problems: list[str] = dataclasses.field(default_factory=list)  # "<utt>: what is wrong"

    @property
    def coverage(self) -> float:
        return self.aligned / self.utterances if self.utterances else 0.0

    @property
    def ok(self) -> bool:
        return not self.missing and not self.problems and self.utterances > 0

    def unknown_phones(self) -> list[str]:
        return sorted(set(self.phone_counts) - ARPABET_39 - {SILENCE, SPOKEN_NOISE})

    def summary(self) -> str:
        name = self.datadir.name
        phones = len(set(self.phone_counts) - {SILENCE})
        text = (
            f"{name}: {self.aligned}/{self.utterances} utterances aligned ({100 * self.coverage:.1f}%), "
            f"{self.seconds / 3600:.2f} h, {100 * self.speech_seconds / max(self.seconds, 1e-9):.0f}% in phones, "
            f"{phones} phone labels + {SILENCE}, {self.words} words"
        )
        if self.missing:
            text += f"; {len(self.missing)} without alignment (e.g. {', '.join(self.missing[:3])})"
        if self.problems:
            text += f"; {len(self.problems)} problem(s), e.g. {self.problems[0]}"
        return text


def _read_ctm_or_empty(path: Path) -> dict[str, list[Segment]]:
    return read_ctm(path) if path.is_file() else {}


def check_alignments(
    datadir: str | os.PathLike, *, tolerance: float = 0.02, check_text: bool = True
) -> AlignmentReport:
    """Check ``phones.ctm`` and ``words.ctm`` of a data directory against its utterances.

    Per utterance: phone segments must tile ``[0, duration]`` (each starting where the previous
    ends, within ``tolerance`` seconds), words must lie inside it, in order, without overlap,
    and (with ``check_text``) spell its transcript. Utterances without segments are
    ``missing``; everything else wrong is a ``problem``.
    """
    datadir = Path(datadir)
    utts = read_datadir(datadir)
    phones = _read_ctm_or_empty(datadir / "phones.ctm")
    words = _read_ctm_or_empty(datadir / "words.ctm")
    report = AlignmentReport(datadir, utterances=len(utts), seconds=sum(u.seconds for u in utts))
    known = {u.utt_id for u in utts}
    for name, ctm in (("phones.ctm", phones), ("words.ctm", words)):
        strays = sorted(ctm.keys() - known)
        if strays:
            report.problems.append(f"{strays[0]}: in {name} but not in {datadir}/wav.scp ({len(strays)} such)")
    for utt in utts:
        if utt.utt_id not in phones and utt.utt_id not in words:
            report.missing.append(utt.utt_id)
            continue
        problems = _phone_problems(utt, phones.get(utt.utt_id, []), tolerance)
        problems += _word_problems(utt, words.get(utt.utt_id, []), tolerance, check_text)
        report.problems += [f"{utt.utt_id}: {p}" for p in problems]
        report.aligned += 1
        report.words += len(words.get(utt.utt_id, []))
        for seg in phones.get(utt.utt_id, []):
            report.phone_counts[seg.label] += 1
            report.speech_seconds += seg.duration if seg.label != SILENCE else 0.0
    return report


def _phone_problems(utt: Utterance, segments: Sequence[Segment], tolerance: float) -> list[str]:
    if not segments:
        return ["no phone segments"]
    problems = []
    t = 0.0
    for seg in segments:
        if abs(seg.start - t) > tolerance:
            problems.append(f"phone {seg.label} starts at {seg.start:.3f} s, expected {t:.3f} s (gap or overlap)")
            break
        if seg.duration <= 0:
            problems.append(f"phone {seg.label} at {seg.start:.3f} s has duration {seg.duration:.3f}")
            break
        t = seg.end
    if abs(t - utt.seconds) > tolerance:
        problems.append(f"phones end at {t:.3f} s but the audio lasts {utt.seconds:.3f} s")
    return problems


def _word_problems(utt: Utterance, segments: Sequence[Segment], tolerance: float, check_text: bool) -> list[str]:
    if not segments:
        return ["no word segments"] if not check_text or (utt.text or "").strip() else []
    problems = []
    t = 0.0
    for seg in segments:
        if seg.start < t - tolerance or seg.duration <= 0:
            problems.append(f"word {seg.label} at {seg.start:.3f} s overlaps the previous word or is empty")
            break
        t = seg.end
    if t > utt.seconds + tolerance:
        problems.append(f"words end at {t:.3f} s but the audio lasts {utt.seconds:.3f} s")
    if check_text and utt.text is not None:
        said = [s.label.upper() for s in segments]
        if said != utt.text.upper().split():
            problems.append(f"words {' '.join(said)!r} differ from the transcript {utt.text!r}")
    return problems


# --- writing -----------------------------------------------------------------------------


def align_set(
    datadir: Path, textgrids: Mapping[str, Path], *, tolerance: float = TEXTGRID_TOLERANCE
) -> tuple[int, list[tuple[str, str]]]:
    """Write ``phones.ctm`` / ``words.ctm`` of ``datadir`` from TextGrids, atomically.

    Returns the number of aligned utterances and ``(utt, reason)`` for those left unaligned
    (no TextGrid, or one that does not fit), which are also written to ``unaligned.tsv``.
    """
    phones: list[Segment] = []
    words: list[Segment] = []
    unaligned: list[tuple[str, str]] = []
    utts = read_datadir(datadir)
    for utt in utts:
        path = textgrids.get(utt.utt_id)
        if path is None:
            unaligned.append((utt.utt_id, "no TextGrid"))
            continue
        try:
            utt_phones, utt_words = read_textgrid(path, utt, tolerance=tolerance)
        except AlignmentError as err:
            unaligned.append((utt.utt_id, str(err)))
            continue
        phones += utt_phones
        words += utt_words
    _write_ctm_atomic(datadir / "phones.ctm", phones)
    _write_ctm_atomic(datadir / "words.ctm", words)
    atomic_write_text(datadir / "unaligned.tsv", "".join(f"{utt}\t{reason}\n" for utt, reason in unaligned))
    return len(utts) - len(unaligned), unaligned


def _write_ctm_atomic(path: Path, segments: Sequence[Segment]) -> None:
    scratch = path.with_name(f".{path.name}.tmp")
    try:
        write_ctm(scratch, segments)
        os.replace(scratch, path)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise


def copy_alignments(src: Path, dst: Path) -> dict[str, int]:
    """Copy ``src``'s CTM files into ``dst``, keeping the lines of ``dst``'s utterances.

    Returns ``{ctm file: number of utterances copied}``. Lines are copied verbatim; each file
    is replaced atomically.
    """
    keep = read_table(Path(dst) / "wav.scp").keys()
    copied = {}
    for name in CTM_FILES:
        if not (Path(src) / name).is_file():
            continue
        utts = set()
        with open(Path(src) / name, encoding="utf-8") as fin, atomic_open(Path(dst) / name) as fout:
            for line in fin:
                utt = line.split(maxsplit=1)[0] if line.strip() else None
                if utt in keep:
                    fout.write(line if line.endswith("\n") else line + "\n")
                    utts.add(utt)
        copied[name] = len(utts)
    return copied
