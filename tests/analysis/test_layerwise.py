"""The analysis runner on a synthetic aligned corpus with a fake feature source."""

import json

import numpy as np
import pytest

from espnet_hubert_ae.analysis import AnalysisError
from espnet_hubert_ae.analysis.config import AnalysisConfig
from espnet_hubert_ae.analysis.layerwise import MetricThreads, analyse_checkpoint
from espnet_hubert_ae.analysis.overview import summarise, write_report
from espnet_hubert_ae.analysis.sampling import DataPlan
from espnet_hubert_ae.upstream.registry import CheckpointRef

METRICS = ("mel_cca", "phone_cca", "word_cca", "phone_probe", "cluster_quality")


@pytest.fixture
def fake_ref(tmp_path):
    path = tmp_path / "ckpt.pth"
    path.write_bytes(b"fake")
    return CheckpointRef("fake_tiny/p1/step10", path, run="fake_tiny", strategy="fake", phase=1, step=10)


def _run(corpus, outdir, ref, source, threads=MetricThreads(), **config):
    plan = DataPlan(corpus, AnalysisConfig(**{"kmeans_k": 10, "min_labels": 5, "seeds": (1,), **config}))
    return analyse_checkpoint(ref, plan, outdir, source_factory=lambda _: source, threads=threads)


def test_every_metric_per_layer_and_cached_rerun(synthetic_corpus, tmp_path, fake_ref, mel_features):
    source = mel_features(num_layers=3)
    result = _run(synthetic_corpus, tmp_path / "out", fake_ref, source)
    measures = result["measures"]
    assert set(measures) == {"mel_cca", "phone_cca", "word_cca", "phone_probe_acc", "pnmi", "pnmi_corrected",
                             "phone_purity", "cluster_purity"}
    assert all(len(curve) == 4 for curve in measures.values())
    # layer 0 is a linear map of the mel view; noise grows with the layer
    assert measures["mel_cca"][0] == pytest.approx(1.0, abs=1e-6)
    assert measures["mel_cca"][3] < measures["mel_cca"][1] < 1.0
    assert measures["phone_probe_acc"][0] > 0.9 and measures["phone_cca"][0] > 0.9
    assert result["summary"]["mel_cca"]["input_rebound"] == pytest.approx(0.0)
    # The best layer among the transformer layers (1 and above) is the argmax of the curve past layer 0.
    curve = measures["phone_probe_acc"]
    best_from_1 = max(range(1, len(curve)), key=lambda layer: (curve[layer], -layer))
    probe = result["summary"]["phone_probe_acc"]
    assert (probe["best_layer_from_1"], probe["best_from_1"]) == (best_from_1, curve[best_from_1])
    assert (probe["best_layer"], probe["best"]) == (0, max(curve))  # layer 0 is the mel view itself
    assert probe["top_layer_drop"] == pytest.approx(max(curve) - curve[-1])
    assert result["probe"]["seeds"] == [1] and 0 < result["probe"]["majority"]["1"] < 0.5
    assert result["probe"]["per_seed"]["1"] == measures["phone_probe_acc"]
    frames = result["probe"]["frames"]["1"]
    assert result["clusters"]["frames"]["1"] == frames["test"] and result["clusters"]["k"] == 10
    assert all(plugin > corrected for plugin, corrected in zip(*result["clusters"]["pnmi"].values()))
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
    assert changed["details"]["cluster_quality"]["layers"][0]["per_seed"]["1"]["k"] == 12


def test_layer_groups_give_the_same_results(synthetic_corpus, tmp_path, fake_ref, mel_features):
    metrics = ("mel_cca", "phone_cca", "phone_probe")
    whole = _run(synthetic_corpus, tmp_path / "a", fake_ref, mel_features(), metrics=metrics)
    source = mel_features()
    grouped = _run(synthetic_corpus, tmp_path / "b", fake_ref, source, metrics=metrics, layer_group=2)
    assert source.calls == 32  # two passes: layers 0-1, then 2-3
    for name, curve in whole["measures"].items():
        np.testing.assert_allclose(grouped["measures"][name], curve, atol=1e-9)


def test_layers_in_threads_give_the_same_results(synthetic_corpus, tmp_path, fake_ref, mel_features):
    one = _run(synthetic_corpus, tmp_path / "a", fake_ref, mel_features(num_layers=3))
    threaded = _run(synthetic_corpus, tmp_path / "b", fake_ref, mel_features(num_layers=3),
                    threads=MetricThreads(layers=2))
    assert threaded["measures"] == one["measures"] and threaded["std"] == one["std"]


def test_metric_threads_are_checked():
    with pytest.raises(ValueError, match="at least 1"):
        MetricThreads(layers=0)
    with pytest.raises(ValueError, match="not both"):
        MetricThreads(layers=2, blas=2)


