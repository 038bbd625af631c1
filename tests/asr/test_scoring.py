"""WER/CER/PER on hand-made pairs: each kind of error, empty hypotheses, incomplete decodes."""

import json

import pytest

from espnet_hubert_ae.asr.scoring import (
    ErrorCounts,
    ScoringError,
    chars_of,
    edit_counts,
    score_files,
    score_set,
    write_scores,
)
from espnet_hubert_ae.asr.tokens import PHONES


@pytest.mark.parametrize(
    "ref, hyp, expected",
    [
        ("A B C", "A B C", ErrorCounts(3, 0, 0, 0)),
        ("A B C", "A X C", ErrorCounts(3, 1, 0, 0)),  # one substitution
        ("A B C", "A C", ErrorCounts(3, 0, 1, 0)),  # one deletion
        ("A B C", "A B X C", ErrorCounts(3, 0, 0, 1)),  # one insertion
        ("A B C", "", ErrorCounts(3, 0, 3, 0)),  # empty hypothesis: all deletions
        ("", "A B", ErrorCounts(0, 0, 0, 2)),  # empty reference: all insertions
        # 3 edits either way (ins X, del C, ins Y or ins X, sub C, sub D): substitutions win
        ("A B C D", "X A B D Y", ErrorCounts(4, 2, 0, 1)),
        ("THE CAT SAT", "A CAT SAT ON", ErrorCounts(3, 1, 0, 1)),
    ],
)
def test_edit_counts(ref, hyp, expected):
    assert edit_counts(ref.split(), hyp.split()) == expected


def test_rates():
    assert ErrorCounts(4, 1, 1, 0).rate == 50.0
    assert ErrorCounts(0, 0, 0, 0).rate == 0.0
    assert ErrorCounts(2, 0, 0, 3).rate == 150.0  # insertions can push WER over 100 %


def test_chars_count_word_boundaries_once():
    assert chars_of("AB  C") == ["A", "B", " ", "C"]


def test_score_set_sums_over_utterances():
    refs = {"u1": "THE CAT SAT", "u2": "A DOG", "u3": "GO HOME"}
    hyps = {"u1": "THE CAT SAT", "u2": "A DOG RAN", "u3": ""}
    score = score_set("dev", refs, hyps)
    assert (score.num_utts, score.word.ref_len) == (3, 7)
    assert score.word == ErrorCounts(7, 0, 2, 1)
    assert score.wer == pytest.approx(100 * 3 / 7)
    assert score.empty_hyps == 1
    # characters: "GO HOME" (7) deleted, " RAN" (4) inserted; 11 + 5 + 7 reference characters
    assert score.char == ErrorCounts(23, 0, 7, 4)


def test_missing_or_extra_hypotheses_fail_clearly():
    with pytest.raises(ScoringError, match="no hypothesis for 1 of 2 utterances of dev"):
        score_set("dev", {"u1": "A", "u2": "B"}, {"u1": "A"})
    with pytest.raises(ScoringError, match="not in dev's references"):
        score_set("dev", {"u1": "A"}, {"u1": "A", "u9": "B"})


def test_files_with_empty_hypothesis_lines(tmp_path):
    (tmp_path / "ref").write_text("u1 THE CAT\nu2 A DOG\n")
    (tmp_path / "hyp").write_text("u1 THE BAT\nu2\n")  # u2: nothing recognised
    score = score_files("test", tmp_path / "ref", tmp_path / "hyp")
    assert score.word == ErrorCounts(4, 1, 2, 0)
    write_scores(tmp_path / "out", [score], title="t")
    payload = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert payload["sets"][0]["wer"] == 75.0
    assert payload["sets"][0]["num_words"] == 4 and payload["sets"][0]["num_utts"] == 2
    assert "| test | 2 | 1 | 4 | 75.00 |" in (tmp_path / "out" / "scores.md").read_text()  # 1 empty hypothesis


def test_phone_error_rate(tmp_path):
    (tmp_path / "ref").write_text("u1 k a t\nu2 d O g\n")
    (tmp_path / "hyp").write_text("u1 k a t s\nu2\n")  # one insertion; u2: nothing recognised
    score = score_files("dev", tmp_path / "ref", tmp_path / "hyp", units=PHONES)
    assert score.phone == ErrorCounts(6, 0, 3, 1) and score.empty_hyps == 1
    assert score.per == pytest.approx(100 * 4 / 6)
    write_scores(tmp_path / "out", [score])
    assert json.loads((tmp_path / "out" / "scores.json").read_text())["sets"][0]["per"] == 66.67
    assert "| dev | 2 | 1 | 6 | 66.67 | 0 | 3 | 1 |" in (tmp_path / "out" / "scores.md").read_text()
