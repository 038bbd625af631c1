"""One clustering step of HuBERT pretraining: features -> k-means -> labels -> quality.

``make_targets`` is what stage 4 runs for the first phase and what every later phase runs on
the previous phase's model. It runs in three steps, each resumable, that a recipe may also run
as separate jobs (``bin/make_targets --step``):

1. ``fit``: dump the features k-means is fitted on -- by default only the fit portion of the
   training set (``streaming``); with ``keep_features`` every set whole -- fit k-means, and
   write the labelling plan (``streaming.LabelPlan``).
2. ``label``: label every set shard by shard, computing each batch's features and its nearest
   centroids in one pass (or reading them from a kept dump); in this process, or as a job
   array of the missing shards (``label_jobs``).
3. ``finish``: merge the shards of each set, measure quality, write the summary and ``.done``.

Both ways give the same labels for the same centroids: batches, rounding and search are the
same whether features go through disk or not (``streaming``).

A label set is named by what determines its labels (:func:`target_dir`): the source (MFCC, or
a layer of one phase's final model) and K, plus a digest of the training set, fit portion,
seed, k-means settings, feature dtype and the frame count of the model that trains on them,
all kept in ``key.json``. Strategies whose first phase clusters the same MFCC with the same K
and settings therefore share one k-means fit and one label set. Layout::

    <feature_root>/<source>/<train set>.fit<portion>-seed<seed>[.float16]/   the fit portion's dump
    <feature_root>/<source>/<set>[.float16]/    whole-set dumps (keep_features), shared by every K
    <out_dir>/key.json                          what determines the labels
    <out_dir>/kmeans/                           centroids.npy, kmeans.json (kept)
    <out_dir>/plan.json, shards/                the labelling plan and its shards (removed when done)
    <out_dir>/<set>/text, labels.json           50 Hz labels for ESPnet's HubertTask, their record
    <out_dir>/<set>/quality.json                phone/cluster purity and PNMI, when phones.ctm exists
    <out_dir>/tokens.txt                        ESPnet token list (0..K-1, <unk>)
    <out_dir>/summary.json, .done               frames, costs, peak memory; a rerun returns at once
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from espnet_hubert_ae.data.datadir import Utterance, read_ctm
from espnet_hubert_ae.defaults import KMEANS_PORTION, SEED
from espnet_hubert_ae.targets.features import (
    DEFAULT_BATCH_SECONDS,
    DEFAULT_FEATURE_DTYPE,
    FeatureSet,
    check_dtype,
    dump_features,
)
from espnet_hubert_ae.targets.kmeans import DEFAULT_MAX_ITER, DumpFrames, KMeansModel, fit_kmeans
from espnet_hubert_ae.targets.labels import read_label_text, write_tokens
from espnet_hubert_ae.targets.quality import target_quality
from espnet_hubert_ae.targets.sources import MFCC, FeatureExtractor, Layer, TargetError, TargetSource
from espnet_hubert_ae.targets.streaming import (
    SET_RECORD,
    LabelPlan,
    ShardLabeller,
    fit_portion,
    merge_set,
    missing_jobs,
    missing_shards,
    read_set,
    remove_shards,
    source_from_dict,
    source_to_dict,
    utterance_digest,
)
from espnet_hubert_ae.utils.cost import Cost, CostMeter, peak_memory_mb
from espnet_hubert_ae.utils.fileio import atomic_write_text, done_marker, file_digest
from espnet_hubert_ae.utils.naming import target_tag

logger = logging.getLogger(__name__)

__all__ = ["MFCC", "Layer", "TargetSet", "TargetSource", "make_targets", "peak_memory_mb", "target_dir"]

KEY_FILE = "key.json"
LabelJobs = Callable[[LabelPlan, list[int]], None]


@dataclass
class TargetSet:
    """A finished label set: where its files are and what it measured."""

    out_dir: Path
    k: int
    sets: list[str]
    summary: dict = field(default_factory=dict)

    def text(self, set_name: str) -> Path:
        """The ESPnet ``text`` label file of a set."""
        return self.out_dir / set_name / "text"

    @property
    def tokens(self) -> Path:
        return self.out_dir / "tokens.txt"

    @property
    def kmeans_dir(self) -> Path:
        return self.out_dir / "kmeans"

    def cost(self, set_names: Sequence[str]) -> Cost:
        """What these sets' labels cost: their features (whenever they were dumped), the k-means
        fit and their labelling. Sets labelled for other uses (e.g. evaluation) are not counted."""
        recorded = self.summary.get("cost") or {}
        total = Cost.from_dict(recorded.get("kmeans"))
        for name in set_names:
            total += Cost.from_dict((recorded.get("features") or {}).get(name))
            total += Cost.from_dict((recorded.get("labels") or {}).get(name))
        return total

    def quality(self, set_name: str) -> dict | None:
        path = self.out_dir / set_name / "quality.json"
        return json.loads(path.read_text()) if path.is_file() else None


# ---------------------------------------------------------------------------------------------
# Names


def frames_fingerprint(expected_frames: Callable[[int], int]) -> str:
    """A digest of a frame-count rule over every length up to 1.25 s and a grid up to 12.5 s:
    models whose rules agree there make the same number of labels of any utterance."""
    lengths = [*range(0, 20000), *range(20000, 200000, 97)]
    return hashlib.sha256(",".join(str(expected_frames(n)) for n in lengths).encode()).hexdigest()[:16]


def default_expected_frames(source: TargetSource) -> Callable[[int], int]:
    """The frame count labels match by default: the source checkpoint's own for a layer, HuBERT
    Base's conv stack for MFCC."""
    if isinstance(source, Layer):
        from espnet_hubert_ae.model.hubert import frame_counter  # torch: only where a model's frames are counted

        return frame_counter(Path(source.config) if source.config else source.checkpoint.parent / "config.yaml")
    from espnet_hubert_ae.model.frames import HUBERT_GRID

    return HUBERT_GRID.count


