"""The audio reader and checks: what a usable file is, and the message that names a bad one."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from espnet_hubert_ae.data.audio import AudioError, inspect_audio, inspect_many, read_audio, read_utterance
from espnet_hubert_ae.data.datadir import Utterance


def test_good_flac_and_wav_give_their_sample_count(tmp_path, write_test_audio):
    flac = write_test_audio(tmp_path / "a.flac", 0.5)
    wav = write_test_audio(tmp_path / "b.wav", 0.25)
    assert inspect_audio(flac, decode=False) == 8000
    assert inspect_audio(flac, decode=True) == 8000
    assert inspect_audio(wav, decode=True) == 4000
    samples = read_audio(flac)
    assert samples.dtype == np.float32 and samples.shape == (8000,)
    np.testing.assert_array_equal(samples, sf.read(str(flac), dtype="float32")[0])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p, w: w(p / "x.flac", 0.5, samplerate=8000), "sample rate 8000 Hz, expected 16000"),
        (lambda p, w: w(p / "x.flac", 0.5, channels=2), "2 channels, expected mono"),
        (lambda p, w: (p / "x.flac").write_bytes(b"not audio at all" * 10) and p / "x.flac", "unreadable audio"),
        (lambda p, w: p / "missing.flac", "file not found"),
    ],
    ids=["8khz", "stereo", "garbage", "missing"],
)
def test_bad_files_are_named_with_the_problem(tmp_path, write_test_audio, make, message):
    path = make(tmp_path, write_test_audio)
    with pytest.raises(AudioError, match=message) as err:
        inspect_audio(path, decode=False)
    assert str(path) in str(err.value)
    with pytest.raises(AudioError, match=message) as err:
        read_audio(path, utt_id="spk-utt1")
    assert str(path) in str(err.value) and "utterance 'spk-utt1'" in str(err.value)


def test_an_utterance_must_have_its_recorded_length(tmp_path, write_test_audio):
    path = write_test_audio(tmp_path / "a.flac", 0.5)
    assert len(read_utterance(Utterance("u1", str(path), "spk", 8000))) == 8000
    with pytest.raises(AudioError, match=r"utterance 'u1': .*a.flac: 8000 samples, but utt2num_samples says 8001"):
        read_utterance(Utterance("u1", str(path), "spk", 8001))


def test_empty_audio_is_refused(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(str(path), np.zeros(0, dtype="int16"), 16000)
    with pytest.raises(AudioError, match="no samples"):
        inspect_audio(path, decode=False)


def test_truncated_flac_passes_the_header_but_not_decoding(tmp_path, write_test_audio):
    path = write_test_audio(tmp_path / "cut.flac", 2.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert inspect_audio(path, decode=False) == 32000  # the header still claims every sample
    with pytest.raises(AudioError, match="cut.flac: .*(truncated or corrupt|corrupt audio)"):
        inspect_audio(path, decode=True)


def test_nan_samples_are_found_by_decoding(tmp_path):
    path = tmp_path / "nan.wav"
    data = np.zeros(1600, dtype="float32")
    data[700] = np.nan
    sf.write(str(path), data, 16000, subtype="FLOAT")
    assert inspect_audio(path, decode=False) == 1600
    with pytest.raises(AudioError, match="NaN or infinite sample near sample 700"):
        inspect_audio(path, decode=True)


@pytest.mark.parametrize("nj", [1, 2])
def test_inspect_many_keeps_order_and_returns_errors(tmp_path, write_test_audio, nj):
    paths = [write_test_audio(tmp_path / f"{i}.flac", 0.1 * (i + 1)) for i in range(3)]
    paths.insert(1, write_test_audio(tmp_path / "bad.flac", 0.1, samplerate=22050))
    results = inspect_many(paths, decode=True, nj=nj)
    assert results[0] == 1600 and results[2] == 3200 and results[3] == 4800
    assert isinstance(results[1], AudioError) and "22050" in results[1].problem
