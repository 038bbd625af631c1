"""Feature dumps on disk: one float32 ``.npy`` per shard, read back without loading them whole.

A dump of one source for one set lives in a directory::

    meta.json              source, dimension, number of shards
    shard.<j>.npy          (frames, dim) float32, utterances of shard j one after the other
    shard.<j>.cost.json    wall and CPU seconds the shard took (utils.cost), written before its index
    shard.<j>.index.tsv    <utt> <first frame> <frames>, written after its .npy: marks the shard done
    .done                  every shard is done

Shards are contiguous runs of the id-sorted utterances, so a job array of ``nj`` jobs dumps one
shard each and an interrupted dump resumes with the unfinished shards only. Readers seek into
the files instead of memory-mapping them, so that streaming through a dump keeps memory flat.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import multiprocessing
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from tqdm import tqdm

from espnet_hubert_ae.data.audio import read_utterance
from espnet_hubert_ae.data.datadir import SAMPLE_RATE, Utterance
from espnet_hubert_ae.targets.sources import FeatureExtractor, Layer, TargetError, TargetSource
from espnet_hubert_ae.utils.cost import Cost, CostMeter
from espnet_hubert_ae.utils.fileio import atomic_open, atomic_write_text, done_marker

logger = logging.getLogger(__name__)

DTYPE = np.dtype("<f4")
DEFAULT_BATCH_SECONDS = 100.0  # padded audio per forward pass of a layer extraction


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class _Span:
    shard: int
    offset: int
    frames: int


class FeatureSet:
    """A finished feature dump: utterance ids, frame counts, and streamed reads."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        if not done_marker(self.directory).is_file():
            raise TargetError(f"{self.directory}: no finished feature dump here (run the feature dump first)")
        self.meta = json.loads((self.directory / "meta.json").read_text())
        self.dim = int(self.meta["dim"])
        self.spans: dict[str, _Span] = {}
        self._data_offset: dict[int, int] = {}
        for shard in range(int(self.meta["nj"])):
            self._data_offset[shard] = _npy_data_offset(self._shard_npy(shard))
            for utt, offset, frames in _read_index(self._shard_index(shard)):
                self.spans[utt] = _Span(shard, offset, frames)
        self.utt_ids = sorted(self.spans, key=str.encode)

    @property
    def name(self) -> str:
        return str(self.directory)

    @property
    def num_frames(self) -> int:
        return sum(s.frames for s in self.spans.values())

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
        f.seek(self._data_offset[shard] + offset * self.dim * DTYPE.itemsize)
        data = np.fromfile(f, dtype=DTYPE, count=frames * self.dim)
        if data.size != frames * self.dim:
            raise TargetError(f"{self._shard_npy(shard)}: truncated (remove {self.directory} and dump again)")
        return data.reshape(frames, self.dim)

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
        chunk_frames = chunk_frames or max(1024, 32 * 2**20 // (DTYPE.itemsize * self.dim))
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


def _npy_data_offset(path: Path) -> int:
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        if dtype != DTYPE or fortran or len(shape) != 2:
            raise TargetError(f"{path}: not a (frames, dim) float32 feature file")
        return f.tell()


def _read_index(path: Path) -> Iterator[tuple[str, int, int]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            utt, offset, frames = line.split()
            yield utt, int(offset), int(frames)


# ---------------------------------------------------------------------------------------------
# Writing


def shard_utterances(utterances: Sequence[Utterance], nj: int) -> list[list[Utterance]]:
    """Split id-sorted utterances into ``nj`` contiguous, near-equal shards (some may be empty)."""
    ordered = sorted(utterances, key=lambda u: u.utt_id.encode())
    bounds = np.linspace(0, len(ordered), nj + 1).round().astype(int)
    return [ordered[bounds[j] : bounds[j + 1]] for j in range(nj)]


def _batches(utts: list[Utterance], batch_samples: int) -> Iterator[list[Utterance]]:
    """Length-sorted batches whose padded size stays under ``batch_samples``."""
    batch: list[Utterance] = []
    for utt in sorted(utts, key=lambda u: u.num_samples):
        if batch and utt.num_samples * (len(batch) + 1) > batch_samples:
            yield batch
            batch = []
        batch.append(utt)
    if batch:
        yield batch


def _dump_shard(
    extractor: FeatureExtractor, utts: list[Utterance], directory: Path, shard: int, batch_seconds: float
) -> None:
    expected = {u.utt_id: extractor.frame_count(u.num_samples) for u in utts}
    offsets = np.concatenate([[0], np.cumsum([expected[u.utt_id] for u in utts])]).astype(int)
    offset_of = {u.utt_id: int(o) for u, o in zip(utts, offsets)}
    total, dim = int(offsets[-1]), extractor.dim
    for utt in utts:
        if expected[utt.utt_id] == 0:
            raise TargetError(f"utterance {utt.utt_id!r}: {utt.num_samples} samples is too short for one frame")
    batch_size = 1 if not isinstance(extractor.source, Layer) else int(batch_seconds * SAMPLE_RATE)
    bar = tqdm(total=len(utts), desc=f"{directory.name} shard {shard}", unit="utt", leave=False, disable=None)
    with CostMeter() as meter, atomic_open(directory / f"shard.{shard}.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": DTYPE.str, "fortran_order": False, "shape": (total, dim)})
        data_start = f.tell()
        f.truncate(data_start + total * dim * DTYPE.itemsize)
        for batch in _batches(utts, batch_size):
            waveforms = [read_utterance(u) for u in batch]
            for utt, feats in zip(batch, extractor(waveforms)):
                _check_features(utt, feats, expected[utt.utt_id], dim, extractor.source)
                f.seek(data_start + offset_of[utt.utt_id] * dim * DTYPE.itemsize)
                f.write(np.ascontiguousarray(feats, dtype=DTYPE).tobytes())
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


def _prepare_directory(directory: Path, source: TargetSource, nj: int, dim: int | None) -> None:
    """Write meta.json, or clear a dump made by another source/checkpoint or shard count."""
    meta = {"source": source.describe(), "nj": nj}
    meta_path = directory / "meta.json"
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if {k: old.get(k) for k in meta} == meta:
            return
        logger.warning("%s: made by another source or shard count; dumping again", directory)
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
) -> Path:
    """Dump ``source`` features of ``utterances`` into ``directory`` as ``nj`` shards.

    ``job`` (1-based, as in job arrays) dumps only that shard; otherwise every unfinished shard
    is dumped, by up to ``workers`` processes. Finished shards are skipped, so a rerun resumes.
    The set is marked done once all shards are. ``extractor`` (of ``source``) lets several
    sets share one loaded model. Returns ``directory``.
    """
    directory = Path(directory)
    if not utterances:
        raise TargetError(f"{directory}: the set has no utterances")
    if done_marker(directory).is_file() and _same_source(directory, source):
        return directory  # finished, whatever its shard count
    extractor = extractor or FeatureExtractor(source, device=device)
    _prepare_directory(directory, source, nj, extractor.dim)
    shards = shard_utterances(utterances, nj)
    todo = [j for j in range(nj) if (job is None or j == job - 1) and not _shard_done(directory, j)]
    if workers > 1 and len(todo) > 1:
        _dump_in_workers(shards, todo, source, directory, workers, device, batch_seconds)
    else:
        for j in todo:
            _dump_shard(extractor, shards[j], directory, j, batch_seconds)
    if all(_shard_done(directory, j) for j in range(nj)):
        done_marker(directory).touch()
    return directory