def target_key(
    source: TargetSource,
    k: int,
    *,
    train_set: str,
    portion: float = KMEANS_PORTION,
    seed: int = SEED,
    engine: str = "faiss",
    max_iter: int = DEFAULT_MAX_ITER,
    feature_dtype: str = DEFAULT_FEATURE_DTYPE,
    expected_frames: Callable[[int], int] | None = None,
) -> dict:
    """What determines a label set's labels (the data aside, which its records check).

    A layer source counts by its name, which names its run and phase (a retrained checkpoint of
    the same phase is recognised by its file and replaces the labels); MFCC by its settings.
    """
    expected_frames = expected_frames or default_expected_frames(source)
    return {
        "source": source.name if isinstance(source, Layer) else source.describe(), "k": int(k),
        "train_set": train_set, "portion": float(portion), "seed": int(seed), "engine": engine,
        "max_iter": int(max_iter), "feature_dtype": feature_dtype, "frames": frames_fingerprint(expected_frames),
    }  # fmt: skip


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]


def target_dir(root: str | Path, source: TargetSource, k: int, **key_args) -> Path:
    """``<root>/<source>_k<K>-<digest>``: the label set of ``source`` with ``k`` clusters and the
    settings of :func:`target_key` (``key_args``)."""
    return Path(root) / target_tag(source.name, k, key_digest(target_key(source, k, **key_args)))


def fit_dump_dir(feature_root: Path, source: TargetSource, train_set: str, portion: float, seed: int,
                 dtype: str) -> Path:  # fmt: skip
    suffix = "" if dtype == "float32" else f".{dtype}"
    return Path(feature_root) / source.name / f"{train_set}.fit{portion:g}-seed{seed}{suffix}"


def full_dump_dir(feature_root: Path, source: TargetSource, set_name: str, dtype: str) -> Path:
    return Path(feature_root) / source.name / (set_name if dtype == "float32" else f"{set_name}.{dtype}")


# ---------------------------------------------------------------------------------------------
# The whole step


