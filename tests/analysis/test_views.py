"""The mel, phone, word and word-embedding views, pooling and instance sampling."""

import numpy as np
import pytest

from espnet_hubert_ae.analysis import AnalysisError
from espnet_hubert_ae.analysis.views import (
    Sampling,
    align_frames,
    frame_range,
    log_mel_50hz,
    middle_third,
    one_hot,
    pool_span,
    read_word_embeddings,
    sample_instances,
)
from espnet_hubert_ae.data.datadir import Segment
from espnet_hubert_ae.model.frames import conv_frame_count


def test_middle_third_pooling_takes_exactly_the_middle_third():
    # a phone over frames 3..11 (9 frames, centres 0.0725 .. 0.2325 s): middle third = frames 6, 7, 8
    frames = np.arange(20, dtype=float)[:, None] * np.ones((1, 2))
    seg = Segment("u", 0.06, 0.18, "AA")
    assert frame_range(seg.start, seg.end, 20) == (3, 12)
    assert frame_range(*middle_third(seg), 20) == (6, 9)
    np.testing.assert_allclose(pool_span(frames, *middle_third(seg)), [7.0, 7.0])
    np.testing.assert_allclose(pool_span(frames, seg.start, seg.end), [7.0, 7.0])
    # whole-word pooling: the plain mean of every frame inside
    frames[3] = 100
    np.testing.assert_allclose(pool_span(frames, seg.start, seg.end), [(100 + sum(range(4, 12))) / 9] * 2)


def test_short_segment_pools_its_nearest_frame():
    frames = np.arange(10, dtype=float)[:, None]
    seg = Segment("u", 0.081, 0.03, "B")  # middle third [0.091, 0.101): no frame centre inside
    assert frame_range(*middle_third(seg), 10) == (4, 5)
    assert pool_span(frames, *middle_third(seg)).tolist() == [4.0]
    assert frame_range(0.5, 0.6, 10) == (9, 10)  # past the end: the last frame


def test_log_mel_is_80_dims_at_50_hz_aligned_to_layer_frames():
    for samples in (16000, 16000 * 2 + 123, 7999):
        mel = log_mel_50hz(np.random.default_rng(0).normal(size=samples).astype(np.float32) * 0.1)
        assert mel.shape[1] == 80
        layer = np.zeros((conv_frame_count(samples), 4))
        assert abs(len(mel) - len(layer)) <= 1
        a, b = align_frames(layer, mel, "u")
        assert len(a) == len(b) == min(len(mel), len(layer))


def test_misaligned_frames_fail_naming_the_utterance():
    with pytest.raises(AnalysisError, match="utt7.*50 Hz"):
        align_frames(np.zeros((100, 4)), np.zeros((50, 80)), "utt7")


def _ctm(counts):
    """CTM with ``counts[label]`` instances of each label, spread over utterances u0..u3."""
    ctm = {f"u{i}": [] for i in range(4)}
    t = 0.0
    for label, n in counts.items():
        for j in range(n):
            ctm[f"u{j % 4}"].append(Segment(f"u{j % 4}", t, 0.1, label))
            t += 0.1
    for segs in ctm.values():
        segs.sort(key=lambda s: s.start)
    return ctm


def test_sampling_caps_instances_excludes_silence_and_is_seeded():
    ctm = _ctm({"AA": 50, "B": 12, "SIL": 40})
    inst = sample_instances(ctm, ctm, Sampling(None, 20, 10), view="phone", option="--num_phones", seed=0)
    assert inst.label_set == ["AA", "B"]
    assert sorted(inst.labels).count("AA") == 20 and inst.labels.count("B") == 12
    rows = sorted(r for utt in inst.rows for r in inst.rows_of(utt))
    assert rows == list(range(len(inst)))
    for utt, segs in inst.by_utt.items():
        assert [inst.labels[r] for r in inst.rows_of(utt)] == [s.label for s in segs]
    again = sample_instances(ctm, ctm, Sampling(None, 20, 10), view="phone", option="--num_phones", seed=0)
    assert again == inst


def test_too_few_instances_name_the_labels_and_the_need():
    ctm = _ctm({"AA": 50, "B": 12, "ZH": 3, "OY": 5})
    with pytest.raises(AnalysisError) as err:
        sample_instances(ctm, ctm, Sampling(None, 200, 10), view="phone", option="--num_phones")
    message = str(err.value)
    assert "ZH (3)" in message and "OY (5)" in message and "10 instances" in message
    assert "--num_phones 2" in message
    # keeping only the frequent labels works
    inst = sample_instances(ctm, ctm, Sampling(2, 200, 10), view="phone", option="--num_phones")
    assert inst.label_set == ["AA", "B"]


def test_sampling_without_segments_fails():
    with pytest.raises(AnalysisError, match="no word segments"):
        sample_instances({"u": []}, ["u"], Sampling(5, 15, 10), view="word", option="--num_words")


def test_one_hot():
    np.testing.assert_array_equal(one_hot(["b", "a", "b"]), [[0, 1], [1, 0], [0, 1]])


def test_word_embeddings(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("the 0.1 0.2 0.3\ncab 1 2 3\nsea -1 0 1\n")
    vectors = read_word_embeddings(path, ["CAB", "SEA", "UNKNOWN"])
    assert sorted(vectors) == ["CAB", "SEA"]
    np.testing.assert_allclose(vectors["CAB"], [1, 2, 3])
    with pytest.raises(AnalysisError, match="dimension 3, but the expected is 300"):
        read_word_embeddings(path, ["CAB"], expected_dim=300)
    with pytest.raises(AnalysisError, match="no vector for any of the 2 words"):
        read_word_embeddings(path, ["ZEBRA", "YAK"])
    with pytest.raises(AnalysisError, match="does not exist"):
        read_word_embeddings(tmp_path / "nope.txt", ["CAB"])
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("cab 1 2 3\nsea 1 2\n")
    with pytest.raises(AnalysisError, match="ragged.txt:2: vector of dimension 2"):
        read_word_embeddings(ragged, ["CAB"])


def test_words_keep_the_frequent_ones_with_enough_instances():
    ctm = _ctm({"THE": 40, "CAB": 12, "SEA": 10, "RARE": 3})
    sampling = Sampling(500, 15, 10, strict=False)
    inst = sample_instances(ctm, ctm, sampling, view="word", option="--num_words")
    assert inst.label_set == ["CAB", "SEA", "THE"]
    assert inst.labels.count("THE") == 15
    two = sample_instances(ctm, ctm, Sampling(2, 15, 10, strict=False), view="word", option="--num_words")
    assert two.label_set == ["CAB", "THE"]
    with pytest.raises(AnalysisError, match="at least 2 labels with 20 instances or more"):
        sample_instances(ctm, ctm, Sampling(500, 15, 20, strict=False), view="word", option="--num_words")
