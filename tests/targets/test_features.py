"""Feature dumps: sharded, resumable per shard, streamed back; bad input named."""

from __future__ import annotations

import numpy as np
import pytest

from espnet_hubert_ae.data.audio import AudioError, read_utterance
from espnet_hubert_ae.data.datadir import Utterance, read_datadir
from espnet_hubert_ae.targets.features import FeatureSet, dump_features, plan_batches, round_to, shard_batches
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


def _utts(lengths, prefix="u"):
    return [Utterance(f"{prefix}{i:02d}", "unused.wav", "spk", n) for i, n in enumerate(lengths)]


def test_batches_are_planned_per_set_not_per_shard():
    utts = _utts([30, 10, 20, 50, 40, 10, 60, 25])
    batches = plan_batches(utts, batch_samples=80)
    # Sorted 10 10 20 25 30 40 50 60; a batch closes when (its size + 1) x the next length passes 80.
    assert [[u.num_samples for u in b] for b in batches] == [[10, 10, 20], [25, 30], [40], [50], [60]]
    for nj in (1, 2, 3, 7):
        shards = shard_batches(batches, nj)
        assert len(shards) == nj and [b for shard in shards for b in shard] == batches  # contiguous runs, in order
    sizes = [sum(u.num_samples for b in shard for u in b) for shard in shard_batches(batches, 2)]
    # Batches of 40 55 40 50 60 samples (245) start at 0 40 95 135 185: the first three start in the first half.
    assert sizes == [135, 110]
    # The fit portion is batched apart, ahead: its batches are those of a plan of the portion alone.
    fit = {"u00", "u03", "u06", "u07"}
    grouped = plan_batches(utts, 80, first=fit)
    alone = plan_batches([u for u in utts if u.utt_id in fit], 80)
    assert grouped[: len(alone)] == alone
    assert {u.utt_id for b in grouped[len(alone):] for u in b}.isdisjoint(fit)
    assert plan_batches(utts, 1) == [[u] for u in sorted(utts, key=lambda u: (u.num_samples, u.utt_id))]


def test_float16_dump_stores_rounded_features(synthetic_sets, tmp_path):
    utts = read_datadir(synthetic_sets["dev"])
    half = FeatureSet(dump_features(utts, MFCC(), tmp_path / "half", dtype="float16"))
    full = FeatureSet(dump_features(utts, MFCC(), tmp_path / "full"))
    assert half.dtype == "float16" and full.dtype == "float32"
    for utt in utts:
        np.testing.assert_array_equal(half.read(utt.utt_id), round_to(full.read(utt.utt_id), "float16"))
        assert half.read(utt.utt_id).dtype == np.float32
    assert half.num_bytes < 0.6 * full.num_bytes
    with pytest.raises(TargetError, match="utterance 'x'.*beyond the range of float16"):
        round_to(np.array([[1.0, 7e4]]), "float16", "utterance 'x'")
    with pytest.raises(TargetError, match="feature dtype must be one of"):
        dump_features(utts, MFCC(), tmp_path / "bad", dtype="float64")
    # A finished dump of another dtype is not taken for this one.
    assert FeatureSet(dump_features(utts, MFCC(), tmp_path / "half", dtype="float32")).dtype == "float32"


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
    assert target_tag(source.name, 500, "0a1b2c3d") == "L1-tiny_k500-0a1b2c3d"
    assert target_tag(MFCC().name, 100) == "mfcc_k100"
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
