"""Stage 7's CLI end to end: a tiny random checkpoint, registered names, every JSON and PNG."""

import json

import pytest

from espnet_hubert_ae.bin.analyse import main
from espnet_hubert_ae.upstream.registry import CheckpointRef, write_registry

FAST = ["--kmeans_k", "8", "--probe_frames", "3000", "--min_labels", "2"]


@pytest.fixture
def registry(tmp_path, tiny_hubert_checkpoint):
    entries = [
        CheckpointRef(f"{strategy}_tiny/p1/step{step}", tiny_hubert_checkpoint,
                      tiny_hubert_checkpoint.parent / "config.yaml", f"{strategy}_tiny", strategy, 1, step)
        for strategy, step in (("baseline", 100), ("progressive", 100))
    ]
    return write_registry(tmp_path / "exp" / "upstreams.json", entries)


def _expect_outputs(outdir, names, measures):
    for name in names:
        result = json.loads((outdir / name / "results.json").read_text())
        assert set(result["measures"]) == set(measures)
        assert all(len(curve) == 3 for curve in result["measures"].values())  # tiny model: layers 0..2
    assert (outdir / "table.tsv").is_file() and (outdir / "summary.json").is_file()
    pngs = {p.name for p in (outdir / "plots").glob("*.png")}
    for measure in measures:
        assert {f"{measure}_layers.png", f"{measure}_strategies.png"} <= pngs
        assert any(p.startswith(f"{measure}_heatmap_") for p in pngs)


def test_tiny_checkpoint_end_to_end(synthetic_corpus, tmp_path, registry, capsys):
    outdir = tmp_path / "analysis"
    args = ["--data", str(synthetic_corpus), "--outdir", str(outdir), "--registry", str(registry),
            "--checkpoints", "all", "--reference_strategy", "baseline", "--seeds", "1 2", *FAST]
    assert main(args) == 0
    measures = ["mel_cca", "phone_cca", "word_cca", "phone_probe_acc", "pnmi", "pnmi_corrected", "phone_purity",
                "cluster_purity"]
    _expect_outputs(outdir, ["baseline_tiny_p1_step100", "progressive_tiny_p1_step100"], measures)
    summary = json.loads((outdir / "summary.json").read_text())
    assert summary["steps_to_target"]["measures"]["word_cca"]["baseline"] == 100
    assert set(summary["controls"]) == {"logmel", "logmel5", "logmel9", "mfcc", "majority"}
    assert summary["controls"]["logmel"]["phone_probe_acc"]["per_seed"].keys() == {"1", "2"}
    result = json.loads((outdir / "baseline_tiny_p1_step100" / "results.json").read_text())
    assert result["probe"]["seeds"] == [1, 2] and len(result["probe"]["per_seed"]["2"]) == 3


def test_bad_seeds_fail_clearly(synthetic_corpus, tmp_path, registry, capsys):
    code = main(["--data", str(synthetic_corpus), "--outdir", str(tmp_path / "a"), "--registry", str(registry),
                 "--checkpoints", "all", "--seeds", "1 x"])
    assert code == 1
    assert "--seeds: 'x' is not a non-negative integer" in capsys.readouterr().err
    code = main(["--data", str(synthetic_corpus), "--outdir", str(tmp_path / "a"), "--registry", str(registry),
                 "--checkpoints", "all", "--metric_threads", "2", "--blas_threads", "2"])
    assert code == 1
    assert "--metric_threads 2 / --blas_threads 2: metric threads over layers" in capsys.readouterr().err


def test_unregistered_name_fails_clearly(synthetic_corpus, tmp_path, registry, capsys):
    code = main(["--data", str(synthetic_corpus), "--outdir", str(tmp_path / "a"), "--registry", str(registry),
                 "--checkpoints", "baseline_tiny/p1/step999"])
    assert code == 1
    err = capsys.readouterr().err
    assert "ERROR:" in err and "baseline_tiny/p1/step999" in err and "registered" in err
    assert "Traceback" not in err


def test_checkpoint_path_and_bad_alignment_input(synthetic_corpus, tmp_path, tiny_hubert_checkpoint, capsys):
    (synthetic_corpus / "phones.ctm").unlink()
    code = main(["--data", str(synthetic_corpus), "--outdir", str(tmp_path / "a"),
                 "--checkpoints", str(tiny_hubert_checkpoint), "--metrics", "phone_probe"])
    assert code == 1
    assert "phones.ctm is missing" in capsys.readouterr().err
    code = main(["--data", str(synthetic_corpus), "--outdir", str(tmp_path / "a"),
                 "--checkpoints", str(tiny_hubert_checkpoint), "--metrics", "mel_cca"])
    assert code == 0
    name = f"{tiny_hubert_checkpoint.parent.name}_model"  # a file is named by its folder and stem
    assert (tmp_path / "a" / name / "mel_cca.json").is_file()


def test_builtin_corpus_end_to_end(builtin_corpus, tmp_path, registry):
    datadir = builtin_corpus["dev_clean"]
    outdir = tmp_path / "analysis"
    args = ["--data", str(datadir), "--outdir", str(outdir), "--registry", str(registry),
            "--checkpoints", "baseline_tiny/p1/step100", *FAST,
            # 12 utterances: a 3-fold protocol, and espeak-ng's rare phones left out
            "--n_folds", "3", "--n_trials", "1", "--rare_phones", "drop"]
    assert main(args) == 0
    measures = ["mel_cca", "phone_cca", "word_cca", "phone_probe_acc", "pnmi", "pnmi_corrected", "phone_purity",
                "cluster_purity"]
    _expect_outputs(outdir, ["baseline_tiny_p1_step100"], measures)
