"""LibriSpeech / Libri-light preparation on tiny trees, including every kind of bad input."""

from __future__ import annotations

import json
import logging

import pytest
import soundfile as sf

from espnet_hubert_ae.data.datadir import read_datadir, read_table
from espnet_hubert_ae.data.librispeech import CorpusError, prepare_librispeech, vad_chunks


def excluded_of(datadir):
    """``{utt: (file, reason)}`` from a data directory's excluded.tsv."""
    rows = [line.split("\t") for line in (datadir / "excluded.tsv").read_text().splitlines()]
    return {utt: (file, reason) for utt, file, reason in rows}


def test_all_sets_from_librispeech_and_librilight_limited(tmp_path, libri_corpora):
    sets = prepare_librispeech(
        tmp_path / "data", librispeech=libri_corpora["librispeech"], librilight_limited=libri_corpora["limited"]
    )
    assert sorted(sets) == sorted(
        ["train_pretrain", "train_10h", "train_1h", "train_10min", "dev_clean", "dev_other", "test_clean", "test_other"]
    )
    pretrain = read_datadir(sets["train_pretrain"])
    assert [u.utt_id for u in pretrain][:3] == ["19-198-0000", "19-198-0001", "19-198-0002"]
    assert len(pretrain) == 7 and {u.speaker for u in pretrain} == {"19", "26"}
    first = pretrain[0]
    assert first.audio == str(libri_corpora["librispeech"] / "train-clean-100/19/198/19-198-0000.flac")
    assert first.num_samples == sf.info(first.audio).frames == 9600
    assert first.text == "HELLO WORLD"
    assert len(read_datadir(sets["dev_clean"])) == 3
    assert len(read_datadir(sets["train_10min"])) == 2  # fold 1h/0, clean + other
    assert len(read_datadir(sets["train_1h"])) == 12  # six folds
    assert len(read_datadir(sets["train_10h"])) == 16  # 1h + 9h
    assert all((p / ".done").is_file() and (p / "excluded.tsv").read_text() == "" for p in sets.values())


def test_without_limited_the_finetuning_sets_are_skipped_with_a_message(tmp_path, libri_corpora, caplog):
    with caplog.at_level(logging.INFO):
        sets = prepare_librispeech(tmp_path / "data", librispeech=libri_corpora["librispeech"])
    assert "train_10h" not in sets and "train_pretrain" in sets
    assert "set LIBRILIGHT_LIMITED" in caplog.text


def test_unchanged_sets_are_not_rewritten(tmp_path, libri_corpora):
    data = tmp_path / "data"
    prepare_librispeech(data, librispeech=libri_corpora["librispeech"])
    stamp = (data / "dev_clean" / "wav.scp").stat().st_mtime_ns
    prepare_librispeech(data, librispeech=libri_corpora["librispeech"], nj=2)
    assert (data / "dev_clean" / "wav.scp").stat().st_mtime_ns == stamp
    # other pretraining splits: that set is written again
    libri_corpora["write_chapter"](libri_corpora["librispeech"] / "train-other-500", 33, 44, ["MORE WORDS"])
    prepare_librispeech(data, librispeech=libri_corpora["librispeech"], pretrain_splits=["train-clean-100", "train-other-500"])
    assert "33-44-0000" in read_table(data / "train_pretrain" / "wav.scp")


@pytest.mark.parametrize(
    "kwargs, variable",
    [
        (dict(librispeech="/no/such/LibriSpeech"), "LIBRISPEECH"),
        (dict(librilight_limited="/no/such/finetuning"), "LIBRILIGHT_LIMITED"),
        (dict(librilight_unlab="/no/such/librilight", unlab_subset="small"), "LIBRILIGHT_UNLAB"),
        (dict(pretrain_splits=["train-clean-360"]), "LIBRISPEECH"),
    ],
    ids=["librispeech", "limited", "unlab", "split"],
)
def test_missing_paths_name_the_db_sh_variable(tmp_path, libri_corpora, kwargs, variable):
    kwargs = {"librispeech": libri_corpora["librispeech"], **kwargs}
    with pytest.raises(FileNotFoundError, match=f"{variable} in egs2/librilight_ae/db.sh"):
        prepare_librispeech(tmp_path / "data", **kwargs)
    assert not (tmp_path / "data").exists()  # paths are checked before anything is written


