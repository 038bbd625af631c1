"""The analysis runner on a synthetic aligned corpus with a fake feature source."""

import json

import numpy as np
import pytest

from espnet_hubert_ae.analysis import AnalysisError
from espnet_hubert_ae.analysis.config import AnalysisConfig
from espnet_hubert_ae.analysis.layerwise import analyse_checkpoint
from espnet_hubert_ae.analysis.overview import write_report
from espnet_hubert_ae.analysis.sampling import DataPlan
from espnet_hubert_ae.upstream.registry import CheckpointRef

METRICS = ("mel_cca", "phone_cca", "word_cca", "phone_probe", "cluster_quality")


@pytest.fixture
def fake_ref(tmp_path):
    path = tmp_path / "ckpt.pth"
    path.write_bytes(b"fake")
    return CheckpointRef("fake_tiny/p1/step10", path, run="fake_tiny", strategy="fake", phase=1, step=10)


def _run(corpus, outdir, ref, source, **config):
    plan = DataPlan(corpus, AnalysisConfig(**{"kmeans_k": 10, **config}))
    return analyse_checkpoint(ref, plan, outdir, source_factory=lambda _: source)


def test_every_metric_per_layer_and_cached_rerun(synthetic_corpus, tmp_path, fake_ref, mel_features):
    source = mel_features(num_layers=3)
    result = _run(synthetic_corpus, tmp_path / "out", fake_ref, source)
    measures = result["measures"]
    assert set(measures) == {"mel_cca", "phone_cca", "word_cca", "phone_probe_acc", "pnmi", "phone_purity", "cluster_purity"}
    assert all(len(curve) == 4 for curve in measures.values())
    # layer 0 is a linear map of the mel view; noise grows with the layer
    assert measures["mel_cca"][0] == pytest.approx(1.0, abs=1e-6)
    assert measures["mel_cca"][3] < measures["mel_cca"][1] < 1.0
    assert measures["phone_probe_acc"][0] > 0.9 and measures["phone_cca"][0] > 0.9
    assert result["summary"]["mel_cca"]["input_rebound"] == pytest.approx(0.0)
    tag_dir = tmp_path / "out" / "fake_tiny_p1_step10"
    assert sorted(p.name for p in tag_dir.iterdir()) == sorted([f"{m}.json" for m in METRICS] + ["results.json"])
    calls = source.calls
    assert calls == 16  # one pass over the 16 utterances

    again = _run(synthetic_corpus, tmp_path / "out", fake_ref, source)
    assert source.calls == calls  # everything cached: the model does not run
    assert again["measures"] == measures

    # a changed setting recomputes only the metric that depends on it
    changed = _run(synthetic_corpus, tmp_path / "out", fake_ref, source, kmeans_k=12)
    assert source.calls == calls + 16
    assert changed["measures"]["mel_cca"] == measures["mel_cca"]
    assert changed["details"]["cluster_quality"]["layers"][0]["k"] == 12


def test_layer_groups_give_the_same_results(synthetic_corpus, tmp_path, fake_ref, mel_features):
    metrics = ("mel_cca", "phone_cca", "phone_probe")
    whole = _run(synthetic_corpus, tmp_path / "a", fake_ref, mel_features(), metrics=metrics)
    source = mel_features()
    grouped = _run(synthetic_corpus, tmp_path / "b", fake_ref, source, metrics=metrics, layer_group=2)
    assert source.calls == 32  # two passes: layers 0-1, then 2-3
    for name, curve in whole["measures"].items():
        np.testing.assert_allclose(grouped["measures"][name], curve, atol=1e-9)


