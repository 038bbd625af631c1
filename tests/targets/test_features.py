"""Feature dumps: sharded, resumable per shard, streamed back; bad input named."""

from __future__ import annotations

import numpy as np
import pytest

from espnet_hubert_ae.data.audio import AudioError, read_utterance
from espnet_hubert_ae.data.datadir import Utterance, read_datadir
from espnet_hubert_ae.targets.features import FeatureSet, dump_features
from espnet_hubert_ae.targets.mfcc import mfcc_features
from espnet_hubert_ae.targets.sources import MFCC, FeatureExtractor, Layer, TargetError
from espnet_hubert_ae.utils.naming import target_tag
from espnet_hubert_ae.utils.fileio import done_marker


def test_dump_and_read_back(synthetic_sets, tmp_path):
    utts = read_datadir(synthetic_sets["train"])
    features = FeatureSet(dump_features(utts, MFCC(), tmp_path / "train", nj=3))
    assert features.utt_ids == [u.utt_id for u in utts]
    for utt in utts[:3]:
        np.testing.assert_array_equal(features.read(utt.utt_id), mfcc_features(read_utterance(utt)))
    chunks = list(features.iter_chunks(chunk_frames=300))
    assert [u for group, _ in chunks for u, _ in group] == features.utt_ids
    assert sum(len(a) for _, a in chunks) == features.num_frames
    assert all(len(a) == sum(n for _, n in group) for group, a in chunks)


def test_interrupted_dump_resumes_per_shard(synthetic_sets, tmp_path):
    utts = read_datadir(synthetic_sets["train"])
    directory = dump_features(utts, MFCC(), tmp_path / "train", nj=2, job=1)
    assert not done_marker(directory).exists()  # shard 2 still missing
    first_shard = (directory / "shard.0.npy").stat().st_mtime_ns
    dump_features(utts, MFCC(), directory, nj=2)
    assert done_marker(directory).exists()
    assert (directory / "shard.0.npy").stat().st_mtime_ns == first_shard  # not redone
    assert len(FeatureSet(directory).utt_ids) == len(utts)


def test_audio_length_mismatch_names_the_utterance(synthetic_sets, tmp_path):
    utt = read_datadir(synthetic_sets["dev"])[0]
    wrong = Utterance(utt.utt_id, utt.audio, utt.speaker, utt.num_samples + 5)
    with pytest.raises(AudioError, match=f"{utt.utt_id}.*utt2num_samples"):
        dump_features([wrong], MFCC(), tmp_path / "dev")


def test_empty_set(tmp_path):
    with pytest.raises(TargetError, match="no utterances"):
        dump_features([], MFCC(), tmp_path / "empty")


def test_nan_features_name_the_utterance(synthetic_sets, tmp_path, monkeypatch):
    utts = read_datadir(synthetic_sets["dev"])

    def broken(self, waveforms):
        for wav in waveforms:
            yield np.full_like(mfcc_features(wav), np.nan)

    monkeypatch.setattr(FeatureExtractor, "__call__", broken)
    with pytest.raises(TargetError, match=r"utterance 'dev-\d+'.*NaN"):
        dump_features(utts, MFCC(), tmp_path / "dev")


def test_layer_features_and_tags(synthetic_sets, tiny_hubert_checkpoint, tmp_path):
    utts = read_datadir(synthetic_sets["dev"])
    source = Layer(tiny_hubert_checkpoint, 1, tag="tiny")
    features = FeatureSet(dump_features(utts, source, tmp_path / "dev", batch_seconds=2.0))
    assert features.dim == 64
    assert features.read(utts[0].utt_id).shape[0] == (utts[0].num_samples - 400) // 320 + 1
    assert source.name == "L1-tiny"
    assert target_tag("progressive", 2, source.name, 500) == "progressive_p2_L1-tiny_k500"
    assert target_tag("progressive", 1, MFCC().name, 100) == "progressive_p1_mfcc_k100"
    assert Layer(tiny_hubert_checkpoint, 2, "tiny").name != source.name


def test_layer_out_of_range_is_named(synthetic_sets, tiny_hubert_checkpoint, tmp_path):
    utts = read_datadir(synthetic_sets["dev"])
    with pytest.raises(ValueError, match="layer 5 is out of range.*0..2"):
        dump_features(utts, Layer(tiny_hubert_checkpoint, 5), tmp_path / "dev")


def test_more_shards_than_utterances(synthetic_sets, tmp_path):
    utts = read_datadir(synthetic_sets["dev"])
    features = FeatureSet(dump_features(utts, MFCC(), tmp_path / "dev", nj=5))
    assert features.utt_ids == [u.utt_id for u in utts]
    assert sum(len(a) for _, a in features.iter_chunks()) == features.num_frames
