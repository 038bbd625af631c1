"""Audio files: the one reader of 16 kHz mono audio, and the checks of every file that enters a
data directory.

:func:`read_audio` (:func:`read_utterance` for a data-directory entry) is how every stage gets
samples: target features, the analysis and ASR decoding. Two depths of checking, used by two
stages:

- the header (``decode=False``): fast, what stage 1 uses to fill ``utt2num_samples``;
- every sample (``decode=True``): what stage 2 uses, catching truncated or corrupt data and
  NaN/inf values that a header cannot show.

:func:`inspect_many` runs either over many files in worker processes with a progress bar and
returns, per file, either its sample count or the :class:`AudioError` that explains why it is
unusable, so callers can exclude bad files with a reason instead of crashing.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from typing import Sequence

import numpy as np
import soundfile as sf
from tqdm import tqdm

from espnet_hubert_ae.data.datadir import SAMPLE_RATE, Utterance

logger = logging.getLogger(__name__)

# Decoding in blocks keeps memory flat for long (e.g. hour-long Libri-light) files.
_DECODE_BLOCK = SAMPLE_RATE * 60


class AudioError(ValueError):
    """An audio file that cannot be used: unreadable, corrupt, wrong format or empty."""

    def __init__(self, path: str | os.PathLike, problem: str, utt_id: str | None = None):
        where = f"{path}: {problem}"
        super().__init__(where if utt_id is None else f"utterance {utt_id!r}: {where}")
        self.path = str(path)
        self.problem = problem
        self.utt_id = utt_id

    def __reduce__(self):  # rebuilt from its fields when sent back from a worker process
        return type(self), (self.path, self.problem, self.utt_id)


def read_audio(path: str | os.PathLike, *, utt_id: str | None = None, num_samples: int | None = None) -> np.ndarray:
    """The samples of a 16 kHz mono file as float32 in [-1, 1].

    ``num_samples`` (an utterance's ``utt2num_samples``) is checked when given. Raises
    :class:`AudioError` naming the file (and ``utt_id``) when it cannot be read, is not 16 kHz
    mono, or has another length.
    """
    try:
        wav, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except (RuntimeError, OSError) as err:  # libsndfile reports unreadable files as RuntimeError
        problem = "file not found" if not os.path.exists(path) else f"unreadable audio ({_first_line(err)})"
        raise AudioError(path, problem, utt_id) from None
    if rate != SAMPLE_RATE:
        raise AudioError(path, f"sample rate {rate} Hz, expected {SAMPLE_RATE}", utt_id)
    if wav.ndim != 1:
        raise AudioError(path, f"{wav.shape[1]} channels, expected mono", utt_id)
    if num_samples is not None and len(wav) != num_samples:
        raise AudioError(path, f"{len(wav)} samples, but utt2num_samples says {num_samples}", utt_id)
    return wav


def read_utterance(utt: Utterance) -> np.ndarray:
    """The samples of a data-directory utterance, checked against its ``utt2num_samples``."""
    return read_audio(utt.audio, utt_id=utt.utt_id, num_samples=utt.num_samples)


def inspect_audio(path: str | os.PathLike, *, decode: bool) -> int:
    """Check one file and return its number of samples.

    Raises :class:`AudioError` when the file is missing, unreadable, not 16 kHz, not mono or
    empty; with ``decode=True`` also when its samples cannot all be decoded, when fewer or more
    samples come out than the header announces, or when a sample is NaN or infinite.
    """
    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError) as err:  # libsndfile reports unreadable files as RuntimeError
        problem = "file not found" if not os.path.exists(path) else f"unreadable audio ({_first_line(err)})"
        raise AudioError(path, problem) from None
    if info.samplerate != SAMPLE_RATE:
        raise AudioError(path, f"sample rate {info.samplerate} Hz, expected {SAMPLE_RATE}")
    if info.channels != 1:
        raise AudioError(path, f"{info.channels} channels, expected mono")
    if info.frames <= 0:
        raise AudioError(path, "no samples (empty audio)")
    if decode:
        decoded = _decode_all(path)
        if decoded != info.frames:
            raise AudioError(path, f"decoded {decoded} samples but the header says {info.frames} (truncated or corrupt)")
    return int(info.frames)


def _decode_all(path: str | os.PathLike) -> int:
    count = 0
    try:
        for block in sf.blocks(str(path), blocksize=_DECODE_BLOCK, dtype="float32", always_2d=False):
            if not np.isfinite(block).all():
                raise AudioError(path, f"NaN or infinite sample near sample {count + int(np.argmin(np.isfinite(block)))}")
            count += len(block)
    except (RuntimeError, OSError) as err:
        raise AudioError(path, f"corrupt audio, decoding failed after {count} samples ({_first_line(err)})") from None
    return count


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _inspect_or_error(job: tuple[str, bool]) -> int | AudioError:
    path, decode = job
    try:
        return inspect_audio(path, decode=decode)
    except AudioError as err:
        return err


def inspect_many(
    paths: Sequence[str | os.PathLike], *, decode: bool, nj: int = 1, desc: str = "audio"
) -> list[int | AudioError]:
    """Inspect many files over ``nj`` worker processes; one sample count or AudioError per path, in order."""
    jobs = [(str(p), decode) for p in paths]
    bar = dict(total=len(jobs), desc=desc, unit="file", mininterval=2.0)
    if nj <= 1 or len(jobs) < 2:
        return [_inspect_or_error(job) for job in tqdm(jobs, **bar)]
    chunksize = max(1, min(256, len(jobs) // (nj * 8)))
    # Workers only read files; forking avoids re-importing the (torch-heavy) parent modules.
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with context.Pool(nj) as pool:
        return list(tqdm(pool.imap(_inspect_or_error, jobs, chunksize=chunksize), **bar))
