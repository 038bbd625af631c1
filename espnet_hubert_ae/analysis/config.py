"""The analysis' metrics and settings: what each metric measures and what its result depends on."""

from __future__ import annotations

import dataclasses

from espnet_hubert_ae.analysis import AnalysisError
from espnet_hubert_ae.analysis.cca import REGULARISERS, CCASettings, Reduction, check_protocol
from espnet_hubert_ae.defaults import SEED, SEEDS
from espnet_hubert_ae.utils.fileio import file_identity

# metric -> the measures (named layer curves) it produces; a metric is the unit of caching.
MEASURES: dict[str, tuple[str, ...]] = {
    "mel_cca": ("mel_cca",),
    "phone_cca": ("phone_cca",),
    "word_cca": ("word_cca",),
    "semantic_cca": ("semantic_cca",),
    "phone_probe": ("phone_probe_acc",),
    "cluster_quality": ("pnmi", "pnmi_corrected", "phone_purity", "cluster_purity"),
}
METRICS = tuple(MEASURES)
DEFAULT_METRICS = ("mel_cca", "phone_cca", "word_cca", "phone_probe", "cluster_quality")
CCA_METRICS = ("mel_cca", "phone_cca", "word_cca", "semantic_cca")
PHONE_METRICS = ("phone_cca", "phone_probe", "cluster_quality")
WORD_METRICS = ("word_cca", "semantic_cca")
FRAME_METRICS = ("phone_probe", "cluster_quality")  # on a frame sample rather than on instances


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    """Every setting of the analysis (defaults: Pasad et al.'s protocol sizes)."""

    metrics: tuple[str, ...] = DEFAULT_METRICS
    max_utterances: int | None = 500  # utterances analysed (seeded sample); None: all
    n_folds: int = 10
    n_trials: int = 3
    regularisers: tuple[float, ...] = REGULARISERS
    cca_rows_per_dim: int = 10  # the layer view keeps at most n_train / this many dimensions ...
    cca_variance: float = 0.99  # ... or this share of its training variance, if that needs fewer
    min_labels: int = 20  # a phone or word view needs this many labels with an instance per fold
    num_phones: int | None = None  # phone labels kept (most frequent); None: all but silence
    rare_phones: str = "error"  # a kept phone with fewer instances than folds: "error" or "drop" it
    phone_instances: int = 200  # at most this many instances per phone
    num_words: int = 500  # most frequent words kept
    word_instances: int = 15  # at most this many instances per word
    word_embeddings: str | None = None  # GloVe text file (needed by semantic_cca)
    word_embedding_dim: int | None = None  # expected embedding dimension (None: the file's)
    probe_frames: int = 30000  # frames sampled for the phone probe and the clusters
    test_speakers: float = 1 / 3  # share of the speakers whose frames test the probe and the clusters
    seeds: tuple[int, ...] = SEEDS  # one speaker split of the frame sample per seed
    kmeans_k: int = 100  # clusters for the cluster-quality metric
    layer_group: int | None = None  # layers per model pass (None: all in one pass)
    seed: int = SEED  # the samples: utterances, instances, folds, frames

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
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise AnalysisError(f"seeds must be at least one seed, each once; got {list(self.seeds)}")
        if not 0 < self.test_speakers < 1:
            raise AnalysisError(f"test_speakers is a share of the speakers, in (0, 1); got {self.test_speakers}")
        if not 0 < self.cca_variance <= 1 or self.cca_rows_per_dim < 1:
            raise AnalysisError(f"cca_variance must be in (0, 1] and cca_rows_per_dim at least 1; got "
                                f"{self.cca_variance} and {self.cca_rows_per_dim}")
        if self.min_labels < 2:
            raise AnalysisError(f"min_labels must be at least 2 (CCA of one label is undefined), got {self.min_labels}")

    def cca_settings(self) -> CCASettings:
        return CCASettings(self.n_folds, self.n_trials, self.regularisers, Reduction(self.cca_rows_per_dim, self.cca_variance))

    def metric_settings(self, metric: str) -> dict:
        """The settings a metric's result depends on (its cache key)."""
        out: dict = {"max_utterances": self.max_utterances, "seed": self.seed}
        if metric in CCA_METRICS:
            out.update(n_folds=self.n_folds, n_trials=self.n_trials, regularisers=list(self.regularisers),
                       cca_rows_per_dim=self.cca_rows_per_dim, cca_variance=self.cca_variance)
        if metric == "phone_cca":
            out.update(num_phones=self.num_phones, rare_phones=self.rare_phones, phone_instances=self.phone_instances,
                       min_labels=self.min_labels)
        if metric in WORD_METRICS:
            out.update(num_words=self.num_words, word_instances=self.word_instances, min_labels=self.min_labels)
        if metric == "semantic_cca":
            out.update(word_embeddings=file_identity(self.word_embeddings), word_embedding_dim=self.word_embedding_dim)
        if metric in FRAME_METRICS:
            out.update(probe_frames=self.probe_frames, test_speakers=self.test_speakers, seeds=list(self.seeds))
        if metric == "cluster_quality":
            out.update(kmeans_k=self.kmeans_k)
        return out