def make_targets(
    *,
    sets: Mapping[str, Path],
    train_set: str,
    source: TargetSource,
    k: int,
    out_dir: Path,
    portion: float = KMEANS_PORTION,
    seed: int = SEED,
    nj: int = 1,
    device: str = "cpu",
    expected_frames: Callable[[int], int] | None = None,
    frames_from: dict | str | Path | None = None,
    feature_root: Path | None = None,
    engine: str = "faiss",
    max_iter: int = DEFAULT_MAX_ITER,
    keep_features: bool = False,
    feature_dtype: str = DEFAULT_FEATURE_DTYPE,
    batch_seconds: float = DEFAULT_BATCH_SECONDS,
    label_jobs: LabelJobs | None = None,
) -> TargetSet:
    """Make the k-means targets of ``source`` with ``k`` clusters for every set in ``sets``.

    ``sets`` maps set names to data directories; k-means is fitted on a seeded random
    ``portion`` of ``train_set``'s utterances and the same model labels every set, in ``nj``
    shards. Features go under ``feature_root/<source name>/`` (default ``out_dir.parent /
    "features"``): only the fit portion's by default, every set's whole with
    ``keep_features``, stored as ``feature_dtype``. Labels must match the frame count of the
    model that will train on them: ``frames_from`` (its config, dict or YAML) or
    ``expected_frames(num_samples)`` (default: HuBERT Base's conv stack for MFCC, the
    checkpoint's own for layers), within one frame (fixed) or it is an error.
    ``label_jobs(plan, jobs)`` runs the given 1-based label jobs elsewhere (a job array);
    by default they run in this process. A finished ``out_dir`` of the same key and source
    that covers ``sets`` is returned as is; otherwise only what is missing is made.
    """
    settings = dict(sets=sets, train_set=train_set, source=source, k=k, out_dir=out_dir, portion=portion,
                    seed=seed, nj=nj, device=device, expected_frames=expected_frames, frames_from=frames_from,
                    feature_root=feature_root, engine=engine, max_iter=max_iter, keep_features=keep_features,
                    feature_dtype=feature_dtype, batch_seconds=batch_seconds)  # fmt: skip
    fitted = fit_targets(**settings)
    if isinstance(fitted, TargetSet):
        return fitted
    plan, context = fitted
    expected = _expected_frames(source, expected_frames, frames_from)
    label_targets(plan, label_jobs=label_jobs, extractor=context["extractor"], expected_frames=expected,
                  utterances=context["utterances"])  # fmt: skip
    return finish_targets(Path(out_dir), expected_frames=expected, utterances=context["utterances"],
                          timing=context["seconds"])  # fmt: skip


def _expected_frames(source, expected_frames, frames_from) -> Callable[[int], int]:
    if expected_frames is not None:
        return expected_frames
    if frames_from is not None:
        from espnet_hubert_ae.model.hubert import frame_counter

        return frame_counter(frames_from if isinstance(frames_from, dict) else Path(frames_from))
    return default_expected_frames(source)


# ---------------------------------------------------------------------------------------------
# Step 1: features of the fit, k-means, the plan


