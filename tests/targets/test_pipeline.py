"""make_targets end to end on synthetic audio: ESPnet labels, quality, determinism, reruns."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from espnet_hubert_ae.data.datadir import read_datadir
from espnet_hubert_ae.model.frames import conv_frame_count
from espnet_hubert_ae.targets.labels import check_label_counts, read_label_text
from espnet_hubert_ae.targets.pipeline import MFCC, Layer, make_targets
from espnet_hubert_ae.utils.naming import target_tag
from espnet_hubert_ae.targets.sources import TargetError


def _samples(datadir):
    return {u.utt_id: u.num_samples for u in read_datadir(datadir)}


def test_mfcc_targets_end_to_end(synthetic_sets, tmp_path):
    out = tmp_path / "targets" / target_tag("ci", 1, MFCC().name, 8)
    result = make_targets(sets=synthetic_sets, train_set="train", source=MFCC(), k=8, out_dir=out, portion=0.5)
    assert out.name == "ci_p1_mfcc_k8" and (out / ".done").is_file()
    assert (out / "tokens.txt").read_text().split() == [str(i) for i in range(8)] + ["<unk>"]
    for name, datadir in synthetic_sets.items():
        assert check_label_counts(result.text(name), _samples(datadir), conv_frame_count) == len(_samples(datadir))
        quality = json.loads((out / name / "quality.json").read_text())
        assert 0 < quality["pnmi"] <= 1 and quality["k"] == 8
    # Four distinct tones: MFCC clusters must say a lot about the "phones".
    assert result.quality("dev")["pnmi"] > 0.5
    assert (out / "kmeans" / "centroids.npy").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kmeans"]["fit_utterances"] == 4 and summary["peak_memory_mb"] > 0

    # Same seed, another directory (features reused): identical labels.
    again = make_targets(
        sets=synthetic_sets, train_set="train", source=MFCC(), k=8, out_dir=tmp_path / "targets" / "again",
        portion=0.5, feature_root=tmp_path / "targets" / "features",
    )  # fmt: skip
    assert again.summary["seconds"]["features"] < summary["seconds"]["features"] + 1
    for name in synthetic_sets:
        assert read_label_text(again.text(name)).keys() == read_label_text(result.text(name)).keys()
        assert all((a == b).all() for a, b in zip(read_label_text(again.text(name)).values(),
                                                   read_label_text(result.text(name)).values()))  # fmt: skip

    # A finished directory is returned as is.
    mtime = result.text("dev").stat().st_mtime_ns
    make_targets(sets=synthetic_sets, train_set="train", source=MFCC(), k=8, out_dir=out, portion=0.5)
    assert result.text("dev").stat().st_mtime_ns == mtime

    # ...unless the model that will train on them makes other frame counts: labels are redone.
    def shorter(n):
        return conv_frame_count(n) - 1

    redone = make_targets(sets={"dev": synthetic_sets["dev"]}, train_set="train", source=MFCC(), k=8, out_dir=out,
                          portion=0.5, expected_frames=shorter)  # fmt: skip
    check_label_counts(redone.text("dev"), _samples(synthetic_sets["dev"]), shorter, exact=True)
    assert set(redone.sets) == {"train", "dev"}  # earlier sets are kept and relabelled too


def test_layer_targets_end_to_end(synthetic_sets, tiny_hubert_checkpoint, tmp_path):
    checkpoint = tmp_path / "ckpt" / "model.pth"
    checkpoint.parent.mkdir()
    for name in ("model.pth", "config.yaml"):
        shutil.copy(tiny_hubert_checkpoint.parent / name, checkpoint.parent / name)
    source = Layer(checkpoint, 2, tag="tiny")
    out = tmp_path / target_tag("ci", 2, source.name, 5)
    result = make_targets(sets=synthetic_sets, train_set="train", source=source, k=5, out_dir=out, portion=1.0)
    assert out.name == "ci_p2_L2-tiny_k5"
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
