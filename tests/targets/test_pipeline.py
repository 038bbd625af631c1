"""make_targets end to end on synthetic audio: ESPnet labels, quality, determinism, reruns."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from espnet_hubert_ae.data.datadir import read_datadir
from espnet_hubert_ae.model.frames import conv_frame_count
from espnet_hubert_ae.targets.labels import check_label_counts, read_label_text
from espnet_hubert_ae.targets.features import FeatureSet
from espnet_hubert_ae.targets.pipeline import MFCC, Layer, finish_targets, make_targets, target_dir
from espnet_hubert_ae.targets.sources import TargetError
from espnet_hubert_ae.targets.streaming import LabelPlan, ShardLabeller


def _samples(datadir):
    return {u.utt_id: u.num_samples for u in read_datadir(datadir)}


def _labels(path):
    return read_label_text(path)


def _same_labels(a, b) -> bool:
    a, b = _labels(a), _labels(b)
    return a.keys() == b.keys() and all(np.array_equal(a[u], b[u]) for u in a)


def _searched_features(result, set_name) -> dict[str, np.ndarray]:
    """Each utterance's features as the labeller of a finished label set searches them."""
    labeller = ShardLabeller(LabelPlan.read(result.out_dir))
    return {utt.utt_id: feats for shard in range(labeller.plan.nj)
            for batch, features, _ in labeller.batch_features(set_name, shard)
            for utt, feats in zip(batch, features)}  # fmt: skip


def test_mfcc_targets_end_to_end(synthetic_sets, tmp_path):
    out = target_dir(tmp_path / "targets", MFCC(), 8, train_set="train", portion=0.5)
    result = make_targets(sets=synthetic_sets, train_set="train", source=MFCC(), k=8, out_dir=out, portion=0.5)
    assert out.name.startswith("mfcc_k8-") and (out / ".done").is_file() and (out / "key.json").is_file()
    assert (out / "tokens.txt").read_text().split() == [str(i) for i in range(8)] + ["<unk>"]
    for name, datadir in synthetic_sets.items():
        assert check_label_counts(result.text(name), _samples(datadir), conv_frame_count) == len(_samples(datadir))
        quality = json.loads((out / name / "quality.json").read_text())
        assert 0 < quality["pnmi"] <= 1 and quality["k"] == 8
    # Four distinct tones: MFCC clusters must say a lot about the "phones".
    assert result.quality("dev")["pnmi"] > 0.5
    assert (out / "kmeans" / "centroids.npy").is_file() and not (out / "shards").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kmeans"]["fit_utterances"] == 4 and summary["peak_memory_mb"] > 0
    # Streaming: only the fit portion's features are on disk, and in float16 by default.
    features = tmp_path / "targets" / "features" / "mfcc"
    assert sorted(p.name for p in features.iterdir()) == ["train.fit0.5-seed1.float16"]
    assert summary["feature_bytes"] == FeatureSet(features / "train.fit0.5-seed1.float16").num_bytes
    assert summary["per_set"]["dev"]["computed"] == 3 and summary["per_set"]["train"]["read"] == 4

    # Same seed, another directory (the fit dump reused): identical labels.
    again = make_targets(
        sets=synthetic_sets, train_set="train", source=MFCC(), k=8, out_dir=tmp_path / "targets" / "again",
        portion=0.5, feature_root=tmp_path / "targets" / "features",
    )  # fmt: skip
    for name in synthetic_sets:
        assert _same_labels(again.text(name), result.text(name))

    # A finished directory is returned as is.
    mtime = result.text("dev").stat().st_mtime_ns
    make_targets(sets=synthetic_sets, train_set="train", source=MFCC(), k=8, out_dir=out, portion=0.5)
    assert result.text("dev").stat().st_mtime_ns == mtime

    # ...unless the model that will train on them makes other frame counts: labels are redone.
    def shorter(n):
        return conv_frame_count(n) - 1

    redone = make_targets(sets={"dev": synthetic_sets["dev"]}, train_set="dev", source=MFCC(), k=8, out_dir=out,
                          portion=0.5, expected_frames=shorter)  # fmt: skip
    check_label_counts(redone.text("dev"), _samples(synthetic_sets["dev"]), shorter, exact=True)
    assert set(redone.sets) == {"train", "dev"}  # earlier sets are kept and relabelled too
    assert json.loads((out / "key.json").read_text())["frames"] != summary["key"]["frames"]


