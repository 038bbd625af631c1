"""The asr / pr parts of results.json, read back from what stages 8-9 left."""

import json

from espnet_hubert_ae.asr.results import downstream_results
from espnet_hubert_ae.asr.seeds import mean_std
from espnet_hubert_ae.upstream.registry import CheckpointRef, write_registry


def _summary(exp_dir, kind, upstream, rates, control=None, empty=(0, 0)):
    dev = {"num_utts": 20, "empty_hyps": max(empty), "empty_hyps_per_seed": list(empty)}
    dev.update({rate: {**mean_std(values), "per_seed": values} for rate, values in rates.items()})
    exp_dir.mkdir(parents=True)
    (exp_dir / "summary.json").write_text(json.dumps({
        "kind": kind, "upstream": upstream, "control": control, "template": f"conf/asr/{kind}.yaml",
        "train_set": "dump/raw/train_10h", "seeds": [1, 2], "sets": {"dev_clean": dev, "test_clean": dev}}))


def test_runs_final_checkpoints_and_controls(tmp_path):
    exp = tmp_path / "exp"
    entries = [CheckpointRef(f"baseline_small/p1/step{s}", tmp_path / f"b{s}.pth", tmp_path / "config.yaml",
                             "baseline_small", "baseline", 1, s) for s in (0, 500, 1000)]
    write_registry(exp / "upstreams.json", entries)
    _summary(exp / "asr_superb" / "superb_tiny" / "baseline_small_p1_step1000", "superb", "baseline_small/p1/step1000",
             {"cer": [30.0, 32.0], "wer": [70.0, 72.0]})
    _summary(exp / "asr_superb" / "superb_tiny" / "baseline_small_p1_step500", "superb", "baseline_small/p1/step500",
             {"cer": [40.0, 42.0], "wer": [80.0, 82.0]})  # not the final checkpoint: not in results.json
    _summary(exp / "asr_superb" / "superb_tiny" / "fbank", "superb", "fbank", {"cer": [33.0, 35.0], "wer": [1.0, 2.0]},
             control="fbank", empty=(0, 1))
    _summary(exp / "pr" / "pr_tiny" / "baseline_small_p1_step0", "pr", "baseline_small/p1/step0", {"per": [90.0, 92.0]},
             control="random_init")
    _summary(exp / "pr" / "pr_tiny" / "baseline_small_p1_step1000", "pr", "baseline_small/p1/step1000",
             {"per": [50.0, 54.0]})
    found = downstream_results(exp)
    assert sorted(found["asr"]) == ["baseline_small", "fbank"] and sorted(found["pr"]) == ["baseline_small",
                                                                                          "random_init"]
    run = found["asr"]["baseline_small"]
    assert {k: run[k] for k in ("set", "cer", "wer", "empty_hyps", "seeds")} == {
        "set": "dev_clean", "cer": {"mean": 31.0, "std": 1.414}, "wer": {"mean": 71.0, "std": 1.414},
        "empty_hyps": 0, "seeds": [1, 2]}
    assert run["step"] == 1000 and run["upstream"] == "baseline_small/p1/step1000"
    assert found["asr"]["fbank"]["empty_hyps"] == 1 and found["asr"]["fbank"]["empty_hyps_per_seed"] == [0, 1]
    assert found["pr"]["random_init"]["per"] == {"mean": 91.0, "std": 1.414} and "cer" not in found["pr"]["random_init"]
    assert downstream_results(exp, eval_set="test_clean")["pr"]["baseline_small"]["set"] == "test_clean"


def test_nothing_evaluated_yet(tmp_path):
    assert downstream_results(tmp_path / "exp") == {"asr": {}, "pr": {}}
