"""Stage 1 for real data: LibriSpeech and Libri-light as Kaldi-style data directories.

Sources (paths from db.sh) and the sets made from them:

- LibriSpeech (``LIBRISPEECH``), standard layout
  ``<root>/<split>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac`` plus ``<spk>-<chapter>.trans.txt``:
  ``train_pretrain`` from the pretraining splits (train-clean-100 by default, or all 960 h),
  and the evaluation sets ``dev_clean``, ``dev_other``, ``test_clean``, ``test_other``.
- Libri-light limited supervision (``LIBRILIGHT_LIMITED``, the ``librispeech_finetuning``
  folder, each fold in LibriSpeech layout): ``train_10min`` = fold ``1h/0`` (clean + other),
  ``train_1h`` = the six ``1h`` folds, ``train_10h`` = ``1h`` + ``9h``. Without the path these
  three sets are skipped, with a log message.

Evaluation and fine-tuning sets named by the caller must exist. Left unnamed, each standard one
is optional: one whose folders the corpus lacks (a download of a subset, e.g. only
train-clean-100, dev-clean and test-clean) is skipped with a note.
- Libri-light unlabelled (``LIBRILIGHT_UNLAB``, ``<subset>/<spk>/<book>/<name>.flac`` with a
  ``<name>.json`` whose ``voice_activity`` lists ``[start, end]`` seconds), added to
  ``train_pretrain``. Its files are up to hours long, so each is cut along its voice activity
  into chunks of at most ``max_segment_seconds`` (consecutive voiced spans are merged while
  they fit, longer spans are split evenly). Our readers (ESPnet's ``wav.scp`` loader, the
  feature dumpers) take whole files, not a Kaldi ``segments`` file, so the chunks are written
  as 16-bit FLAC files under ``<datadir>/librilight_<subset>_audio/<spk>/`` (lossless: the
  sources are 16-bit FLAC). Chunks already on disk with the right length are reused.
  ``train_pretrain`` then has no ``text`` (pretraining needs none).

Utterance ids are LibriSpeech's (``<spk>-<chapter>-<utt>``; Libri-light chunks:
``<spk>-<book>-<name>-<NNNN>``), the speaker is ``<spk>``, ``wav.scp`` holds absolute paths and
``utt2num_samples`` comes from the file headers, read over ``nj`` processes. Bad input never
stops the stage halfway and is never dropped silently: unreadable or corrupt audio, a sample
rate other than 16 kHz, stereo, an empty transcript, a transcript line without audio, audio
without a transcript line and duplicated utterance ids are each listed with the file at fault
in the set's ``excluded.tsv`` and counted in a warning. A set whose inputs did not change since
it was written (``.done`` records them) is not written again.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import soundfile as sf
from tqdm import tqdm

from espnet_hubert_ae.data.audio import AudioError, inspect_audio, inspect_many
from espnet_hubert_ae.data.datadir import SAMPLE_RATE, Excluded, Utterance, write_datadir
from espnet_hubert_ae.defaults import LIBRISPEECH_PRETRAIN_SPLITS
from espnet_hubert_ae.utils.fileio import atomic_open, atomic_write_text, done_marker

logger = logging.getLogger(__name__)

EVAL_SPLITS = {"dev_clean": "dev-clean", "dev_other": "dev-other", "test_clean": "test-clean", "test_other": "test-other"}
_FOLDS_1H = [f"1h/{fold}/{kind}" for fold in range(6) for kind in ("clean", "other")]
LIMITED_SETS = {
    "train_10min": ["1h/0/clean", "1h/0/other"],
    "train_1h": _FOLDS_1H,
    "train_10h": _FOLDS_1H + ["9h/clean", "9h/other"],
}
UNLAB_SUBSETS = ("small", "medium", "large")
_DB_SH = "egs2/librilight_ae/db.sh"


class CorpusError(ValueError):
    """A corpus on disk cannot be turned into a data directory."""


def corpus_dir(path: str | os.PathLike | None, variable: str, what: str) -> Path:
    """Return ``path`` as an absolute directory, or fail naming the db.sh variable that sets it."""
    if path is None or str(path) == "":
        raise FileNotFoundError(f"{what}: no path given; set {variable}=/path/to/it in {_DB_SH} (or export {variable})")
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{what} not found at {path}: set {variable} in {_DB_SH} (or export {variable}) to its folder")
    return path.resolve()


def _sub_dir(root: Path, relative: str, variable: str, what: str) -> Path:
    path = root / relative
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: {relative}/ not found under {root} ({variable} in {_DB_SH})")
    return path


# --- transcribed corpora (LibriSpeech layout) --------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    """A transcribed utterance found on disk, before its audio is checked."""

    utt_id: str
    audio: Path
    text: str


def scan_transcribed(dirs: Sequence[Path]) -> tuple[list[_Candidate], list[Excluded]]:
    """Pair the flac files and transcript lines found under ``dirs`` (LibriSpeech layout).

    Returns the complete pairs and, for everything that cannot be paired, why.
    """
    audio: dict[str, list[Path]] = defaultdict(list)
    lines: dict[str, list[tuple[str, Path]]] = defaultdict(list)
    for root in dirs:
        for flac in sorted(root.rglob("*.flac")):
            audio[flac.stem].append(flac)
        for trans in sorted(root.rglob("*.trans.txt")):
            for utt_id, text in _read_transcripts(trans):
                lines[utt_id].append((text, trans))

    found: list[_Candidate] = []
    excluded: list[Excluded] = []
    for utt_id in sorted(audio.keys() | lines.keys()):
        paired = _pair(utt_id, audio.get(utt_id, []), lines.get(utt_id, []))
        if isinstance(paired, _Candidate):
            found.append(paired)
        else:
            excluded += paired
    return found, excluded


def _pair(utt_id: str, flacs: list[Path], lines: list[tuple[str, Path]]) -> _Candidate | list[Excluded]:
    """The utterance made of one flac file and one transcript line, or why there is none."""
    if len(flacs) > 1 or len(lines) > 1:
        files = [str(p) for p in flacs] + [str(t) for _, t in lines]
        reason = f"duplicated utterance id (found in {len(files)} files: {', '.join(files)})"
        return [Excluded(utt_id, f, reason) for f in files]
    if not flacs:
        trans = lines[0][1]
        return [Excluded(utt_id, str(trans), f"transcript line without audio file (no {utt_id}.flac in {trans.parent})")]
    if not lines:
        return [Excluded(utt_id, str(flacs[0]), f"audio without a transcript line (none in {flacs[0].parent}/*.trans.txt)")]
    text, trans = lines[0]
    if not text:
        return [Excluded(utt_id, str(trans), "empty transcript")]
    if "-" not in utt_id:
        return [Excluded(utt_id, str(flacs[0]), "utterance id is not <speaker>-<chapter>-<utt>")]
    return _Candidate(utt_id, flacs[0], text)


def _read_transcripts(path: Path) -> Iterable[tuple[str, str]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if fields:
                yield fields[0], " ".join(fields[1:])


def check_candidates(candidates: Sequence[_Candidate], *, nj: int, desc: str) -> tuple[list[Utterance], list[Excluded]]:
    """Read every candidate's audio header (``nj`` processes); keep the good, explain the bad."""
    counts = inspect_many([c.audio for c in candidates], decode=False, nj=nj, desc=desc)
    utts, excluded = [], []
    for cand, count in zip(candidates, counts):
        if isinstance(count, AudioError):
            excluded.append(Excluded(cand.utt_id, str(cand.audio), count.problem))
        else:
            speaker = cand.utt_id.split("-")[0]
            utts.append(Utterance(cand.utt_id, str(cand.audio.resolve()), speaker, count, cand.text))
    return utts, excluded