def fit_targets(
    *,
    sets: Mapping[str, Path],
    train_set: str,
    source: TargetSource,
    k: int,
    out_dir: Path,
    portion: float = KMEANS_PORTION,
    seed: int = SEED,
    nj: int = 1,
    device: str = "cpu",
    expected_frames: Callable[[int], int] | None = None,
    frames_from: dict | str | Path | None = None,
    feature_root: Path | None = None,
    engine: str = "faiss",
    max_iter: int = DEFAULT_MAX_ITER,
    keep_features: bool = False,
    feature_dtype: str = DEFAULT_FEATURE_DTYPE,
    batch_seconds: float = DEFAULT_BATCH_SECONDS,
) -> TargetSet | tuple[LabelPlan, dict]:
    """Step 1 of :func:`make_targets` (same arguments): the finished :class:`TargetSet` when
    there is one, else the written labelling plan and what this process loaded (model,
    utterances, timings) for the next steps to reuse."""
    out_dir = Path(out_dir)
    check_dtype(feature_dtype)
    if train_set not in sets:
        raise TargetError(f"train set {train_set!r} is not among the sets ({', '.join(sets)})")
    if not 0 < portion <= 1:
        raise TargetError(f"portion must be in (0, 1], not {portion}")
    if nj < 1:
        raise TargetError(f"nj must be at least 1, not {nj}")
    expected = _expected_frames(source, expected_frames, frames_from)
    key = target_key(source, k, train_set=train_set, portion=portion, seed=seed, engine=engine, max_iter=max_iter,
                     feature_dtype=feature_dtype, expected_frames=expected)  # fmt: skip
    sets = {name: Path(path) for name, path in sets.items()}
    utterances = {name: read_set(name, path) for name, path in sets.items()}
    finished = _finished(out_dir, key, source, sets, utterances, expected)
    if finished is not None:
        return finished
    if (out_dir / "summary.json").is_file():  # the sets labelled before are labelled again with these
        previous = json.loads((out_dir / "summary.json").read_text()).get("datadirs", {})
        for name, datadir in previous.items():
            if name not in sets and Path(datadir).is_dir():
                sets[name], utterances[name] = Path(datadir), read_set(name, datadir)
    _claim(out_dir, key, source)
    done_marker(out_dir).unlink(missing_ok=True)
    feature_root = Path(feature_root) if feature_root is not None else out_dir.parent / "features"
    fit_ids = fit_portion([u.utt_id for u in utterances[train_set]], portion, seed)
    seconds: dict[str, float] = {}

    start = time.perf_counter()
    extractor = FeatureExtractor(source, device=device)
    # MFCC has no model to share: with an hour of audio or more per process, its shards go to
    # worker processes of one thread each (starting one costs seconds; an hour, minutes). A layer's
    # shards run here, where the model is loaded once (a process per shard would load it again).
    train_hours = sum(u.num_samples for u in utterances[train_set]) / 16000 / 3600
    dumped_hours = sum(u.num_samples for us in utterances.values() for u in us) / 16000 / 3600 if keep_features \
        else train_hours * portion
    workers = max(1, min(nj, int(dumped_hours))) if isinstance(source, MFCC) else 1
    full_features = None
    if keep_features:
        full_features = {}
        for name, utts in utterances.items():
            directory = full_dump_dir(feature_root, source, name, feature_dtype)
            dump_features(utts, source, directory, nj=nj, workers=workers, device=device, extractor=extractor,
                          dtype=feature_dtype, batch_seconds=batch_seconds,
                          first=fit_ids if name == train_set else ())  # fmt: skip
            full_features[name] = str(directory)
        fit_features = FeatureSet(full_features[train_set])
        fit_dir = None
    else:
        fit_dir = fit_dump_dir(feature_root, source, train_set, portion, seed, feature_dtype)
        chosen = set(fit_ids)
        fit_utts = [u for u in utterances[train_set] if u.utt_id in chosen]
        dump_features(fit_utts, source, fit_dir, nj=nj, workers=workers, device=device, extractor=extractor,
                      dtype=feature_dtype, batch_seconds=batch_seconds)  # fmt: skip
        fit_features = FeatureSet(fit_dir)
    seconds["features"] = time.perf_counter() - start

    start = time.perf_counter()
    model = _fit_or_load(out_dir / "kmeans", fit_features, fit_ids, source, k, portion, seed, engine, max_iter,
                         feature_dtype, device)  # fmt: skip
    seconds["kmeans"] = time.perf_counter() - start

    plan = LabelPlan(
        out_dir=out_dir, nj=nj, sets={name: str(path) for name, path in sets.items()}, train_set=train_set,
        portion=portion, seed=seed, source=source_to_dict(source), feature_dtype=feature_dtype,
        batch_seconds=batch_seconds, centroids=file_digest(out_dir / "kmeans" / "centroids.npy"),
        fit_features=None if fit_dir is None else str(fit_dir), full_features=full_features,
        frames_from=_frames_record(frames_from), device=device,
    )  # fmt: skip
    plan.write()
    logger.info("targets %s: k-means K=%d fitted on %d frames of %d utterances; %d label shards per set",
                out_dir.name, model.k, model.settings.get("num_frames", 0), len(fit_ids), nj)  # fmt: skip
    return plan, {"extractor": extractor, "utterances": utterances, "seconds": seconds, "model": model}


