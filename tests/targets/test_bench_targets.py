"""bench targets: both ways of making targets, measured on a tiny model, and its agreement measure."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from espnet_hubert_ae.bench.targets import dtype_check, main, matched_agreement
from espnet_hubert_ae.utils.presets import resolve_preset


def test_matched_agreement_ignores_cluster_names():
    a = np.array([0, 0, 1, 1, 2, 2, 2, 0])
    renamed = np.array([2, 2, 0, 0, 1, 1, 1, 2])
    assert matched_agreement(a, renamed, 3) == 1.0
    one_off = renamed.copy()
    one_off[-1] = 0
    assert matched_agreement(a, one_off, 3) == pytest.approx(7 / 8)


def test_same_targets_compares_centroids_and_every_set(tmp_path):
    from espnet_hubert_ae.bench.targets import same_targets

    for name in ("a", "b"):
        (tmp_path / name / "kmeans").mkdir(parents=True)
        np.save(tmp_path / name / "kmeans" / "centroids.npy", np.eye(3, dtype=np.float32))
        for set_name in ("train", "dev"):
            (tmp_path / name / set_name).mkdir()
            (tmp_path / name / set_name / "text").write_text("u1 0 1 2\n")
    a, b = tmp_path / "a", tmp_path / "b"
    assert same_targets(a, b, ["train", "dev"]) == (True, True)
    (b / "dev" / "text").write_text("u1 0 1 1\n")
    assert same_targets(a, b, ["train", "dev"]) == (True, False)
    assert same_targets(a, b, ["train"]) == (True, True)
    np.save(b / "kmeans" / "centroids.npy", np.eye(3, dtype=np.float32) * np.float32(1 + 2**-20))
    assert same_targets(a, b, ["train"]) == (False, True)


def test_targets_bench_on_the_tiny_model(synthetic_sets, tmp_path, capsys):
    datadir = synthetic_sets["train"].parent
    argv = ["--datadir", str(datadir), "--train_set", "train", "--eval_sets", "dev", "--minutes", "0",
            "--sources", "tiny:1", "--k_layer", "4", "--portion", "0.5", "--threads", "1",
            "--extract_layers", "tiny:2", "--dtype_check", "false", "--workdir", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (tiny,) = figures["sources"]
    assert tiny["labels_identical"] and tiny["centroids_identical"] and figures["identical"]
    # 4 of the 8 train utterances, float16 frames of the preset's width at 50 Hz, counted from the audio.
    width = yaml.safe_load(resolve_preset("model", "tiny").read_text())["encoder_conf"]["encoder_embed_dim"]
    assert tiny["dim"] == width and tiny["fit_portion_bytes"] == tiny["fit_frames"] * width * 2
    assert 1.0 <= tiny["streaming_disk_over_fit_portion"] < 1.1  # headers, index, meta beside the frames
    assert tiny["streaming"]["disk_peak_bytes"] < tiny["full"]["disk_peak_bytes"]
    assert tiny["full"]["dump_cpu_s"] > 0 and tiny["streaming"]["labels_cpu_s"] > tiny["full"]["labels_cpu_s"]
    assert figures["extraction"][0]["source"] == "tiny:2" and figures["extraction"][0]["cpu_s_per_hour"] > 0


def test_float16_against_float32_fits(synthetic_sets, tmp_path):
    """The dtype check on three label sets made here: float16 and float32 fits of the same seed
    agree (the tones are well separated), another seed is k-means' own spread."""
    from espnet_hubert_ae.targets.pipeline import MFCC, make_targets

    runs = {}
    for name, dtype, seed in (("float16", "float16", 1), ("float32", "float32", 1), ("float32_seed2", "float32", 2)):
        result = make_targets(sets=synthetic_sets, train_set="train", source=MFCC(), k=4, portion=0.5, seed=seed,
                              feature_dtype=dtype, out_dir=tmp_path / name, feature_root=tmp_path / "features")
        runs[name] = {"out_dir": str(result.out_dir), "summary": result.summary}
    check = dtype_check(runs, 4)
    assert check["fit_frames"] == runs["float32"]["summary"]["kmeans"]["num_frames"]
    assert check["agreement_float16_matched"] >= check["agreement_float16_direct"] > 0.9
    assert check["agreement_rounding_same_centroids"] > 0.99
    assert abs(check["inertia_rel_diff_float16"]) < 0.05 and check["inertia_float32"] > 0