def _same_source(directory: Path, source: TargetSource) -> bool:
    meta = json.loads((directory / "meta.json").read_text())
    return meta.get("source") == source.describe()


def _worker_dump(shard_utts, source, directory, shard, device, batch_seconds) -> None:
    from espnet_hubert_ae.utils.cli import limit_threads

    limit_threads(1)
    _dump_shard(FeatureExtractor(source, device=device), shard_utts, directory, shard, batch_seconds)


def _dump_in_workers(shards, todo, source, directory, workers, device, batch_seconds) -> None:
    context = multiprocessing.get_context("spawn")  # no forking of a process holding torch threads
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [
            pool.submit(_worker_dump, shards[j], source, directory, j, device, batch_seconds) for j in todo
        ]
        for future in futures:
            future.result()


def write_feature_dump(directory: str | os.PathLike, items: Sequence[tuple[str, np.ndarray]], describe: dict) -> Path:
    """Store ready-made ``(utt, features)`` as a one-shard dump (benchmarks, imported features)."""
    directory = Path(directory)
    if not items:
        raise TargetError(f"{directory}: nothing to store")
    dim = int(items[0][1].shape[1])
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / "meta.json", json.dumps({"source": describe, "nj": 1, "dim": dim}, indent=1) + "\n")
    total = sum(len(a) for _, a in items)
    lines, offset = [], 0
    with atomic_open(directory / "shard.0.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": DTYPE.str, "fortran_order": False, "shape": (total, dim)})
        for utt, array in items:
            f.write(np.ascontiguousarray(array, dtype=DTYPE).tobytes())
            lines.append(f"{utt} {offset} {len(array)}\n")
            offset += len(array)
    atomic_write_text(directory / "shard.0.index.tsv", "".join(lines))
    done_marker(directory).touch()
    return directory