def _frames_record(frames_from) -> dict | str | None:
    if frames_from is None or isinstance(frames_from, dict):
        return frames_from
    return str(Path(frames_from).resolve())


def _claim(out_dir: Path, key: dict, source: TargetSource) -> None:
    """Make ``out_dir`` this key's: what another key or checkpoint made there is cleared, not reused."""
    key_path = out_dir / KEY_FILE
    old_key = json.loads(key_path.read_text()) if key_path.is_file() else None
    summary_path = out_dir / "summary.json"
    old_source = json.loads(summary_path.read_text()).get("source") if summary_path.is_file() else None
    made = [out_dir / n for n in ("kmeans", "plan.json", "summary.json") if (out_dir / n).exists()]
    stale = bool(made) and old_key != key  # another key's, or made before keys were written
    if stale:
        logger.warning("%s was made with other settings (%s): making it again", out_dir, old_key or "no key.json")
    elif old_source is not None and old_source != source.describe():
        logger.warning("%s was made from another %s: making it again", out_dir, source.name)
        stale = True
    if stale:
        for name in ("kmeans", "shards"):
            shutil.rmtree(out_dir / name, ignore_errors=True)
        for path in [out_dir / n for n in ("plan.json", "summary.json", "tokens.txt", ".done")]:
            path.unlink(missing_ok=True)
        for record in out_dir.glob(f"*/{SET_RECORD}"):
            record.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(key_path, json.dumps(key, indent=1) + "\n")


def _fit_or_load(kmeans_dir: Path, features: FeatureSet, fit_ids: list[str], source, k, portion, seed, engine,
                 max_iter, feature_dtype, device) -> KMeansModel:  # fmt: skip
    """Fit on the fit portion, or reuse a model already fitted with the same settings on the same frames."""
    digest = hashlib.sha256("\n".join(fit_ids).encode()).hexdigest()[:16]
    wanted = {"k": k, "seed": seed, "engine": engine, "portion": portion, "max_iter": max_iter,
              "source": source.describe(), "feature_dtype": feature_dtype, "fit_utterances_digest": digest}  # fmt: skip
    if (kmeans_dir / "centroids.npy").is_file():
        model = KMeansModel.load(kmeans_dir)
        if {name: model.settings.get(name) for name in wanted} == wanted:
            logger.info("reusing the k-means model in %s", kmeans_dir)
            return model
    with CostMeter() as meter:
        model = fit_kmeans(DumpFrames(features, fit_ids), k, seed=seed, engine=engine, max_iter=max_iter, device=device)
    model.settings.update(wanted, fit_utterances=len(fit_ids), features=features.name, cost=meter.cost.to_dict())
    model.save(kmeans_dir)
    return model


# ---------------------------------------------------------------------------------------------
# Step 2: labels, shard by shard


def sets_to_label(plan: LabelPlan, utterances: Mapping[str, list[Utterance]] | None = None) -> list[str]:
    """The plan's sets whose labels are not yet merged and recorded."""
    todo = []
    for name, datadir in plan.sets.items():
        utts = (utterances or {}).get(name) or read_set(name, datadir)
        if not _set_done(plan.out_dir, name, utts, plan.centroids):
            todo.append(name)
    return todo


def label_targets(
    plan: LabelPlan | Path,
    *,
    jobs: Sequence[int] | None = None,
    label_jobs: LabelJobs | None = None,
    extractor: FeatureExtractor | None = None,
    expected_frames: Callable[[int], int] | None = None,
    utterances: Mapping[str, list[Utterance]] | None = None,
) -> list[int]:
    """Step 2: label the shards of ``jobs`` (1-based; default: every job with a shard missing)
    of every set not yet labelled; by ``label_jobs`` when given, else in this process.
    Returns the jobs that had work."""
    plan = plan if isinstance(plan, LabelPlan) else LabelPlan.read(plan)
    names = sets_to_label(plan, utterances)
    todo = missing_jobs(plan, names) if jobs is None else sorted(set(jobs))
    for job in todo:
        if not 1 <= job <= plan.nj:
            raise TargetError(f"label job {job} is out of range: the plan has {plan.nj} shards (1..{plan.nj})")
    if not todo:
        return []
    if label_jobs is not None:
        label_jobs(plan, todo)
        return todo
    labeller = ShardLabeller(plan, extractor=extractor, expected_frames=expected_frames, utterances=utterances)
    for job in todo:
        for name in names:
            labeller.label(name, job - 1)
    return todo


