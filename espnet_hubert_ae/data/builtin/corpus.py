"""The built-in corpus: eight Kaldi-style sets synthesised with espeak-ng, with exact phone/word CTMs.

Sizes (``minutes`` = minutes of audio in train_pretrain):

- ``train_pretrain``: ``minutes`` of audio from 120 training speakers;
- ``train_10h`` / ``train_1h`` / ``train_10min``: nested subsets of train_pretrain holding 50 %,
  15 % and 5 % of its audio (at least one utterance), like Libri-light's limited sets
  (train_10min is in train_1h, which is in train_10h);
- ``dev_clean`` / ``test_clean``: ``minutes / 6`` of audio each (at least
  ``eval_min_utterances`` utterances) from 30 held-out speakers per set, in training conditions;
- ``dev_other`` / ``test_other``: the same sizes, 30 speakers each, in harder conditions
  (unseen accents, faster, wider pitch, noise; see ``voices``).

Utterances last 1.5-8 s. Utterance ``i`` of a set is a pure function of (seed, set, i): its
speaker, sentence, audio and timings do not depend on ``minutes``, ``nj`` or the other
utterances (each is synthesised from a freshly initialised espeak-ng). A set takes utterances
``0, 1, 2, ...`` that fall within the duration limits until it reaches its size, so the corpus
is identical for a seed whatever ``nj``, and a bigger corpus extends a smaller one.

Audio goes to ``<audio_dir>/seed<seed>/<group>/<utt>.wav`` (16 kHz, mono, 16-bit), where
``audio_dir`` defaults to ``<datadir>/../downloads/builtin_audio``. Each finished set has a
``.done`` stamp recording the corpus version, espeak-ng's version, seed and sizes: a rerun
skips it, a rerun with other sizes, seed or espeak-ng regenerates it. Utterances whose
espeak-ng events fail the timing checks are listed in the set's ``excluded.tsv``; statistics
go to ``<datadir>/builtin_stats.json``.

Synthesis runs in ``nj`` spawned worker processes: a script calling ``prepare_builtin`` needs
the usual ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import multiprocessing
import random
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import soxr  # resampling: deterministic, and much lighter than torch in the synthesis workers

from espnet_hubert_ae.data.builtin.espeak import Espeak, EspeakNotInstalled, library_version
from espnet_hubert_ae.data.builtin.grammar import SentenceGenerator, is_question
from espnet_hubert_ae.data.builtin.timing import AlignmentError, align, check_alignment
from espnet_hubert_ae.data.builtin.voices import Voice, speaker_groups
from espnet_hubert_ae.data.datadir import (
    SAMPLE_RATE,
    DataDirError,
    Excluded,
    Segment,
    Utterance,
    read_datadir,
    write_datadir,
)
from espnet_hubert_ae.defaults import BUILTIN_MINUTES
from espnet_hubert_ae.utils.fileio import atomic_open, atomic_write_text, done_marker

logger = logging.getLogger(__name__)

CORPUS_VERSION = 2  # part of every stamp: bump when generation changes so old sets regenerate
SETS = ("train_pretrain", "train_10h", "train_1h", "train_10min", "dev_clean", "dev_other", "test_clean", "test_other")
FINETUNE_FRACTIONS = {"train_10h": 0.50, "train_1h": 0.15, "train_10min": 0.05}
EVAL_FRACTION = 1 / 6
MIN_SECONDS, MAX_SECONDS = 1.5, 8.0
# Sets synthesised together: the fine-tuning sets are subsets of train_pretrain.
GROUP_SETS = {
    "train": ("train_pretrain", "train_10h", "train_1h", "train_10min"),
    "dev_clean": ("dev_clean",),
    "dev_other": ("dev_other",),
    "test_clean": ("test_clean",),
    "test_other": ("test_other",),
}
GROUP_CODES = {"train": "tr", "dev_clean": "dc", "dev_other": "do", "test_clean": "tc", "test_other": "to"}
STATS_FILE = "builtin_stats.json"


class BuiltinCorpusError(RuntimeError):
    """The built-in corpus cannot be generated as asked."""


@dataclass(frozen=True)
class UtteranceSpec:
    """Everything that determines one utterance."""

    utt_id: str
    words: tuple[str, ...]
    voice: Voice
    noise_seed: int

    @property
    def text(self) -> str:
        return " ".join(self.words)


@dataclass
class Rendered:
    """A synthesised utterance, or why it is not used (``rejected``: length; ``error``: timing)."""

    spec: UtteranceSpec
    audio: np.ndarray | None = None  # int16, 16 kHz; dropped once written to ``path``
    phones: list[Segment] | None = None
    words: list[Segment] | None = None
    rejected: str | None = None
    error: str | None = None
    num_samples: int = 0
    path: Path | None = None

    def __post_init__(self) -> None:
        if self.audio is not None:
            self.num_samples = len(self.audio)

    @property
    def seconds(self) -> float:
        return self.num_samples / SAMPLE_RATE


def utterance_spec(seed: int, group: str, index: int, voices: Sequence[Voice]) -> UtteranceSpec:
    """Utterance ``index`` of a group: a pure function of its arguments."""
    rng = random.Random(f"builtin-utterance:{seed}:{group}:{index}")
    voice = rng.choice(voices)
    words = tuple(SentenceGenerator().sentence(rng))
    return UtteranceSpec(f"{voice.speaker}-{GROUP_CODES[group]}{index:05d}", words, voice, rng.getrandbits(63))


# --- synthesis (runs in worker processes) ------------------------------------------------------


def render(engine: Espeak, spec: UtteranceSpec) -> Rendered:
    """Synthesise, resample to 16 kHz, add the speaker's noise, time and check one utterance."""
    voice = spec.voice
    # Lower case: espeak spells out short all-capital words as letters. Same character positions.
    text = spec.text.lower() + ("?" if is_question(spec.words) else ".")
    synthesis = engine.synthesize(
        text, voice.espeak_name, rate=voice.rate, pitch=voice.pitch, pitch_range=voice.pitch_range
    )
    audio = _to_16k(synthesis.audio.astype(np.float32), synthesis.sample_rate)
    if voice.snr_db is not None:
        audio = _add_noise(audio, voice.snr_db, spec.noise_seed)
    samples = np.clip(np.round(audio), -32768, 32767).astype(np.int16)
    seconds = len(samples) / SAMPLE_RATE
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        return Rendered(spec, rejected=f"{seconds:.2f} s is outside {MIN_SECONDS}-{MAX_SECONDS} s")
    try:
        phones, words = align(
            spec.utt_id,
            spec.words,
            synthesis.phonemes,
            num_samples=len(synthesis.audio),
            sample_rate=synthesis.sample_rate,
            duration=seconds,
            standalone_counts=lambda ws: engine.phoneme_counts([w.lower() for w in ws], voice.espeak_name),
            word_positions=[w.text_position for w in synthesis.words],
        )
        check_alignment(spec.utt_id, spec.words, phones, words, seconds)
    except AlignmentError as err:
        return Rendered(spec, error=str(err))
    return Rendered(spec, samples, phones, words)


