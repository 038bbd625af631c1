"""Labels: ESPnet text/tokens format, 100 -> 50 Hz, length checks against the conv frame count."""

from __future__ import annotations

import numpy as np
import pytest

from espnet_hubert_ae.model.frames import conv_frame_count
from espnet_hubert_ae.targets.labels import (
    LabelLengthError,
    check_label_counts,
    downsample,
    fit_label_count,
    read_label_text,
    write_label_text,
    write_tokens,
)
from espnet_hubert_ae.targets.mfcc import mfcc_frame_count


def test_downsample_takes_every_second_label():
    assert downsample(np.arange(7), 2).tolist() == [0, 2, 4, 6]
    assert downsample(np.arange(7), 1).tolist() == list(range(7))


@pytest.mark.parametrize("num_samples", range(400, 2400, 37))
def test_halved_mfcc_labels_are_within_one_frame_of_the_conv_stack(num_samples):
    halved = len(downsample(np.zeros(mfcc_frame_count(num_samples)), 2))
    assert abs(halved - conv_frame_count(num_samples)) <= 1


def test_off_by_one_is_fixed_at_the_end():
    labels = np.array([3, 1, 4, 1, 5])
    assert fit_label_count(labels, 4, "u1").tolist() == [3, 1, 4, 1]
    assert fit_label_count(labels, 6, "u1").tolist() == [3, 1, 4, 1, 5, 5]
    assert fit_label_count(labels, 5, "u1") is labels


def test_off_by_two_names_the_utterance():
    with pytest.raises(LabelLengthError, match="'utt-7'.*5 labels.*7 frames"):
        fit_label_count(np.arange(5), 7, "utt-7")


def test_label_file_check_catches_off_by_two(tmp_path):
    samples = {"a": 16000, "b": 8000}
    good = {u: np.zeros(conv_frame_count(n), dtype=int) for u, n in samples.items()}
    write_label_text(tmp_path / "text", good.items())
    assert check_label_counts(tmp_path / "text", samples, conv_frame_count) == 2
    bad = dict(good, b=np.zeros(conv_frame_count(8000) - 2, dtype=int))
    write_label_text(tmp_path / "text", bad.items())
    with pytest.raises(LabelLengthError, match="'b'"):
        check_label_counts(tmp_path / "text", samples, conv_frame_count)


def test_text_and_tokens_format(tmp_path):
    write_label_text(tmp_path / "text", [("u1", np.array([0, 12, 3])), ("u2", np.array([7]))])
    assert (tmp_path / "text").read_text() == "u1 0 12 3\nu2 7\n"
    assert {u: v.tolist() for u, v in read_label_text(tmp_path / "text").items()} == {"u1": [0, 12, 3], "u2": [7]}
    write_tokens(tmp_path / "tokens.txt", 3)
    assert (tmp_path / "tokens.txt").read_text().split("\n") == ["0", "1", "2", "<unk>", ""]


def test_tokens_work_with_espnets_tokenizer(tmp_path):
    """ESPnet maps each label to its line in tokens.txt: the ids must come back unchanged."""
    from espnet2.text.token_id_converter import TokenIDConverter

    write_tokens(tmp_path / "tokens.txt", 12)
    converter = TokenIDConverter(tmp_path / "tokens.txt")
    assert converter.tokens2ids("0 11 5".split()) == [0, 11, 5]
