"""Every hidden state of an upstream, extracted once per (upstream, data set), for frozen downstreams.

A frozen downstream never changes its upstream, so forwarding the upstream at every update
repeats the same work; here it runs once per utterance and the states are kept in a kaldiio
ark/scp that ESPnet reads as ``kaldi_ark`` features. One cache, ``<cache_root>/<tag>/<set>/``::

    plan.json            what is extracted: source identity, utterance list, shards, dtype
    shards/NNNN.ark      the features of one shard of utterances
    shards/NNNN.json     frames per utterance of that shard, and the seconds it took
    shards/NNNN.scp      <utt> <ark>:<offset>; written last, so its presence marks the shard done
    feats.scp            every utterance, in utterance order (ESPnet's data file)
    feats_shape          <utt> <frames> (ESPnet's shape file)
    cache.json           what is inside: upstream, source identity (checkpoint path and SHA-256),
                         num_layers, layer_dim, dtype, frame_rate, utterances, frames, cost
    .done

An utterance is one matrix ``(frames, num_layers x layer_dim)``: hidden state ``l`` (the
project's layer index) in columns ``l x layer_dim`` to ``(l + 1) x layer_dim``.
float16 (the default) is stored with kaldiio's ``numpy`` writer: kaldiio, and therefore ESPnet,
read it (as float32 after loading), Kaldi's own binaries do not; ``--dtype float32`` writes
standard Kaldi float matrices at twice the size. An interrupted extraction resumes at the
first unfinished shard.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from espnet_hubert_ae.data.audio import read_audio
from espnet_hubert_ae.data.datadir import read_table
from espnet_hubert_ae.defaults import CACHE_DTYPE
from espnet_hubert_ae.utils.fileio import atomic_write_text, done_marker

logger = logging.getLogger(__name__)

DTYPES = ("float16", "float32")
SHARD_UTTERANCES = 100
FORMAT_VERSION = 1


class CacheError(ValueError):
    """A cache that does not hold what was asked for, or an utterance that cannot go into one."""


@dataclasses.dataclass(frozen=True)
class CacheInfo:
    """What a finished cache holds (its ``cache.json``)."""

    directory: Path
    upstream: str
    set_name: str
    identity: dict
    num_layers: int
    layer_dim: int
    dtype: str
    frame_rate: float
    utterances: int
    utterance_digest: str  # SHA-256 of the "<utt> <audio>" lines it was extracted from
    frames: int
    extract_seconds: float
    extract_cpu_seconds: float

    @property
    def feats_scp(self) -> Path:
        return self.directory / "feats.scp"

    @property
    def shape_file(self) -> Path:
        return self.directory / "feats_shape"

    def as_dict(self) -> dict:
        record = dataclasses.asdict(self)
        record["directory"] = str(self.directory)
        return {"version": FORMAT_VERSION, **record}


def read_cache(directory: str | os.PathLike) -> CacheInfo:
    """The description of a finished cache; fails, naming it, when it is not finished."""
    directory = Path(directory)
    if not done_marker(directory).exists():
        raise CacheError(f"{directory}: no finished feature cache here (no .done); extract it first")
    record = json.loads((directory / "cache.json").read_text(encoding="utf-8"))
    record.pop("version", None)
    record["directory"] = directory
    return CacheInfo(**record)


def load_features(info: CacheInfo):
    """``{utterance: (frames, num_layers x layer_dim) array}``, read lazily from the ark files."""
    import kaldiio

    return kaldiio.load_scp(str(info.feats_scp))


def cache_dir(cache_root: str | os.PathLike, tag: str, datadir: str | os.PathLike) -> Path:
    return Path(cache_root) / tag / Path(datadir).name


def ensure_cache(source, datadir: str | os.PathLike, cache_root: str | os.PathLike,
                 dtype: str = CACHE_DTYPE, shard_utterances: int = SHARD_UTTERANCES) -> CacheInfo:
    """The cache of ``source`` (see :mod:`espnet_hubert_ae.asr.sources`) on a data directory.

    Reused when finished with the same source; otherwise extracted, resuming an interrupted
    extraction. A finished or started cache of *another* source under the same name is an
    error (it names both), never silently overwritten.
    """
    if dtype not in DTYPES:
        raise CacheError(f"--dtype {dtype}: the cache stores one of {', '.join(DTYPES)}")
    directory = cache_dir(cache_root, source.tag, datadir)
    identity = source.identity()
    wavs = read_table(Path(datadir) / "wav.scp")
    if not wavs:
        raise CacheError(f"{datadir}: no utterances (empty wav.scp)")
    utterances = sorted(wavs, key=str.encode)
    digest = _list_digest(utterances, wavs)
    if done_marker(directory).exists():
        info = read_cache(directory)
        _check_same(directory, info.identity, identity)
        if info.utterance_digest != digest:
            raise CacheError(f"{directory} holds features of other utterances than {datadir}/wav.scp lists: "
                             "remove it, or give another --cache_root")
        return info
    plan = {"version": FORMAT_VERSION, "upstream": source.name, "identity": identity, "dtype": dtype,
            "datadir": str(Path(datadir).resolve()), "utterances": digest, "shard_utterances": shard_utterances}
    plan_path = directory / "plan.json"
    if plan_path.is_file():
        started = json.loads(plan_path.read_text(encoding="utf-8"))
        _check_same(directory, started.get("identity", {}), identity)
        if {k: started.get(k) for k in plan} != plan:
            raise CacheError(f"{directory}: an unfinished extraction with other settings or utterances is there "
                             f"({plan_path}); remove the directory to start again")
    else:
        atomic_write_text(plan_path, json.dumps(plan, indent=2) + "\n")
    return _extract(source, wavs, utterances, directory, dtype, shard_utterances, digest)


def _check_same(directory: Path, found: dict, wanted: dict) -> None:
    if found != wanted:
        raise CacheError(f"{directory} holds features of {_describe(found)}, not of {_describe(wanted)}: "
                         "remove it, or give another --cache_root")


def _describe(identity: dict) -> str:
    if identity.get("kind") == "checkpoint":
        return f"checkpoint {identity.get('checkpoint')} (sha256 {str(identity.get('sha256'))[:12]})"
    return json.dumps(identity, sort_keys=True)


def _list_digest(utterances: list[str], wavs: dict[str, str]) -> str:
    return hashlib.sha256("".join(f"{u} {wavs[u]}\n" for u in utterances).encode()).hexdigest()


def _extract(source, wavs: dict[str, str], utterances: list[str], directory: Path, dtype: str,
             shard_utterances: int, digest: str) -> CacheInfo:
    shard_dir = directory / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    shards = [utterances[i: i + shard_utterances] for i in range(0, len(utterances), shard_utterances)]
    todo = [i for i in range(len(shards)) if not (shard_dir / f"{i:04d}.scp").is_file()]
    done_utts = sum(len(shards[i]) for i in range(len(shards)) if i not in todo)
    progress = tqdm(total=len(utterances), initial=done_utts, unit="utt", mininterval=5.0,
                    desc=f"features {source.tag} {directory.name}")
    with torch.inference_mode():
        for index in todo:
            start, cpu_start = time.perf_counter(), time.process_time()
            arrays = {}
            for utt_id in shards[index]:
                feats = source.features(torch.from_numpy(read_audio(wavs[utt_id], utt_id=utt_id))).numpy().astype(dtype)
                if feats.shape[0] == 0:
                    raise CacheError(f"utterance {utt_id!r} ({wavs[utt_id]}) is too short for a single frame")
                if not np.isfinite(feats).all():
                    raise CacheError(f"utterance {utt_id!r}: features out of the {dtype} range "
                                     "(use --dtype float32)")
                arrays[utt_id] = feats
                progress.update()
            cost = {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu_start}
            _write_shard(shard_dir, index, arrays, dtype, cost)
    progress.close()
    return _finish(source, directory, len(shards), dtype, digest)


def _write_shard(shard_dir: Path, index: int, arrays: dict[str, np.ndarray], dtype: str, cost: dict) -> None:
    import kaldiio

    ark = (shard_dir / f"{index:04d}.ark").resolve()
    scp_tmp = shard_dir / f".{index:04d}.scp.tmp"
    writer = {"write_function": "numpy"} if dtype == "float16" else {}
    kaldiio.save_ark(str(ark), arrays, scp=str(scp_tmp), **writer)
    record = {"frames": {u: a.shape[0] for u, a in arrays.items()}, **cost}
    atomic_write_text(shard_dir / f"{index:04d}.json", json.dumps(record) + "\n")
    os.replace(scp_tmp, shard_dir / f"{index:04d}.scp")  # the shard is done from here on


def _finish(source, directory: Path, num_shards: int, dtype: str, digest: str) -> CacheInfo:
    """Join the shards into feats.scp and feats_shape; the cost counts every shard, also those
    extracted before an interruption."""
    shard_dir = directory / "shards"
    scp_lines, frames, seconds, cpu_seconds = [], {}, 0.0, 0.0
    for index in range(num_shards):
        scp_lines += (shard_dir / f"{index:04d}.scp").read_text(encoding="utf-8").splitlines(keepends=True)
        record = json.loads((shard_dir / f"{index:04d}.json").read_text(encoding="utf-8"))
        frames.update(record["frames"])
        seconds += record["seconds"]
        cpu_seconds += record["cpu_seconds"]
    atomic_write_text(directory / "feats.scp", "".join(scp_lines))
    atomic_write_text(directory / "feats_shape", "".join(f"{u} {frames[u]}\n" for u in sorted(frames, key=str.encode)))
    info = CacheInfo(directory=directory, upstream=source.name, set_name=directory.name, identity=source.identity(),
                     num_layers=source.num_layers, layer_dim=source.layer_dim, dtype=dtype,
                     frame_rate=source.frame_rate, utterances=len(frames), utterance_digest=digest,
                     frames=sum(frames.values()),
                     extract_seconds=round(seconds, 2), extract_cpu_seconds=round(cpu_seconds, 2))
    atomic_write_text(directory / "cache.json", json.dumps(info.as_dict(), indent=2) + "\n")
    done_marker(directory).touch()
    logger.info("%s: %d utterances, %d frames, %d layers x %d (%s) in %.1f s", directory, info.utterances,
                info.frames, info.num_layers, info.layer_dim, dtype, seconds)
    return info
