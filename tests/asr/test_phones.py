"""Phone references for the phoneme-recognition probe, from phone alignments."""

import pytest

from espnet_hubert_ae.asr.phones import find_phone_ctm, phone_transcripts, write_phone_text
from espnet_hubert_ae.data.datadir import DataDirError, Segment, Utterance, write_ctm, write_datadir


@pytest.fixture
def datadir(tmp_path):
    utts = [Utterance(u, f"/audio/{u}.wav", "spk", 16000, "A") for u in ("u1", "u2")]
    phones = [Segment("u1", 0.0, 0.1, "SIL"), Segment("u1", 0.1, 0.1, "k"), Segment("u1", 0.2, 0.1, "aI"),
              Segment("u1", 0.3, 0.2, "SIL"), Segment("u1", 0.5, 0.1, "t"), Segment("u2", 0.0, 0.5, "d")]
    return write_datadir(tmp_path / "train_1h", utts, phones=phones)


def test_silence_is_dropped_and_order_kept(datadir, tmp_path):
    assert phone_transcripts(datadir, datadir / "phones.ctm") == {"u1": "k aI t", "u2": "d"}
    out = write_phone_text(datadir, datadir / "phones.ctm", tmp_path / "phones" / "text")
    assert out.read_text() == "u1 k aI t\nu2 d\n"


def test_alignments_found_beside_or_under_an_alignment_dir(datadir, tmp_path):
    assert find_phone_ctm(datadir) == datadir / "phones.ctm"
    bare = tmp_path / "dump" / "train_1h"
    bare.mkdir(parents=True)
    other = tmp_path / "data"
    (other / "train_1h").mkdir(parents=True)
    (other / "train_1h" / "phones.ctm").write_text("")
    assert find_phone_ctm(bare, [tmp_path / "none", other]) == other / "train_1h" / "phones.ctm"
    with pytest.raises(DataDirError, match="no phone alignments for train_1h .*none/train_1h/phones.ctm"):
        find_phone_ctm(bare, [tmp_path / "none"])


def test_utterance_without_phones_is_named(datadir, tmp_path):
    write_ctm(tmp_path / "partial.ctm", [Segment("u1", 0.0, 0.1, "k"), Segment("u2", 0.0, 0.3, "SIL")])
    with pytest.raises(DataDirError, match=r"no phones for 1 of the 2 utterances .*\['u2'\]"):
        phone_transcripts(datadir, tmp_path / "partial.ctm")