def _to_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    return soxr.resample(audio, sample_rate, SAMPLE_RATE)


def _add_noise(audio: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) or 1.0
    noise = np.random.default_rng(seed).standard_normal(len(audio)) * (rms / 10 ** (snr_db / 20))
    return (audio + noise).astype(np.float32)


def _render_isolated(spec: UtteranceSpec) -> Rendered:
    return Espeak.get().isolated(render, spec)


@contextlib.contextmanager
def _workers(nj: int) -> Iterator[multiprocessing.pool.Pool]:
    # Spawned (not forked) workers: the parent may run torch threads, and espeak-ng is then
    # initialised only in processes that do nothing else.
    with multiprocessing.get_context("spawn").Pool(max(1, nj)) as pool:
        yield pool


# --- sets --------------------------------------------------------------------------------------


def _render_group(
    pool,
    seed: int,
    group: str,
    voices: Sequence[Voice],
    audio_dir: Path,
    target_seconds: float,
    min_utterances: int,
    nj: int,
) -> tuple[list[Rendered], list[Rendered]]:
    """Utterances 0, 1, ... of a group within the length limits, until the size is reached.

    The audio of the utterances kept is written to ``audio_dir`` as it comes (and wav files of
    utterances the group no longer has are removed); returns (kept, excluded).
    """
    from tqdm import tqdm

    accepted: list[Rendered] = []
    excluded: list[Rendered] = []
    rejected = 0
    total = 0.0
    index = 0
    typical_seconds = 4.0  # to guess how many utterances are still needed
    with tqdm(unit="utt", desc=f"{group} ({target_seconds:.0f} s wanted)", leave=False) as progress:
        while total < target_seconds or len(accepted) < min_utterances:
            needed = max(min_utterances - len(accepted), math.ceil((target_seconds - total) / typical_seconds), 1)
            batch_size = min(max(needed, nj), 4 * max(1, nj))
            specs = [utterance_spec(seed, group, i, voices) for i in range(index, index + batch_size)]
            index += batch_size
            for result in pool.imap(_render_isolated, specs):
                if total >= target_seconds and len(accepted) >= min_utterances:
                    break  # later results of the batch are not part of the corpus
                if result.rejected:
                    rejected += 1
                elif result.error:
                    logger.warning("excluded %s: %s", result.spec.utt_id, result.error)
                    excluded.append(result)
                else:
                    result.path = (audio_dir / f"{result.spec.utt_id}.wav").resolve()
                    _write_wav(result.path, result.audio)
                    result.audio = None  # the file holds it now: keeps memory flat for large corpora
                    accepted.append(result)
                    total += result.seconds
                    progress.update()
                    progress.set_postfix_str(f"{total:.0f} s", refresh=False)
            if rejected + len(excluded) > 100 and rejected + len(excluded) > 4 * len(accepted):
                raise BuiltinCorpusError(
                    f"{group}: {rejected} sentences fell outside {MIN_SECONDS}-{MAX_SECONDS} s and "
                    f"{len(excluded)} failed the timing checks for {len(accepted)} kept; is espeak-ng working?"
                )
    kept = {r.path for r in accepted}
    for stale in audio_dir.glob("*.wav"):
        if stale.resolve() not in kept:
            stale.unlink()
    logger.info(
        "%s: %d utterances (%.1f min), %d outside the length limits, %d excluded",
        group, len(accepted), total / 60, rejected, len(excluded),
    )  # fmt: skip
    return accepted, excluded