# --- Libri-light unlabelled ---------------------------------------------------------------


def vad_chunks(voice: Iterable[Sequence[float]], *, max_seconds: float, duration: float) -> list[tuple[float, float]]:
    """Group voice-activity spans into chunks of at most ``max_seconds`` (seconds, in order).

    Consecutive spans are merged (with the pauses between them) while the chunk stays within
    the limit; a span longer than the limit is split into equal parts. Spans are clipped to
    ``[0, duration]``.
    """
    clipped = ((max(0.0, float(s)), min(duration, float(e))) for s, e in voice)
    spans = sorted((s, e) for s, e in clipped if e > s)
    chunks: list[tuple[float, float]] = []
    current: tuple[float, float] | None = None
    for start, end in spans:
        if current is not None and end - current[0] <= max_seconds:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            chunks.append(current)
            start, current = max(start, current[1]), None
        if end <= start:
            continue
        parts = max(1, math.ceil((end - start) / max_seconds - 1e-9))
        step = (end - start) / parts
        chunks += [(start + i * step, start + (i + 1) * step) for i in range(parts - 1)]
        current = (start + (parts - 1) * step, end)
    if current is not None:
        chunks.append(current)
    return chunks


def _read_voice_activity(path: Path) -> list[tuple[float, float]]:
    if not path.is_file():
        raise CorpusError("voice-activity file missing")
    try:
        spans = json.loads(path.read_text(encoding="utf-8"))["voice_activity"]
        return [(float(s), float(e)) for s, e in spans]
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CorpusError("voice-activity file is not valid JSON") from None
    except (KeyError, TypeError, ValueError):
        raise CorpusError("voice-activity file has no 'voice_activity' list of [start, end] seconds") from None


