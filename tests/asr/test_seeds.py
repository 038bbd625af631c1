"""Seeds: parsing, mean and spread over seeds, the summary files."""

import json

import pytest

from espnet_hubert_ae.asr.seeds import mean_std, run_seeds, seed_dir, summary_table
from espnet_hubert_ae.utils.seeds import parse_seeds


def test_parse_seeds_accepts_lists_in_one_word_or_many():
    assert parse_seeds(["1 2", "3,2"]) == [1, 2, 3]
    assert parse_seeds([7]) == [7]
    with pytest.raises(ValueError, match="'x' is not"):
        parse_seeds(["1 x"])
    with pytest.raises(ValueError, match="at least one"):
        parse_seeds([" "])


def test_mean_and_sample_standard_deviation():
    assert mean_std([30.0, 34.0]) == {"mean": 32.0, "std": 2.828}
    assert mean_std([5.0]) == {"mean": 5.0, "std": 0.0}


def test_summary_over_seeds(tmp_path):
    rates = {1: (40.0, 90.0, 0), 2: (44.0, 94.0, 2)}

    def run_one(seed):  # what an experiment leaves per seed
        cer, wer, empty = rates[seed]
        out = seed_dir(tmp_path, seed)
        out.mkdir(parents=True)
        (out / "results.json").write_text(json.dumps({"sets": [
            {"set": "dev_clean", "num_utts": 10, "wer": wer, "cer": cer, "empty_hyps": empty}],
            "layer_weights": [0.2, 0.8] if seed == 1 else [0.4, 0.6]}))

    summary = run_seeds(run_one, tmp_path, [1, 2], {"kind": "superb", "upstream": "fbank"})
    dev = summary["sets"]["dev_clean"]
    assert dev["cer"] == {"mean": 42.0, "std": 2.828, "per_seed": [40.0, 44.0]}
    assert dev["wer"]["mean"] == 92.0 and "per" not in dev
    assert (dev["empty_hyps"], dev["empty_hyps_per_seed"], dev["num_utts"]) == (2, [0, 2], 10)
    assert summary["layer_weights"] == [0.3, 0.7] and summary["seeds"] == [1, 2]
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert "| dev_clean | 10 | 2 | 42.0 ± 2.8 | 92.0 ± 2.8 |" in summary_table(summary)


def test_missing_seed_result_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="seed 3 of"):
        run_seeds(lambda seed: None, tmp_path, [3], {})
