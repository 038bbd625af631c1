"""Stage 3: MFA TextGrids -> CTM, the tiling check, and the stage's command line."""

from __future__ import annotations

import logging

import pytest
from praatio import textgrid
from praatio.data_classes.interval_tier import IntervalTier

from espnet_hubert_ae.bin.prepare_alignments import main as alignments_main
from espnet_hubert_ae.data.alignments import (
    AlignmentError,
    align_set,
    check_alignments,
    index_textgrids,
    normalize_phone,
    read_textgrid,
    tile_phones,
)
from espnet_hubert_ae.data.datadir import Segment, Utterance, read_ctm, write_datadir

# "HELLO WORLD" in 1.2 s: MFA-style tiers with silences left empty and a stress-marked vowel.
WORDS = [(0.1, 0.5, "hello"), (0.6, 1.0, "world")]
PHONES = [(0.1, 0.2, "HH"), (0.2, 0.3, "AH0"), (0.3, 0.4, "L"), (0.4, 0.5, "OW1"),
          (0.6, 0.7, "W"), (0.7, 0.8, "ER1"), (0.8, 0.9, "L"), (0.9, 1.0, "D")]


def write_textgrid(path, words=WORDS, phones=PHONES, end=1.2, prefix=""):
    grid = textgrid.Textgrid()
    grid.addTier(IntervalTier(f"{prefix}words", words, 0, end))
    grid.addTier(IntervalTier(f"{prefix}phones", phones, 0, end))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(str(path), format="long_textgrid", includeBlankSpaces=True)
    return path


def utt(utt_id="19-198-0000", seconds=1.2, text="HELLO WORLD"):
    return Utterance(utt_id, f"/audio/{utt_id}.flac", utt_id.split("-")[0], int(seconds * 16000), text)


def test_mfa_phone_labels_become_39_phone_arpabet_sil_and_spn():
    assert [normalize_phone(p) for p in ["AH0", "ER1", "iy2", "NG", "", "sil", "sp", "spn", "<eps>"]] == [
        "AH", "ER", "IY", "NG", "SIL", "SIL", "SIL", "SPN", "SIL"]


def test_tile_phones_fills_gaps_merges_silence_and_reaches_the_end():
    tiles = tile_phones("u", [(0.1, 0.3, "A"), (0.3002, 0.5, "B"), (0.7, 0.9, "C")], 1.0)
    assert [(round(s.start, 4), round(s.end, 4), s.label) for s in tiles] == [
        (0.0, 0.1, "SIL"), (0.1, 0.3, "A"), (0.3, 0.5, "B"), (0.5, 0.7, "SIL"), (0.7, 0.9, "C"), (0.9, 1.0, "SIL")]
    assert [s.label for s in tile_phones("u", [], 0.5)] == ["SIL"]


def test_read_textgrid_gives_tiling_phones_and_transcript_words(tmp_path):
    path = write_textgrid(tmp_path / "19-198-0000.TextGrid", prefix="19 - ")  # MFA's speaker-prefixed tiers
    phones, words = read_textgrid(path, utt())
    assert [s.label for s in phones] == ["SIL", "HH", "AH", "L", "OW", "SIL", "W", "ER", "L", "D", "SIL"]
    assert phones[0].start == 0 and phones[-1].end == pytest.approx(1.2)
    assert [(w.label, w.start, w.end) for w in words] == [("HELLO", 0.1, 0.5), ("WORLD", 0.6, 1.0)]