def _unlab_base_id(flac: Path) -> tuple[str, str]:
    """``(<spk>-<book>-<name>, <spk>)`` for ``.../<spk>/<book>/<name>.flac``, whitespace made ``_``."""
    speaker, book = flac.parent.parent.name, flac.parent.name
    return _no_spaces(f"{speaker}-{book}-{flac.stem}"), _no_spaces(speaker)


def _no_spaces(name: str) -> str:
    return re.sub(r"\s+", "_", name)


def _cut_one_file(job: tuple[Path, Path, float]) -> tuple[list[Utterance], list[Excluded]]:
    """Cut one Libri-light file along its voice activity; written chunks are reused."""
    flac, out_dir, max_seconds = job
    base_id, speaker = _unlab_base_id(flac)
    json_path = flac.with_suffix(".json")
    try:
        total = inspect_audio(flac, decode=False)
    except AudioError as err:
        return [], [Excluded(base_id, str(flac), err.problem)]
    try:
        voice = _read_voice_activity(json_path)
    except CorpusError as err:
        return [], [Excluded(base_id, str(json_path), str(err))]
    chunks = vad_chunks(voice, max_seconds=max_seconds, duration=total / SAMPLE_RATE)
    if not chunks:
        return [], [Excluded(base_id, str(json_path), "no voice activity inside the audio")]
    utts, excluded = [], []
    for index, (start, end) in enumerate(chunks):
        utt_id = f"{base_id}-{index:04d}"
        first, stop = round(start * SAMPLE_RATE), min(total, round(end * SAMPLE_RATE))
        out = out_dir / speaker / f"{utt_id}.flac"
        if stop <= first:
            excluded.append(Excluded(utt_id, str(json_path), f"voice activity {start:.3f}-{end:.3f} s holds no sample"))
            continue
        try:
            _write_chunk(flac, first, stop, out)
        except (RuntimeError, OSError) as err:
            problem = " ".join(str(err).split())  # one line: it goes into excluded.tsv
            excluded.append(Excluded(utt_id, str(flac), f"cannot cut samples {first}-{stop} ({problem})"))
            continue
        utts.append(Utterance(utt_id, str(out.resolve()), speaker, stop - first))
    return utts, excluded


def _write_chunk(source: Path, first: int, stop: int, out: Path) -> None:
    if out.is_file():
        try:
            if sf.info(str(out)).frames == stop - first:
                return
        except RuntimeError:
            pass  # a damaged earlier chunk: write it again
    samples, _ = sf.read(str(source), start=first, stop=stop, dtype="int16", always_2d=False)
    if len(samples) != stop - first:
        raise RuntimeError(f"read {len(samples)} samples, expected {stop - first}: truncated or corrupt audio")
    with atomic_open(out, "wb") as f:
        sf.write(f, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")


def unlab_subset_dir(root: str | os.PathLike | None, subset: str) -> Path:
    """The folder of one Libri-light unlabelled subset (``root/<subset>``, or ``root`` itself)."""
    if subset not in UNLAB_SUBSETS:
        raise CorpusError(f"Libri-light unlabelled subset must be one of {', '.join(UNLAB_SUBSETS)}, not {subset!r}")
    root = corpus_dir(root, "LIBRILIGHT_UNLAB", "Libri-light unlabelled audio")
    if root.name == subset:
        return root
    return _sub_dir(root, subset, "LIBRILIGHT_UNLAB", "Libri-light unlabelled audio")


def cut_unlabelled(
    subset_dir: Path, audio_dir: Path, *, max_seconds: float = 30.0, nj: int = 1
) -> tuple[list[Utterance], list[Excluded]]:
    """Cut every ``<spk>/<book>/<name>.flac`` under ``subset_dir`` into voice-activity chunks."""
    files = sorted(subset_dir.glob("*/*/*.flac"))
    if not files:
        raise CorpusError(f"no <spk>/<book>/<name>.flac files under {subset_dir} (LIBRILIGHT_UNLAB in {_DB_SH})")
    jobs = [(flac, audio_dir, max_seconds) for flac in files]
    bar = dict(total=len(jobs), desc=f"cut {subset_dir.name}", unit="file", mininterval=2.0)
    if nj <= 1:
        results = [_cut_one_file(job) for job in tqdm(jobs, **bar)]
    else:
        with multiprocessing.get_context("fork").Pool(nj) as pool:
            results = list(tqdm(pool.imap(_cut_one_file, jobs), **bar))
    utts = [u for found, _ in results for u in found]
    excluded = [e for _, bad in results for e in bad]
    return utts, excluded


# --- the sets ----------------------------------------------------------------------------


def _fingerprint(**inputs) -> str:
    return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in inputs.items()}, sort_keys=True) + "\n"


