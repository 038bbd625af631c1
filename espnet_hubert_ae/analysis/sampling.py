"""What the analysis takes from a data set, the same for every checkpoint: the utterances, the
phone and word instances of the CCA views, and the frame sample of the probe and the clusters.

Everything is drawn from the data directory and its CTMs alone, seeded, before any model runs,
so bad input fails first and every checkpoint is measured on the same sample.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from espnet_hubert_ae.analysis import AnalysisError
from espnet_hubert_ae.analysis.config import FRAME_METRICS, PHONE_METRICS, WORD_METRICS, AnalysisConfig
from espnet_hubert_ae.analysis.views import Instances, Sampling, read_word_embeddings, sample_instances
from espnet_hubert_ae.data.alignments import SPOKEN_NOISE
from espnet_hubert_ae.data.datadir import SILENCE, Segment, Utterance, read_ctm, read_datadir
from espnet_hubert_ae.model.frames import conv_frame_count, frame_phones

logger = logging.getLogger(__name__)


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
        self._splits: dict[int, np.ndarray] = {}

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
    def speakers(self) -> list[str]:
        """The speakers of the analysed utterances, sorted."""
        return sorted({u.speaker for u in self.utterances})

    def test_utterances(self, seed: int) -> np.ndarray:
        """Whether each utterance's frames test (rather than train) the probe and the clusters in
        the speaker split of ``seed``: about ``test_speakers`` of the speakers, at least one on
        each side, drawn with ``seed``."""
        if seed not in self._splits:
            self._splits[seed] = self._speaker_split(seed)
        return self._splits[seed]

    def _speaker_split(self, seed: int) -> np.ndarray:
        speakers = self.speakers
        if len(speakers) < 2:
            raise AnalysisError(
                f"{self.datadir}: the phone probe and the clusters are tested on held-out speakers, and the "
                f"{len(self.utterances)} utterances analysed have {len(speakers)} speaker ({', '.join(speakers)}) "
                "in utt2spk; analyse a set with at least 2 speakers or leave phone_probe and cluster_quality out"
            )
        num_test = min(len(speakers) - 1, max(1, round(len(speakers) * self.config.test_speakers)))
        held_out = set(np.random.default_rng(seed).choice(speakers, size=num_test, replace=False).tolist())
        mask = np.array([u.speaker in held_out for u in self.utterances])
        mask.flags.writeable = False
        return mask

    @functools.cached_property
    def frame_rate(self) -> float:
        """Probability that a frame joins the probe / cluster sample (about ``probe_frames`` in all)."""
        total = sum(conv_frame_count(u.num_samples) for u in self.utterances)
        return min(1.0, self.config.probe_frames / max(total, 1))

    def _ids(self) -> list[str]:
        return [u.utt_id for u in self.utterances]

    def _enough_labels(self, view: str, labels: Sequence[str], asked: int | None, option: str | None) -> None:
        """Refuse a CCA view with fewer labels than ``min_labels`` (or than asked for, if fewer)."""
        needed = self.config.min_labels if asked is None else min(asked, self.config.min_labels)
        found = len(set(labels))
        if found < needed:
            raise AnalysisError(
                f"{view} view of {self.datadir}: {found} labels qualify ({len(labels)} instances from "
                f"{len(self.utterances)} utterances, at least {self.config.n_folds} instances each, one per fold), "
                f"fewer than the {needed} the CCA needs (--min_labels); analyse a larger set, "
                f"lower --n_folds, or lower --min_labels{'' if option is None else ' / ' + option}"
            )

    @functools.cached_property
    def phone_instances(self) -> Instances:
        c = self.config
        instances = sample_instances(
            self.phone_ctm, self._ids(), Sampling(c.num_phones, c.phone_instances, c.n_folds, strict=c.rare_phones == "error"),
            view="phone", option="--num_phones", seed=c.seed, exclude=(SILENCE, SPOKEN_NOISE),
        )
        self._enough_labels("phone", instances.labels, c.num_phones, "--num_phones")
        return instances

    @functools.cached_property
    def word_instances(self) -> Instances:
        c = self.config
        instances = sample_instances(
            self.word_ctm, self._ids(), Sampling(c.num_words, c.word_instances, c.n_folds, strict=False),
            view="word", option="--num_words", seed=c.seed,
        )
        self._enough_labels("word", instances.labels, c.num_words, "--num_words")
        return instances

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

    def frame_sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames of utterance ``index`` sampled for the probe / clusters, and their phone labels
        (silence included; frames outside every phone segment are never sampled).

        The sample depends on the utterance (its 50 Hz frame count from the conv arithmetic,
        its phones) and its place in the set, and on the rest of the set only through the share
        of frames sampled (``frame_rate``, from the set's total frame count): every checkpoint
        and every input control is measured on the same frames.
        """
        utt = self.utterances[index]
        num_frames = conv_frame_count(utt.num_samples)
        labels = np.array(frame_phones(self.phone_ctm.get(utt.utt_id, ()), num_frames), dtype=object)
        rng = np.random.default_rng([self.config.seed, index])
        chosen = np.flatnonzero((rng.random(num_frames) < self.frame_rate) & (labels != None))  # noqa: E711
        return chosen, labels[chosen].astype(str)

    def check(self) -> None:
        """Build everything the metrics need now, so that bad input fails before any model runs."""
        _ = self.utterances
        if "phone_cca" in self.metrics:
            _ = self.phone_instances
        if any(m in WORD_METRICS for m in self.metrics):
            _ = self.word_instances
        if "semantic_cca" in self.metrics:
            rows, _ = self.semantic_rows
            self._enough_labels("semantic", [self.word_instances.labels[i] for i in rows], self.config.num_words, None)
        if any(m in FRAME_METRICS for m in self.metrics):
            for seed in self.config.seeds:
                _ = self.test_utterances(seed)
        if "cluster_quality" in self.metrics:
            self._check_kmeans_k()

    def _check_kmeans_k(self) -> None:
        """K must stay below the frames k-means is fitted on (about the training speakers' sample)."""
        frames = np.array([conv_frame_count(u.num_samples) for u in self.utterances])
        for seed in self.config.seeds:
            expected = int(frames[~self.test_utterances(seed)].sum() * self.frame_rate)
            if self.config.kmeans_k > expected:
                raise AnalysisError(
                    f"cluster quality: K={self.config.kmeans_k} clusters need at least {self.config.kmeans_k} frames "
                    f"to fit, the training speakers' frame sample of seed {seed} holds about {expected}; "
                    "lower --kmeans_k or raise --probe_frames"
                )