def test_incomplete_limited_tree_names_the_missing_fold(tmp_path, libri_corpora, caplog):
    limited = libri_corpora["limited"]
    (limited / "1h" / "3" / "other").rename(limited / "1h" / "3" / "moved")
    with caplog.at_level(logging.INFO):  # unnamed sets are optional: the incomplete ones are skipped with a note
        sets = prepare_librispeech(tmp_path / "data", librispeech=libri_corpora["librispeech"],
                                   librilight_limited=limited)
    assert "train_10min" in sets and "train_1h" not in sets and "train_10h" not in sets
    assert "train_1h: 1h/3/other/ not found" in caplog.text
    with pytest.raises(FileNotFoundError, match=r"1h/3/other/ not found .*LIBRILIGHT_LIMITED"):
        prepare_librispeech(tmp_path / "data2", librispeech=libri_corpora["librispeech"], librilight_limited=limited,
                            finetune_sets=["train_1h"])


def test_clean_only_librispeech_skips_the_other_sets_unless_named(tmp_path, libri_corpora, caplog):
    root = libri_corpora["librispeech"]
    for split in ("dev-other", "test-other"):
        (root / split).rename(tmp_path / split)
    with caplog.at_level(logging.INFO):
        sets = prepare_librispeech(tmp_path / "data", librispeech=root)
    assert sorted(sets) == ["dev_clean", "test_clean", "train_pretrain"]
    assert "dev_other: dev-other/ not found" in caplog.text and "--eval_sets names the sets" in caplog.text
    assert sorted(prepare_librispeech(tmp_path / "data", librispeech=root, eval_sets=["test_clean"])) == [
        "test_clean", "train_pretrain"]
    with pytest.raises(FileNotFoundError, match=r"dev-other/ not found .*LIBRISPEECH"):
        prepare_librispeech(tmp_path / "data", librispeech=root, eval_sets=["dev_clean", "dev_other"])
    with pytest.raises(CorpusError, match="--eval_sets: unknown set.*dev_cleen"):
        prepare_librispeech(tmp_path / "data", librispeech=root, eval_sets=["dev_cleen"])


def test_bad_input_is_excluded_with_the_file_and_reason(tmp_path, libri_corpora, write_test_audio):
    dev = libri_corpora["librispeech"] / "dev-clean"
    chapter = dev / "100" / "2000"
    write_test_audio(chapter / "100-2000-0000.flac", 0.5, samplerate=8000)  # wrong rate
    write_test_audio(chapter / "100-2000-0001.flac", 0.5, channels=2)  # stereo
    (chapter / "100-2000-0002.flac").write_bytes(b"garbage" * 50)  # unreadable
    write_test_audio(chapter / "100-2000-0003.flac", 0.5)  # audio without transcript
    write_test_audio(chapter / "100-2000-0004.flac", 0.5)  # empty transcript
    with open(chapter / "100-2000.trans.txt", "a") as f:
        f.write("100-2000-0002 GARBAGE AUDIO\n100-2000-0004\n100-2000-0009 NO AUDIO FOR ME\n")
    # the same id once more, in another folder of the split
    libri_corpora["write_chapter"](dev / "copy", 100, 2000, ["A DUPLICATE"])

    sets = prepare_librispeech(tmp_path / "data", librispeech=libri_corpora["librispeech"])
    excluded = excluded_of(sets["dev_clean"])
    assert excluded["100-2000-0001"][1] == "2 channels, expected mono"
    assert excluded["100-2000-0001"][0].endswith("dev-clean/100/2000/100-2000-0001.flac")
    assert excluded["100-2000-0002"][1].startswith("unreadable audio")
    assert excluded["100-2000-0003"][1].startswith("audio without a transcript line")
    assert excluded["100-2000-0004"] == (str(chapter / "100-2000.trans.txt"), "empty transcript")
    assert excluded["100-2000-0009"][1].startswith("transcript line without audio file")
    assert excluded["100-2000-0000"][1].startswith("duplicated utterance id (found in 4 files")
    lines = (sets["dev_clean"] / "excluded.tsv").read_text().splitlines()
    assert sum(line.startswith("100-2000-0000\t") for line in lines) == 4  # each file named
    assert [u.utt_id for u in read_datadir(sets["dev_clean"])] == ["200-3000-0000"]


