"""One metric on one layer, from what a :class:`~.collector.LayerCollector` kept of it."""

from __future__ import annotations

import dataclasses

from espnet_hubert_ae.analysis import AnalysisError
from espnet_hubert_ae.analysis.cca import protocol_pwcca, run_protocol
from espnet_hubert_ae.analysis.collector import LayerCollector
from espnet_hubert_ae.analysis.config import MEASURES
from espnet_hubert_ae.analysis.probe import train_probe
from espnet_hubert_ae.analysis.sampling import DataPlan
from espnet_hubert_ae.analysis.views import one_hot


def _cca_details(result) -> dict:
    return {"trial_scores": result.trial_scores, "regularisers": result.regularisers, "num_instances": result.num_instances}


def compute_metric(metric: str, plan: DataPlan, col: LayerCollector) -> tuple[dict[str, float], dict]:
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
    frames, labels, test = col.frame_sample()
    if metric == "phone_probe":
        result = train_probe(frames[~test], labels[~test], frames[test], labels[test])
        return {"phone_probe_acc": result.accuracy}, dataclasses.asdict(result)
    if metric == "cluster_quality":
        from espnet_hubert_ae.analysis.clusters import cluster_quality

        quality = cluster_quality(frames[~test], frames, labels, k=c.kmeans_k, seed=c.seed)
        return {name: quality[name] for name in MEASURES["cluster_quality"]}, quality
    raise AnalysisError(f"unknown metric {metric!r}")
