"""Phone and word timings of a synthesised utterance, from espeak-ng's phoneme events.

Each phoneme event gives a mnemonic, its first sample and the text position of the word it was
produced for. A phoneme lasts until the next event; pauses (mnemonics starting with ``_``) and
the lead-in before the first phoneme are silence. Word spans are derived from the phonemes, not
from espeak's word events: those sometimes fire one phoneme early.

espeak-ng also merges some function-word pairs into one pronunciation unit ("of the", "in the"):
the phonemes of both words then carry the first word's text position and the second word has no
event. Such a unit is split between its words by how many phonemes each word has when said on
its own (at least one each); every transcript word gets exactly one span, in order.

Boundaries are quantised to whole milliseconds, so the phone segments written to a CTM tile the
utterance exactly: each starts where the previous one ends, from 0 to the audio's duration.
"""

from __future__ import annotations

import bisect
from typing import Callable, Sequence

from espnet_hubert_ae.data.builtin.espeak import PhonemeEvent
from espnet_hubert_ae.data.datadir import SILENCE, Segment


class AlignmentError(ValueError):
    """espeak-ng's events do not give every word of the transcript a consistent span."""


def _word_starts(words: Sequence[str]) -> list[int]:
    """1-based character position of each word in ``" ".join(words)`` (espeak's text positions)."""
    starts, position = [], 1
    for word in words:
        starts.append(position)
        position += len(word) + 1
    return starts


def phone_label(name: str) -> str:
    """A CTM label for an espeak mnemonic: pauses become SIL, whitespace is removed."""
    label = "".join(name.split())
    return SILENCE if not label or label.startswith("_") else label


def align(
    utt_id: str,
    words: Sequence[str],
    phonemes: Sequence[PhonemeEvent],
    *,
    num_samples: int,
    sample_rate: int,
    duration: float,
    standalone_counts: Callable[[list[str]], list[int]],
    word_positions: Sequence[int] = (),
) -> tuple[list[Segment], list[Segment]]:
    """Phone segments tiling [0, ``duration``] and one word segment per transcript word.

    ``phonemes`` are the events of a synthesis ``num_samples`` long at ``sample_rate``;
    ``duration`` is the length in seconds of the audio as written (after resampling).
    ``standalone_counts(words)`` gives the phoneme count of each word said on its own.
    ``word_positions`` (text positions of espeak's word events) are checked against the
    transcript's word starts: a mismatch means the text positions are not what they seem.
    """
    end_ms = int(duration * 1000)
    to_ms = lambda sample: min(round(sample * 1000 / sample_rate), end_ms)  # noqa: E731
    spans = _phone_spans(utt_id, phonemes, num_samples)
    starts = _word_starts(words)
    stray = sorted(set(word_positions) - set(starts))
    if stray:
        raise AlignmentError(f"{utt_id}: espeak-ng word events at text positions {stray} start no transcript word")

    # Phones as (start_ms, end_ms, label, word index or None); zero-length ones vanish at 1 ms.
    phones: list[tuple[int, int, str, int | None]] = []
    for start, end, event in spans:
        start_ms, stop_ms = to_ms(start), to_ms(end)
        if stop_ms <= start_ms:
            continue
        label = phone_label(event.name)
        word = None
        if label != SILENCE:
            word = bisect.bisect_right(starts, event.text_position) - 1
            if word < 0:
                raise AlignmentError(
                    f"{utt_id}: phoneme {event.name!r} at text position {event.text_position} precedes the first word"
                )
        phones.append((start_ms, stop_ms, label, word))

    word_spans = _word_spans(utt_id, words, phones, standalone_counts)
    phone_segments = _tile(utt_id, phones, end_ms)
    word_segments = [Segment(utt_id, a / 1000, (b - a) / 1000, w) for w, (a, b) in zip(words, word_spans)]
    return phone_segments, word_segments


def _phone_spans(utt_id: str, phonemes: Sequence[PhonemeEvent], num_samples: int):
    """(start, end, event) of each phoneme in samples: it lasts until the next event."""
    samples = [p.sample for p in phonemes]
    if not phonemes:
        raise AlignmentError(f"{utt_id}: espeak-ng reported no phonemes")
    if any(b < a for a, b in zip(samples, samples[1:])) or samples[0] < 0 or samples[-1] > num_samples:
        raise AlignmentError(f"{utt_id}: phoneme events are not in order within the {num_samples} samples synthesised")
    ends = samples[1:] + [num_samples]
    return list(zip(samples, ends, phonemes))


