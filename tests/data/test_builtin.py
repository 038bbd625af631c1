"""The built-in espeak-ng corpus: sets, audio, CTM timings, speakers, determinism, reruns."""

from __future__ import annotations

import json
import random
import re
import wave
from pathlib import Path

import pytest

from espnet_hubert_ae.data.builtin import corpus as corpus_module
from espnet_hubert_ae.data.builtin import espeak as espeak_module
from espnet_hubert_ae.data.builtin import EspeakError, prepare_builtin
from espnet_hubert_ae.data.builtin.espeak import PhonemeEvent
from espnet_hubert_ae.data.builtin.grammar import SentenceGenerator, vocabulary
from espnet_hubert_ae.data.builtin.timing import AlignmentError, align, check_alignment
from espnet_hubert_ae.data.builtin.voices import CLEAN_ACCENTS, OTHER_ACCENTS, speaker_groups
from espnet_hubert_ae.data.datadir import SILENCE, read_ctm, read_datadir, read_table

FRAME = 0.02  # one 50 Hz frame: the tolerance the analysis needs
TRAIN_SETS = ("train_pretrain", "train_10h", "train_1h", "train_10min")
EVAL_SETS = ("dev_clean", "dev_other", "test_clean", "test_other")


@pytest.fixture(scope="module")
def corpus(builtin_corpus) -> dict[str, Path]:
    return builtin_corpus