def test_semantic_view_with_embeddings(synthetic_corpus, tmp_path, fake_ref, mel_features):
    glove = tmp_path / "glove.txt"
    rng = np.random.default_rng(0)
    glove.write_text("".join(f"{w} {' '.join(f'{v:.4f}' for v in rng.normal(size=4))}\n" for w in ("cab", "sea", "make", "beam")))
    result = _run(synthetic_corpus, tmp_path / "out", fake_ref, mel_features(),
                  metrics=("semantic_cca",), word_embeddings=str(glove))
    assert len(result["measures"]["semantic_cca"]) == 4
    # ASK has no vector: its instances are left out of the semantic view only
    assert result["details"]["semantic_cca"]["layers"][0]["num_instances"] == 4 * 15


def test_bad_inputs_fail_before_any_model_runs(synthetic_corpus, tmp_path, fake_ref, mel_features):
    source = mel_features()
    (synthetic_corpus / "words.ctm").unlink()
    with pytest.raises(AnalysisError, match=r"words.ctm is missing.*word_cca"):
        _run(synthetic_corpus, tmp_path / "out", fake_ref, source)
    with pytest.raises(AnalysisError, match=r"fewer than the 200 instances.*--num_phones"):
        _run(synthetic_corpus, tmp_path / "out", fake_ref, source, metrics=("phone_cca",), n_folds=200, n_trials=1)
    glove = tmp_path / "glove.txt"
    glove.write_text("zebra 1 2\n")
    with pytest.raises(AnalysisError, match="words.ctm is missing"):
        _run(synthetic_corpus, tmp_path / "out", fake_ref, source, metrics=("semantic_cca",), word_embeddings=str(glove))
    with pytest.raises(AnalysisError, match="needs a word-embedding file"):
        AnalysisConfig(metrics=("semantic_cca",))
    with pytest.raises(AnalysisError, match="unknown metrics"):
        AnalysisConfig(metrics=("nonsense",))
    with pytest.raises(AnalysisError, match="K=5000 clusters need at least 5000 frames"):
        _run(synthetic_corpus, tmp_path / "out", fake_ref, source, metrics=("cluster_quality",), kmeans_k=5000)
    assert source.calls == 0  # every check happens before the model runs


def test_embeddings_without_overlap_fail(synthetic_corpus, tmp_path, fake_ref, mel_features):
    glove = tmp_path / "glove.txt"
    glove.write_text("zebra 1 2\n")
    with pytest.raises(AnalysisError, match="no vector for any of the 5 words"):
        _run(synthetic_corpus, tmp_path / "out", fake_ref, mel_features(), metrics=("semantic_cca",),
             word_embeddings=str(glove))


def test_report_writes_table_summary_and_plots(synthetic_corpus, tmp_path, mel_features):
    results = []
    for strategy, steps in (("baseline", (10, 20)), ("progressive", (10,))):
        for step in steps:
            path = tmp_path / f"{strategy}{step}.pth"
            path.write_bytes(step.to_bytes(2, "little"))
            ref = CheckpointRef(f"{strategy}_tiny/p1/step{step}", path, run=f"{strategy}_tiny", strategy=strategy,
                                phase=1, step=step)
            results.append(_run(synthetic_corpus, tmp_path / "out", ref, mel_features(seed=step),
                                metrics=("mel_cca", "phone_probe")))
    stats = write_report(results, tmp_path / "out", reference_strategy="baseline")
    table = (tmp_path / "out" / "table.tsv").read_text().splitlines()
    assert table[0].split("\t") == ["checkpoint", "strategy", "phase", "step", "measure", "layer", "value"]
    assert len(table) == 1 + 3 * 2 * 4
    assert set(stats["steps_to_target"]["measures"]["phone_probe_acc"]) == {"baseline", "progressive"}
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == stats
    pngs = sorted(p.name for p in (tmp_path / "out" / "plots").glob("*.png"))
    for measure in ("mel_cca", "phone_probe_acc"):
        assert {f"{measure}_layers.png", f"{measure}_strategies.png", f"{measure}_heatmap_baseline_tiny.png",
                f"{measure}_heatmap_progressive_tiny.png"} <= set(pngs)
    assert all((tmp_path / "out" / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
