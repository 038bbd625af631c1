"""What the analysis samples from a data set: speaker splits of the probe, the frame sample, the
labels a CCA view needs."""

import numpy as np
import pytest

from espnet_hubert_ae.analysis import AnalysisError
from espnet_hubert_ae.analysis.config import AnalysisConfig
from espnet_hubert_ae.analysis.sampling import DataPlan
from espnet_hubert_ae.data.datadir import Segment, Utterance, write_datadir


def _datadir(root, num_speakers, utts_per_speaker=2, seconds=2.0, *, kept=None, lengths=None):
    """A data directory of silent 'audio' (never read) with one phone per 0.1 s, A, B, A, ...

    With ``kept`` (an utterance id), every other utterance is another one: another speaker,
    phones C, D, E, ..., and its length from ``lengths`` (utterance id -> samples) where given;
    an id of ``lengths`` past the speakers' own utterances is added to the set.
    """
    ids = [f"s{s:02d}-u{u}" for s in range(num_speakers) for u in range(utts_per_speaker)]
    ids += sorted(set(lengths or {}) - set(ids))
    utts, phones = [], []
    for utt_id in ids:
        s = int(utt_id[1:3])
        other = kept is not None and utt_id != kept
        num_samples = (lengths or {}).get(utt_id, int(seconds * 16000)) if other else int(seconds * 16000)
        labels = "CDE" if other else "AB"
        utts.append(Utterance(utt_id, "/nonexistent.wav", f"{'x' if other else 's'}{s:02d}", num_samples))
        phones += [Segment(utt_id, round(0.1 * i, 3), 0.1, labels[i % len(labels)])
                   for i in range(num_samples // 1600)]
    return write_datadir(root, utts, phones=phones)


def _speakers(plan, test):
    held_out = {u.speaker for u, t in zip(plan.utterances, test) if t}
    training = {u.speaker for u, t in zip(plan.utterances, test) if not t}
    return held_out, training


def test_a_third_of_the_speakers_are_held_out_per_seed(tmp_path):
    plan = DataPlan(_datadir(tmp_path / "d", 30), AnalysisConfig(metrics=("phone_probe",), seeds=(1, 2, 3)))
    splits = []
    for seed in (1, 2, 3):
        held_out, training = _speakers(plan, plan.test_utterances(seed))
        assert len(held_out) == 10 and len(training) == 20 and not held_out & training
        np.testing.assert_array_equal(plan.test_utterances(seed), DataPlan(plan.datadir, plan.config).test_utterances(seed))
        splits.append(frozenset(held_out))
    assert len(set(splits)) == 3  # each seed its own split


def test_two_speakers_split_one_and_one_and_one_speaker_is_refused(tmp_path):
    plan = DataPlan(_datadir(tmp_path / "two", 2), AnalysisConfig(metrics=("phone_probe",)))
    held_out, training = _speakers(plan, plan.test_utterances(1))
    assert len(held_out) == 1 and len(training) == 1
    one = DataPlan(_datadir(tmp_path / "one", 1, utts_per_speaker=4), AnalysisConfig(metrics=("phone_probe",)))
    with pytest.raises(AnalysisError, match=r"one.*held-out speakers.*1 speaker \(s00\)"):
        one.check()


def test_frame_sample_is_about_probe_frames_labelled_at_each_frames_centre(tmp_path):
    plan = DataPlan(_datadir(tmp_path / "d", 4), AnalysisConfig(metrics=("phone_probe",), probe_frames=400))
    chosen = [plan.frame_sample(i) for i in range(len(plan.utterances))]
    for frames, labels in chosen:
        assert len(frames) and frames.max() < 99  # 2 s: 99 frames at 50 Hz
        # Frame f is centred at 12.5 ms + 20 ms f; the phones change every 0.1 s: A, B, A, ...
        np.testing.assert_array_equal(labels, ["AB"[int((0.0125 + 0.02 * f) / 0.1) % 2] for f in frames])
    assert 250 < sum(len(frames) for frames, _ in chosen) < 550  # ~400 of the 8 x 99 frames


def test_frame_sample_depends_on_the_utterance_not_on_the_others(tmp_path):
    """Every other utterance changed -- its speaker, its phones, its length, and one more of them
    (the set's total frame count kept, so that the share of frames sampled stays) -- and an
    utterance keeps its frames."""
    config = AnalysisConfig(metrics=("phone_probe",), probe_frames=400)
    plan = DataPlan(_datadir(tmp_path / "d", 4), config)
    kept = 3  # s01-u1, between the utterances whose lengths change
    # The first utterance 0.32 s (16 frames) shorter, the last as much longer, and an utterance of
    # 16 frames (400 + 15 x 320 samples) added while the one before it loses 16 frames.
    lengths = {"s00-u0": 32000 - 5120, "s03-u0": 32000 - 5120, "s03-u1": 32000 + 5120, "s03-u2": 400 + 15 * 320}
    others = DataPlan(_datadir(tmp_path / "o", 4, kept="s01-u1", lengths=lengths), config)
    assert others.frame_rate == plan.frame_rate < 1  # the precondition: the same share of the frames
    assert len(others.utterances) == len(plan.utterances) + 1
    assert [u.num_samples for u in others.utterances[:-1]] != [u.num_samples for u in plan.utterances]
    for i, (a, b) in enumerate(zip(plan.utterances, others.utterances)):
        assert a.utt_id == b.utt_id and (a == b) == (i == kept)
    frames, labels = plan.frame_sample(kept)
    frames_b, labels_b = others.frame_sample(kept)
    np.testing.assert_array_equal(frames_b, frames)
    np.testing.assert_array_equal(labels_b, labels)
    assert set(others.frame_sample(0)[1]) <= {"C", "D", "E"}  # the others did change


def test_too_few_labels_for_a_cca_view_are_refused_naming_the_set(tmp_path):
    datadir = _datadir(tmp_path / "d", 4)
    plan = DataPlan(datadir, AnalysisConfig(metrics=("phone_cca",), n_folds=3, n_trials=1))
    with pytest.raises(AnalysisError, match=rf"phone view of {datadir}: 2 labels qualify \(\d+ instances from 8 "
                                            r"utterances.*fewer than the 20 .*--min_labels"):
        plan.check()
    DataPlan(datadir, AnalysisConfig(metrics=("phone_cca",), n_folds=3, n_trials=1, min_labels=2)).check()
