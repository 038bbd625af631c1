"""The analysis cache is keyed by what a checkpoint computes: identical weights are analysed once."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from espnet_hubert_ae.analysis.cache import training_options, weights_identity
from espnet_hubert_ae.analysis.config import AnalysisConfig
from espnet_hubert_ae.analysis.layerwise import PASS_PARTS, analyse_checkpoint
from espnet_hubert_ae.analysis.sampling import DataPlan
from espnet_hubert_ae.upstream.registry import CheckpointRef

METRICS = ("mel_cca", "phone_probe")
CONFIG = {"encoder": "torchaudio_hubert", "encoder_conf": {"encoder_num_layers": 3}, "model": "torchaudio",
          "output_dir": "exp/pretrain/run_a/phase1", "seed": 1, "max_epoch": 1, "snapshot_prefix": "a_phase1_"}


def _checkpoint(directory, weights: bytes, **config_changes):
    directory.mkdir(parents=True)
    (directory / "model.pth").write_bytes(weights)
    (directory / "config.yaml").write_text(yaml.safe_dump({**CONFIG, **config_changes}))
    return directory / "model.pth"


def test_training_options_are_left_out_of_the_identity_and_model_options_kept():
    options = training_options()
    assert {"output_dir", "seed", "max_epoch", "batch_bins", "optim_conf", "train_data_path_and_name_and_type",
            "snapshot_prefix", "snapshot_steps", "warm_start_from", "config"} <= options
    assert not {"encoder", "encoder_conf", "frontend", "frontend_conf", "normalize", "model", "model_conf",
                "token_list", "input_size"} & options


def test_identity_follows_the_bytes_and_the_model_options(tmp_path):
    a = weights_identity(_checkpoint(tmp_path / "a", b"weights"), None)
    other_run = weights_identity(_checkpoint(tmp_path / "b", b"weights", output_dir="exp/x", seed=2, max_epoch=9,
                                             snapshot_prefix="b_"), None)
    assert other_run == a  # the same bytes, trained by another run: the same weights
    assert weights_identity(_checkpoint(tmp_path / "c", b"weightz"), None)["id"] != a["id"]
    other_model = _checkpoint(tmp_path / "d", b"weights", encoder_conf={"encoder_num_layers": 2})
    assert weights_identity(other_model, None)["id"] != a["id"]
    unknown = _checkpoint(tmp_path / "e", b"weights", some_new_model_option=True)  # unknown: kept, to be safe
    assert weights_identity(unknown, None)["id"] != a["id"]


def test_identical_weights_are_analysed_once_and_reported_under_each_name(synthetic_corpus, tmp_path, mel_features):
    plan = DataPlan(synthetic_corpus, AnalysisConfig(metrics=METRICS, min_labels=5, seeds=(1, 2)))
    first = _checkpoint(tmp_path / "run_a", b"step 0 weights")
    second = _checkpoint(tmp_path / "run_b", b"step 0 weights", output_dir="exp/pretrain/run_b/phase1")
    trained = _checkpoint(tmp_path / "run_c", b"trained weights")
    source = mel_features()
    outdir = tmp_path / "analysis"

    def analyse(path, run):
        ref = CheckpointRef(f"{run}/p1/step0", path, path.parent / "config.yaml", run, run, 1, 0)
        return analyse_checkpoint(ref, plan, outdir, source_factory=lambda _: source)

    a = analyse(first, "run_a")
    calls = source.calls
    assert calls == 16 and a["cost"]["origin"] == {m: "computed" for m in METRICS}
    assert set(a["cost"]["pass"]) == set(PASS_PARTS) and a["cost"]["pass"]["hidden_states"] > 0
    assert all(seconds > 0 for seconds in a["cost"]["metrics"].values())

    b = analyse(second, "run_b")
    assert source.calls == calls  # the same weights: nothing computed again
    assert b["cost"]["origin"] == {m: "shared" for m in METRICS}
    assert b["measures"] == a["measures"] and b["std"] == a["std"]
    assert b["checkpoint"]["name"] == "run_b/p1/step0" and b["weights"] == a["weights"]
    for run in ("run_a", "run_b"):  # results under each name
        result = json.loads((outdir / f"{run}_p1_step0" / "results.json").read_text())
        assert result["checkpoint"]["name"] == f"{run}/p1/step0"
        record = json.loads((outdir / f"{run}_p1_step0" / "phone_probe.json").read_text())
        assert record["checkpoint"] == f"{run}/p1/step0"
    assert [p.name for p in (outdir / "weights").iterdir()] == [a["weights"]["id"]]

    assert analyse(second, "run_b")["cost"]["origin"] == {m: "cached" for m in METRICS}  # its own copy now
    analyse(trained, "run_c")
    assert source.calls == 2 * calls  # other weights are analysed

    shutil.rmtree(outdir / "run_a_p1_step0")  # the store alone serves a checkpoint of those weights
    assert analyse(first, "run_a")["cost"]["origin"] == {m: "shared" for m in METRICS}
    assert source.calls == 2 * calls


def test_a_checkpoint_rewritten_in_place_is_analysed_again(synthetic_corpus, tmp_path, mel_features):
    plan = DataPlan(synthetic_corpus, AnalysisConfig(metrics=("mel_cca",), min_labels=5))
    path = _checkpoint(tmp_path / "run", b"first weights")
    ref = CheckpointRef("run/p1/step5", path, path.parent / "config.yaml", "run", "run", 1, 5)
    source = mel_features()
    analyse_checkpoint(ref, plan, tmp_path / "out", source_factory=lambda _: source)
    path.write_bytes(b"other weights")  # same name, same size
    result = analyse_checkpoint(ref, plan, tmp_path / "out", source_factory=lambda _: source)
    assert source.calls == 32 and result["cost"]["origin"] == {"mel_cca": "computed"}


@pytest.mark.parametrize("config", [None, "missing.yaml"])
def test_a_checkpoint_without_config_is_identified_by_its_bytes(tmp_path, config):
    path = tmp_path / "model.pth"
    path.write_bytes(b"weights")
    identity = weights_identity(path, None if config is None else tmp_path / config)
    assert len(identity["id"]) == 20 and identity["sha256"] != identity["model_options_sha256"]


def test_the_summary_counts_what_was_computed_shared_and_cached():
    from espnet_hubert_ae.analysis.overview import work_done

    def result(origins, pass_seconds=None):
        return {"cost": {"origin": origins, "metrics": {m: 2.0 for m in origins},
                         "pass": pass_seconds or {"hidden_states": 3.0, "collect": 1.0}}}

    work = work_done([result({"mel_cca": "computed", "phone_probe": "computed"}),
                      result({"mel_cca": "shared", "phone_probe": "shared"}),
                      result({"mel_cca": "cached", "phone_probe": "computed"}),  # a new metric: computed
                      result({"mel_cca": "cached", "phone_probe": "shared"})])
    assert (work["checkpoints"], work["computed"], work["shared"], work["cached"]) == (4, 2, 1, 1)
    assert work["cpu_seconds"] == {"pass hidden_states": 6.0, "pass collect": 2.0, "mel_cca": 2.0,
                                   "phone_probe": 4.0}
    assert work["cpu_seconds_total"] == 14.0