def _already_done(out: Path, fingerprint: str) -> bool:
    marker = done_marker(out)
    return marker.is_file() and marker.read_text(encoding="utf-8") == fingerprint


def _write_set(out: Path, utts: list[Utterance], excluded: list[Excluded], fingerprint: str) -> Path:
    name = out.name
    if not utts:
        examples = "; ".join(f"{e.file}: {e.reason}" for e in excluded[:5]) or "no audio files found"
        raise CorpusError(f"{name}: no usable utterance ({len(excluded)} excluded, e.g. {examples})")
    write_datadir(out, utts, excluded=excluded)
    atomic_write_text(done_marker(out), fingerprint)
    hours = sum(u.num_samples for u in utts) / SAMPLE_RATE / 3600
    speakers = len({u.speaker for u in utts})
    logger.info("%s: %d utterances, %.2f h, %d speakers -> %s", name, len(utts), hours, speakers, out)
    if excluded:
        logger.warning("%s: %d utterance(s) excluded, reasons in %s", name, len(excluded), out / "excluded.tsv")
    return out


def prepare_transcribed_set(out: Path, dirs: Sequence[Path], *, nj: int = 1, keep_text: bool = True) -> Path:
    """Write one data directory from folders in LibriSpeech layout (skipped when up to date)."""
    fingerprint = _fingerprint(dirs=[str(d) for d in dirs], keep_text=keep_text)
    if _already_done(out, fingerprint):
        logger.info("%s: already prepared (%s), skipping", out.name, done_marker(out))
        return out
    utts, excluded = _scan_and_check(dirs, nj=nj, desc=out.name)
    if not keep_text:
        utts = [Utterance(u.utt_id, u.audio, u.speaker, u.num_samples) for u in utts]
    return _write_set(out, utts, excluded, fingerprint)


def _scan_and_check(dirs: Sequence[Path], *, nj: int, desc: str) -> tuple[list[Utterance], list[Excluded]]:
    candidates, excluded = scan_transcribed(dirs)
    utts, bad_audio = check_candidates(candidates, nj=nj, desc=desc)
    return utts, excluded + bad_audio


def _prepare_pretrain(
    out: Path, dirs: Sequence[Path], unlab: Path | None, audio_dir: Path | None, *, nj: int, max_segment_seconds: float
) -> Path:
    fingerprint = _fingerprint(dirs=[str(d) for d in dirs], unlab=unlab, audio_dir=audio_dir, max_segment=max_segment_seconds)
    if _already_done(out, fingerprint):
        logger.info("%s: already prepared (%s), skipping", out.name, done_marker(out))
        return out
    utts, excluded = _scan_and_check(dirs, nj=nj, desc=out.name)
    if unlab is not None and audio_dir is not None:
        logger.info("%s: cutting Libri-light %s by voice activity into %s", out.name, unlab.name, audio_dir)
        chunks, bad = cut_unlabelled(unlab, audio_dir, max_seconds=max_segment_seconds, nj=nj)
        # Libri-light has no transcripts and a data directory is all-labelled or all-unlabelled.
        utts = [Utterance(u.utt_id, u.audio, u.speaker, u.num_samples) for u in utts] + chunks
        excluded += bad
    return _write_set(out, utts, excluded, fingerprint)


