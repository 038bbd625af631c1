"""Token lists (characters and phones): ESPnet's layout, round trips, units a list cannot express."""

import pytest

from espnet_hubert_ae.asr.tokens import (
    PHONES,
    TokenError,
    build_token_list,
    check_transcripts,
    read_token_list,
    text_to_tokens,
    tokens_to_text,
    write_token_list,
)


def test_token_list_layout_and_round_trip(tmp_path):
    tokens = build_token_list(["A CAB", "BA"])
    assert tokens == ["<blank>", "<unk>", "A", "B", "<space>", "C", "<sos/eos>"]
    write_token_list(tmp_path / "tokens.txt", tokens)
    assert read_token_list(tmp_path / "tokens.txt") == tokens
    assert text_to_tokens(" A  CAB ") == ["A", "<space>", "C", "A", "B"]
    assert tokens_to_text(["<space>", "A", "<space>", "<space>", "B", "<sos/eos>"]) == "A B"


def test_unknown_characters_name_the_utterance(caplog):
    tokens = build_token_list(["ABC"])
    with pytest.raises(TokenError, match=r"dev/text.*'Z' in 1 utterance\(s\), e.g. 'u2'"):
        check_transcripts({"u1": "ABC", "u2": "AZ"}, tokens, "dev/text")
    check_transcripts({"u2": "AZ"}, tokens, "test/text", strict=False)  # evaluation sets: a warning
    assert "count as errors" in caplog.text


def test_bad_token_list_file(tmp_path):
    (tmp_path / "t.txt").write_text("A\nB\n")
    with pytest.raises(TokenError, match="starts with <blank>"):
        read_token_list(tmp_path / "t.txt")
    with pytest.raises(FileNotFoundError):
        read_token_list(tmp_path / "missing.txt")


def test_phone_units_are_whole_labels():
    tokens = build_token_list(["k a t", "aI t", "t"], PHONES)
    assert tokens == ["<blank>", "<unk>", "t", "a", "aI", "k", "<sos/eos>"]
    assert PHONES.detokenize(["<blank>", "aI", "t", "<sos/eos>"]) == "aI t"
    with pytest.raises(TokenError, match=r"phones outside the token list: 'Z'"):
        check_transcripts({"u1": "k Z"}, tokens, "dev", units=PHONES)