def test_textgrid_longer_than_its_audio_or_without_tier_is_refused(tmp_path):
    path = write_textgrid(tmp_path / "a.TextGrid", end=3.0, words=[(0.1, 2.5, "hello")])
    with pytest.raises(AlignmentError, match=r"a.TextGrid: aligned speech ends at 2.50 s but 19-198-0000 lasts 1.20 s"):
        read_textgrid(path, utt())
    grid = textgrid.Textgrid()
    grid.addTier(IntervalTier("words", WORDS, 0, 1.2))
    grid.save(str(tmp_path / "b.TextGrid"), format="short_textgrid", includeBlankSpaces=True)
    with pytest.raises(AlignmentError, match="b.TextGrid: no 'phones' tier"):
        read_textgrid(tmp_path / "b.TextGrid", utt())
    (tmp_path / "c.TextGrid").write_text("not a textgrid")
    with pytest.raises(AlignmentError, match="c.TextGrid: unreadable TextGrid"):
        read_textgrid(tmp_path / "c.TextGrid", utt())


def test_index_finds_nested_textgrids_and_refuses_duplicates(tmp_path):
    write_textgrid(tmp_path / "19" / "19-198-0000.TextGrid")
    write_textgrid(tmp_path / "dev-clean" / "26" / "495" / "26-495-0001.TextGrid")
    assert sorted(index_textgrids(tmp_path)) == ["19-198-0000", "26-495-0001"]
    write_textgrid(tmp_path / "copy" / "19-198-0000.TextGrid")
    with pytest.raises(AlignmentError, match="two TextGrids for utterance '19-198-0000'"):
        index_textgrids(tmp_path)


def test_align_set_writes_ctms_and_lists_unaligned(tmp_path):
    data = write_datadir(tmp_path / "dev_clean", [utt(), utt("26-495-0001"), utt("26-495-0002", seconds=0.5)])
    grids = tmp_path / "mfa"
    write_textgrid(grids / "19" / "19-198-0000.TextGrid")
    write_textgrid(grids / "26" / "26-495-0002.TextGrid")  # 1.2 s of speech for 0.5 s of audio
    aligned, unaligned = align_set(data, index_textgrids(grids))
    assert aligned == 1
    assert unaligned[0] == ("26-495-0001", "no TextGrid")
    assert "aligned speech ends at 1.00 s but 26-495-0002 lasts 0.50 s" in unaligned[1][1]
    assert (data / "unaligned.tsv").read_text().splitlines()[0] == "26-495-0001\tno TextGrid"
    assert list(read_ctm(data / "phones.ctm")) == ["19-198-0000"]
    report = check_alignments(data)
    assert report.aligned == 1 and report.missing == ["26-495-0001", "26-495-0002"] and not report.problems
    assert not report.ok and report.coverage == pytest.approx(1 / 3)
    assert report.unknown_phones() == []
    assert "1/3 utterances aligned (33.3%)" in report.summary()


def ctm_dir(tmp_path, phones, words, text="HELLO WORLD"):
    return write_datadir(tmp_path / "set", [utt(text=text)], phones=phones, words=words)


GOOD_PHONES = [Segment("19-198-0000", 0.0, 0.6, "HH"), Segment("19-198-0000", 0.6, 0.6, "W")]
GOOD_WORDS = [Segment("19-198-0000", 0.0, 0.6, "HELLO"), Segment("19-198-0000", 0.6, 0.6, "WORLD")]


def test_check_alignments_accepts_tiling_segments(tmp_path):
    report = check_alignments(ctm_dir(tmp_path, GOOD_PHONES, GOOD_WORDS))
    assert report.ok and report.words == 2 and report.speech_seconds == pytest.approx(1.2)


@pytest.mark.parametrize(
    "phones, words, text, problem",
    [
        (GOOD_PHONES[:1], GOOD_WORDS, "HELLO WORLD", "phones end at 0.600 s but the audio lasts 1.200 s"),
        ([GOOD_PHONES[0], Segment("19-198-0000", 0.7, 0.5, "W")], GOOD_WORDS, "HELLO WORLD", "phone W starts at 0.700 s"),
        (GOOD_PHONES, GOOD_WORDS, "HELLO THERE", "words 'HELLO WORLD' differ from the transcript 'HELLO THERE'"),
        (GOOD_PHONES, [GOOD_WORDS[0], Segment("19-198-0000", 0.4, 0.8, "WORLD")], "HELLO WORLD", "overlaps"),
        (GOOD_PHONES, [], "HELLO WORLD", "no word segments"),
        (GOOD_PHONES + [Segment("other-utt", 0, 1, "A")], GOOD_WORDS, "HELLO WORLD", "in phones.ctm but not in"),
    ],
    ids=["short", "gap", "text", "overlap", "nowords", "stray"],
)
def test_check_alignments_names_each_problem(tmp_path, phones, words, text, problem):
    report = check_alignments(ctm_dir(tmp_path, phones, words, text))
    assert not report.ok
    assert any(problem in p for p in report.problems), report.problems


