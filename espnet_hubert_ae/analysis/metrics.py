"""One metric on one layer, from what a :class:`~.collector.LayerCollector` kept of it.

The frame metrics (probe, clusters) run once per seed, each on its speaker split of the same
frame sample; their value is the mean over the seeds, with the sample standard deviation and
the per-seed results beside it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from espnet_hubert_ae.analysis import AnalysisError
from espnet_hubert_ae.analysis.cca import protocol_pwcca, run_protocol
from espnet_hubert_ae.analysis.collector import FrameSample, LayerCollector
from espnet_hubert_ae.analysis.config import MEASURES
from espnet_hubert_ae.analysis.probe import train_probe
from espnet_hubert_ae.analysis.sampling import DataPlan
from espnet_hubert_ae.analysis.views import one_hot
from espnet_hubert_ae.utils.seeds import sample_std


@dataclasses.dataclass(frozen=True)
class LayerValue:
    """A metric on one layer: measure -> value, measure -> spread over seeds, and details."""

    values: dict[str, float]
    std: dict[str, float]
    details: dict


def _cca_value(measure: str, result) -> LayerValue:
    details = {"trial_scores": result.trial_scores, "regularisers": result.regularisers,
               "num_instances": result.num_instances, "dims": result.dims}
    return LayerValue({measure: result.score}, {}, details)


def over_seeds(plan: DataPlan, sample: FrameSample, run: Callable[[int, np.ndarray], dict],
               measures: dict[str, str]) -> LayerValue:
    """``run(seed, is_test)`` on each seed's speaker split; ``measures`` maps a measure to the key
    of its value in what ``run`` returns. Values are means over the seeds; the details hold
    each seed's result and, under ``by_seed``, each measure's value per seed."""
    per_seed = {str(seed): run(seed, sample.split(plan.test_utterances(seed))) for seed in plan.config.seeds}
    by_seed = {measure: {seed: float(result[key]) for seed, result in per_seed.items()} for measure, key in measures.items()}
    values = {measure: float(np.mean(list(v.values()))) for measure, v in by_seed.items()}
    std = {measure: sample_std(list(v.values())) for measure, v in by_seed.items()}
    return LayerValue(values, std, {"seeds": list(plan.config.seeds), "by_seed": by_seed, "per_seed": per_seed})


PROBE_MEASURES = {"phone_probe_acc": "accuracy"}
CLUSTER_MEASURES = {name: name for name in MEASURES["cluster_quality"]}


def frame_metric(metric: str, plan: DataPlan, sample: FrameSample) -> LayerValue:
    """A frame metric (probe or clusters) of one layer's (or control's) frame sample."""
    x, labels = sample.features, sample.labels
    if metric == "phone_probe":
        def probe(seed: int, test: np.ndarray) -> dict:
            return dataclasses.asdict(train_probe(x[~test], labels[~test], x[test], labels[test]))

        value = over_seeds(plan, sample, probe, PROBE_MEASURES)
        majority = {seed: result["majority_accuracy"] for seed, result in value.details["per_seed"].items()}
        value.details["by_seed"]["majority"] = majority
        value.details["majority"] = float(np.mean(list(majority.values())))
        return value
    if metric == "cluster_quality":
        from espnet_hubert_ae.analysis.clusters import cluster_quality

        def clusters(seed: int, test: np.ndarray) -> dict:
            return cluster_quality(x[~test], x[test], labels[test], k=plan.config.kmeans_k, seed=seed)

        return over_seeds(plan, sample, clusters, CLUSTER_MEASURES)
    raise AnalysisError(f"{metric!r} is not a frame metric")


def compute_metric(metric: str, plan: DataPlan, col: LayerCollector) -> LayerValue:
    """One metric on one layer."""
    c = plan.config
    settings = c.cca_settings()
    if metric == "mel_cca":
        return _cca_value("mel_cca", run_protocol(col.mel, settings))
    if metric == "phone_cca":
        labels = plan.phone_instances.labels
        return _cca_value("phone_cca", protocol_pwcca(col.phones, one_hot(labels), labels, settings, seed=c.seed))
    if metric == "word_cca":
        labels = plan.word_instances.labels
        return _cca_value("word_cca", protocol_pwcca(col.words, one_hot(labels), labels, settings, seed=c.seed))
    if metric == "semantic_cca":
        rows, vectors = plan.semantic_rows
        labels = [plan.word_instances.labels[i] for i in rows]
        return _cca_value("semantic_cca", protocol_pwcca(col.words[rows], vectors, labels, settings, seed=c.seed))
    return frame_metric(metric, plan, col.frame_sample())
