"""The token lists of the CTC models: characters (ASR) or phones (phoneme recognition).

Characters use ESPnet's ``token_type: char``: a transcript is split into characters, each
space written ``<space>``. Phones use ``token_type: word`` on phone transcripts (one phone per
word, see :mod:`espnet_hubert_ae.asr.phones`). A list starts with ``<blank>`` (CTC blank,
id 0) and ``<unk>``, lists the units of the training transcripts from most to least frequent
and ends with ``<sos/eos>``, as ESPnet's own recipes write it.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from espnet_hubert_ae.utils.fileio import atomic_write_text

BLANK = "<blank>"
UNK = "<unk>"
SPACE = "<space>"
SOS_EOS = "<sos/eos>"
SPECIAL = (BLANK, UNK, SOS_EOS)

logger = logging.getLogger(__name__)


class TokenError(ValueError):
    """A transcript holds characters the token list cannot express, or the list is malformed."""


def text_to_tokens(text: str) -> list[str]:
    """Character tokens of a transcript, each run of whitespace as one ``<space>``."""
    return [SPACE if c == " " else c for c in " ".join(text.split())]


def tokens_to_text(tokens: Iterable[str]) -> str:
    """Inverse of :func:`text_to_tokens`; special tokens other than ``<unk>`` are dropped."""
    pieces = [" " if t == SPACE else t for t in tokens if t not in (BLANK, SOS_EOS)]
    return " ".join("".join(pieces).split())


def phones_to_text(tokens: Iterable[str]) -> str:
    """A phone transcript from phone tokens; special tokens other than ``<unk>`` are dropped."""
    return " ".join(t for t in tokens if t not in (BLANK, SOS_EOS))


@dataclasses.dataclass(frozen=True)
class Units:
    """What a CTC model outputs: how transcripts become tokens and back, and ESPnet's token type."""

    name: str  # "character" or "phone"
    token_type: str  # ESPnet's --token_type
    tokenize: Callable[[str], list[str]]
    detokenize: Callable[[Iterable[str]], str]


CHARS = Units("character", "char", text_to_tokens, tokens_to_text)
PHONES = Units("phone", "word", str.split, phones_to_text)


def build_token_list(transcripts: Iterable[str], units: Units = CHARS) -> list[str]:
    """Token list of the units in ``transcripts``, most frequent first (ties by unit)."""
    counts = collections.Counter(t for text in transcripts for t in units.tokenize(text))
    if not counts:
        raise TokenError(f"no {units.name}s in the training transcripts: cannot build a token list")
    chars = sorted(counts, key=lambda t: (-counts[t], t))
    return [BLANK, UNK, *chars, SOS_EOS]


def write_token_list(path: str | os.PathLike, tokens: Sequence[str]) -> Path:
    atomic_write_text(path, "".join(f"{t}\n" for t in tokens))
    return Path(path)


def read_token_list(path: str | os.PathLike) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"token list {path} does not exist")
    tokens = [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines()]
    if not tokens or tokens[0] != BLANK or tokens[-1] != SOS_EOS:
        raise TokenError(f"{path}: a CTC token list starts with {BLANK} and ends with {SOS_EOS}")
    if len(set(tokens)) != len(tokens):
        raise TokenError(f"{path}: duplicated tokens")
    return tokens


def unknown_units(transcripts: Mapping[str, str], tokens: Sequence[str],
                       units: Units = CHARS) -> dict[str, list[str]]:
    """Units (characters by default) outside ``tokens``, each with the utterances that use it."""
    known = set(tokens)
    unknown: dict[str, list[str]] = collections.defaultdict(list)
    for utt_id, text in transcripts.items():
        for char in sorted(set(units.tokenize(text)) - known):
            unknown[char].append(utt_id)
    return dict(unknown)


def check_transcripts(
    transcripts: Mapping[str, str], tokens: Sequence[str], source: str, *, strict: bool = True,
    units: Units = CHARS,
) -> None:
    """Fail (``strict``) or warn when ``source``'s transcripts use units outside the list.

    Training and validation transcripts must be expressible (ESPnet would silently turn the
    units into ``<unk>``); evaluation sets may contain units the model can never produce,
    which then count as errors: a warning says so.
    """
    unknown = unknown_units(transcripts, tokens, units)
    if not unknown:
        return
    details = "; ".join(
        f"{char!r} in {len(utts)} utterance(s), e.g. {utts[0]!r}" for char, utts in sorted(unknown.items())
    )
    message = f"{source}: {units.name}s outside the token list: {details}"
    if strict:
        raise TokenError(message)
    logger.warning("%s (they will count as errors)", message)