def test_wrong_sample_rate_is_excluded_not_fatal(tmp_path, libri_corpora, write_test_audio):
    chapter = libri_corpora["librispeech"] / "test-other" / "103" / "2003"
    write_test_audio(chapter / "103-2003-0001.flac", 0.5, samplerate=22050)
    sets = prepare_librispeech(tmp_path / "data", librispeech=libri_corpora["librispeech"])
    assert excluded_of(sets["test_other"])["103-2003-0001"][1] == "sample rate 22050 Hz, expected 16000"
    assert len(read_datadir(sets["test_other"])) == 2


def test_a_set_without_any_usable_utterance_fails_clearly(tmp_path, libri_corpora):
    for trans in (libri_corpora["librispeech"] / "dev-other").rglob("*.trans.txt"):
        trans.unlink()
    with pytest.raises(CorpusError, match=r"dev_other: no usable utterance \(3 excluded, e.g. .*audio without a transcript"):
        prepare_librispeech(tmp_path / "data", librispeech=libri_corpora["librispeech"])


def test_vad_chunks_merge_split_and_clip():
    voice = [[0.2, 1.5], [1.7, 2.9], [3.5, 4.8]]
    assert vad_chunks(voice, max_seconds=3.0, duration=5.0) == [(0.2, 2.9), (3.5, 4.8)]
    assert vad_chunks(voice, max_seconds=30.0, duration=5.0) == [(0.2, 4.8)]
    long = vad_chunks([[0.0, 10.0]], max_seconds=4.0, duration=9.0)  # clipped to 9 s, 3 equal parts
    assert [t for span in long for t in span] == pytest.approx([0.0, 3.0, 3.0, 6.0, 6.0, 9.0])
    assert vad_chunks([[2.0, 3.0], [0.0, 1.0], [6.0, 7.0]], max_seconds=5.0, duration=5.0) == [(0.0, 3.0)]
    assert vad_chunks([], max_seconds=5.0, duration=5.0) == []


def test_librilight_unlabelled_is_cut_by_voice_activity(tmp_path, libri_corpora):
    unlab = libri_corpora["unlab"]
    book = unlab / "small" / "500" / "my_book_64kb_mp3"
    (book / "03_bad.flac").write_bytes(b"nope" * 100)
    (book / "03_bad.json").write_text(json.dumps({"voice_activity": [[0, 1]]}))
    (book / "04_nojson.flac").write_bytes((book / "02_part.flac").read_bytes())
    data = tmp_path / "data"
    sets = prepare_librispeech(
        data, librispeech=libri_corpora["librispeech"], librilight_unlab=unlab, unlab_subset="small",
        max_segment_seconds=3.0, nj=2,
    )
    utts = {u.utt_id: u for u in read_datadir(sets["train_pretrain"])}
    assert not (sets["train_pretrain"] / "text").exists()  # unlabelled chunks: no transcripts at all
    chunk_ids = sorted(k for k in utts if k.startswith("500-"))
    assert chunk_ids == [
        "500-my_book_64kb_mp3-01_part-0000", "500-my_book_64kb_mp3-01_part-0001", "500-my_book_64kb_mp3-02_part-0000",
    ]
    first = utts[chunk_ids[0]]
    assert first.speaker == "500" and first.num_samples == round(2.7 * 16000)
    assert first.audio == str(data.resolve() / "librilight_small_audio" / "500" / f"{chunk_ids[0]}.flac")
    assert sf.info(first.audio).frames == first.num_samples
    source, _ = sf.read(str(book / "01_part.flac"), dtype="int16")
    cut, _ = sf.read(first.audio, dtype="int16")
    assert (cut == source[round(0.2 * 16000) : round(2.9 * 16000)]).all()  # lossless cut
    excluded = excluded_of(sets["train_pretrain"])
    assert excluded["500-my_book_64kb_mp3-03_bad"][1].startswith("unreadable audio")
    assert excluded["500-my_book_64kb_mp3-04_nojson"] == (str(book / "04_nojson.json"), "voice-activity file missing")
    assert "19-198-0000" in utts  # LibriSpeech utterances stay in, without text


def test_unlabelled_subset_must_be_known(tmp_path, libri_corpora):
    with pytest.raises(CorpusError, match="small, medium, large"):
        prepare_librispeech(tmp_path / "d", librispeech=libri_corpora["librispeech"],
                            librilight_unlab=libri_corpora["unlab"], unlab_subset="tiny")
