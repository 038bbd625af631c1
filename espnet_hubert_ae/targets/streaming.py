"""Labels shard by shard: each planned batch's features -> nearest centroid -> 50 Hz labels.

A label set is made in shards that are independent units of work, so that a job array (one
job per shard, one GPU each where there are GPUs) or one process can make them, and a killed
or failed shard is redone alone. What every shard needs is written once, by the process that
fitted k-means, to ``<out_dir>/plan.json`` (:class:`LabelPlan`): the sets, the source, the
feature dtype, the number of shards, the centroids' digest, where stored features may be read
and how many frames the model that trains on the labels makes of an utterance.

Shard ``j`` of a set is the ``j``-th run of its planned batches (``features.plan_batches``,
``features.shard_batches``). A batch's features are read from a dump when one holds them --
the k-means fit portion's dump for the fit portion's batches, or with ``--keep_features`` a
dump of the whole set -- and computed otherwise; both are the same numbers (same batches,
same rounding to the dtype), so the labels do not depend on what went through disk. Each
batch's frames are searched in one call, so the search itself is the same too.

Layout, under ``<out_dir>/shards/<plan digest>/<set>/``::

    text.<j>        labels of shard j, written atomically: present = done
    cost.<j>.json   wall and CPU seconds and peak memory of the process, written before it

``merge_set`` concatenates a set's shards in shard order into ``<out_dir>/<set>/text`` (the
order of the plan, which does not depend on the number of shards) and records the set in
``<set>/labels.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from espnet_hubert_ae.data.datadir import DataDirError, Utterance, read_datadir
from espnet_hubert_ae.targets.features import (
    FeatureSet,
    batch_samples_for,
    check_dtype,
    compute_batch,
    plan_batches,
    shard_batches,
)
from espnet_hubert_ae.targets.kmeans import KMeansModel
from espnet_hubert_ae.targets.labels import downsample, fit_label_count, format_label_line
from espnet_hubert_ae.targets.sources import MFCC, FeatureExtractor, Layer, TargetError, TargetSource
from espnet_hubert_ae.utils.cost import Cost, cpu_seconds, peak_memory_mb
from espnet_hubert_ae.utils.fileio import atomic_open, atomic_write_text, file_digest

logger = logging.getLogger(__name__)

PLAN_FILE = "plan.json"
SET_RECORD = "labels.json"


def fit_portion(utt_ids: Sequence[str], portion: float, seed: int) -> list[str]:
    """The seeded random ``portion`` of a training set's utterances k-means is fitted on (at
    least one), in id order."""
    count = max(1, int(round(portion * len(utt_ids))))
    chosen = np.random.default_rng(seed).choice(len(utt_ids), size=count, replace=False)
    return [utt_ids[i] for i in sorted(chosen)]


def source_to_dict(source: TargetSource) -> dict:
    if isinstance(source, MFCC):
        return {"kind": "mfcc"}
    return {"kind": "layer", "checkpoint": str(source.checkpoint.resolve()), "layer": source.layer,
            "tag": source.tag, "config": None if source.config is None else str(source.config.resolve())}  # fmt: skip


def source_from_dict(record: dict) -> TargetSource:
    if record["kind"] == "mfcc":
        return MFCC()
    return Layer(Path(record["checkpoint"]), int(record["layer"]), tag=record.get("tag"),
                 config=None if record.get("config") is None else Path(record["config"]))  # fmt: skip


def utterance_digest(utts: Sequence[Utterance]) -> str:
    """What identifies a set's utterances for its labels: ids and lengths."""
    digest = hashlib.sha256()
    for utt in sorted(utts, key=lambda u: u.utt_id.encode()):
        digest.update(f"{utt.utt_id}:{utt.num_samples}\n".encode())
    return digest.hexdigest()[:16]