def _measured(source, k, dim, dump, full_labels, stream_labels, kmeans, feature_bytes):
    """A source's figures as the bench records them: 2 h labelled, k-means on 0.15 h of a 1.5 h train set."""
    return {"source": source, "k": k, "dim": dim, "hours": 2.0, "train_hours": 1.5, "fit_hours": 0.15,
            "full": {"dump_cpu_s": dump, "labels_cpu_s": full_labels, "kmeans_cpu_s": kmeans,
                     "feature_bytes": feature_bytes, "disk_peak_bytes": feature_bytes,
                     "cpu_s": dump + kmeans + full_labels, "peak_memory_mb": 900.0},
            "streaming": {"dump_cpu_s": dump * 0.075, "labels_cpu_s": stream_labels, "kmeans_cpu_s": kmeans,
                          "feature_bytes": feature_bytes * 0.075, "disk_peak_bytes": feature_bytes * 0.075,
                          "cpu_s": dump * 0.075 + kmeans + stream_labels, "peak_memory_mb": 950.0}}  # fmt: skip


def test_extrapolation_from_per_hour_rates():
    from espnet_hubert_ae.bench.targets import cost_model, extrapolate, per_hour_rows, schedule_phases

    assert schedule_phases("baseline") == [("mfcc", 100), ("base:6", 500)]
    assert schedule_phases("progressive") == [("mfcc", 100), ("base:3", 200), ("base:6", 300), ("base:9", 500)]
    # Per hour, base layer 6: extraction 1000 CPU s, reading 10, search 40 at K=500; the fit portion
    # (0.15 of 2 h) is read, the rest computed, on the streaming path: 0.925 * 1000 + 0.075 * 10 + 40.
    figures = {
        "sources": [_measured("mfcc", 100, 39, 200.0, 40.0, 2 * (92.5 + 0.075 * 5 + 15), 30.0, 2e9),
                    _measured("base layer 6", 500, 768, 2000.0, 100.0, 2 * (925 + 0.75 + 40), 300.0, 4e11)],
        "extraction": [{"source": "base:3", "cpu_s_per_hour": 600.0}, {"source": "base:6", "cpu_s_per_hour": 1200.0},
                       {"source": "base:9", "cpu_s_per_hour": 1800.0}],
    }  # fmt: skip
    rates = cost_model(figures)
    assert rates["base:6"]["search"] == pytest.approx(40) and rates["base:6"]["read"] == pytest.approx(10)
    assert rates["mfcc"]["search"] == pytest.approx(15) and rates["base:3"]["extract"] == pytest.approx(500)
    rows = {(r["strategy"], r["phase"], r["hours"]): r for r in extrapolate(figures, portion=0.1)}
    assert len(rows) == 2 * (2 + 4)
    # base layer 6 at 960 h: k-means 2000 s per fit hour on 96 h; streaming reads only the fit portion.
    layer6 = rows[("baseline", 2, 960.0)]
    assert layer6["full_cpu_h"] == pytest.approx((960 * 1000 + 2000 * 96 + 960 * 10 + 960 * 40) / 3600)
    assert layer6["streaming_cpu_h"] == pytest.approx((960 * 1000 + 2000 * 96 + 96 * 10 + 960 * 40) / 3600)
    assert layer6["full_disk_tb"] == pytest.approx(960 * 2e11 / 1e12)
    assert layer6["streaming_disk_tb"] == pytest.approx(96 * 2e11 / 1e12)
    # layer 3 extracts at half layer 6's cost; K=200 scales the search and the fit by 0.4.
    layer3 = rows[("progressive", 2, 60000.0)]
    assert layer3["full_cpu_h"] == pytest.approx((60000 * 500 + 2000 * 0.4 * 6000 + 60000 * (10 + 40 * 0.4)) / 3600)
    assert rows[("progressive", 1, 960.0)]["fit_cpu_h"] == pytest.approx(200 * 96 / 3600)

    full, streaming = per_hour_rows(figures["sources"][1:])
    assert (full["stored_hours"], streaming["stored_hours"]) == (2.0, 0.15)
    assert full["mb_per_stored_hour"] == pytest.approx(streaming["mb_per_stored_hour"]) == pytest.approx(2e5)
    assert streaming["extract_cpu_s_per_stored_hour"] == pytest.approx(1000)
    assert streaming["labels_cpu_s_per_hour"] == pytest.approx(965.75) and full["labels_cpu_s_per_hour"] == 50
