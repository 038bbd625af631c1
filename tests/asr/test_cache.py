"""Feature caches: what is stored where, the layer layout, resumption, refusals."""

import json
import shutil

import kaldiio
import numpy as np
import pytest
import torch

from espnet_hubert_ae.asr.cache import CacheError, ensure_cache, load_features, read_cache
from espnet_hubert_ae.asr.sources import CheckpointSource, FbankSource
from espnet_hubert_ae.data.datadir import Utterance, write_datadir
from espnet_hubert_ae.model.frames import conv_frame_count
from espnet_hubert_ae.model.hubert import hidden_states, load_pretrain_model


@pytest.fixture
def datadir(tmp_path, write_test_audio):
    """Five utterances of 0.5-0.9 s."""
    utts = []
    for i in range(5):
        wav = write_test_audio(tmp_path / "audio" / f"u{i}.wav", 0.5 + 0.1 * i, seed=i)
        utts.append(Utterance(f"u{i}", str(wav), "spk", int(16000 * (0.5 + 0.1 * i)), "A B"))
    return write_datadir(tmp_path / "dev_clean", utts)


def test_fbank_cache_layout_and_frame_count(datadir, tmp_path):
    info = ensure_cache(FbankSource(), datadir, tmp_path / "cache")
    assert info.directory == tmp_path / "cache" / "fbank" / "dev_clean"
    assert (info.num_layers, info.layer_dim, info.dtype, info.frame_rate) == (1, 80, "float16", 50.0)
    feats = load_features(info)
    shapes = dict(line.split() for line in info.shape_file.read_text().splitlines())
    for i in range(5):
        array = feats[f"u{i}"]
        assert array.dtype == np.float16 and array.shape == (conv_frame_count(int(16000 * (0.5 + 0.1 * i))), 80)
        assert int(shapes[f"u{i}"]) == array.shape[0]
    assert info.frames == sum(int(n) for n in shapes.values()) and info.utterances == 5
    assert read_cache(info.directory) == info
    assert json.loads((info.directory / "cache.json").read_text())["identity"]["kind"] == "fbank"


def test_checkpoint_cache_holds_every_layer_side_by_side(datadir, tmp_path, tiny_hubert_checkpoint):
    info = ensure_cache(CheckpointSource(str(tiny_hubert_checkpoint)), datadir, tmp_path / "cache", dtype="float32")
    assert (info.num_layers, info.layer_dim) == (3, 64)  # 2 transformer layers + their input
    assert info.identity["sha256"] and info.identity["checkpoint"] == str(tiny_hubert_checkpoint.resolve())
    model, _ = load_pretrain_model(tiny_hubert_checkpoint)
    import soundfile as sf

    wav = torch.from_numpy(sf.read(datadir / ".." / "audio" / "u3.wav", dtype="float32")[0])
    states, _ = hidden_states(model, wav[None], torch.tensor([wav.numel()]))
    cached = torch.from_numpy(load_features(info)["u3"])
    assert cached.dtype == torch.float32  # standard Kaldi float matrices
    for layer, state in enumerate(states):
        torch.testing.assert_close(cached[:, 64 * layer: 64 * (layer + 1)], state[0], atol=1e-5, rtol=1e-5)


def test_interrupted_extraction_resumes_at_the_unfinished_shard(datadir, tmp_path):
    source = FbankSource()
    calls = []
    original = source.features

    def failing(wav):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # as a Ctrl-C in the second shard
        return original(wav)

    source.features = failing
    with pytest.raises(KeyboardInterrupt):
        ensure_cache(source, datadir, tmp_path / "cache", shard_utterances=2)
    directory = tmp_path / "cache" / "fbank" / "dev_clean"
    assert (directory / "shards" / "0000.scp").is_file() and not (directory / "shards" / "0001.scp").exists()
    calls.clear()
    info = ensure_cache(source, datadir, tmp_path / "cache", shard_utterances=2)
    assert len(calls) == 3  # shards 1 and 2 only
    fresh = ensure_cache(FbankSource(), datadir, tmp_path / "fresh")
    for utt, array in load_features(fresh).items():
        np.testing.assert_array_equal(load_features(info)[utt], array)


def test_cache_of_another_checkpoint_or_utterance_list_is_refused(datadir, tmp_path, tiny_hubert_checkpoint):
    from espnet_hubert_ae.model.factory import write_random_checkpoint

    checkpoint = tmp_path / "ckpt" / "model.pth"
    shutil.copytree(tiny_hubert_checkpoint.parent, checkpoint.parent)
    ensure_cache(CheckpointSource(str(checkpoint)), datadir, tmp_path / "cache")
    write_random_checkpoint(checkpoint.parent, seed=7)  # other weights, same path and name
    with pytest.raises(CacheError, match="holds features of checkpoint"):
        ensure_cache(CheckpointSource(str(checkpoint)), datadir, tmp_path / "cache")
    ensure_cache(FbankSource(), datadir, tmp_path / "cache")
    lines = (datadir / "wav.scp").read_text().splitlines()
    (datadir / "wav.scp").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(CacheError, match="other utterances"):
        ensure_cache(FbankSource(), datadir, tmp_path / "cache")


def test_too_short_utterance_is_named(tmp_path, write_test_audio):
    wav = write_test_audio(tmp_path / "short.wav", 0.01)
    data = write_datadir(tmp_path / "tiny", [Utterance("short1", str(wav), "spk", 160, "A")])
    with pytest.raises(CacheError, match="'short1'.*too short"):
        ensure_cache(FbankSource(), data, tmp_path / "cache")


def test_kaldiio_reads_the_float16_arks_that_espnet_loads(datadir, tmp_path):
    """The float16 cache read back by kaldiio and by ESPnet's ``kaldi_ark`` loader holds each
    utterance's 80 log-mel energies (25 ms windows every 20 ms, Kaldi's fbank), to float16 precision."""
    import soundfile as sf
    from espnet2.train.dataset import kaldi_loader
    from torchaudio.compliance import kaldi

    info = ensure_cache(FbankSource(), datadir, tmp_path / "cache")
    assert info.dtype == "float16"
    scp = kaldiio.load_scp(str(info.feats_scp))
    espnet = kaldi_loader(str(info.feats_scp))
    assert sorted(scp) == [f"u{i}" for i in range(5)]
    for i in range(5):
        wav, rate = sf.read(tmp_path / "audio" / f"u{i}.wav", dtype="float32")
        expected = kaldi.fbank(torch.from_numpy(wav)[None] * 32768.0, sample_frequency=rate, num_mel_bins=80,
                               frame_length=25.0, frame_shift=20.0, dither=0.0).numpy()
        for stored in (scp[f"u{i}"], espnet[f"u{i}"]):
            assert stored.dtype == np.float16 and stored.shape == expected.shape
            # float16 keeps 11 significant bits: a relative error of at most 2^-11.
            np.testing.assert_allclose(stored.astype(np.float32), expected, rtol=2.0**-11, atol=1e-3)
