"""Phone transcripts for SUPERB's phoneme-recognition probe, from the phone alignments.

The reference of an utterance is the sequence of its aligned phones with silence dropped
(``SIL``: the built-in corpus' pauses, MFA's ``sil``/``sp``; see
:mod:`espnet_hubert_ae.data.alignments`), written as a Kaldi-style ``text`` whose words are
phones, so that ESPnet trains on it with ``token_type: word``. The alignments are the
``phones.ctm`` of stage 1 (built-in corpus) or stage 3 (LibriSpeech, from MFA TextGrids).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from espnet_hubert_ae.data.datadir import SILENCE, DataDirError, read_ctm, read_table
from espnet_hubert_ae.utils.fileio import atomic_write_text

PHONES_CTM = "phones.ctm"


def find_phone_ctm(datadir: str | os.PathLike, alignment_dirs: Sequence[str | os.PathLike] = ()) -> Path:
    """``<datadir>/phones.ctm``, else ``<dir>/<set name>/phones.ctm`` for the first of
    ``alignment_dirs`` that has one; fails naming every place looked at."""
    datadir = Path(datadir)
    candidates = [datadir / PHONES_CTM] + [Path(d) / datadir.name / PHONES_CTM for d in alignment_dirs]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataDirError(
        f"no phone alignments for {datadir.name} (looked for {', '.join(map(str, candidates))}): the built-in "
        "corpus writes them in stage 1, LibriSpeech in stage 3 (LIBRISPEECH_ALIGNMENTS in db.sh)"
    )


def phone_transcripts(datadir: str | os.PathLike, ctm: str | os.PathLike) -> dict[str, str]:
    """``{utterance: "p1 p2 ..."}`` for every utterance of ``datadir`` (silence dropped).

    Every utterance must have at least one non-silent phone in ``ctm``: a missing one is an
    error naming it (the probe would otherwise train on an empty reference).
    """
    utterances = read_table(Path(datadir) / "wav.scp")
    segments = read_ctm(ctm)
    transcripts, missing = {}, []
    for utt_id in sorted(utterances, key=str.encode):
        phones = [s.label for s in segments.get(utt_id, ()) if s.label != SILENCE]
        if phones:
            transcripts[utt_id] = " ".join(phones)
        else:
            missing.append(utt_id)
    if missing:
        raise DataDirError(f"{ctm}: no phones for {len(missing)} of the {len(utterances)} utterances of {datadir} "
                           f"(e.g. {missing[:3]})")
    return transcripts


def write_phone_text(datadir: str | os.PathLike, ctm: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Write the phone transcripts of ``datadir`` as a Kaldi-style text file; returns its path."""
    transcripts = phone_transcripts(datadir, ctm)
    atomic_write_text(path, "".join(f"{u} {t}\n" for u, t in transcripts.items()))
    return Path(path)
