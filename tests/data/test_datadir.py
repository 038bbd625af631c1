"""Writing, reading and validating Kaldi-style data directories."""

from __future__ import annotations

import pytest

from espnet_hubert_ae.data.datadir import (
    DataDirError,
    Excluded,
    Segment,
    Utterance,
    read_ctm,
    read_datadir,
    write_datadir,
)


def utts():
    return [
        Utterance("spk2-b", "/a/b.wav", "spk2", 32000, "HELLO THERE"),
        Utterance("spk1-a", "/a/a.wav", "spk1", 16000, "HI"),
        Utterance("spk1-c", "/a/c.wav", "spk1", 8000, "OK"),
    ]


def test_round_trip_sorted_and_complete(tmp_path):
    d = write_datadir(
        tmp_path / "set",
        utts(),
        phones=[Segment("spk1-a", 0.5, 0.5, "h"), Segment("spk1-a", 0.0, 0.5, "SIL")],
        words=[Segment("spk1-a", 0.0, 1.0, "HI")],
        excluded=[Excluded("spk3-x", "/a/x.wav", "sample rate 8000 Hz, expected 16000")],
    )
    assert [u.utt_id for u in read_datadir(d)] == ["spk1-a", "spk1-c", "spk2-b"]
    assert (d / "spk2utt").read_text() == "spk1 spk1-a spk1-c\nspk2 spk2-b\n"
    assert (d / "utt2num_samples").read_text().splitlines()[0] == "spk1-a 16000"
    assert read_datadir(d)[2].text == "HELLO THERE"
    phones = read_ctm(d / "phones.ctm")["spk1-a"]
    assert [s.label for s in phones] == ["SIL", "h"]  # time-ordered
    assert (d / "excluded.tsv").read_text() == "spk3-x\t/a/x.wav\tsample rate 8000 Hz, expected 16000\n"


def test_duplicate_ids_are_refused_naming_the_id(tmp_path):
    dup = utts() + [Utterance("spk1-a", "/other.wav", "spk1", 10, "X")]
    with pytest.raises(DataDirError, match="duplicated utterance id 'spk1-a'"):
        write_datadir(tmp_path / "set", dup)
    assert not (tmp_path / "set").exists()  # nothing half-written


def test_failed_rewrite_keeps_previous_directory(tmp_path):
    d = write_datadir(tmp_path / "set", utts())
    bad = [Utterance("u 1", "/x.wav", "s", 10, "X")]
    with pytest.raises(DataDirError, match="utterance id 'u 1'"):
        write_datadir(d, bad)
    assert len(read_datadir(d)) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # no temporary left behind


def test_mixed_labelled_and_unlabelled_is_refused(tmp_path):
    mixed = utts() + [Utterance("spk9-z", "/z.wav", "spk9", 10, None)]
    with pytest.raises(DataDirError, match="spk9-z"):
        write_datadir(tmp_path / "set", mixed)


def test_unlabelled_set_has_no_text(tmp_path):
    d = write_datadir(tmp_path / "set", [Utterance("u1", "/u.wav", "s", 10, None)])
    assert not (d / "text").exists()
    assert read_datadir(d)[0].text is None


def test_inconsistent_files_are_reported(tmp_path):
    d = write_datadir(tmp_path / "set", utts())
    (d / "utt2spk").write_text("spk1-a spk1\n")
    with pytest.raises(DataDirError, match="utt2spk and wav.scp list different utterances"):
        read_datadir(d)
    with pytest.raises(DataDirError, match="not a data directory"):
        read_datadir(tmp_path / "nowhere")


def test_bad_ctm_line_names_file_and_line(tmp_path):
    ctm = tmp_path / "phones.ctm"
    ctm.write_text("u1 1 0.0 0.5 a\nu1 1 zero 0.5 b\n")
    with pytest.raises(DataDirError, match=r"phones.ctm:2: start/duration are not numbers"):
        read_ctm(ctm)
    with pytest.raises(DataDirError, match="LIBRISPEECH_ALIGNMENTS"):
        read_ctm(tmp_path / "missing.ctm")
