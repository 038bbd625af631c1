"""Stage 2: decoding checks, length filtering, excluded reports, skipping done sets."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from espnet_hubert_ae.bin.format_data import main as format_main
from espnet_hubert_ae.data.datadir import Excluded, Segment, Utterance, read_datadir, write_datadir
from espnet_hubert_ae.data.format import FormatError, format_set, format_sets, read_excluded


def make_set(root, name, seconds, write_test_audio, *, ctm=False, excluded=()):
    """A data directory of flac files ``<name>-<i>`` with the given durations (seconds)."""
    utts = []
    for i, sec in enumerate(seconds):
        path = write_test_audio(root / "audio" / name / f"{i}.flac", sec, seed=i)
        utts.append(Utterance(f"spk{i % 2}-{name}-{i}", str(path), f"spk{i % 2}", sf.info(str(path)).frames, "HI"))
    phones = [Segment(u.utt_id, 0.0, u.seconds, "SIL") for u in utts] if ctm else None
    words = [Segment(u.utt_id, 0.0, u.seconds, "HI") for u in utts] if ctm else None
    return write_datadir(root / "data" / name, utts, phones=phones, words=words, excluded=excluded), utts


def test_pretraining_set_is_length_filtered_and_dev_is_not(tmp_path, write_test_audio):
    make_set(tmp_path, "train_pretrain", [0.5, 1.5, 2.0, 3.5], write_test_audio)
    make_set(tmp_path, "dev_clean", [0.5, 3.5], write_test_audio, ctm=True)
    done = format_sets(tmp_path / "data", tmp_path / "dump", ["train_pretrain", "dev_clean"], min_seconds=1.0, max_seconds=3.0)
    kept = [u.utt_id for u in read_datadir(done["train_pretrain"])]
    assert kept == ["spk0-train_pretrain-2", "spk1-train_pretrain-1"]
    reasons = {e.utt_id: e.reason for e in read_excluded(done["train_pretrain"] / "excluded.tsv")}
    assert reasons == {
        "spk0-train_pretrain-0": "0.50 s, shorter than min_seconds=1",
        "spk1-train_pretrain-3": "3.50 s, longer than max_seconds=3",
    }
    assert len(read_datadir(done["dev_clean"])) == 2
    assert not list(done["dev_clean"].glob("*.ctm"))  # alignments come from stage 3, not copied here
    assert (done["dev_clean"] / "excluded.tsv").read_text() == ""
    assert (done["dev_clean"] / ".done").is_file()


def test_bad_audio_is_excluded_and_stage_1_exclusions_carried_over(tmp_path, write_test_audio):
    carried = [Excluded("spk9-x", "/corpus/x.flac", "sample rate 8000 Hz, expected 16000")]
    src, utts = make_set(tmp_path, "dev_other", [1.0, 2.0, 1.2, 1.4], write_test_audio, ctm=True, excluded=carried)
    data = open(utts[1].audio, "rb").read()
    open(utts[1].audio, "wb").write(data[: len(data) // 2])  # truncated after stage 1
    write_test_audio(utts[2].audio, 0.7)  # replaced by a shorter file
    nan = np.zeros(utts[3].num_samples, dtype="float32")
    nan[5] = np.inf
    sf.write(utts[3].audio, nan, 16000, format="WAV", subtype="FLOAT")  # inf sample in a .flac-named wav

    dst = format_set(src, tmp_path / "dump" / "dev_other", nj=2)
    assert [u.utt_id for u in read_datadir(dst)] == ["spk0-dev_other-0"]
    reasons = {e.utt_id: (e.file, e.reason) for e in read_excluded(dst / "excluded.tsv")}
    assert reasons["spk9-x"] == ("/corpus/x.flac", "sample rate 8000 Hz, expected 16000")
    assert reasons["spk1-dev_other-1"][0] == utts[1].audio
    assert "truncated or corrupt" in reasons["spk1-dev_other-1"][1] or "corrupt audio" in reasons["spk1-dev_other-1"][1]
    assert reasons["spk0-dev_other-2"][1] == "decodes to 11200 samples but utt2num_samples says 19200 (audio changed since stage 1?)"
    assert reasons["spk1-dev_other-3"][1].startswith("NaN or infinite sample")


def test_done_sets_are_skipped_and_changed_ones_checked_again(tmp_path, write_test_audio):
    src, utts = make_set(tmp_path, "test_clean", [1.0, 1.1], write_test_audio)
    dst = format_set(src, tmp_path / "dump" / "test_clean")
    stamp = (dst / "wav.scp").stat().st_mtime_ns
    os.unlink(utts[0].audio)  # would be excluded if the audio were checked again
    format_set(src, dst)
    assert (dst / "wav.scp").stat().st_mtime_ns == stamp
    # a changed stage-1 directory is checked again
    write_datadir(src, [utts[1]])
    assert [u.utt_id for u in read_datadir(format_set(src, dst))] == [utts[1].utt_id]


def test_missing_required_set_fails_and_optional_is_skipped(tmp_path, write_test_audio):
    make_set(tmp_path, "dev_clean", [1.0], write_test_audio)
    with pytest.raises(FormatError, match="data/test_clean is missing .* run stage 1"):
        format_sets(tmp_path / "data", tmp_path / "dump", ["dev_clean", "test_clean"])
    done = format_sets(tmp_path / "data", tmp_path / "dump", ["dev_clean"], optional_sets=["train_10h"])
    assert list(done) == ["dev_clean"]


def test_nothing_left_is_an_error_and_writes_nothing(tmp_path, write_test_audio):
    make_set(tmp_path, "train_pretrain", [0.2, 0.3], write_test_audio)
    with pytest.raises(FormatError, match=r"no utterance left .* shorter than min_seconds=1"):
        format_sets(tmp_path / "data", tmp_path / "dump", ["train_pretrain"])
    assert not (tmp_path / "dump" / "train_pretrain").exists()


def test_cli_formats_and_reports_errors_without_traceback(tmp_path, write_test_audio, capsys):
    make_set(tmp_path, "dev_clean", [1.0, 1.2], write_test_audio)
    args = ["--src", str(tmp_path / "data"), "--dst", str(tmp_path / "dump"), "--nj", "1"]
    assert format_main(args + ["--sets", "dev_clean", "--optional_sets", "train_1h train_10h"]) == 0
    assert len(read_datadir(tmp_path / "dump" / "dev_clean")) == 2
    assert format_main(args + ["--sets", "dev_clean test_other"]) == 1
    assert "ERROR: " in capsys.readouterr().err
