"""What the analysis samples from a data set: speaker splits of the probe, the frame sample, the
labels a CCA view needs."""

import numpy as np
import pytest

from espnet_hubert_ae.analysis import AnalysisError
from espnet_hubert_ae.analysis.config import AnalysisConfig
from espnet_hubert_ae.analysis.sampling import DataPlan
from espnet_hubert_ae.data.datadir import Segment, Utterance, write_datadir


def _datadir(root, num_speakers, utts_per_speaker=2, seconds=2.0):
    """A data directory of silent 'audio' (never read) with one phone per 0.1 s."""
    utts, phones = [], []
    for s in range(num_speakers):
        for u in range(utts_per_speaker):
            utt_id = f"s{s:02d}-u{u}"
            utts.append(Utterance(utt_id, "/nonexistent.wav", f"s{s:02d}", int(seconds * 16000)))
            phones += [Segment(utt_id, round(0.1 * i, 3), 0.1, "AB"[i % 2]) for i in range(int(seconds * 10))]
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


def test_frame_sample_depends_on_the_utterance_only(tmp_path):
    plan = DataPlan(_datadir(tmp_path / "d", 4), AnalysisConfig(metrics=("phone_probe",), probe_frames=400))
    chosen = [plan.frame_sample(i) for i in range(len(plan.utterances))]
    again = DataPlan(plan.datadir, plan.config)
    for i, (frames, labels) in enumerate(chosen):
        np.testing.assert_array_equal(frames, again.frame_sample(i)[0])
        assert set(labels) <= {"A", "B"} and frames.max() < 99  # 2 s: 99 frames at 50 Hz
    assert 250 < sum(len(frames) for frames, _ in chosen) < 550  # ~400 of the 8 x 99 frames


def test_too_few_labels_for_a_cca_view_are_refused_naming_the_set(tmp_path):
    datadir = _datadir(tmp_path / "d", 4)
    plan = DataPlan(datadir, AnalysisConfig(metrics=("phone_cca",), n_folds=3, n_trials=1))
    with pytest.raises(AnalysisError, match=rf"phone view of {datadir}: 2 labels qualify \(\d+ instances from 8 "
                                            r"utterances.*fewer than the 20 .*--min_labels"):
        plan.check()
    DataPlan(datadir, AnalysisConfig(metrics=("phone_cca",), n_folds=3, n_trials=1, min_labels=2)).check()