@pytest.mark.parametrize("kind", ["mfcc", "layer"])
def test_streaming_and_full_dump_give_the_same_labels(kind, synthetic_sets, tiny_hubert_checkpoint, tmp_path):
    """Both paths compute the same features (same batches, same rounding), so they fit the same
    centroids and make the same labels, whatever the source, the dtype and the number of shards."""
    source = MFCC() if kind == "mfcc" else Layer(tiny_hubert_checkpoint, 2, tag="tiny")
    for dtype in ("float32", "float16"):
        common = dict(sets=synthetic_sets, train_set="train", source=source, k=5, portion=0.5, feature_dtype=dtype,
                      batch_seconds=5.0, feature_root=tmp_path / dtype / "features")  # fmt: skip
        full = make_targets(**common, out_dir=tmp_path / dtype / "full", keep_features=True, nj=1)
        streamed = make_targets(**common, out_dir=tmp_path / dtype / "streamed", nj=2)
        np.testing.assert_array_equal(np.load(full.kmeans_dir / "centroids.npy"),
                                      np.load(streamed.kmeans_dir / "centroids.npy"))  # fmt: skip
        for name in synthetic_sets:
            assert full.text(name).read_bytes() == streamed.text(name).read_bytes()
            assert full.summary["per_set"][name]["computed"] == 0
            # What the labels are searched from: read from the whole-set dump, or computed (dev,
            # the train set beyond the fit portion) and rounded like it -- the same numbers.
            read, computed = (_searched_features(result, name) for result in (full, streamed))
            assert read.keys() == computed.keys() and all(np.array_equal(read[u], computed[u]) for u in read)
        assert streamed.summary["per_set"]["dev"]["read"] == 0
        assert streamed.summary["per_set"]["train"]["read"] == 4  # the fit portion, from its dump
        assert streamed.summary["feature_bytes"] < full.summary["feature_bytes"] / 2
        dumps = sorted(p.name for p in (tmp_path / dtype / "features" / source.name).iterdir())
        suffix = "" if dtype == "float32" else ".float16"
        assert dumps == sorted([f"dev{suffix}", f"train{suffix}", f"train.fit0.5-seed1{suffix}"])


def test_an_interrupted_labelling_redoes_only_the_unfinished_shards(synthetic_sets, tmp_path, monkeypatch):
    common = dict(sets=synthetic_sets, train_set="train", source=MFCC(), k=6, portion=0.5, nj=2)
    reference = make_targets(**common, out_dir=tmp_path / "reference")
    made = []
    original = ShardLabeller.label

    def recorded(self, set_name, shard):
        if shard == 1 and fail["on"]:
            raise KeyboardInterrupt  # killed in the middle of job 2
        done = original(self, set_name, shard)
        made.append((set_name, shard, done))
        return done

    fail = {"on": True}
    monkeypatch.setattr(ShardLabeller, "label", recorded)
    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        make_targets(**common, out_dir=out)
    assert made == [("train", 0, True), ("dev", 0, True)]
    with pytest.raises(TargetError, match=r"labels missing for set 'train' shard 2; set 'dev' shard 2 .*job\(s\) 2"):
        finish_targets(out)
    fail["on"], made[:] = False, []
    result = make_targets(**common, out_dir=out)
    assert made == [("train", 1, True), ("dev", 1, True)]  # job 1 was not run again
    for name in synthetic_sets:
        assert result.text(name).read_bytes() == reference.text(name).read_bytes()


