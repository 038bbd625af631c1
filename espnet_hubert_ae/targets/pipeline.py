"""One clustering step of HuBERT pretraining: features -> k-means -> labels -> quality.

``make_targets`` is what stage 4 runs for the first phase and what every later phase runs on
the previous phase's model. Layout (``out_dir`` is named by ``utils.naming.target_tag``)::

    <feature_root>/<source name>/<set>/     feature dumps, shared by every K and strategy
    <out_dir>/kmeans/                       centroids.npy, kmeans.json (kept)
    <out_dir>/<set>/text                    50 Hz labels for ESPnet's HubertTask
    <out_dir>/<set>/quality.json            phone/cluster purity and PNMI, when phones.ctm exists
    <out_dir>/tokens.txt                    ESPnet token list (0..K-1, <unk>)
    <out_dir>/summary.json, .done           frames, times, peak memory; a rerun returns at once
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from espnet_hubert_ae.data.datadir import DataDirError, Utterance, read_ctm, read_datadir
from espnet_hubert_ae.defaults import KMEANS_PORTION, SEED
from espnet_hubert_ae.model.frames import HUBERT_GRID
from espnet_hubert_ae.model.hubert import frame_counter
from espnet_hubert_ae.targets.features import FeatureSet, dump_features
from espnet_hubert_ae.targets.kmeans import DEFAULT_MAX_ITER, DumpFrames, KMeansModel, fit_kmeans
from espnet_hubert_ae.targets.labels import (
    downsample,
    fit_label_count,
    format_label_line,
    read_label_text,
    write_tokens,
)
from espnet_hubert_ae.targets.quality import target_quality
from espnet_hubert_ae.targets.sources import MFCC, FeatureExtractor, Layer, TargetError, TargetSource
from espnet_hubert_ae.utils.cost import Cost, CostMeter
from espnet_hubert_ae.utils.fileio import atomic_open, atomic_write_text, done_marker

logger = logging.getLogger(__name__)

__all__ = ["MFCC", "Layer", "TargetSet", "TargetSource", "make_targets", "peak_memory_mb"]


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


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (MiB).

    Linux's VmHWM is preferred to getrusage: ru_maxrss carries over the parent's peak through
    fork and exec, so a child started by a big process would report its parent's memory.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _read_sets(sets: Mapping[str, Path]) -> dict[str, list[Utterance]]:
    utterances = {}
    for name, path in sets.items():
        try:
            utts = read_datadir(path)
        except DataDirError as err:
            raise TargetError(f"set {name!r}: {err}") from None
        if not utts:
            raise TargetError(f"set {name!r} ({path}) has no utterances")
        utterances[name] = utts
    return utterances


def _fit_subset(utt_ids: list[str], portion: float, seed: int) -> list[str]:
    """A seeded random ``portion`` of the training utterances (at least one), in id order."""
    count = max(1, int(round(portion * len(utt_ids))))
    chosen = np.random.default_rng(seed).choice(len(utt_ids), size=count, replace=False)
    return [utt_ids[i] for i in sorted(chosen)]


def _default_expected_frames(source: TargetSource) -> Callable[[int], int]:
    if isinstance(source, Layer):
        return frame_counter(Path(source.config) if source.config else source.checkpoint.parent / "config.yaml")
    return HUBERT_GRID.count


def _write_set_labels(
    model: KMeansModel,
    features: FeatureSet,
    utts: list[Utterance],
    source: TargetSource,
    expected_frames: Callable[[int], int],
    path: Path,
    device: str,
) -> dict:
    """Label every utterance of a set; returns counts of frames and of ±1 length fixes."""
    samples = {u.utt_id: u.num_samples for u in utts}
    missing = sorted(samples.keys() - set(features.utt_ids))
    if missing:
        raise TargetError(f"{features.name}: no features for utterances {missing[:3]} (dump them again)")
    bar = tqdm(total=len(utts), desc=f"labels {path.parent.name}", unit="utt", leave=False, disable=None)
    fixed = frames = 0
    with atomic_open(path) as out:  # streamed: a set's labels never sit in memory whole
        for group, array in features.iter_chunks([u.utt_id for u in utts]):
            ids = model.assign(array, device)[0]
            start = 0
            for utt_id, n in group:
                labels = downsample(ids[start : start + n], source.label_step)
                start += n
                expected = expected_frames(samples[utt_id])
                fixed += len(labels) != expected
                labels = fit_label_count(labels, expected, utt_id, str(path))
                frames += len(labels)
                out.write(format_label_line(utt_id, labels))
            bar.update(len(group))
    bar.close()
    return {"utterances": len(utts), "frames": frames, "length_fixed": fixed}


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
    feature_root: Path | None = None,
    engine: str = "faiss",
    max_iter: int = DEFAULT_MAX_ITER,
) -> TargetSet:
    """Make the k-means targets of ``source`` with ``k`` clusters for every set in ``sets``.

    ``sets`` maps set names to data directories; k-means is fitted on a seeded random
    ``portion`` of ``train_set``'s utterances and the same model labels every set. Features
    are dumped (``nj`` shards, resumable) under ``feature_root/<source name>/<set>``
    (default ``out_dir.parent / "features"``) and reused by every K and strategy.
    ``expected_frames(num_samples)`` is the frame count of the model that will train on the
    labels (default: HuBERT Base's conv stack for MFCC, the checkpoint's own for layers);
    each utterance's labels must match it within one frame (fixed) or it is an error.
    A finished ``out_dir`` (``.done``) of the same source (same checkpoint file) that covers
    ``sets`` at these frame counts is returned as is; otherwise only what differs is redone
    (finished feature dumps and a k-means model fitted with the same settings are reused).
    """
    out_dir = Path(out_dir)
    expected_frames = expected_frames or _default_expected_frames(source)
    finished = _finished(out_dir, sets, source, expected_frames)
    if finished is not None:
        return finished
    if done_marker(out_dir).is_file():  # other sets or frame counts: redo labels, keep the rest
        previous = json.loads((out_dir / "summary.json").read_text()).get("datadirs", {})
        sets = {**{name: Path(d) for name, d in previous.items()}, **sets}
        done_marker(out_dir).unlink()
    if train_set not in sets:
        raise TargetError(f"train set {train_set!r} is not among the sets ({', '.join(sets)})")
    if not 0 < portion <= 1:
        raise TargetError(f"portion must be in (0, 1], not {portion}")
    feature_root = Path(feature_root) if feature_root is not None else out_dir.parent / "features"
    utterances = _read_sets(sets)
    times: dict[str, float] = {}
    costs: dict[str, dict] = {"features": {}, "labels": {}}

    start = time.perf_counter()
    features: dict[str, FeatureSet] = {}
    extractor = FeatureExtractor(source, device=device)
    # One process: the model is loaded once for every set and torch's threads (OMP_NUM_THREADS)
    # share the cores. A process per shard would import ESPnet and load the model again for
    # every set, which costs more than the extraction itself on small sets; clusters spread
    # large sets over job arrays instead (bin/dump_features --job).
    for name, utts in utterances.items():
        directory = feature_root / source.name / name
        dump_features(utts, source, directory, nj=nj, device=device, extractor=extractor)
        features[name] = FeatureSet(directory)
        costs["features"][name] = features[name].cost.to_dict()  # whenever and wherever it was dumped
    times["features"] = time.perf_counter() - start

    start = time.perf_counter()
    model = _fit_or_load(
        out_dir / "kmeans", features[train_set], utterances[train_set], source, k, portion, seed, engine, max_iter,
        device,
    )  # fmt: skip
    times["kmeans"] = time.perf_counter() - start
    costs["kmeans"] = model.settings.get("cost", {})  # what fitting it cost, also when it is reused

    start = time.perf_counter()
    per_set = {}
    for name, utts in utterances.items():
        with CostMeter() as meter:
            per_set[name] = _write_set_labels(
                model, features[name], utts, source, expected_frames, out_dir / name / "text", device
            )
        costs["labels"][name] = meter.cost.to_dict()
    write_tokens(out_dir / "tokens.txt", k)
    times["labels"] = time.perf_counter() - start

    start = time.perf_counter()
    for name in utterances:
        quality = _measure_quality(Path(sets[name]), out_dir / name, k, held_out=name != train_set)
        if quality is not None:
            per_set[name]["quality"] = quality
    times["quality"] = time.perf_counter() - start

    summary = {
        "k": k, "sets": list(utterances), "datadirs": {name: str(path) for name, path in sets.items()},
        "train_set": train_set, "source": source.describe(),
        "source_name": source.name, "portion": portion, "seed": seed, "engine": engine,
        "feature_dir": str(feature_root / source.name), "kmeans": model.settings, "per_set": per_set,
        "seconds": {name: round(t, 2) for name, t in times.items()}, "cost": costs,
        "peak_memory_mb": round(peak_memory_mb(), 1),
    }  # fmt: skip
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    done_marker(out_dir).touch()
    total_frames = sum(s["frames"] for s in per_set.values())
    logger.info(
        "targets %s: %d frames in %d sets, %.1f s (features %.1f, k-means %.1f, labels %.1f), peak memory %.0f MiB",
        out_dir.name, total_frames, len(per_set), sum(times.values()), times["features"], times["kmeans"],
        times["labels"], summary["peak_memory_mb"],
    )  # fmt: skip
    return TargetSet(out_dir, k, list(utterances), summary)


def _finished(
    out_dir: Path, sets: Mapping[str, Path], source: TargetSource, expected_frames: Callable[[int], int]
) -> TargetSet | None:
    """The finished target set in ``out_dir`` if it is of this source (the same checkpoint file)
    and has every set, with labels of the right length."""
    if not (done_marker(out_dir).is_file() and (out_dir / "summary.json").is_file()):
        return None
    summary = json.loads((out_dir / "summary.json").read_text())
    if summary.get("source") != source.describe():
        logger.warning("%s was made from another %s: making it again", out_dir, source.name)
        return None
    if not set(sets) <= set(summary["sets"]):
        logger.info("%s lacks sets %s: labelling them", out_dir, sorted(set(sets) - set(summary["sets"])))
        return None
    for name, datadir in sets.items():
        # Totals stand in for per-utterance counts (every label sequence was made exactly
        # expected_frames long): cheap even for a 960 h set.
        expected = sum(expected_frames(u.num_samples) for u in _read_sets({name: datadir})[name])
        if expected != summary["per_set"][name]["frames"]:
            logger.warning("%s/%s: labels made for other frame counts; labelling again", out_dir, name)
            return None
    logger.info("%s is done; reusing it", out_dir)
    return TargetSet(out_dir, summary["k"], summary["sets"], summary)


def _fit_or_load(
    kmeans_dir: Path, features: FeatureSet, utts: list[Utterance], source, k, portion, seed, engine, max_iter, device
) -> KMeansModel:
    """Fit on the training subset, or reuse a model already fitted with the same settings."""
    wanted = {"k": k, "seed": seed, "engine": engine, "portion": portion, "source": source.describe(),
              "features": features.name}  # fmt: skip
    if (kmeans_dir / "centroids.npy").is_file():
        model = KMeansModel.load(kmeans_dir)
        if {name: model.settings.get(name) for name in wanted} == wanted:
            logger.info("reusing the k-means model in %s", kmeans_dir)
            return model
    subset = _fit_subset([u.utt_id for u in utts], portion, seed)
    with CostMeter() as meter:
        model = fit_kmeans(DumpFrames(features, subset), k, seed=seed, engine=engine, max_iter=max_iter, device=device)
    model.settings.update(wanted, fit_utterances=len(subset), cost=meter.cost.to_dict())
    model.save(kmeans_dir)
    return model


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