def _wav(path: str) -> tuple[int, int, int, bytes]:
    with wave.open(path, "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.readframes(w.getnframes())


def _tiny(root: Path, *, seed: int = 1, nj: int = 1, minutes: float = 0.1) -> dict[str, Path]:
    return prepare_builtin(
        root / "data", minutes=minutes, seed=seed, nj=nj, audio_dir=root / "audio", eval_min_utterances=1
    )


def _snapshot(sets: dict[str, Path]) -> dict[str, object]:
    """Everything a corpus is made of, with the audio as bytes (paths left out)."""
    snap = {}
    for name, setdir in sets.items():
        utts = read_datadir(setdir)
        snap[name] = [(u.utt_id, u.speaker, u.text, u.num_samples, _wav(u.audio)[3]) for u in utts]
        snap[name + "/ctm"] = ((setdir / "phones.ctm").read_text(), (setdir / "words.ctm").read_text())
    return snap


# --- the corpus on disk ----------------------------------------------------------------------


def test_all_sets_with_transcripts_and_ctms(corpus):
    assert set(corpus) == set(TRAIN_SETS + EVAL_SETS)
    for name, setdir in corpus.items():
        for file in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2num_samples", "phones.ctm", "words.ctm", ".done"):
            assert (setdir / file).is_file(), f"{name}/{file}"
        utts = read_datadir(setdir)
        assert utts, name
        for u in utts:
            assert re.fullmatch(r"[A-Z']+( [A-Z']+)*", u.text), u.text
            assert u.utt_id.startswith(u.speaker + "-")
    for name in EVAL_SETS:
        assert len(read_datadir(corpus[name])) >= 12
    stats = json.loads((corpus["train_pretrain"].parent / "builtin_stats.json").read_text())
    for name in corpus:
        assert {"hours", "utterances", "speakers", "vocabulary"} <= set(stats[name])
    assert stats["train_pretrain"]["utterances"] == len(read_datadir(corpus["train_pretrain"]))
    assert 1.4 <= stats["train_pretrain"]["minutes"] <= 1.5 + 8 / 60


def test_audio_is_16k_mono_and_matches_num_samples(corpus):
    for setdir in corpus.values():
        for u in read_datadir(setdir):
            rate, channels, width, frames = _wav(u.audio)
            assert (rate, channels, width) == (16000, 1, 2), u.audio
            assert len(frames) // 2 == u.num_samples
            assert corpus_module.MIN_SECONDS <= u.seconds <= corpus_module.MAX_SECONDS


def test_phone_ctm_tiles_each_utterance(corpus):
    for setdir in corpus.values():
        phones = read_ctm(setdir / "phones.ctm")
        utts = read_datadir(setdir)
        assert set(phones) == {u.utt_id for u in utts}
        for u in utts:
            segs = phones[u.utt_id]
            assert segs[0].start == pytest.approx(0, abs=FRAME)
            assert segs[-1].end == pytest.approx(u.seconds, abs=FRAME)
            assert segs[-1].end <= u.seconds + 1e-3
            for a, b in zip(segs, segs[1:]):
                assert b.start == pytest.approx(a.end, abs=1e-3), (u.utt_id, a, b)  # no gap, no overlap
            assert all(s.duration > 0 and not any(c.isspace() for c in s.label) for s in segs)
            assert sum(s.label != SILENCE for s in segs) >= len(u.text.split())


def test_word_ctm_follows_transcript_within_phone_spans(corpus):
    for setdir in corpus.values():
        phones = read_ctm(setdir / "phones.ctm")
        words = read_ctm(setdir / "words.ctm")
        for u in read_datadir(setdir):
            spans = words[u.utt_id]
            assert [w.label for w in spans] == u.text.split()
            boundaries = {round(s.start, 3) for s in phones[u.utt_id]} | {round(s.end, 3) for s in phones[u.utt_id]}
            previous_end = 0.0
            for w in spans:
                assert w.duration > 0 and w.start >= previous_end - 1e-3 and w.end <= u.seconds + 1e-3
                assert round(w.start, 3) in boundaries and round(w.end, 3) in boundaries, (u.utt_id, w)
                inside = [p for p in phones[u.utt_id] if p.start >= w.start - 1e-4 and p.end <= w.end + 1e-4]
                assert any(p.label != SILENCE for p in inside), (u.utt_id, w)
                previous_end = w.end


def test_training_and_evaluation_speakers_are_disjoint(corpus):
    speakers = {name: set(read_table(setdir / "spk2utt")) for name, setdir in corpus.items()}
    train = set().union(*(speakers[n] for n in TRAIN_SETS))
    for name in EVAL_SETS:
        assert not train & speakers[name], name
        for other in EVAL_SETS:
            if other != name:
                assert not speakers[name] & speakers[other], (name, other)
    # The *_other speakers have accents never heard in training.
    voices = {v.speaker: v for group in speaker_groups(1).values() for v in group}
    assert {voices[s].accent for s in train} <= set(CLEAN_ACCENTS)
    for name in ("dev_other", "test_other"):
        assert {voices[s].accent for s in speakers[name]} <= set(OTHER_ACCENTS)
        assert all(voices[s].snr_db is not None for s in speakers[name])


def test_finetuning_sets_are_nested_subsets(corpus):
    tables = {name: read_table(corpus[name] / "text") for name in TRAIN_SETS}
    wavs = {name: read_table(corpus[name] / "wav.scp") for name in TRAIN_SETS}
    chain = ("train_10min", "train_1h", "train_10h", "train_pretrain")
    for small, big in zip(chain, chain[1:]):
        assert set(tables[small]) <= set(tables[big]), (small, big)
        assert all(tables[small][u] == tables[big][u] and wavs[small][u] == wavs[big][u] for u in tables[small])
    seconds = {name: sum(u.seconds for u in read_datadir(corpus[name])) for name in TRAIN_SETS}
    for name, fraction in corpus_module.FINETUNE_FRACTIONS.items():
        assert seconds[name] >= fraction * seconds["train_pretrain"] or len(tables[name]) == 1
        assert seconds[name] <= fraction * seconds["train_pretrain"] + corpus_module.MAX_SECONDS


def test_vocabulary_has_hundreds_of_words(corpus):
    words = vocabulary()
    assert 300 <= len(words) < 1000
    used = {w for setdir in corpus.values() for text in read_table(setdir / "text").values() for w in text.split()}
    assert used <= words
    assert len(used) >= 100


# --- determinism, reruns, errors ---------------------------------------------------------------


def test_same_seed_same_corpus_whatever_nj_other_seed_differs(tmp_path, corpus):
    one = _snapshot(_tiny(tmp_path / "a", nj=1))
    assert one == _snapshot(_tiny(tmp_path / "b", nj=2))
    other = _snapshot(_tiny(tmp_path / "c", seed=2))
    assert one["train_pretrain"] != other["train_pretrain"]
    assert {u[4] for u in one["dev_clean"]} != {u[4] for u in other["dev_clean"]}
    # A bigger corpus of the same seed extends a smaller one, utterance for utterance.
    bigger = {entry[0]: entry for entry in _snapshot(corpus)["train_pretrain"]}
    assert all(bigger[entry[0]] == entry for entry in one["train_pretrain"])


def test_rerun_skips_complete_sets_and_regenerates_on_new_size(tmp_path, monkeypatch):
    sets = _tiny(tmp_path)
    before = {name: (d / "text").stat().st_mtime_ns for name, d in sets.items()}

    def refuse(*args, **kwargs):
        raise AssertionError("a complete corpus was synthesised again")

    with monkeypatch.context() as patch:
        patch.setattr(corpus_module, "_render_group", refuse)
        _tiny(tmp_path)
    assert before == {name: (d / "text").stat().st_mtime_ns for name, d in sets.items()}

    # A removed set, or other sizes, are generated again.
    (sets["dev_other"] / ".done").unlink()
    _tiny(tmp_path)
    assert (sets["dev_other"] / ".done").is_file()
    bigger = _tiny(tmp_path, minutes=0.2)
    assert json.loads((bigger["train_10h"] / ".done").read_text())["minutes"] == 0.2


def test_interrupted_run_leaves_no_partial_set_and_resumes(tmp_path, monkeypatch):
    render_group = corpus_module._render_group

    def crash_on_dev_other(pool, seed, group, *args, **kwargs):
        if group == "dev_other":
            raise KeyboardInterrupt
        return render_group(pool, seed, group, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(corpus_module, "_render_group", crash_on_dev_other)
        with pytest.raises(KeyboardInterrupt):
            _tiny(tmp_path)
    data = tmp_path / "data"
    assert (data / "dev_clean" / ".done").is_file() and (data / "train_10min" / ".done").is_file()
    assert not any(p.name.startswith("dev_other") or p.name.startswith(".dev_other") for p in data.iterdir())
    finished = (data / "train_pretrain" / "text").stat().st_mtime_ns
    sets = _tiny(tmp_path)
    assert all((d / ".done").is_file() for d in sets.values())
    assert (data / "train_pretrain" / "text").stat().st_mtime_ns == finished


def test_missing_library_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(espeak_module, "LIBRARY", "libespeak-ng-missing.so.1")
    with pytest.raises(EspeakError, match="apt-get install espeak-ng") as err:
        _tiny(tmp_path)
    assert isinstance(err.value, FileNotFoundError)  # a user error: CLIs print it without a traceback
    assert not (tmp_path / "data" / "train_pretrain").exists()


# --- grammar and timing units --------------------------------------------------------------------


def test_grammar_is_a_function_of_the_rng():
    first = [SentenceGenerator().sentence(random.Random(7)) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    many = [" ".join(SentenceGenerator().sentence(rng)) for rng in [random.Random(3)] for _ in range(200)]
    assert len(set(many)) > 190
    lengths = [len(s.split()) for s in many]
    assert min(lengths) >= 2 and max(lengths) <= 30


def _events(*entries):
    return [PhonemeEvent(sample, position, name) for sample, position, name in entries]


def test_align_splits_merged_words_and_fills_silence():
    words = ["SAT", "IN", "THE", "SUN"]  # espeak says "in the" as one unit, at IN's position
    events = _events(
        (220, 1, "s"), (1100, 1, "a"), (2200, 1, "t"),
        (3300, 5, "I"), (4400, 5, "n"), (5500, 5, "D"), (6600, 5, "@2"),
        (7700, 12, "_:"), (11000, 12, "s"), (12100, 12, "V"), (13200, 12, "n"), (15400, 16, "_"),
    )  # fmt: skip
    phones, spans = align(
        "u", words, events, num_samples=22050, sample_rate=22050, duration=1.0, standalone_counts=lambda ws: [2, 2]
    )
    check_alignment("u", words, phones, spans, 1.0)
    assert [p.label for p in phones] == [SILENCE, "s", "a", "t", "I", "n", "D", "@2", SILENCE, "s", "V", "n", SILENCE]
    assert [(w.label, w.start, round(w.end, 3)) for w in spans] == [
        ("SAT", 0.01, 0.15), ("IN", 0.15, 0.249), ("THE", 0.249, 0.349), ("SUN", 0.499, 0.698),
    ]  # fmt: skip
    assert phones[-1].end == pytest.approx(1.0)


def test_align_rejects_inconsistent_events():
    def run(events, words=("A", "B")):
        align(
            "bad", list(words), _events(*events),
            num_samples=22050, sample_rate=22050, duration=1.0, standalone_counts=lambda ws: [1] * len(ws),
        )  # fmt: skip

    with pytest.raises(AlignmentError, match="not in order"):
        run([(500, 1, "a"), (100, 3, "b")])
    with pytest.raises(AlignmentError, match="first word"):
        run([(500, 3, "b")])
    with pytest.raises(AlignmentError, match="merged"):
        run([(500, 1, "a"), (900, 1, "_")])
    with pytest.raises(AlignmentError, match="start no transcript word"):
        align(
            "bad", ["A", "B"], _events((500, 1, "a"), (900, 3, "b")),
            num_samples=22050, sample_rate=22050, duration=1.0,
            standalone_counts=lambda ws: [1] * len(ws), word_positions=[1, 2],
        )  # fmt: skip
