"""Feature dumps on disk: one ``.npy`` per shard (float32 or float16), read back without loading
them whole, and the extraction plan that every reader and labeller shares.

A dump of one source for one set (or for the k-means fit portion of a set) lives in a directory::

    meta.json              source, dimension, dtype, number of shards, extraction plan
    shard.<j>.npy          (frames, dim), utterances of shard j one after the other
    shard.<j>.cost.json    wall and CPU seconds the shard took (utils.cost), written before its index
    shard.<j>.index.tsv    <utt> <first frame> <frames>, written after its .npy: marks the shard done
    .done                  every shard is done

**The extraction plan.** A layer's features of an utterance depend, in their last bits, on the
other utterances of its padded batch (and on the thread count). So that a dump, a fit-portion
dump and a labelling pass that streams features without storing them compute the *same*
features, batches are a function of the set alone (:func:`plan_batches`): length-sorted, the
k-means fit portion's utterances batched among themselves, and never of the number of shards.
A shard is a contiguous run of those batches (:func:`shard_batches`), so a job array of ``nj``
jobs handles one shard each and an interrupted dump resumes with the unfinished shards only.

**Storage precision.** float16 halves the disk of a dump; features are rounded to the dump's
dtype when written, and a labelling pass that computes features live rounds them the same way
(:func:`round_to`), so that labels do not depend on whether the features went through disk.
Readers seek into the files instead of memory-mapping them, so that streaming through a dump
keeps memory flat; they return float32.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from espnet_hubert_ae.data.audio import read_utterance
from espnet_hubert_ae.data.datadir import SAMPLE_RATE, Utterance
from espnet_hubert_ae.defaults import FEATURE_DTYPE
from espnet_hubert_ae.targets.sources import FeatureExtractor, Layer, TargetError, TargetSource
from espnet_hubert_ae.utils.cost import Cost, CostMeter
from espnet_hubert_ae.utils.fileio import atomic_open, atomic_write_text, done_marker

logger = logging.getLogger(__name__)

DTYPES = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2")}
DEFAULT_FEATURE_DTYPE = FEATURE_DTYPE  # float16: half the disk, chosen by measurement (README, "Targets at scale")
DEFAULT_BATCH_SECONDS = 100.0  # padded audio per forward pass of a layer extraction
PLAN_VERSION = 2  # batches from plan_batches, shards from shard_batches


def check_dtype(dtype: str) -> np.dtype:
    if dtype not in DTYPES:
        raise TargetError(f"feature dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    return DTYPES[dtype]


def round_to(features: np.ndarray, dtype: str, what: str = "features") -> np.ndarray:
    """``features`` as float32 after rounding to ``dtype`` (what a dump of that dtype stores)."""
    if dtype == "float32":
        return np.ascontiguousarray(features, dtype=np.float32)
    with np.errstate(over="ignore"):
        rounded = np.asarray(features, dtype=np.float32).astype(DTYPES[dtype])
    if not np.isfinite(rounded).all():
        raise TargetError(f"{what}: values beyond the range of {dtype} (use the float32 feature dtype)")
    return rounded.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The extraction plan


def batch_samples_for(source: TargetSource, batch_seconds: float) -> int:
    """Padded samples per batch: layers are batched, MFCC is computed one utterance at a time."""
    return int(batch_seconds * SAMPLE_RATE) if isinstance(source, Layer) else 1


def plan_batches(
    utterances: Sequence[Utterance], batch_samples: int, first: Collection[str] = ()
) -> list[list[Utterance]]:
    """The batches a set's features are computed in: a function of the set alone.

    Utterances in ``first`` (the k-means fit portion) come first and are batched among
    themselves, so that a dump of the fit portion alone holds bit for bit the features that a
    pass over the whole set computes. Within each group, utterances are sorted by length (then
    id) and cut into batches whose padded size stays under ``batch_samples`` (one utterance
    per batch at least).
    """
    chosen = set(first)
    groups = ([u for u in utterances if u.utt_id in chosen], [u for u in utterances if u.utt_id not in chosen])
    batches: list[list[Utterance]] = []
    for group in groups:
        batch: list[Utterance] = []
        for utt in sorted(group, key=lambda u: (u.num_samples, u.utt_id.encode())):
            if batch and utt.num_samples * (len(batch) + 1) > batch_samples:
                batches.append(batch)
                batch = []
            batch.append(utt)
        if batch:
            batches.append(batch)
    return batches


def shard_batches(batches: Sequence[list[Utterance]], nj: int) -> list[list[list[Utterance]]]:
    """``nj`` contiguous runs of ``batches`` with near-equal audio (some may be empty)."""
    if nj < 1:
        raise TargetError(f"the number of shards must be at least 1, not {nj}")
    sizes = np.array([sum(u.num_samples for u in batch) for batch in batches], dtype=np.float64)
    # A batch goes to the shard in which its first sample falls.
    starts = np.concatenate([[0.0], np.cumsum(sizes)[:-1]]) if len(batches) else np.zeros(0)
    owner = np.minimum((starts * nj / max(sizes.sum(), 1.0)).astype(int), nj - 1)
    return [[batches[i] for i in np.flatnonzero(owner == j)] for j in range(nj)]


def plan_digest(batches: Sequence[list[Utterance]]) -> str:
    """What identifies a plan: its batches' utterances and lengths, in order."""
    digest = hashlib.sha256()
    for batch in batches:
        digest.update(" ".join(f"{u.utt_id}:{u.num_samples}" for u in batch).encode() + b"\n")
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class _Span:
    shard: int
    offset: int
    frames: int


