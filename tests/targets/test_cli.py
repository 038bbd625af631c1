"""The target CLIs and the benchmark dispatcher: options, clear errors, a small run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from espnet_hubert_ae.bench.__main__ import BENCHMARKS
from espnet_hubert_ae.bench.__main__ import main as bench_main
from espnet_hubert_ae.bench.kmeans import clustered_frames, compare_engines
from espnet_hubert_ae.bin import dump_features, make_targets


def test_make_targets_cli(synthetic_sets, tmp_path, capsys):
    datadir = synthetic_sets["train"].parent
    argv = ["--datadir", str(datadir), "--sets", "train", "dev", "--train_set", "train", "--strategy", "demo",
            "--k", "6", "--out_root", str(tmp_path), "--portion", "1.0"]  # fmt: skip
    assert make_targets.main(argv + ["--print_dir"]) == 0
    named = capsys.readouterr().out.strip()
    assert make_targets.main(argv) == 0
    out_dir = capsys.readouterr().out.strip().splitlines()[-1]
    assert out_dir == named and Path(out_dir).name.startswith("mfcc_k6-")
    assert json.loads((Path(out_dir) / "summary.json").read_text())["k"] == 6


def test_make_targets_cli_in_steps(synthetic_sets, tmp_path, capsys):
    """The steps run.sh runs as separate jobs give what one call gives."""
    datadir = synthetic_sets["train"].parent
    argv = ["--datadir", str(datadir), "--sets", "train", "dev", "--train_set", "train", "--k", "5",
            "--portion", "0.5", "--nj", "2"]  # fmt: skip
    assert make_targets.main(argv + ["--out_root", str(tmp_path / "whole")]) == 0
    whole = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert make_targets.main(argv + ["--out_root", str(tmp_path / "steps"), "--step", "fit"]) == 0
    out_dir = capsys.readouterr().out.strip().splitlines()[-1]
    steps = ["--targets_dir", out_dir]
    assert make_targets.main(["--step", "missing", *steps]) == 0
    assert capsys.readouterr().out.strip() == "1,2"
    assert make_targets.main(["--step", "label", "--job", "2", *steps]) == 0
    assert make_targets.main(["--step", "finish", *steps]) == 1
    assert "labels missing for set 'train' shard 1; set 'dev' shard 1 (of 2 shards): run label job(s) 1" in (
        capsys.readouterr().err)
    assert make_targets.main(["--step", "missing", *steps]) == 0
    assert capsys.readouterr().out.strip() == "1"
    assert make_targets.main(["--step", "label", "--job", "1", *steps]) == 0
    assert make_targets.main(["--step", "finish", *steps]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == out_dir
    assert make_targets.main(["--step", "missing", *steps]) == 0
    assert capsys.readouterr().out.strip() == ""
    for name in ("train", "dev"):
        assert (Path(out_dir) / name / "text").read_bytes() == (whole / name / "text").read_bytes()
    assert make_targets.main(["--step", "label", "--job", "3", *steps]) == 1
    assert "--step label needs --job in 1..2, not 3" in capsys.readouterr().err


def test_cli_errors_are_one_line(synthetic_sets, tmp_path, capsys):
    datadir = str(synthetic_sets["train"].parent)
    base = ["--datadir", datadir, "--sets", "train", "--train_set", "train", "--strategy", "demo"]
    assert make_targets.main(base + ["--source", "layer", "--k", "4"]) == 1
    assert "ERROR: --source layer needs --checkpoint and --layer" in capsys.readouterr().err
    assert make_targets.main(base + ["--k", "many"]) == 1
    assert "--k must be an integer or 'auto'" in capsys.readouterr().err
    assert make_targets.main(["--datadir", datadir, "--sets", "train", "--train_set", "train"]) == 1
    assert "--k auto needs --strategy" in capsys.readouterr().err
    assert make_targets.main(["--step", "label", "--job", "1"]) == 1
    assert "--step label needs --targets_dir" in capsys.readouterr().err
    assert make_targets.main(["--step", "finish", "--targets_dir", str(tmp_path)]) == 1
    assert "no labelling plan (plan.json)" in capsys.readouterr().err
    assert make_targets.main(["--datadir", datadir, "--sets", "dev", "--train_set", "train", "--strategy", "x",
                              "--k", "4"]) == 1  # fmt: skip
    assert "--train_set train is not among --sets" in capsys.readouterr().err
    assert dump_features.main(["--datadir", datadir, "--set", "train", "--nj", "2", "--job", "3"]) == 1
    assert "--job must be in 1..2" in capsys.readouterr().err


def test_dump_features_cli_job(synthetic_sets, tmp_path, capsys):
    datadir = str(synthetic_sets["dev"].parent)
    argv = ["--datadir", datadir, "--set", "dev", "--feature_root", str(tmp_path), "--nj", "2", "--job", "2"]
    assert dump_features.main(argv) == 0
    assert (tmp_path / "mfcc" / "dev" / "shard.1.index.tsv").is_file()
    assert not (tmp_path / "mfcc" / "dev" / "shard.0.index.tsv").exists()


def test_bench_dispatcher(capsys):
    assert {"kmeans", "features"} <= BENCHMARKS.keys()
    assert bench_main(["no-such-bench"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err
    assert bench_main(["--help"]) == 0


def test_engine_comparison_figures():
    data = clustered_frames(3000, 8, 10, 4, seed=0)
    figures = compare_engines(data, 10, seed=1, max_iter=10, threads=1)
    assert figures["frames"] == 3000 and figures["k"] == 10
    assert figures["project_inertia"] > 0 and figures["reference_inertia"] > 0
    assert np.isfinite(figures["speedup"])


@pytest.mark.slow
def test_features_benchmark_on_the_tiny_model(capsys):
    from espnet_hubert_ae.bench.features import main as features_main

    assert features_main(["--model", "tiny", "--seconds", "2", "--repeats", "1"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["identical"] and figures["matches_torchaudio_extract_features"] and figures["layer"] == 1