@dataclasses.dataclass
class LabelPlan:
    """Everything a shard job needs to label its shard of every set (``<out_dir>/plan.json``)."""

    out_dir: Path
    nj: int
    sets: dict[str, str]  # set name -> data directory
    train_set: str
    portion: float
    seed: int
    source: dict  # source_to_dict
    feature_dtype: str
    batch_seconds: float
    centroids: str  # SHA-256 of kmeans/centroids.npy: shards of other centroids are stale
    fit_features: str | None = None  # the fit portion's dump (its batches are read, not computed)
    full_features: dict[str, str] | None = None  # --keep_features: a dump of each whole set
    frames_from: dict | str | None = None  # model config (dict or YAML path) whose frame count labels match
    device: str = "cpu"  # where shard jobs compute; not part of the plan's identity

    def __post_init__(self):
        self.out_dir = Path(self.out_dir)
        check_dtype(self.feature_dtype)
        if self.nj < 1:
            raise TargetError(f"the number of label shards must be at least 1, not {self.nj}")

    def to_dict(self) -> dict:
        record = dataclasses.asdict(self)
        record["out_dir"] = str(self.out_dir)
        return record

    @property
    def digest(self) -> str:
        """The plan's identity: shards made under another plan are not mixed with these."""
        record = {k: v for k, v in self.to_dict().items() if k not in ("device", "out_dir")}
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:12]

    def shard_dir(self, set_name: str) -> Path:
        return self.out_dir / "shards" / self.digest / set_name

    def write(self) -> None:
        atomic_write_text(self.out_dir / PLAN_FILE, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def read(cls, out_dir: str | os.PathLike) -> "LabelPlan":
        path = Path(out_dir) / PLAN_FILE
        if not path.is_file():
            raise TargetError(f"{out_dir}: no labelling plan ({PLAN_FILE}); fit k-means first (make_targets --step fit)")
        plan = cls(**json.loads(path.read_text()))
        plan.out_dir = Path(out_dir)
        return plan


def expected_frames_of(plan: LabelPlan, source: TargetSource) -> Callable[[int], int]:
    """The frame count labels must match: of ``frames_from``, else of the source's own model for a
    layer (HuBERT Base's conv stack for MFCC)."""
    from espnet_hubert_ae.model.frames import HUBERT_GRID
    from espnet_hubert_ae.model.hubert import frame_counter

    if plan.frames_from is not None:
        return frame_counter(plan.frames_from if isinstance(plan.frames_from, dict) else Path(plan.frames_from))
    if isinstance(source, Layer):
        return frame_counter(source.config if source.config else source.checkpoint.parent / "config.yaml")
    return HUBERT_GRID.count


def read_set(name: str, datadir: str | os.PathLike) -> list[Utterance]:
    try:
        utts = read_datadir(datadir)
    except DataDirError as err:
        raise TargetError(f"set {name!r}: {err}") from None
    if not utts:
        raise TargetError(f"set {name!r} ({datadir}) has no utterances")
    return utts


class ShardLabeller:
    """Labels the shards of a plan in this process; the model and the search index are loaded
    once and serve every shard and set given to it."""

    def __init__(
        self,
        plan: LabelPlan,
        *,
        extractor: FeatureExtractor | None = None,
        expected_frames: Callable[[int], int] | None = None,
        utterances: Mapping[str, list[Utterance]] | None = None,
    ):
        self.plan = plan
        self.source = source_from_dict(plan.source)
        self.extractor = extractor or FeatureExtractor(self.source, device=plan.device)
        self.expected_frames = expected_frames or expected_frames_of(plan, self.source)
        self._utterances = dict(utterances or {})
        kmeans_dir = plan.out_dir / "kmeans"
        if file_digest(kmeans_dir / "centroids.npy") != plan.centroids:
            raise TargetError(f"{kmeans_dir}: the centroids changed since {plan.out_dir / PLAN_FILE} was written "
                              "(k-means was fitted again): make the labels again from the start")  # fmt: skip
        self.assign = KMeansModel.load(kmeans_dir).assigner(plan.device)
        self._stored: dict[str, FeatureSet | None] = {}
        self._shards: dict[str, list[list[list[Utterance]]]] = {}

    def utterances(self, set_name: str) -> list[Utterance]:
        if set_name not in self._utterances:
            self._utterances[set_name] = read_set(set_name, self.plan.sets[set_name])
        return self._utterances[set_name]

    def shards(self, set_name: str) -> list[list[list[Utterance]]]:
        """The planned batches of every shard of a set."""
        if set_name not in self._shards:
            utts = self.utterances(set_name)
            first = ()
            if set_name == self.plan.train_set:
                first = fit_portion([u.utt_id for u in utts], self.plan.portion, self.plan.seed)
            batches = plan_batches(utts, batch_samples_for(self.source, self.plan.batch_seconds), first)
            self._shards[set_name] = shard_batches(batches, self.plan.nj)
        return self._shards[set_name]

    def stored(self, set_name: str) -> FeatureSet | None:
        """The dump whose batches are read instead of computed, if any."""
        if set_name not in self._stored:
            directory = None
            if self.plan.full_features is not None:
                directory = self.plan.full_features[set_name]
            elif set_name == self.plan.train_set:
                directory = self.plan.fit_features
            features = FeatureSet(directory) if directory is not None else None
            if features is not None and features.dtype != self.plan.feature_dtype:
                raise TargetError(f"{directory}: {features.dtype} features, but the plan's dtype is "
                                  f"{self.plan.feature_dtype}")  # fmt: skip
            self._stored[set_name] = features
        return self._stored[set_name]

    def batch_features(self, set_name: str, shard: int) -> Iterator[tuple[list[Utterance], list[np.ndarray], bool]]:
        """Each planned batch of a shard with its features (float32 arrays, one per utterance)
        and whether they were read: from the dump that holds them, else computed and rounded to
        the plan's dtype -- the same numbers either way."""
        stored = self.stored(set_name)
        for batch in self.shards(set_name)[shard]:
            if stored is not None and all(u.utt_id in stored.spans for u in batch):
                yield batch, [stored.read(u.utt_id) for u in batch], True
            else:
                yield batch, compute_batch(self.extractor, batch, self.plan.feature_dtype), False

    def label(self, set_name: str, shard: int) -> bool:
        """Label shard ``shard`` (0-based) of a set unless it is done; True when it was made now."""
        directory = self.plan.shard_dir(set_name)
        path = directory / f"text.{shard}"
        if path.is_file():
            logger.info("labels of %s shard %d/%d: done already", set_name, shard + 1, self.plan.nj)
            return False
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob(f".text.{shard}.*.tmp"):  # left by a killed job
            stale.unlink(missing_ok=True)
        utts = [u for batch in self.shards(set_name)[shard] for u in batch]
        bar = tqdm(total=len(utts), desc=f"labels {set_name} shard {shard + 1}/{self.plan.nj}", unit="utt",
                   leave=False, disable=None)  # fmt: skip
        counts = {"utterances": 0, "frames": 0, "length_fixed": 0, "read": 0, "computed": 0}
        wall_start, cpu_start = time.perf_counter(), cpu_seconds()
        with atomic_open(path) as out:
            for batch, features, read in self.batch_features(set_name, shard):
                counts["read" if read else "computed"] += len(batch)
                ids = self.assign(np.concatenate(features))
                start = 0
                for utt, feats in zip(batch, features):
                    labels = downsample(ids[start : start + len(feats)], self.source.label_step)
                    start += len(feats)
                    frames = self.expected_frames(utt.num_samples)
                    counts["length_fixed"] += len(labels) != frames
                    labels = fit_label_count(labels, frames, utt.utt_id, f"set {set_name}")
                    counts["frames"] += len(labels)
                    counts["utterances"] += 1
                    out.write(format_label_line(utt.utt_id, labels))
                out.flush()  # a shard's progress shows in its temporary file
                bar.update(len(batch))
            bar.close()
            # Written before the labels land: a shard with labels always has its record.
            cost = Cost(wall_s=time.perf_counter() - wall_start, cpu_s=cpu_seconds() - cpu_start)
            record = {**counts, "cost": cost.to_dict(), "peak_memory_mb": round(peak_memory_mb(), 1)}
            atomic_write_text(directory / f"cost.{shard}.json", json.dumps(record) + "\n")
        logger.info("labels of %s shard %d/%d: %d utterances (%d read, %d computed), %.1f CPU s", set_name, shard + 1,
                    self.plan.nj, counts["utterances"], counts["read"], counts["computed"], cost.cpu_s)  # fmt: skip
        return True


def missing_shards(plan: LabelPlan, set_names: Sequence[str] | None = None) -> list[tuple[str, int]]:
    """``(set, shard)`` (0-based) of every shard without its labels, in order."""
    names = list(plan.sets) if set_names is None else list(set_names)
    return [(name, j) for name in names for j in range(plan.nj) if not (plan.shard_dir(name) / f"text.{j}").is_file()]


def missing_jobs(plan: LabelPlan, set_names: Sequence[str] | None = None) -> list[int]:
    """The 1-based job numbers that still have a shard to label, in order."""
    return sorted({j + 1 for _, j in missing_shards(plan, set_names)})


def iter_shard_lines(plan: LabelPlan, set_name: str) -> Iterator[str]:
    for j in range(plan.nj):
        with open(plan.shard_dir(set_name) / f"text.{j}", encoding="utf-8") as f:
            yield from f


def merge_set(plan: LabelPlan, set_name: str, utts: Sequence[Utterance]) -> dict:
    """Concatenate a set's shards into ``<out_dir>/<set>/text`` and record it; returns the record.

    Every shard must be there: a missing one is named with the job that makes it.
    """
    missing = missing_shards(plan, [set_name])
    if missing:
        names = ", ".join(f"shard {j + 1}" for _, j in missing)
        raise TargetError(f"{plan.out_dir}: labels of set {set_name!r} are missing for {names} of {plan.nj} "
                          f"(rerun those label jobs: --job {' '.join(str(j + 1) for _, j in missing)})")  # fmt: skip
    counts = {"utterances": 0, "frames": 0, "length_fixed": 0, "read": 0, "computed": 0}
    cost = Cost()
    peak = 0.0
    for j in range(plan.nj):
        path = plan.shard_dir(set_name) / f"cost.{j}.json"
        record = json.loads(path.read_text()) if path.is_file() else {}
        for name in counts:
            counts[name] += int(record.get(name, 0))
        cost += Cost.from_dict(record.get("cost"))
        peak = max(peak, float(record.get("peak_memory_mb", 0.0)))
    if counts["utterances"] != len(utts):
        raise TargetError(f"{plan.shard_dir(set_name)}: the shards hold {counts['utterances']} utterances, "
                          f"the set {len(utts)} (the set changed since it was planned: make the labels again)")  # fmt: skip
    with atomic_open(plan.out_dir / set_name / "text") as out:
        for line in iter_shard_lines(plan, set_name):
            out.write(line)
    record = {**counts, "utterances_digest": utterance_digest(utts), "centroids": plan.centroids,
              "datadir": plan.sets[set_name], "cost": cost.to_dict(), "shard_peak_memory_mb": round(peak, 1)}  # fmt: skip
    atomic_write_text(plan.out_dir / set_name / SET_RECORD, json.dumps(record, indent=1) + "\n")
    return record


def remove_shards(out_dir: Path) -> None:
    shutil.rmtree(Path(out_dir) / "shards", ignore_errors=True)
