"""Runs the layerwise analysis of checkpoints on one data set, with a cache per metric.

For each checkpoint, the metrics not yet in the cache are computed in passes over the
utterances: a pass runs the model up to the highest layer of its group of layers (all layers
by default; ``layer_group`` bounds memory for large sets) and reduces every layer's frames of
an utterance at once to what the metrics keep -- CCA statistics of the mel view, pooled phone
and word vectors of the sampled instances, a frame sample for the probe and the clusters --
so no layer of the whole set is ever held in memory.

Outputs, under ``outdir`` (e.g. ``exp/analysis/dev_clean``):
    <checkpoint>/<metric>.json   one metric, all layers, with the settings it was computed with
    <checkpoint>/results.json    every metric of the checkpoint and its summary statistics
A cached metric is reused when its settings, the data set and the checkpoint file are unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
from tqdm import tqdm

from espnet_hubert_ae.analysis import AnalysisError
from espnet_hubert_ae.analysis.cca import REGULARISERS, FoldedStats, check_protocol, protocol_pwcca, run_protocol
from espnet_hubert_ae.analysis.probe import train_probe
from espnet_hubert_ae.analysis import stats as summary
from espnet_hubert_ae.analysis.views import (
    NUM_MEL_BINS,
    Instances,
    Sampling,
    align_frames,
    log_mel_50hz,
    middle_third,
    one_hot,
    pool_span,
    read_word_embeddings,
    sample_instances,
)
from espnet_hubert_ae.data.alignments import SPOKEN_NOISE
from espnet_hubert_ae.data.datadir import SAMPLE_RATE, SILENCE, Segment, Utterance, read_ctm, read_datadir
from espnet_hubert_ae.model.hubert import conv_frame_count
from espnet_hubert_ae.targets.quality import frame_phones
from espnet_hubert_ae.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)

# metric -> the measures (named layer curves) it produces; a metric is the unit of caching.
MEASURES: dict[str, tuple[str, ...]] = {
    "mel_cca": ("mel_cca",),
    "phone_cca": ("phone_cca",),
    "word_cca": ("word_cca",),
    "semantic_cca": ("semantic_cca",),
    "phone_probe": ("phone_probe_acc",),
    "cluster_quality": ("pnmi", "phone_purity", "cluster_purity"),
}
METRICS = tuple(MEASURES)
DEFAULT_METRICS = ("mel_cca", "phone_cca", "word_cca", "phone_probe", "cluster_quality")
CCA_METRICS = ("mel_cca", "phone_cca", "word_cca", "semantic_cca")
PHONE_METRICS = ("phone_cca", "phone_probe", "cluster_quality")
WORD_METRICS = ("word_cca", "semantic_cca")
RESULT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class CheckpointRef:
    """A checkpoint to analyse and where it sits in pretraining (strategy, phase, global step)."""

    name: str
    checkpoint: Path
    config: Path | None = None
    strategy: str | None = None
    phase: str | None = None
    step: int | None = None

    @property
    def tag(self) -> str:
        """Directory name of its results: the name with path separators kept as sub-folders."""
        return "/".join(re.sub(r"[^A-Za-z0-9._-]+", "_", part) for part in self.name.split("/") if part not in ("", ".", ".."))


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    """Every setting of the analysis (defaults: Pasad et al.'s protocol sizes)."""

    metrics: tuple[str, ...] = DEFAULT_METRICS
    max_utterances: int | None = 500  # utterances analysed (seeded sample); None: all
    n_folds: int = 10
    n_trials: int = 3
    regularisers: tuple[float, ...] = REGULARISERS
    num_phones: int | None = None  # phone labels kept (most frequent); None: all but silence
    rare_phones: str = "error"  # a kept phone with fewer instances than folds: "error" or "drop" it
    phone_instances: int = 200  # at most this many instances per phone
    num_words: int = 500  # most frequent words kept
    word_instances: int = 15  # at most this many instances per word
    word_embeddings: str | None = None  # GloVe text file (needed by semantic_cca)
    word_embedding_dim: int | None = None  # expected embedding dimension (None: the file's)
    probe_frames: int = 10000  # frames sampled for the phone probe and the clusters
    probe_test_fraction: float = 0.2  # share of utterances whose frames test the probe
    kmeans_k: int = 100  # clusters for the cluster-quality metric
    layer_group: int | None = None  # layers per model pass (None: all in one pass)
    seed: int = 1

    def __post_init__(self):
        unknown = sorted(set(self.metrics) - set(METRICS))
        if unknown:
            raise AnalysisError(f"unknown metrics {unknown}; choose from {', '.join(METRICS)}")
        if "semantic_cca" in self.metrics and not self.word_embeddings:
            raise AnalysisError("the semantic_cca metric needs a word-embedding file: pass --word_embeddings <GloVe .txt>")
        check_protocol(self.n_folds, self.n_trials)
        if self.rare_phones not in ("error", "drop"):
            raise AnalysisError(f"rare_phones must be 'error' or 'drop', not {self.rare_phones!r}")
        if self.layer_group is not None and self.layer_group < 1:
            raise AnalysisError(f"layer_group must be at least 1, got {self.layer_group}")

    def metric_settings(self, metric: str) -> dict:
        """The settings a metric's result depends on (its cache key)."""
        out: dict = {"max_utterances": self.max_utterances, "seed": self.seed}
        if metric in CCA_METRICS:
            out.update(n_folds=self.n_folds, n_trials=self.n_trials, regularisers=list(self.regularisers))
        if metric == "phone_cca":
            out.update(num_phones=self.num_phones, rare_phones=self.rare_phones, phone_instances=self.phone_instances)
        if metric in WORD_METRICS:
            out.update(num_words=self.num_words, word_instances=self.word_instances)
        if metric == "semantic_cca":
            out.update(word_embeddings=_file_identity(self.word_embeddings), word_embedding_dim=self.word_embedding_dim)
        if metric in ("phone_probe", "cluster_quality"):
            out.update(probe_frames=self.probe_frames, probe_test_fraction=self.probe_test_fraction)
        if metric == "cluster_quality":
            out.update(kmeans_k=self.kmeans_k)
        return out


def _file_identity(path: str | os.PathLike | None) -> dict | None:
    if path is None:
        return None
    st = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": st.st_size, "mtime": int(st.st_mtime)}


# --- features ------------------------------------------------------------------------------


class FeatureSource(Protocol):
    """Hidden states of one utterance: states 0..upto_layer, each (frames, dim) float32."""

    num_layers: int  # highest layer index (transformer layers)

    def __call__(self, wav: np.ndarray, upto_layer: int) -> list[np.ndarray]: ...


class CheckpointFeatures:
    """Hidden states of an ESPnet HuBERT pretraining checkpoint, one utterance at a time."""

    def __init__(self, checkpoint: str | os.PathLike, config: str | os.PathLike | None = None, device: str = "cpu"):
        from espnet_hubert_ae.model.hubert import load_pretrain_model, num_layers

        self.model, _ = load_pretrain_model(checkpoint, config, device)
        self.num_layers = num_layers(self.model)
        self.device = device

    def __call__(self, wav: np.ndarray, upto_layer: int) -> list[np.ndarray]:
        import torch

        from espnet_hubert_ae.model.hubert import hidden_states

        wavs = torch.as_tensor(np.asarray(wav, dtype=np.float32))[None]
        lengths = torch.tensor([wavs.shape[1]])
        states, frame_lengths = hidden_states(self.model, wavs, lengths, upto_layer)
        n = int(frame_lengths[0])
        return [s[0, :n].float().cpu().numpy() for s in states]


def checkpoint_features(ref: CheckpointRef, device: str = "cpu") -> FeatureSource:
    return CheckpointFeatures(ref.checkpoint, ref.config, device)


# --- what is sampled from the data set (shared by every checkpoint) --------------------------


def _ctm_for(datadir: Path, name: str, metrics: Sequence[str]) -> dict[str, list[Segment]]:
    path = datadir / name
    if not path.is_file():
        raise AnalysisError(
            f"{path} is missing, and the metrics {', '.join(metrics)} need it: create the alignments "
            "(recipe stage 3; the built-in corpus writes them in stage 1), or leave those metrics out with --metrics"
        )
    return read_ctm(path)


class DataPlan:
    """The utterances analysed and the instances / frames sampled from them, for every checkpoint."""

    def __init__(self, datadir: str | os.PathLike, config: AnalysisConfig):
        self.datadir = Path(datadir)
        self.config = config
        self.metrics = config.metrics

    @functools.cached_property
    def utterances(self) -> list[Utterance]:
        utts = read_datadir(self.datadir)
        required = []
        if any(m in PHONE_METRICS for m in self.metrics):
            required.append(("phones.ctm", self.phone_ctm))
        if any(m in WORD_METRICS for m in self.metrics):
            required.append(("words.ctm", self.word_ctm))
        for name, ctm in required:
            unaligned = [u.utt_id for u in utts if u.utt_id not in ctm]
            if unaligned:
                logger.warning("%s: %d of %d utterances have no alignment in %s and are left out (e.g. %s)",
                               self.datadir, len(unaligned), len(utts), name, unaligned[0])
                utts = [u for u in utts if u.utt_id in ctm]
        if not utts:
            raise AnalysisError(f"{self.datadir}: no utterance to analyse (none is aligned in every CTM needed)")
        limit = self.config.max_utterances
        if limit is not None and len(utts) > limit:
            rng = np.random.default_rng(self.config.seed)
            keep = np.sort(rng.choice(len(utts), size=limit, replace=False))
            utts = [utts[i] for i in keep]
        return utts

    @functools.cached_property
    def identity(self) -> dict:
        """What identifies the data analysed (cache key)."""
        digest = hashlib.sha1("\n".join(f"{u.utt_id} {u.num_samples}" for u in self.utterances).encode()).hexdigest()
        return {"datadir": str(self.datadir.resolve()), "num_utterances": len(self.utterances), "utterances_sha1": digest}

    @functools.cached_property
    def phone_ctm(self) -> dict[str, list[Segment]]:
        return _ctm_for(self.datadir, "phones.ctm", [m for m in self.metrics if m in PHONE_METRICS])

    @functools.cached_property
    def word_ctm(self) -> dict[str, list[Segment]]:
        return _ctm_for(self.datadir, "words.ctm", [m for m in self.metrics if m in WORD_METRICS])

    @functools.cached_property
    def utt_folds(self) -> np.ndarray:
        """Mel-view fold of each utterance (frames of one utterance stay in one fold)."""
        rng = np.random.default_rng(self.config.seed)
        return rng.permutation(len(self.utterances)) % self.config.n_folds

    @functools.cached_property
    def probe_test(self) -> np.ndarray:
        """Whether each utterance's frames test (rather than train) the probe and the clusters."""
        n = len(self.utterances)
        if n < 2:
            raise AnalysisError(f"{self.datadir}: the phone probe needs at least 2 utterances (train and test), got {n}")
        num_test = min(n - 1, max(1, round(n * self.config.probe_test_fraction)))
        rng = np.random.default_rng(self.config.seed + 1)
        mask = np.zeros(n, dtype=bool)
        mask[rng.choice(n, size=num_test, replace=False)] = True
        return mask

    @functools.cached_property
    def frame_rate(self) -> float:
        """Probability that a frame joins the probe / cluster sample (about ``probe_frames`` in all)."""
        total = sum(conv_frame_count(u.num_samples) for u in self.utterances)
        return min(1.0, self.config.probe_frames / max(total, 1))

    def _ids(self) -> list[str]:
        return [u.utt_id for u in self.utterances]

    @functools.cached_property
    def phone_instances(self) -> Instances:
        c = self.config
        return sample_instances(
            self.phone_ctm, self._ids(), Sampling(c.num_phones, c.phone_instances, c.n_folds, strict=c.rare_phones == "error"),
            view="phone", option="--num_phones", seed=c.seed, exclude=(SILENCE, SPOKEN_NOISE),
        )

    @functools.cached_property
    def word_instances(self) -> Instances:
        c = self.config
        return sample_instances(
            self.word_ctm, self._ids(), Sampling(c.num_words, c.word_instances, c.n_folds, strict=False),
            view="word", option="--num_words", seed=c.seed,
        )

    @functools.cached_property
    def semantic_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Word-instance rows that have an embedding, and the embeddings: (rows, (rows, dim))."""
        words = self.word_instances
        vectors = read_word_embeddings(self.config.word_embeddings, words.label_set, self.config.word_embedding_dim)
        rows = np.array([i for i, label in enumerate(words.labels) if label in vectors], dtype=np.int64)
        missing = sorted(set(words.labels) - set(vectors))
        if missing:
            logger.warning("semantic view: %d of %d words have no embedding and are left out (e.g. %s)",
                           len(missing), len(words.label_set), ", ".join(missing[:5]))
        return rows, np.stack([vectors[words.labels[i]] for i in rows])

    def check(self) -> None:
        """Build everything the metrics need now, so that bad input fails before any model runs."""
        _ = self.utterances
        if "phone_cca" in self.metrics:
            _ = self.phone_instances
        if "word_cca" in self.metrics or "semantic_cca" in self.metrics:
            _ = self.word_instances
        if "semantic_cca" in self.metrics:
            rows, _ = self.semantic_rows
            labels = [self.word_instances.labels[i] for i in rows]
            if len(set(labels)) < 2:
                raise AnalysisError("semantic view: fewer than 2 analysed words have an embedding")
        if "phone_probe" in self.metrics or "cluster_quality" in self.metrics:
            _ = self.probe_test
        if "cluster_quality" in self.metrics:
            self._check_kmeans_k()

    def _check_kmeans_k(self) -> None:
        """K must stay below the frames k-means is fitted on (about the probe's training sample)."""
        train_frames = sum(conv_frame_count(u.num_samples) for u, test in zip(self.utterances, self.probe_test) if not test)
        expected = int(train_frames * self.frame_rate)
        if self.config.kmeans_k > expected:
            raise AnalysisError(
                f"cluster quality: K={self.config.kmeans_k} clusters need at least {self.config.kmeans_k} frames "
                f"to fit, the frame sample holds about {expected}; lower --kmeans_k or raise --probe_frames"
            )


# --- per-layer collection ------------------------------------------------------------------


class LayerCollector:
    """What the metrics keep of one layer while the utterances stream past."""

    def __init__(self, plan: DataPlan, metrics: Sequence[str], dim: int):
        c = plan.config
        self.plan = plan
        self.mel = FoldedStats(dim, NUM_MEL_BINS, c.n_folds, c.n_trials) if "mel_cca" in metrics else None
        self.phones = np.zeros((len(plan.phone_instances), dim), np.float32) if "phone_cca" in metrics else None
        wants_words = "word_cca" in metrics or "semantic_cca" in metrics
        self.words = np.zeros((len(plan.word_instances), dim), np.float32) if wants_words else None
        wants_frames = "phone_probe" in metrics or "cluster_quality" in metrics
        self.frames: list[np.ndarray] | None = [] if wants_frames else None
        self.frame_labels: list[np.ndarray] = []
        self.frame_test: list[np.ndarray] = []

    def add(self, index: int, utt: Utterance, layer: np.ndarray, mel: np.ndarray | None, frames: tuple | None):
        if self.mel is not None:
            layer_frames, mel_frames = align_frames(layer, mel, utt.utt_id)
            self.mel.add(int(self.plan.utt_folds[index]), layer_frames, mel_frames)
        if self.phones is not None:
            self._pool(self.phones, self.plan.phone_instances, utt.utt_id, layer, middle_third)
        if self.words is not None:
            self._pool(self.words, self.plan.word_instances, utt.utt_id, layer, lambda s: (s.start, s.end))
        if self.frames is not None and frames is not None:
            picked, labels = frames
            picked = picked[picked < len(layer)]
            self.frames.append(layer[picked])
            self.frame_labels.append(labels[: len(picked)])
            self.frame_test.append(np.full(len(picked), bool(self.plan.probe_test[index])))

    @staticmethod
    def _pool(out: np.ndarray, instances: Instances, utt_id: str, layer: np.ndarray, span) -> None:
        for seg, row in zip(instances.by_utt.get(utt_id, ()), instances.rows_of(utt_id)):
            out[row] = pool_span(layer, *span(seg))


def _frame_sample(plan: DataPlan, index: int, utt: Utterance, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames of an utterance sampled for the probe / clusters, and their phone labels (silence included)."""
    labels = np.array(frame_phones(plan.phone_ctm.get(utt.utt_id, ()), num_frames), dtype=object)
    rng = np.random.default_rng([plan.config.seed, index])
    chosen = np.flatnonzero((rng.random(num_frames) < plan.frame_rate) & (labels != None))  # noqa: E711
    return chosen, labels[chosen].astype(str)


# --- metrics from the collected data -------------------------------------------------------


def _cca_details(result) -> dict:
    return {"trial_scores": result.trial_scores, "regularisers": result.regularisers, "num_instances": result.num_instances}


def _compute(metric: str, plan: DataPlan, col: LayerCollector) -> tuple[dict[str, float], dict]:
    """(measure -> value, details) of one metric on one layer."""
    c = plan.config
    protocol = dict(n_folds=c.n_folds, n_trials=c.n_trials, regularisers=c.regularisers, seed=c.seed)
    if metric == "mel_cca":
        result = run_protocol(col.mel, c.regularisers)
        return {"mel_cca": result.score}, _cca_details(result)
    if metric == "phone_cca":
        labels = plan.phone_instances.labels
        result = protocol_pwcca(col.phones, one_hot(labels), labels, **protocol)
        return {"phone_cca": result.score}, _cca_details(result)
    if metric == "word_cca":
        labels = plan.word_instances.labels
        result = protocol_pwcca(col.words, one_hot(labels), labels, **protocol)
        return {"word_cca": result.score}, _cca_details(result)
    if metric == "semantic_cca":
        rows, vectors = plan.semantic_rows
        labels = [plan.word_instances.labels[i] for i in rows]
        result = protocol_pwcca(col.words[rows], vectors, labels, **protocol)
        return {"semantic_cca": result.score}, _cca_details(result)
    frames = np.concatenate(col.frames) if col.frames else np.zeros((0, 1), np.float32)
    labels = np.concatenate(col.frame_labels) if col.frame_labels else np.zeros(0, str)
    test = np.concatenate(col.frame_test) if col.frame_test else np.zeros(0, bool)
    if metric == "phone_probe":
        result = train_probe(frames[~test], labels[~test], frames[test], labels[test])
        return {"phone_probe_acc": result.accuracy}, dataclasses.asdict(result)
    if metric == "cluster_quality":
        from espnet_hubert_ae.analysis.clusters import cluster_quality

        quality = cluster_quality(frames[~test], frames, labels, k=c.kmeans_k, seed=c.seed)
        return {name: quality[name] for name in MEASURES["cluster_quality"]}, quality
    raise AnalysisError(f"unknown metric {metric!r}")


# --- one checkpoint ------------------------------------------------------------------------


def _read_audio(utt: Utterance) -> np.ndarray:
    import soundfile as sf

    try:
        wav, rate = sf.read(utt.audio, dtype="float32", always_2d=False)
    except (RuntimeError, OSError) as err:
        raise AnalysisError(f"utterance {utt.utt_id!r}: cannot read {utt.audio} ({err})") from None
    if rate != SAMPLE_RATE or wav.ndim != 1:
        raise AnalysisError(f"utterance {utt.utt_id!r}: {utt.audio} is not 16 kHz mono (run stage 2)")
    return wav


def metric_path(outdir: Path, ref: CheckpointRef, metric: str) -> Path:
    return outdir / ref.tag / f"{metric}.json"


def _cache_key(ref: CheckpointRef, plan: DataPlan, metric: str) -> dict:
    return {
        "version": RESULT_VERSION,
        "checkpoint": _file_identity(ref.checkpoint),
        "data": plan.identity,
        "settings": plan.config.metric_settings(metric),
    }


def load_cached(outdir: Path, ref: CheckpointRef, plan: DataPlan, metric: str) -> dict | None:
    path = metric_path(outdir, ref, metric)
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    return result if result.get("key") == _cache_key(ref, plan, metric) else None


def _layer_groups(num_states: int, group: int | None) -> list[list[int]]:
    size = num_states if group is None else group
    return [list(range(lo, min(lo + size, num_states))) for lo in range(0, num_states, size)]


def compute_metrics(
    ref: CheckpointRef, plan: DataPlan, metrics: Sequence[str], source: FeatureSource, blas_threads: int = 1
) -> dict[str, dict]:
    """Compute ``metrics`` for every layer of one checkpoint: metric -> result record.

    The metrics' linear algebra runs with ``blas_threads`` BLAS threads: OpenBLAS threads
    busy-wait, and on a machine shared with other work two of them ran 20x slower than one.
    """
    from threadpoolctl import threadpool_limits
    num_states = source.num_layers + 1
    per_layer: dict[str, list[tuple[dict, dict]]] = {m: [] for m in metrics}
    seconds = {m: 0.0 for m in metrics}
    wants_mel = "mel_cca" in metrics
    wants_frames = "phone_probe" in metrics or "cluster_quality" in metrics
    start = time.perf_counter()
    for group in _layer_groups(num_states, plan.config.layer_group):
        collectors: dict[int, LayerCollector] = {}
        desc = f"{ref.name} layers {group[0]}-{group[-1]}"
        for index, utt in enumerate(tqdm(plan.utterances, desc=desc, unit="utt", leave=False)):
            wav = _read_audio(utt)
            states = source(wav, group[-1])
            mel = log_mel_50hz(wav) if wants_mel else None
            frames = _frame_sample(plan, index, utt, len(states[0])) if wants_frames else None
            for layer in group:
                if layer not in collectors:
                    collectors[layer] = LayerCollector(plan, metrics, states[layer].shape[1])
                collectors[layer].add(index, utt, states[layer], mel, frames)
            del states
        forward_seconds = time.perf_counter() - start
        for layer in group:
            for metric in metrics:
                t0 = time.perf_counter()
                with threadpool_limits(limits=blas_threads, user_api="blas"):
                    per_layer[metric].append(_compute(metric, plan, collectors[layer]))
                seconds[metric] += time.perf_counter() - t0
            del collectors[layer]
        logger.info("%s: layers %d-%d done (features %.1f s)", ref.name, group[0], group[-1], forward_seconds)
        start = time.perf_counter()
    records = {}
    for metric in metrics:
        values, details = zip(*per_layer[metric])
        records[metric] = {
            "metric": metric,
            "checkpoint": ref.name,
            "key": _cache_key(ref, plan, metric),
            "measures": {m: [v[m] for v in values] for m in MEASURES[metric]},
            "layers": list(details),
            "metric_seconds": round(seconds[metric], 3),
        }
    return records


def analyse_checkpoint(
    ref: CheckpointRef,
    plan: DataPlan,
    outdir: str | os.PathLike,
    source_factory: Callable[[CheckpointRef], FeatureSource] | None = None,
    device: str = "cpu",
    blas_threads: int = 1,
) -> dict:
    """Results of every configured metric for one checkpoint, computing only what is not cached.

    ``source_factory`` makes the feature source of a checkpoint (default: load it on ``device``);
    ``blas_threads`` is passed to :func:`compute_metrics`.
    """
    outdir = Path(outdir)
    if source_factory is None:
        source_factory = functools.partial(checkpoint_features, device=device)
    records = {}
    missing = []
    for metric in plan.config.metrics:
        cached = load_cached(outdir, ref, plan, metric)
        if cached is None:
            missing.append(metric)
        else:
            records[metric] = cached
    if missing:
        logger.info("%s: computing %s (cached: %s)", ref.name, ", ".join(missing), ", ".join(records) or "none")
        plan.check()
        fresh = compute_metrics(ref, plan, missing, source_factory(ref), blas_threads)
        for metric, record in fresh.items():
            atomic_write_text(metric_path(outdir, ref, metric), json.dumps(record, indent=1) + "\n")
        records.update(fresh)
    else:
        logger.info("%s: every metric cached", ref.name)
    result = checkpoint_result(ref, plan, [records[m] for m in plan.config.metrics])
    atomic_write_text(outdir / ref.tag / "results.json", json.dumps(result, indent=1) + "\n")
    return result


def checkpoint_result(ref: CheckpointRef, plan: DataPlan, records: Sequence[dict]) -> dict:
    """The per-checkpoint JSON: identity, every measure per layer, and its summary statistics."""
    measures = {name: curve for record in records for name, curve in record["measures"].items()}
    stats: dict = {}
    for name, curve in measures.items():
        stats[name] = {"best_layer": summary.best_layer(curve), "top_layer_drop": summary.top_layer_drop(curve)}
    if "mel_cca" in measures:
        stats["mel_cca"]["input_rebound"] = summary.input_rebound(measures["mel_cca"])
    return {
        "checkpoint": {
            "name": ref.name,
            "path": str(ref.checkpoint),
            "config": None if ref.config is None else str(ref.config),
            "strategy": ref.strategy,
            "phase": ref.phase,
            "step": ref.step,
        },
        "data": plan.identity,
        "measures": measures,
        "summary": stats,
        "details": {record["metric"]: {"settings": record["key"]["settings"], "layers": record["layers"]} for record in records},
    }