def prepare_librispeech(
    datadir: Path,
    *,
    librispeech: Path,
    pretrain_splits: Sequence[str] = LIBRISPEECH_PRETRAIN_SPLITS,
    eval_sets: Sequence[str] | None = None,
    finetune_sets: Sequence[str] | None = None,
    librilight_limited: Path | None = None,
    librilight_unlab: Path | None = None,
    unlab_subset: str | None = None,
    nj: int = 1,
    unlab_audio_dir: Path | None = None,
    max_segment_seconds: float = 30.0,
) -> dict[str, Path]:
    """Write every data directory the sources allow under ``datadir``; returns ``{set: path}``.

    ``eval_sets`` / ``finetune_sets``: the evaluation / Libri-light sets wanted, each required;
    None: every standard one the corpus has (see the module doc). All paths are checked before
    anything is written, so a wrong path fails at once, naming the db.sh variable to set.
    """
    datadir = Path(datadir)
    root = corpus_dir(librispeech, "LIBRISPEECH", "LibriSpeech")
    if not pretrain_splits:
        raise CorpusError("no LibriSpeech pretraining split given (e.g. train-clean-100)")
    pretrain_dirs = [_sub_dir(root, split, "LIBRISPEECH", "LibriSpeech") for split in pretrain_splits]
    eval_dirs = _set_dirs(root, {name: [split] for name, split in EVAL_SPLITS.items()}, eval_sets, "LIBRISPEECH",
                          "LibriSpeech", "--eval_sets")
    limited_dirs = _limited_dirs(librilight_limited, finetune_sets)
    unlab = None
    if librilight_unlab is not None or unlab_subset:
        if not unlab_subset:
            raise CorpusError("a Libri-light unlabelled path needs its subset (small, medium or large)")
        unlab = unlab_subset_dir(librilight_unlab, unlab_subset)
    audio_dir = Path(unlab_audio_dir or datadir / f"librilight_{unlab_subset}_audio").resolve() if unlab else None

    sets = {"train_pretrain": _prepare_pretrain(
        datadir / "train_pretrain", pretrain_dirs, unlab, audio_dir, nj=nj, max_segment_seconds=max_segment_seconds)}
    for name, dirs in {**limited_dirs, **eval_dirs}.items():
        sets[name] = prepare_transcribed_set(datadir / name, dirs, nj=nj)
    return sets


def _set_dirs(root: Path, standard: dict[str, list[str]], wanted: Sequence[str] | None, variable: str, what: str,
              option: str) -> dict[str, list[Path]]:
    """``{set: folders}`` of the ``wanted`` sets (each required), or of every ``standard`` set whose
    folders exist (the others skipped with a note)."""
    unknown = sorted(set(wanted or ()) - set(standard))
    if unknown:
        raise CorpusError(f"{option}: unknown set(s) {', '.join(unknown)}; choose from {', '.join(standard)}")
    found = {}
    for name in wanted if wanted is not None else standard:
        missing = next((rel for rel in standard[name] if not (root / rel).is_dir()), None)
        if missing is not None and wanted is None:
            logger.info("%s: %s/ not found under %s: skipping this optional set (%s names the sets to prepare)",
                        name, missing, root, option)
            continue
        found[name] = [_sub_dir(root, rel, variable, what) for rel in standard[name]]
    return found


def _limited_dirs(limited: Path | None, wanted: Sequence[str] | None) -> dict[str, list[Path]]:
    if (limited is None or str(limited) == "") and not wanted:
        logger.info(
            "Libri-light limited not given: skipping %s (set LIBRILIGHT_LIMITED in %s to the librispeech_finetuning folder)",
            ", ".join(LIMITED_SETS), _DB_SH,
        )
        return {}
    root = corpus_dir(limited, "LIBRILIGHT_LIMITED", "Libri-light limited supervision")
    if not (root / "1h").is_dir() and (root / "librispeech_finetuning" / "1h").is_dir():
        root = root / "librispeech_finetuning"
    return _set_dirs(root, LIMITED_SETS, wanted, "LIBRILIGHT_LIMITED",
                     "Libri-light limited supervision (librispeech_finetuning)", "--finetune_sets")