# ---------------------------------------------------------------------------------------------
# Step 3: merge, quality, summary


def finish_targets(
    out_dir: Path,
    *,
    expected_frames: Callable[[int], int] | None = None,
    utterances: Mapping[str, list[Utterance]] | None = None,
    timing: Mapping[str, float] | None = None,
) -> TargetSet:
    """Step 3: merge every set's shards (a missing shard is named), measure quality against
    phone alignments, write the token list, the summary and ``.done``."""
    out_dir = Path(out_dir)
    plan = LabelPlan.read(out_dir)
    key = json.loads((out_dir / KEY_FILE).read_text())
    utterances = {name: (utterances or {}).get(name) or read_set(name, d) for name, d in plan.sets.items()}
    todo = sets_to_label(plan, utterances)
    if not todo and done_marker(out_dir).is_file() and (out_dir / "summary.json").is_file():
        summary = json.loads((out_dir / "summary.json").read_text())
        if set(summary["sets"]) == set(plan.sets):
            logger.info("%s is done; reusing it", out_dir)
            return TargetSet(out_dir, summary["k"], summary["sets"], summary)
    missing = missing_shards(plan, todo)
    if missing:
        named = "; ".join(f"set {name!r} shard {j + 1}" for name, j in missing)
        jobs = " ".join(str(j) for j in missing_jobs(plan, sorted({n for n, _ in missing})))
        raise TargetError(f"{out_dir}: labels missing for {named} (of {plan.nj} shards): run label job(s) {jobs} "
                          f"again (see {out_dir / 'log'}), or rerun the same command")  # fmt: skip
    seconds = dict(timing or {})
    start = time.perf_counter()
    records = {}
    for name, utts in utterances.items():
        if _set_done(out_dir, name, utts, plan.centroids):
            records[name] = json.loads((out_dir / name / SET_RECORD).read_text())
        else:
            records[name] = merge_set(plan, name, utts)
    model = KMeansModel.load(out_dir / "kmeans")
    write_tokens(out_dir / "tokens.txt", model.k)
    seconds["merge"] = time.perf_counter() - start

    start = time.perf_counter()
    per_set = {}
    for name, record in records.items():
        per_set[name] = {key_: record[key_] for key_ in ("utterances", "frames", "length_fixed", "read", "computed")}
        quality = _measure_quality(Path(plan.sets[name]), out_dir / name, model.k, held_out=name != plan.train_set)
        if quality is not None:
            per_set[name]["quality"] = quality
    seconds["quality"] = time.perf_counter() - start

    feature_costs = {}
    if plan.full_features is not None:
        for name, directory in plan.full_features.items():
            feature_costs[name] = FeatureSet(directory).cost.to_dict()  # whenever and wherever it was dumped
    elif plan.fit_features is not None:
        feature_costs[plan.train_set] = FeatureSet(plan.fit_features).cost.to_dict()
    label_costs = {name: record["cost"] for name, record in records.items()}
    costs = {"features": feature_costs, "kmeans": model.settings.get("cost", {}), "labels": label_costs}
    seconds.setdefault("features", sum(c.get("wall_s", 0.0) for c in feature_costs.values()))
    seconds.setdefault("kmeans", float(model.settings.get("seconds", 0.0)))
    seconds["labels"] = sum(c.get("wall_s", 0.0) for c in label_costs.values())
    feature_dirs = [plan.fit_features] if plan.full_features is None else list(plan.full_features.values())
    source = source_from_dict(plan.source)
    summary = {
        "k": model.k, "sets": list(records), "datadirs": plan.sets, "train_set": plan.train_set,
        "source": source.describe(), "source_name": source.name,
        "portion": plan.portion, "seed": plan.seed, "engine": key["engine"], "key": key,
        "feature_dtype": plan.feature_dtype, "keep_features": plan.full_features is not None, "shards": plan.nj,
        "feature_dir": str(Path(feature_dirs[0]).parent), "feature_dirs": feature_dirs,
        "feature_bytes": sum(FeatureSet(d).num_bytes for d in feature_dirs), "kmeans": model.settings,
        "per_set": per_set, "seconds": {name: round(t, 2) for name, t in seconds.items()}, "cost": costs,
        "peak_memory_mb": round(max([peak_memory_mb()] + [r.get("shard_peak_memory_mb", 0.0) for r in records.values()]), 1),
    }  # fmt: skip
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    done_marker(out_dir).touch()
    remove_shards(out_dir)
    total_frames = sum(s["frames"] for s in per_set.values())
    logger.info("targets %s: %d frames in %d sets (features %.1f s, k-means %.1f s, labels %.1f s), peak memory %.0f MiB",
                out_dir.name, total_frames, len(per_set), seconds["features"], seconds["kmeans"], seconds["labels"],
                summary["peak_memory_mb"])  # fmt: skip
    return TargetSet(out_dir, model.k, list(records), summary)


