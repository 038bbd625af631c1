"""The input controls: measured on the checkpoints' frames and speaker splits, once per data set."""

import json

import numpy as np
import pytest

from espnet_hubert_ae.analysis.config import AnalysisConfig
from espnet_hubert_ae.analysis.controls import analyse_controls, mfcc_50hz
from espnet_hubert_ae.analysis.layerwise import analyse_checkpoint
from espnet_hubert_ae.analysis.sampling import DataPlan
from espnet_hubert_ae.analysis.views import log_mel_50hz
from espnet_hubert_ae.upstream.registry import CheckpointRef


def test_mfcc_control_is_at_the_mel_views_frame_rate():
    wav = np.random.default_rng(0).normal(size=16000).astype(np.float32) * 0.1
    mfcc, mel = mfcc_50hz(wav), log_mel_50hz(wav)
    assert mfcc.shape == (len(mel), 39) and mel.shape[1] == 80


def test_controls_share_the_checkpoints_frames_and_splits(synthetic_corpus, tmp_path, mel_features):
    plan = DataPlan(synthetic_corpus, AnalysisConfig(metrics=("phone_probe", "cluster_quality"), kmeans_k=10,
                                                     seeds=(1, 2), min_labels=5))
    outdir = tmp_path / "out"
    controls = analyse_controls(plan, outdir)
    assert set(controls) == {"logmel", "logmel5", "logmel9", "mfcc", "majority"}
    logmel = controls["logmel"]
    assert logmel["phone_probe_acc"]["mean"] > 0.9  # the phones are tones: one log-mel frame tells them
    assert set(logmel["phone_probe_acc"]["per_seed"]) == {"1", "2"}
    assert logmel["pnmi"]["mean"] > logmel["pnmi_corrected"]["mean"] > 0.3
    assert 0.1 < controls["majority"]["mean"] < 0.5
    assert json.loads((outdir / "controls" / "results.json").read_text()) == controls

    path = tmp_path / "ckpt.pth"
    path.write_bytes(b"fake")
    ref = CheckpointRef("fake_tiny/p1/step0", path, run="fake_tiny", strategy="fake", phase=1, step=0)
    result = analyse_checkpoint(ref, plan, outdir, source_factory=lambda _: mel_features(), controls=controls)
    control_probe = json.loads((outdir / "controls" / "logmel" / "phone_probe.json").read_text())["layers"][0]
    control_clusters = json.loads((outdir / "controls" / "mfcc" / "cluster_quality.json").read_text())["layers"][0]
    for seed in ("1", "2"):  # the same frames, split the same way
        assert control_probe["per_seed"][seed]["num_test"] == result["probe"]["frames"][seed]["test"]
        assert control_probe["per_seed"][seed]["num_train"] == result["probe"]["frames"][seed]["train"]
        assert control_clusters["per_seed"][seed]["frames"] == result["clusters"]["frames"][seed]
        assert result["probe"]["majority"][seed] == controls["majority"]["per_seed"][seed]
    assert result["probe"]["controls"]["logmel"] == logmel["phone_probe_acc"]
    assert result["clusters"]["controls"]["mfcc"]["pnmi"] == controls["mfcc"]["pnmi"]

    written = {p: p.stat().st_mtime_ns for p in (outdir / "controls").glob("*/*.json")}
    assert analyse_controls(plan, outdir) == controls  # cached: nothing computed again
    assert {p: p.stat().st_mtime_ns for p in written} == written


def test_no_frame_metric_no_controls(synthetic_corpus, tmp_path):
    plan = DataPlan(synthetic_corpus, AnalysisConfig(metrics=("mel_cca",)))
    assert analyse_controls(plan, tmp_path / "out") == {}
    assert not (tmp_path / "out").exists()



def test_stacked_frames_hold_each_frame_with_its_neighbours_edges_replicated():
    from espnet_hubert_ae.analysis.controls import stack_frames

    frames = np.array([[0.0, 10.0], [1.0, 11.0], [2.0, 12.0], [3.0, 13.0]])
    # width 3: frames t-1, t, t+1 side by side; the first and last frames repeat beyond the edges
    expected = np.array([[0, 10, 0, 10, 1, 11], [0, 10, 1, 11, 2, 12], [1, 11, 2, 12, 3, 13],
                         [2, 12, 3, 13, 3, 13]], dtype=float)
    np.testing.assert_array_equal(stack_frames(frames, 3), expected)
    np.testing.assert_array_equal(stack_frames(frames, 1), frames)
    assert stack_frames(frames, 9).shape == (4, 18)
    np.testing.assert_array_equal(stack_frames(frames, 9)[0, :8], [0, 10] * 4)  # 4 copies of frame 0 before it
    assert stack_frames(np.zeros((0, 80), np.float32), 5).shape == (0, 400)
    with pytest.raises(ValueError, match="width must be odd"):
        stack_frames(frames, 4)


def test_input_context_controls_stack_the_mel_views_frames(synthetic_corpus):
    from espnet_hubert_ae.analysis.controls import CONTROLS, INPUT_CONTEXT, WIDEST_CONTEXT

    assert INPUT_CONTEXT == {"logmel": 1, "logmel5": 5, "logmel9": 9} and WIDEST_CONTEXT == "logmel9"
    wav = np.random.default_rng(1).normal(size=8000).astype(np.float32) * 0.1
    mel = log_mel_50hz(wav)
    nine = CONTROLS["logmel9"](wav)
    assert nine.shape == (len(mel), 9 * 80)
    np.testing.assert_array_equal(nine[10].reshape(9, 80), mel[6:15])  # frame 10 and four on either side
    np.testing.assert_array_equal(CONTROLS["logmel5"](wav)[0].reshape(5, 80), mel[[0, 0, 0, 1, 2]])
