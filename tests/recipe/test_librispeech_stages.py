"""Stages 1-3 of the recipe on a tiny LibriSpeech tree (``--data librispeech``), through run.sh."""

from __future__ import annotations

import os
import subprocess

from praatio import textgrid
from praatio.data_classes.interval_tier import IntervalTier

from espnet_hubert_ae.data.datadir import read_ctm, read_datadir


def write_alignment(path, seconds):
    grid = textgrid.Textgrid()
    grid.addTier(IntervalTier("words", [(0.05, 0.3, "hello"), (0.3, 0.55, "world")], 0, seconds))
    grid.addTier(IntervalTier("phones", [(0.05, 0.2, "HH"), (0.2, 0.3, "AH0"), (0.3, 0.55, "W")], 0, seconds))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def run_recipe(recipe, env, *args):
    return subprocess.run(["./run.sh", "--data", "librispeech", "--nj", "1", *args], cwd=recipe, env=env,
                          capture_output=True, text=True, timeout=600)


def test_stages_1_to_3_on_librispeech_layout(tmp_path, recipe_copy, libri_corpora):
    recipe = recipe_copy()
    env = {**os.environ, "LIBRISPEECH": str(libri_corpora["librispeech"]), "LIBRISPEECH_ALIGNMENTS": ""}
    result = run_recipe(recipe, env, "--stop_stage", "3", "--min_seconds", "0.65")
    assert result.returncode == 0, result.stderr
    assert "set LIBRISPEECH_ALIGNMENTS" in result.stderr  # stage 3 skipped with a warning
    pretrain = read_datadir(recipe / "dump" / "raw" / "train_pretrain")
    assert len(pretrain) == 4  # three 0.6 s utterances filtered out
    assert "shorter than min_seconds=0.65" in (recipe / "dump/raw/train_pretrain/excluded.tsv").read_text()
    assert not (recipe / "dump" / "raw" / "train_10h").exists()  # no LIBRILIGHT_LIMITED

    mfa = tmp_path / "mfa"
    for utt in read_datadir(recipe / "data" / "dev_clean"):
        write_alignment(mfa / utt.speaker / f"{utt.utt_id}.TextGrid", utt.seconds)
    env["LIBRISPEECH_ALIGNMENTS"] = str(mfa)
    result = run_recipe(recipe, env, "--stage", "3", "--stop_stage", "3")
    assert result.returncode == 0, result.stderr
    assert "dev_clean: 3/3 utterances aligned (100.0%)" in result.stderr
    assert "dev_other: 0/3 utterances aligned" in result.stderr
    assert len(read_ctm(recipe / "dump" / "raw" / "dev_clean" / "phones.ctm")) == 3


def test_a_clean_only_tree_runs_its_own_sets(recipe_copy, libri_corpora):
    recipe = recipe_copy()
    root = libri_corpora["librispeech"]
    for split in ("dev-other", "test-other"):
        (root / split).rename(root.parent / split)
    env = {**os.environ, "LIBRISPEECH": str(root), "LIBRISPEECH_ALIGNMENTS": ""}
    result = run_recipe(recipe, env, "--stop_stage", "3", "--min_seconds", "0.65")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (recipe / "dump" / "raw").iterdir()) == ["dev_clean", "test_clean", "train_pretrain"]
    assert "dev_other: dev-other/ not found" in (recipe / "data" / "log" / "prepare_data.log").read_text()
    # a set named with --eval_sets must exist
    result = run_recipe(recipe, env, "--stop_stage", "1", "--eval_sets", "dev_clean dev_other")
    assert result.returncode != 0
    assert "dev-other/ not found" in (recipe / "data" / "log" / "prepare_data.log").read_text()