def _write_wav(path: Path, samples: np.ndarray) -> None:
    with atomic_open(path, "wb") as f, wave.open(f, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(samples.astype("<i2").tobytes())


def _write_set(setdir: Path, rendered: Sequence[Rendered], excluded: Sequence[Rendered], stamp: str) -> None:
    write_datadir(
        setdir,
        [Utterance(r.spec.utt_id, str(r.path), r.spec.voice.speaker, r.num_samples, r.spec.text) for r in rendered],
        phones=[seg for r in rendered for seg in r.phones],
        words=[seg for r in rendered for seg in r.words],
        excluded=[
            Excluded(r.spec.utt_id, "(not written)", f"espeak-ng timing check failed: {r.error}") for r in excluded
        ],
    )
    atomic_write_text(done_marker(setdir), stamp)


def _prefix(rendered: Sequence[Rendered], fraction: float) -> list[Rendered]:
    """The first utterances holding ``fraction`` of the audio (at least one): nested for growing fractions."""
    goal = fraction * sum(r.seconds for r in rendered)
    chosen, total = [], 0.0
    for r in rendered:
        if chosen and total >= goal:
            break
        chosen.append(r)
        total += r.seconds
    return chosen


def _espeak_version_or_none() -> str | None:
    # Without the library a finished corpus cannot be checked against it; generating one fails later.
    try:
        return library_version()
    except EspeakNotInstalled:
        return None


def _is_complete(setdir: Path, stamp: str) -> bool:
    marker = done_marker(setdir)
    if not marker.is_file() or marker.read_text() != stamp:
        return False
    try:
        return all(Path(u.audio).is_file() for u in read_datadir(setdir))
    except DataDirError:
        return False


def prepare_builtin(
    datadir: Path,
    *,
    minutes: float = BUILTIN_MINUTES,
    seed: int = 1,
    nj: int = 1,
    audio_dir: Path | None = None,
    eval_min_utterances: int = 40,
) -> dict[str, Path]:
    """Generate the built-in corpus under ``datadir`` (see the module doc); returns set name -> data dir."""
    if not minutes > 0:
        raise ValueError(f"--minutes must be positive, got {minutes}")
    if eval_min_utterances < 1:
        raise ValueError(f"eval_min_utterances must be at least 1, got {eval_min_utterances}")
    datadir = Path(datadir)
    audio_root = Path(audio_dir) if audio_dir is not None else datadir.resolve().parent / "downloads" / "builtin_audio"
    setdirs = {name: datadir / name for name in SETS}
    stamp = json.dumps(
        {
            "corpus": "builtin",
            "version": CORPUS_VERSION,
            "seed": seed,
            "minutes": minutes,
            "eval_min_utterances": eval_min_utterances,
            "espeak_ng": _espeak_version_or_none(),
        },
        sort_keys=True,
    )
    todo = [g for g, names in GROUP_SETS.items() if not all(_is_complete(setdirs[n], stamp) for n in names)]
    if todo:
        library_version()  # fails here, clearly, rather than inside a worker, without espeak-ng
        voices = speaker_groups(seed)
        with _workers(nj) as pool:
            for group in todo:
                is_train = group == "train"
                target = minutes * 60 * (1 if is_train else EVAL_FRACTION)
                min_utterances = 1 if is_train else eval_min_utterances
                audio_dir = audio_root / f"seed{seed}" / group
                audio_dir.mkdir(parents=True, exist_ok=True)
                rendered, excluded = _render_group(
                    pool, seed, group, voices[group], audio_dir, target, min_utterances, nj
                )
                if is_train:
                    _write_set(setdirs["train_pretrain"], rendered, excluded, stamp)
                    for name, fraction in FINETUNE_FRACTIONS.items():
                        _write_set(setdirs[name], _prefix(rendered, fraction), (), stamp)
                else:
                    _write_set(setdirs[group], rendered, excluded, stamp)
    else:
        logger.info("built-in corpus (seed %d, %g min) already complete in %s", seed, minutes, datadir)
    stats = corpus_stats(setdirs)
    atomic_write_text(datadir / STATS_FILE, json.dumps(stats, indent=2) + "\n")
    log_stats(stats)
    return setdirs


# --- statistics --------------------------------------------------------------------------------


def corpus_stats(setdirs: Mapping[str, Path]) -> dict[str, dict]:
    """Hours, utterances, speakers, words and vocabulary size of each set (from its data dir)."""
    stats = {}
    for name, setdir in setdirs.items():
        utts = read_datadir(setdir)
        words = [w for u in utts for w in (u.text or "").split()]
        seconds = sum(u.seconds for u in utts)
        stats[name] = {
            "hours": round(seconds / 3600, 4),
            "minutes": round(seconds / 60, 2),
            "utterances": len(utts),
            "speakers": len({u.speaker for u in utts}),
            "words": len(words),
            "vocabulary": len(set(words)),
            "mean_seconds": round(seconds / len(utts), 2) if utts else 0.0,
        }
    return stats


def log_stats(stats: Mapping[str, Mapping[str, float]]) -> None:
    logger.info("%-15s %8s %6s %5s %6s %6s", "set", "minutes", "utts", "spk", "words", "vocab")
    for name, s in stats.items():
        logger.info(
            "%-15s %8.2f %6d %5d %6d %6d",
            name, s["minutes"], s["utterances"], s["speakers"], s["words"], s["vocabulary"],
        )  # fmt: skip