def _set_done(out_dir: Path, name: str, utts: Sequence[Utterance], centroids: str | None) -> bool:
    """A set's labels are done when merged and recorded for these utterances and centroids."""
    path = out_dir / name / SET_RECORD
    if not (path.is_file() and (out_dir / name / "text").is_file()):
        return False
    record = json.loads(path.read_text())
    return record.get("utterances_digest") == utterance_digest(utts) and (
        centroids is None or record.get("centroids") == centroids
    )


def _finished(out_dir: Path, key: dict, source: TargetSource, sets: Mapping[str, Path],
              utterances: Mapping[str, list[Utterance]], expected_frames: Callable[[int], int]) -> TargetSet | None:  # fmt: skip
    """The finished target set in ``out_dir`` if it has this key, this source (the same checkpoint
    file) and every set, labelled for these utterances at these frame counts."""
    if not (done_marker(out_dir).is_file() and (out_dir / "summary.json").is_file()):
        return None
    summary = json.loads((out_dir / "summary.json").read_text())
    if summary.get("key") != key or summary.get("source") != source.describe():
        return None  # _claim says why and clears it
    missing = sorted(set(sets) - set(summary["sets"]))
    if missing:
        logger.info("%s lacks sets %s: labelling them", out_dir, missing)
        return None
    centroids = file_digest(out_dir / "kmeans" / "centroids.npy")
    for name in sets:
        if not _set_done(out_dir, name, utterances[name], centroids):
            logger.warning("%s/%s: labels made for other utterances; labelling again", out_dir, name)
            return None
        # Totals stand in for per-utterance counts (every label sequence was made exactly
        # expected_frames long): cheap even for a 960 h set.
        expected = sum(expected_frames(u.num_samples) for u in utterances[name])
        if expected != summary["per_set"][name]["frames"]:
            logger.warning("%s/%s: labels made for other frame counts; labelling again", out_dir, name)
            (out_dir / name / SET_RECORD).unlink()
            return None
    logger.info("%s is done; reusing it", out_dir)
    return TargetSet(out_dir, summary["k"], summary["sets"], summary)


def _measure_quality(datadir: Path, label_dir: Path, k: int, held_out: bool) -> dict | None:
    """Quality of a set's labels against its phones.ctm (None when the set has none); ``held_out``:
    the set is not the one k-means was fitted on."""
    ctm = datadir / "phones.ctm"
    if not ctm.is_file():
        return None
    quality = target_quality(read_label_text(label_dir / "text"), read_ctm(ctm), k, held_out=held_out)
    atomic_write_text(label_dir / "quality.json", json.dumps(quality, indent=1) + "\n")
    print(
        f"{label_dir.parent.name}/{label_dir.name}: PNMI {quality['pnmi']} (corrected {quality['pnmi_corrected']}), "
        f"phone purity {quality['phone_purity']}, cluster purity {quality['cluster_purity']} "
        f"(K={k}, {quality['frames']} frames, {'held out' if held_out else 'the k-means fitting set'})"
    )
    return quality
