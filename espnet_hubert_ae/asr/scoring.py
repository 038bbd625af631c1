"""Word, character and phone error rates of decoded sets, with their counts, as JSON and a table.

Errors are the substitutions, deletions and insertions of a minimum edit-distance alignment.
An empty hypothesis is all deletions. Characters are counted with word boundaries as one
space token each (ESPnet's CER convention), so a split or merged word counts at character
level too. Phone transcripts are scored phone by phone (PER).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from espnet_hubert_ae.asr.tokens import CHARS, Units
from espnet_hubert_ae.data.datadir import read_table
from espnet_hubert_ae.utils.fileio import atomic_write_text


class ScoringError(ValueError):
    """References and hypotheses do not describe the same utterances."""


@dataclasses.dataclass(frozen=True)
class ErrorCounts:
    """Edit operations of hypotheses against references, summed over any number of pairs."""

    ref_len: int = 0
    sub: int = 0
    dele: int = 0
    ins: int = 0

    @property
    def errors(self) -> int:
        return self.sub + self.dele + self.ins

    @property
    def rate(self) -> float:
        """Errors per reference token, in percent (0 for an empty reference with no errors)."""
        if self.ref_len == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return 100.0 * self.errors / self.ref_len

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        return ErrorCounts(
            self.ref_len + other.ref_len, self.sub + other.sub, self.dele + other.dele, self.ins + other.ins
        )

    def as_dict(self) -> dict:
        return {"ref": self.ref_len, "sub": self.sub, "del": self.dele, "ins": self.ins, "errors": self.errors}


def edit_counts(ref: Sequence[str], hyp: Sequence[str]) -> ErrorCounts:
    """Align ``hyp`` to ``ref`` with the fewest edits; count each kind of edit.

    Where several alignments need equally few edits, the trace back prefers a match or
    substitution, then a deletion, then an insertion, so the split between kinds is
    deterministic.
    """
    n, m = len(ref), len(hyp)
    dist = [list(range(m + 1))]
    for i in range(1, n + 1):
        row = [i] + [0] * m
        above = dist[-1]
        r = ref[i - 1]
        for j in range(1, m + 1):
            row[j] = min(above[j - 1] + (r != hyp[j - 1]), above[j] + 1, row[j - 1] + 1)
        dist.append(row)
    sub = dele = ins = 0
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and dist[i][j] == dist[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            sub += ref[i - 1] != hyp[j - 1]
            i, j = i - 1, j - 1
        elif i > 0 and dist[i][j] == dist[i - 1][j] + 1:
            dele += 1
            i -= 1
        else:
            ins += 1
            j -= 1
    return ErrorCounts(n, sub, dele, ins)


def words_of(text: str) -> list[str]:
    return text.split()


def chars_of(text: str) -> list[str]:
    """Characters of a transcript with each run of whitespace as one space token."""
    return list(" ".join(text.split()))


@dataclasses.dataclass(frozen=True)
class SetScore:
    """Scores of one decoded set."""

    name: str
    num_utts: int
    word: ErrorCounts
    char: ErrorCounts
    empty_hyps: int

    @property
    def wer(self) -> float:
        return self.word.rate

    @property
    def cer(self) -> float:
        return self.char.rate

    TABLE_HEADER = ("| set | utts | empty hyps | words | WER % | sub | del | ins | chars | CER % |\n"
                    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def table_row(self) -> str:
        w = self.word
        return (f"| {self.name} | {self.num_utts} | {self.empty_hyps} | {w.ref_len} | {self.wer:.2f} | {w.sub} "
                f"| {w.dele} | {w.ins} | {self.char.ref_len} | {self.cer:.2f} |")

    def as_dict(self) -> dict:
        return {
            "set": self.name,
            "num_utts": self.num_utts,
            "num_words": self.word.ref_len,
            "num_chars": self.char.ref_len,
            "wer": round(self.wer, 2),
            "cer": round(self.cer, 2),
            "empty_hyps": self.empty_hyps,
            "word": self.word.as_dict(),
            "char": self.char.as_dict(),
        }


@dataclasses.dataclass(frozen=True)
class PhoneScore:
    """Phone error rate of one decoded set (phone transcripts)."""

    name: str
    num_utts: int
    phone: ErrorCounts
    empty_hyps: int

    @property
    def per(self) -> float:
        return self.phone.rate

    TABLE_HEADER = ("| set | utts | empty hyps | phones | PER % | sub | del | ins |\n"
                    "|---|---:|---:|---:|---:|---:|---:|---:|")

    def table_row(self) -> str:
        p = self.phone
        return (f"| {self.name} | {self.num_utts} | {self.empty_hyps} | {p.ref_len} | {self.per:.2f} | {p.sub} "
                f"| {p.dele} | {p.ins} |")

    def as_dict(self) -> dict:
        return {"set": self.name, "num_utts": self.num_utts, "num_phones": self.phone.ref_len,
                "per": round(self.per, 2), "empty_hyps": self.empty_hyps, "phone": self.phone.as_dict()}


def _check_pairs(name: str, refs: Mapping[str, str], hyps: Mapping[str, str], hyp_source: str) -> None:
    """Every reference utterance has a hypothesis (possibly empty), and no other one has."""
    missing = sorted(refs.keys() - hyps.keys())
    if missing:
        raise ScoringError(
            f"{hyp_source}: no hypothesis for {len(missing)} of {len(refs)} utterances of {name} "
            f"(e.g. {missing[:3]}); decoding is incomplete"
        )
    extra = sorted(hyps.keys() - refs.keys())
    if extra:
        raise ScoringError(f"{hyp_source}: hypotheses for utterances not in {name}'s references (e.g. {extra[:3]})")


def score_set(name: str, refs: Mapping[str, str], hyps: Mapping[str, str], hyp_source: str = "hypotheses") -> SetScore:
    """Score every reference utterance; each must have a hypothesis (possibly empty)."""
    _check_pairs(name, refs, hyps, hyp_source)
    word, char, empty = ErrorCounts(), ErrorCounts(), 0
    for utt_id in sorted(refs):
        ref, hyp = refs[utt_id], hyps[utt_id]
        empty += not hyp.strip()
        word += edit_counts(words_of(ref), words_of(hyp))
        char += edit_counts(chars_of(ref), chars_of(hyp))
    return SetScore(name, len(refs), word, char, empty)


def score_phone_set(name: str, refs: Mapping[str, str], hyps: Mapping[str, str],
                    hyp_source: str = "hypotheses") -> PhoneScore:
    """Phone errors of every reference utterance (space-separated phones)."""
    _check_pairs(name, refs, hyps, hyp_source)
    phone, empty = ErrorCounts(), 0
    for utt_id in sorted(refs):
        empty += not hyps[utt_id].strip()
        phone += edit_counts(refs[utt_id].split(), hyps[utt_id].split())
    return PhoneScore(name, len(refs), phone, empty)


def score_files(name: str, ref_path: str | os.PathLike, hyp_path: str | os.PathLike,
                units: Units = CHARS) -> SetScore | PhoneScore:
    """Score a Kaldi-style hypothesis ``text`` file (``<utt> <words...>``; words may be absent)."""
    score = score_set if units is CHARS else score_phone_set
    return score(name, read_table(ref_path), read_table(hyp_path), hyp_source=str(hyp_path))


def format_table(scores: Iterable[SetScore | PhoneScore], title: str | None = None) -> str:
    """A Markdown table of the scores, one row per set (all of one kind)."""
    scores = list(scores)
    lines = [f"### {title}", ""] if title else []
    if scores:
        lines += [scores[0].TABLE_HEADER] + [s.table_row() for s in scores]
    return "\n".join(lines) + "\n"


def write_scores(out_dir: str | os.PathLike, scores: Sequence[SetScore | PhoneScore], title: str | None = None) -> Path:
    """Write ``scores.json`` and ``scores.md`` under ``out_dir``; returns the JSON path."""
    out_dir = Path(out_dir)
    payload = {"title": title, "sets": [s.as_dict() for s in scores]}
    atomic_write_text(out_dir / "scores.json", json.dumps(payload, indent=2) + "\n")
    atomic_write_text(out_dir / "scores.md", format_table(scores, title))
    return out_dir / "scores.json"