def test_semantic_view_with_embeddings(synthetic_corpus, tmp_path, fake_ref, mel_features):
    glove = tmp_path / "glove.txt"
    rng = np.random.default_rng(0)
    glove.write_text("".join(f"{w} {' '.join(f'{v:.4f}' for v in rng.normal(size=4))}\n" for w in ("cab", "sea", "make", "beam")))
    result = _run(synthetic_corpus, tmp_path / "out", fake_ref, mel_features(),
                  metrics=("semantic_cca",), word_embeddings=str(glove), min_labels=4)
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
    for strategy, steps in (("baseline", (0, 10, 20)), ("progressive", (10,))):
        for step in steps:
            path = tmp_path / f"{strategy}{step}.pth"
            path.write_bytes(step.to_bytes(2, "little"))
            ref = CheckpointRef(f"{strategy}_tiny/p1/step{step}", path, run=f"{strategy}_tiny", strategy=strategy,
                                phase=1, step=step)
            results.append(_run(synthetic_corpus, tmp_path / "out", ref, mel_features(seed=step),
                                metrics=("mel_cca", "phone_probe", "cluster_quality"), seeds=(1, 2)))
    controls = {"logmel": {"phone_probe_acc": {"mean": 0.9, "std": 0.01, "per_seed": {"1": 0.89, "2": 0.91}}},
                "majority": {"mean": 0.2, "std": 0.0, "per_seed": {"1": 0.2, "2": 0.2}}}
    stats = write_report(results, tmp_path / "out", reference_strategy="baseline", controls=controls)
    table = (tmp_path / "out" / "table.tsv").read_text().splitlines()
    assert table[0].split("\t") == ["checkpoint", "strategy", "phase", "step", "measure", "layer", "value", "std"]
    assert len(table) == 1 + 4 * 6 * 4  # 4 checkpoints, 6 measures, 4 layers
    # A spread over seeds for frame measures only: the sample std of the per-seed probe accuracies.
    rows = {(row[0], row[4], int(row[5])): row for row in (line.split("\t") for line in table[1:])}
    for result in results:
        name, per_seed = result["checkpoint"]["name"], result["probe"]["per_seed"]
        for layer in range(4):
            accuracies = [per_seed[seed][layer] for seed in ("1", "2")]
            row = rows[(name, "phone_probe_acc", layer)]
            assert float(row[6]) == pytest.approx(np.mean(accuracies), abs=1e-6)
            assert float(row[7]) == pytest.approx(np.std(accuracies, ddof=1), abs=1e-6)
            assert rows[(name, "mel_cca", layer)][7] == ""
    assert len({row[7] for key, row in rows.items() if key[1] == "phone_probe_acc"}) > 1  # not one constant
    assert set(stats["steps_to_target"]["measures"]["phone_probe_acc"]) == {"baseline", "progressive"}
    assert stats["controls"] == controls
    # The floor is the untrained (step-0) checkpoint of each run that has one: baseline's only,
    # its best layer and value read off its own curves.
    untrained = next(r for r in results if r["checkpoint"]["name"] == "baseline_tiny/p1/step0")
    assert set(stats["floors"]) == {"baseline_tiny"}
    floor = stats["floors"]["baseline_tiny"]
    assert floor["checkpoint"] == "baseline_tiny/p1/step0"
    for measure in ("mel_cca", "phone_probe_acc", "pnmi_corrected"):
        curve = untrained["measures"][measure]
        assert (floor[measure]["best_layer"], floor[measure]["best"]) == (int(np.argmax(curve)), max(curve)), measure
    assert stats["clusters"]["not_comparable"] == [] and stats["clusters"]["conditions"][0]["k"] == 10
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == stats
    pngs = sorted(p.name for p in (tmp_path / "out" / "plots").glob("*.png"))
    for measure in ("mel_cca", "phone_probe_acc", "pnmi_corrected"):
        assert {f"{measure}_layers.png", f"{measure}_strategies.png", f"{measure}_heatmap_baseline_tiny.png",
                f"{measure}_heatmap_progressive_tiny.png"} <= set(pngs)
    assert all((tmp_path / "out" / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_cluster_measures_compare_only_at_equal_k_and_frames(tmp_path):
    def result(name, step, k, frames):
        return {"checkpoint": {"name": name, "strategy": "s", "run": "r", "step": step},
                "measures": {"pnmi": [0.1, 0.2]}, "summary": {"pnmi": {}},
                "clusters": {"k": k, "frames": {"1": frames}}}

    results = [result("r/p1/step1", 1, 100, 5000), result("r/p1/step2", 2, 100, 5000),
               result("r/p1/step3", 3, 200, 5000), result("r/p1/step4", 4, 100, 4000)]
    stats = summarise(results, reference_strategy="s")
    assert stats["clusters"]["not_comparable"] == ["r/p1/step3", "r/p1/step4"]
    assert len(stats["clusters"]["conditions"]) == 3


def test_layer_threads_give_faiss_their_own_thread_count(synthetic_corpus, tmp_path, fake_ref, mel_features,
                                                          monkeypatch):
    import faiss

    from espnet_hubert_ae.targets import kmeans

    seen = []
    fit = kmeans.fit_kmeans

    def recording(*args, **kwargs):
        model = fit(*args, **kwargs)
        seen.append(faiss.omp_get_max_threads())  # the calling (layer) thread's OpenMP count, after the fit
        return model

    monkeypatch.setattr(kmeans, "fit_kmeans", recording)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # what a fit once set in every thread, whatever its caller's
    _run(synthetic_corpus, tmp_path / "a", fake_ref, mel_features(num_layers=1), metrics=("cluster_quality",),
         threads=MetricThreads(layers=2))
    assert seen and set(seen) == {1}
    seen.clear()
    _run(synthetic_corpus, tmp_path / "b", fake_ref, mel_features(num_layers=1), metrics=("cluster_quality",),
         threads=MetricThreads(blas=2))
    assert seen and set(seen) == {2}


def test_the_best_transformer_layer_is_the_argmax_past_layer_0():
    from espnet_hubert_ae.analysis.layerwise import curve_summary

    out = curve_summary([0.9, 0.2, 0.5, 0.3], std=[0.01, 0.02, 0.03, 0.04])
    assert (out["best_layer"], out["best"]) == (0, 0.9)
    assert (out["best_layer_from_1"], out["best_from_1"], out["best_from_1_std"]) == (2, 0.5, 0.03)
    assert out["top_layer_drop"] == pytest.approx(0.6)