class FeatureSet:
    """A finished feature dump: utterance ids, frame counts, and streamed reads (as float32)."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        if not done_marker(self.directory).is_file():
            raise TargetError(f"{self.directory}: no finished feature dump here (run the feature dump first)")
        self.meta = json.loads((self.directory / "meta.json").read_text())
        self.dim = int(self.meta["dim"])
        self.dtype = self.meta.get("dtype", "float32")  # dumps written before float16 existed are float32
        self._np_dtype = check_dtype(self.dtype)
        self.spans: dict[str, _Span] = {}
        self._data_offset: dict[int, int] = {}
        for shard in range(int(self.meta["nj"])):
            self._data_offset[shard] = _npy_data_offset(self._shard_npy(shard), self._np_dtype)
            for utt, offset, frames in _read_index(self._shard_index(shard)):
                self.spans[utt] = _Span(shard, offset, frames)
        self.utt_ids = sorted(self.spans, key=str.encode)

    @property
    def name(self) -> str:
        return str(self.directory)

    @property
    def num_frames(self) -> int:
        return sum(s.frames for s in self.spans.values())

    @property
    def num_bytes(self) -> int:
        """Bytes of the dump's files on disk (apparent sizes)."""
        return sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())

    def frames(self, utt_id: str) -> int:
        return self.spans[utt_id].frames

    @property
    def cost(self) -> Cost:
        """What making the dump cost: the sum over its shards (zero for shards that kept no record)."""
        total = Cost()
        for shard in range(int(self.meta["nj"])):
            path = self.directory / f"shard.{shard}.cost.json"
            if path.is_file():
                total += Cost.from_dict(json.loads(path.read_text()))
        return total

    def _shard_npy(self, shard: int) -> Path:
        return self.directory / f"shard.{shard}.npy"

    def _shard_index(self, shard: int) -> Path:
        return self.directory / f"shard.{shard}.index.tsv"

    def _read(self, f, shard: int, offset: int, frames: int) -> np.ndarray:
        itemsize = self._np_dtype.itemsize
        f.seek(self._data_offset[shard] + offset * self.dim * itemsize)
        data = np.fromfile(f, dtype=self._np_dtype, count=frames * self.dim)
        if data.size != frames * self.dim:
            raise TargetError(f"{self._shard_npy(shard)}: truncated (remove {self.directory} and dump again)")
        return data.reshape(frames, self.dim).astype(np.float32, copy=False)

    def read(self, utt_id: str) -> np.ndarray:
        """The ``(frames, dim)`` features of one utterance."""
        if utt_id not in self.spans:
            raise TargetError(f"{self.directory}: no features for utterance {utt_id!r}")
        span = self.spans[utt_id]
        with open(self._shard_npy(span.shard), "rb") as f:
            return self._read(f, span.shard, span.offset, span.frames)

    def iter_chunks(
        self, utt_ids: Sequence[str] | None = None, chunk_frames: int | None = None
    ) -> Iterator[tuple[list[tuple[str, int]], np.ndarray]]:
        """Stream utterances (all, or ``utt_ids`` in order) as ``([(utt, frames), ...], array)``.

        Each chunk holds whole utterances, about ``chunk_frames`` frames (default: ~32 MiB; one
        long utterance may exceed it). Utterances adjacent on disk are read in one go.
        """
        ids = self.utt_ids if utt_ids is None else list(utt_ids)
        chunk_frames = chunk_frames or max(1024, 32 * 2**20 // (4 * self.dim))
        group: list[tuple[str, int]] = []
        group_frames = 0
        for utt in ids:
            if utt not in self.spans:
                raise TargetError(f"{self.directory}: no features for utterance {utt!r}")
            frames = self.spans[utt].frames
            if group and group_frames + frames > chunk_frames:
                yield group, self._read_group(group)
                group, group_frames = [], 0
            group.append((utt, frames))
            group_frames += frames
        if group:
            yield group, self._read_group(group)

    def _read_group(self, group: list[tuple[str, int]]) -> np.ndarray:
        pieces: list[np.ndarray] = []
        runs = _merge_adjacent([self.spans[utt] for utt, _ in group])
        handles: dict[int, object] = {}
        try:
            for span in runs:
                if span.shard not in handles:
                    handles[span.shard] = open(self._shard_npy(span.shard), "rb")
                pieces.append(self._read(handles[span.shard], span.shard, span.offset, span.frames))
        finally:
            for f in handles.values():
                f.close()
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def _merge_adjacent(spans: list[_Span]) -> list[_Span]:
    runs: list[_Span] = []
    for span in spans:
        last = runs[-1] if runs else None
        if last and last.shard == span.shard and last.offset + last.frames == span.offset:
            runs[-1] = _Span(last.shard, last.offset, last.frames + span.frames)
        else:
            runs.append(span)
    return runs


def _npy_data_offset(path: Path, dtype: np.dtype) -> int:
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, found = read_header(f)
        if found != dtype or fortran or len(shape) != 2:
            raise TargetError(f"{path}: not a (frames, dim) {dtype.name} feature file")
        return f.tell()


def _read_index(path: Path) -> Iterator[tuple[str, int, int]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            utt, offset, frames = line.split()
            yield utt, int(offset), int(frames)


# ---------------------------------------------------------------------------------------------
# Computing


def expected_frame_counts(extractor: FeatureExtractor, utts: Sequence[Utterance]) -> dict[str, int]:
    """Frames of each utterance's features; an utterance too short for one frame is an error."""
    expected = {u.utt_id: extractor.frame_count(u.num_samples) for u in utts}
    for utt in utts:
        if expected[utt.utt_id] == 0:
            raise TargetError(f"utterance {utt.utt_id!r}: {utt.num_samples} samples is too short for one frame")
    return expected


def compute_batch(extractor: FeatureExtractor, batch: list[Utterance], dtype: str) -> list[np.ndarray]:
    """The features of one planned batch, checked, rounded to ``dtype`` (float32 arrays)."""
    waveforms = [read_utterance(u) for u in batch]
    out = []
    for utt, feats in zip(batch, extractor(waveforms)):
        _check_features(utt, feats, extractor.frame_count(utt.num_samples), extractor.dim, extractor.source)
        out.append(round_to(feats, dtype, f"utterance {utt.utt_id!r}: {extractor.source.name} features"))
    return out


def _dump_shard(
    extractor: FeatureExtractor, batches: list[list[Utterance]], directory: Path, shard: int, dtype: str
) -> None:
    utts = [u for batch in batches for u in batch]
    expected = expected_frame_counts(extractor, utts)
    offsets = np.concatenate([[0], np.cumsum([expected[u.utt_id] for u in utts])]).astype(int)
    offset_of = {u.utt_id: int(o) for u, o in zip(utts, offsets)}
    total, dim, np_dtype = int(offsets[-1]), extractor.dim, DTYPES[dtype]
    bar = tqdm(total=len(utts), desc=f"{directory.name} shard {shard}", unit="utt", leave=False, disable=None)
    with CostMeter() as meter, atomic_open(directory / f"shard.{shard}.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": np_dtype.str, "fortran_order": False, "shape": (total, dim)})
        data_start = f.tell()
        f.truncate(data_start + total * dim * np_dtype.itemsize)
        for batch in batches:
            for utt, feats in zip(batch, compute_batch(extractor, batch, dtype)):
                f.seek(data_start + offset_of[utt.utt_id] * dim * np_dtype.itemsize)
                f.write(feats.astype(np_dtype).tobytes())
            bar.update(len(batch))
    bar.close()
    atomic_write_text(directory / f"shard.{shard}.cost.json", json.dumps(meter.cost.to_dict()) + "\n")
    lines = "".join(f"{u.utt_id} {offset_of[u.utt_id]} {expected[u.utt_id]}\n" for u in utts)
    atomic_write_text(directory / f"shard.{shard}.index.tsv", lines)


def _check_features(utt: Utterance, feats: np.ndarray, frames: int, dim: int, source: TargetSource) -> None:
    if feats.shape != (frames, dim):
        raise TargetError(
            f"utterance {utt.utt_id!r}: {source.name} features have shape {feats.shape}, expected ({frames}, {dim})"
        )
    if not np.isfinite(feats).all():
        raise TargetError(f"utterance {utt.utt_id!r}: {source.name} features contain NaN or infinite values")


def _prepare_directory(directory: Path, meta: dict, dim: int) -> None:
    """Write meta.json, or clear a dump made by another source, shard count, dtype or plan."""
    meta_path = directory / "meta.json"
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if {k: old.get(k) for k in meta} == meta:
            return
        logger.warning("%s: made by another source, shard count, dtype or plan; dumping again", directory)
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(meta_path, json.dumps({**meta, "dim": dim}, indent=1) + "\n")


def _shard_done(directory: Path, shard: int) -> bool:
    return (directory / f"shard.{shard}.index.tsv").is_file()


def dump_features(
    utterances: Sequence[Utterance],
    source: TargetSource,
    directory: str | os.PathLike,
    *,
    nj: int = 1,
    job: int | None = None,
    workers: int = 1,
    device: str = "cpu",
    batch_seconds: float = DEFAULT_BATCH_SECONDS,
    extractor: FeatureExtractor | None = None,
    dtype: str = "float32",
    first: Collection[str] = (),
) -> Path:
    """Dump ``source`` features of ``utterances`` into ``directory`` as ``nj`` shards.

    Batches follow :func:`plan_batches` (``first``: the utterances batched apart, ahead of the
    others -- the k-means fit portion of a training set), shards :func:`shard_batches`.
    ``job`` (1-based, as in job arrays) dumps only that shard; otherwise every unfinished shard
    is dumped, by up to ``workers`` processes. Finished shards are skipped, so a rerun resumes.
    The set is marked done once all shards are; a finished dump of the same source and dtype
    is kept whatever its shard count. ``extractor`` (of ``source``) lets several sets share
    one loaded model. Returns ``directory``.
    """
    directory = Path(directory)
    check_dtype(dtype)
    if not utterances:
        raise TargetError(f"{directory}: the set has no utterances")
    if done_marker(directory).is_file() and _same_features(directory, source, dtype):
        return directory  # finished, whatever its shard count
    extractor = extractor or FeatureExtractor(source, device=device)
    batches = plan_batches(utterances, batch_samples_for(source, batch_seconds), first)
    meta = {"source": source.describe(), "nj": nj, "dtype": dtype,
            "plan": {"version": PLAN_VERSION, "digest": plan_digest(batches)}}  # fmt: skip
    _prepare_directory(directory, meta, extractor.dim)
    shards = shard_batches(batches, nj)
    todo = [j for j in range(nj) if (job is None or j == job - 1) and not _shard_done(directory, j)]
    if workers > 1 and len(todo) > 1:
        _dump_in_workers(shards, todo, source, directory, workers, device, dtype)
    else:
        for j in todo:
            _dump_shard(extractor, shards[j], directory, j, dtype)
    if all(_shard_done(directory, j) for j in range(nj)):
        done_marker(directory).touch()
    return directory


def _same_features(directory: Path, source: TargetSource, dtype: str) -> bool:
    meta = json.loads((directory / "meta.json").read_text())
    return meta.get("source") == source.describe() and meta.get("dtype", "float32") == dtype


def _worker_dump(shard_batches_, source, directory, shard, device, dtype) -> None:
    from espnet_hubert_ae.utils.cli import limit_threads

    limit_threads(1)
    _dump_shard(FeatureExtractor(source, device=device), shard_batches_, directory, shard, dtype)


def _dump_in_workers(shards, todo, source, directory, workers, device, dtype) -> None:
    context = multiprocessing.get_context("spawn")  # no forking of a process holding torch threads
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_worker_dump, shards[j], source, directory, j, device, dtype) for j in todo]
        for future in futures:
            future.result()


def write_feature_dump(
    directory: str | os.PathLike, items: Sequence[tuple[str, np.ndarray]], describe: dict, dtype: str = "float32"
) -> Path:
    """Store ready-made ``(utt, features)`` as a one-shard dump (benchmarks, imported features)."""
    directory = Path(directory)
    np_dtype = check_dtype(dtype)
    if not items:
        raise TargetError(f"{directory}: nothing to store")
    dim = int(items[0][1].shape[1])
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"source": describe, "nj": 1, "dim": dim, "dtype": dtype}
    atomic_write_text(directory / "meta.json", json.dumps(meta, indent=1) + "\n")
    total = sum(len(a) for _, a in items)
    lines, offset = [], 0
    with atomic_open(directory / "shard.0.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": np_dtype.str, "fortran_order": False, "shape": (total, dim)})
        for utt, array in items:
            f.write(np.ascontiguousarray(array, dtype=np_dtype).tobytes())
            lines.append(f"{utt} {offset} {len(array)}\n")
            offset += len(array)
    atomic_write_text(directory / "shard.0.index.tsv", "".join(lines))
    done_marker(directory).touch()
    return directory