def make_stage_dirs(tmp_path):
    """data/dev_clean with two utterances and dump/raw/dev_clean keeping one of them."""
    utts = [utt(), utt("26-495-0001")]
    write_datadir(tmp_path / "data" / "dev_clean", utts)
    write_datadir(tmp_path / "dump" / "dev_clean", utts[:1])
    write_textgrid(tmp_path / "mfa" / "19-198-0000.TextGrid")
    write_textgrid(tmp_path / "mfa" / "26-495-0001.TextGrid")
    return ["--datadir", str(tmp_path / "data"), "--dumpdir", str(tmp_path / "dump"), "--sets", "dev_clean test_other"]


def test_cli_librispeech_writes_ctms_into_the_formatted_set_only_then_skips(tmp_path, caplog):
    args = make_stage_dirs(tmp_path) + ["--data", "librispeech", "--alignments", str(tmp_path / "mfa")]
    with caplog.at_level(logging.INFO):
        assert alignments_main(args) == 0
    assert sorted(read_ctm(tmp_path / "dump" / "dev_clean" / "phones.ctm")) == ["19-198-0000"]  # kept utterances only
    assert not list((tmp_path / "data" / "dev_clean").glob("*.ctm"))  # one copy: the formatted set's
    assert "dev_clean: 1/1 utterances aligned (100.0%)" in caplog.text
    assert "test_other: not in" in caplog.text  # a set the corpus lacks is skipped with a note
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert alignments_main(args) == 0
    assert "dev_clean: already aligned" in caplog.text


def test_cli_librispeech_without_alignments_warns_and_succeeds(tmp_path, caplog, capsys):
    args = make_stage_dirs(tmp_path) + ["--data", "librispeech"]
    with caplog.at_level(logging.WARNING):
        assert alignments_main(args + ["--alignments", ""]) == 0
    assert "set LIBRISPEECH_ALIGNMENTS in egs2/librilight_ae/db.sh" in caplog.text
    assert not (tmp_path / "dump" / "dev_clean" / "phones.ctm").exists()
    assert alignments_main(args + ["--alignments", str(tmp_path / "nowhere")]) == 1
    assert "LIBRISPEECH_ALIGNMENTS=" in capsys.readouterr().err


def test_cli_builtin_copies_the_stage_1_timings_of_kept_utterances_and_checks_them(tmp_path, capsys):
    base = ["--data", "builtin", "--datadir", str(tmp_path / "data"), "--dumpdir", str(tmp_path / "dump"),
            "--sets", "set"]
    other = utt("26-495-0001")
    other_phones = [Segment(other.utt_id, s.start, s.duration, s.label) for s in GOOD_PHONES]
    write_datadir(tmp_path / "data" / "set", [utt(), other], phones=GOOD_PHONES + other_phones, words=GOOD_WORDS)
    write_datadir(tmp_path / "dump" / "set", [utt()])  # stage 2 kept one utterance
    assert alignments_main(base) == 0
    assert list(read_ctm(tmp_path / "dump" / "set" / "phones.ctm")) == ["19-198-0000"]
    write_datadir(tmp_path / "data" / "set", [utt()], phones=GOOD_PHONES[:1], words=GOOD_WORDS)
    assert alignments_main(base) == 1
    assert "alignments do not cover the utterances: 19-198-0000: phones end at 0.600 s" in capsys.readouterr().err