def test_shared_targets_and_stale_directories(synthetic_sets, tmp_path, caplog):
    """The directory is named by what makes the labels; one made with other settings is not reused."""
    root = tmp_path / "targets"
    name = target_dir(root, MFCC(), 8, train_set="train")
    assert name == target_dir(root, MFCC(), 8, train_set="train", portion=0.1, seed=1)
    others = [target_dir(root, MFCC(), 9, train_set="train"), target_dir(root, MFCC(), 8, train_set="dev"),
              target_dir(root, MFCC(), 8, train_set="train", portion=0.5),
              target_dir(root, MFCC(), 8, train_set="train", seed=2),
              target_dir(root, MFCC(), 8, train_set="train", feature_dtype="float32"),
              target_dir(root, MFCC(), 8, train_set="train", expected_frames=lambda n: conv_frame_count(n) + 1)]
    assert len({name, *others}) == 7 and all(p.name.startswith(("mfcc_k8-", "mfcc_k9-")) for p in others)

    out = tmp_path / "by_hand"
    first = make_targets(sets=synthetic_sets, train_set="train", source=MFCC(), k=6, out_dir=out, portion=0.5)
    fitted_on = first.summary["kmeans"]["fit_utterances"]
    second = make_targets(sets=synthetic_sets, train_set="train", source=MFCC(), k=6, out_dir=out, portion=1.0)
    assert "made with other settings" in caplog.text
    assert second.summary["kmeans"]["fit_utterances"] == 8 != fitted_on
    assert json.loads((out / "key.json").read_text())["portion"] == 1.0


def test_layer_targets_end_to_end(synthetic_sets, tiny_hubert_checkpoint, tmp_path):
    checkpoint = tmp_path / "ckpt" / "model.pth"
    checkpoint.parent.mkdir()
    for name in ("model.pth", "config.yaml"):
        shutil.copy(tiny_hubert_checkpoint.parent / name, checkpoint.parent / name)
    source = Layer(checkpoint, 2, tag="tiny")
    out = target_dir(tmp_path, source, 5, train_set="train", portion=1.0)
    result = make_targets(sets=synthetic_sets, train_set="train", source=source, k=5, out_dir=out, portion=1.0)
    assert out.name.startswith("L2-tiny_k5-")
    for name, datadir in synthetic_sets.items():
        check_label_counts(result.text(name), _samples(datadir), conv_frame_count)
    assert result.summary["kmeans"]["dim"] == 64

    # A retrained checkpoint at the same path: features, k-means and labels are made again.
    stat = checkpoint.stat()
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = make_targets(sets=synthetic_sets, train_set="train", source=source, k=5, out_dir=out, portion=1.0)
    assert again.summary["source"]["checkpoint_mtime_ns"] == stat.st_mtime_ns + 10**9
    assert again.summary["kmeans"]["source"] == again.summary["source"]


def test_bad_requests(synthetic_sets, tmp_path):
    with pytest.raises(TargetError, match="train set 'nope'"):
        make_targets(sets=synthetic_sets, train_set="nope", source=MFCC(), k=4, out_dir=tmp_path / "a")
    with pytest.raises(TargetError, match="K=100000 is larger than the number of frames"):
        make_targets(sets=synthetic_sets, train_set="train", source=MFCC(), k=100000, out_dir=tmp_path / "b")
    empty = tmp_path / "empty"
    empty.mkdir()
    for name in ("wav.scp", "utt2spk", "utt2num_samples"):
        (empty / name).write_text("")
    with pytest.raises(TargetError, match="set 'empty'.*no utterances"):
        make_targets(sets={**synthetic_sets, "empty": empty}, train_set="train", source=MFCC(), k=4,
                     out_dir=tmp_path / "c")  # fmt: skip


@pytest.mark.slow
def test_mfcc_targets_on_the_builtin_corpus(builtin_corpus, tmp_path):
    """Real speech: K=50 MFCC clusters carry phone information (HuBERT reports PNMI ~0.25 at K=100)."""
    sets = {name: builtin_corpus[name] for name in ("train_pretrain", "dev_clean")}
    result = make_targets(sets=sets, train_set="train_pretrain", source=MFCC(), k=50, out_dir=tmp_path / "t",
                          portion=1.0)  # fmt: skip
    quality = result.quality("dev_clean")
    assert quality is not None and quality["frames"] > 0
    assert 0.1 < quality["pnmi"] < 0.9
    for name, datadir in sets.items():
        check_label_counts(result.text(name), _samples(datadir), conv_frame_count, exact=True)