def _word_spans(
    utt_id: str,
    words: Sequence[str],
    phones: list[tuple[int, int, str, int | None]],
    standalone_counts: Callable[[list[str]], list[int]],
) -> list[tuple[int, int]]:
    """(start_ms, end_ms) of each word, splitting espeak's merged multi-word units."""
    by_word: dict[int, list[tuple[int, int]]] = {}
    last = -1
    for start, end, _, word in phones:
        if word is None:
            continue
        if word < last:
            raise AlignmentError(f"{utt_id}: phonemes of word {words[word]!r} come after those of {words[last]!r}")
        by_word.setdefault(word, []).append((start, end))
        last = word
    if 0 not in by_word:
        raise AlignmentError(f"{utt_id}: the first word {words[0]!r} has no phonemes")

    spans: list[tuple[int, int]] = []
    heads = sorted(by_word)
    for n, head in enumerate(heads):
        tail = heads[n + 1] if n + 1 < len(heads) else len(words)
        unit_words = list(words[head:tail])
        unit_phones = by_word[head]
        if len(unit_words) == 1:
            spans.append((unit_phones[0][0], unit_phones[-1][1]))
            continue
        if len(unit_phones) < len(unit_words):
            merged = " ".join(unit_words)
            raise AlignmentError(f"{utt_id}: espeak-ng merged {merged!r} into {len(unit_phones)} phonemes")
        for chunk in _split(unit_phones, standalone_counts(unit_words)):
            spans.append((chunk[0][0], chunk[-1][1]))
    return spans


def _split(phones: list[tuple[int, int]], counts: list[int]) -> list[list[tuple[int, int]]]:
    """Cut ``phones`` into len(counts) non-empty runs, the first ones as close to ``counts`` as possible."""
    chunks, position = [], 0
    for n, count in enumerate(counts[:-1]):
        words_after = len(counts) - n - 1
        take = max(1, min(count, len(phones) - position - words_after))
        chunks.append(phones[position : position + take])
        position += take
    chunks.append(phones[position:])
    return chunks


def _tile(utt_id: str, phones: list[tuple[int, int, str, int | None]], end_ms: int) -> list[Segment]:
    """Phone segments covering [0, end_ms] with silence filling the gaps, adjacent silences merged."""
    tiles: list[tuple[int, int, str]] = []
    cursor = 0
    for start, end, label, _ in phones:
        if start > cursor:
            tiles.append((cursor, start, SILENCE))
        tiles.append((start, end, label))
        cursor = end
    if cursor < end_ms:
        tiles.append((cursor, end_ms, SILENCE))
    merged: list[tuple[int, int, str]] = []
    for start, end, label in tiles:
        if merged and label == SILENCE and merged[-1][2] == SILENCE:
            merged[-1] = (merged[-1][0], end, SILENCE)
        else:
            merged.append((start, end, label))
    if not merged or merged[0][0] != 0 or merged[-1][1] != end_ms:
        raise AlignmentError(f"{utt_id}: phone segments do not cover [0, {end_ms / 1000:.3f}] s")
    return [Segment(utt_id, a / 1000, (b - a) / 1000, label) for a, b, label in merged]


def check_alignment(
    utt_id: str, words: Sequence[str], phones: Sequence[Segment], word_segments: Sequence[Segment], duration: float
) -> None:
    """Raise AlignmentError unless the phones tile [0, duration] and the words match and lie on phone boundaries."""
    tolerance = 1e-6
    cursor = 0.0
    for seg in phones:
        if abs(seg.start - cursor) > tolerance or seg.duration <= 0:
            raise AlignmentError(f"{utt_id}: phone segment {seg.label!r} at {seg.start:.3f} s breaks the tiling")
        cursor = seg.end
    if abs(cursor - duration) > 1e-3 + tolerance:
        raise AlignmentError(f"{utt_id}: phone segments end at {cursor:.3f} s, the audio at {duration:.3f} s")
    if [w.label for w in word_segments] != list(words):
        raise AlignmentError(f"{utt_id}: word segments {[w.label for w in word_segments]} differ from the transcript")
    boundaries = {round(s.start * 1000) for s in phones} | {round(s.end * 1000) for s in phones}
    previous_end = 0.0
    for seg in word_segments:
        if seg.duration <= 0 or seg.start < previous_end - tolerance or seg.end > duration + tolerance:
            raise AlignmentError(
                f"{utt_id}: word {seg.label!r} at {seg.start:.3f} s is empty, overlaps or leaves the audio"
            )
        if round(seg.start * 1000) not in boundaries or round(seg.end * 1000) not in boundaries:
            raise AlignmentError(f"{utt_id}: word {seg.label!r} does not start and end on phone boundaries")
        previous_end = seg.end
