"""The recipe's option parser (local/parse_options.sh) as users meet it through run.sh."""

from __future__ import annotations

import subprocess
import textwrap

import pytest


def make_script(tmp_path, recipe_dir):
    """A tiny recipe script with an options block that prints the parsed values."""
    script = tmp_path / "script.sh"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!/usr/bin/env bash
            set -euo pipefail
            ### options
            # Group one
            stage=1          # first stage
            stop_stage=10    # last stage
            foo_bar="a b"    # a value with a space
            empty=           # empty by default
            ### end options
            . {recipe_dir}/local/parse_options.sh
            echo "stage=$stage stop_stage=$stop_stage foo_bar=$foo_bar empty=$empty rest=$*"
            echo "$command_line"
            """
        )
    )
    script.chmod(0o755)
    return script


def run(script, *args):
    return subprocess.run([str(script), *args], capture_output=True, text=True)


def test_defaults_and_overrides(tmp_path, recipe_dir):
    script = make_script(tmp_path, recipe_dir)
    assert run(script).stdout.splitlines() == ["stage=1 stop_stage=10 foo_bar=a b empty= rest=", str(script)]
    out = run(script, "--stage", "5", "--stop-stage=7", "--foo_bar", "x y", "--empty", "z", "pos").stdout
    assert out.splitlines() == ["stage=5 stop_stage=7 foo_bar=x y empty=z rest=pos",
                                f"{script} --stage 5 --stop-stage=7 --foo_bar x\\ y --empty z pos"]


@pytest.mark.parametrize("option", ["--nope", "--PATH", "--HOME"])
def test_unknown_option_fails(tmp_path, recipe_dir, option):
    result = run(make_script(tmp_path, recipe_dir), option, "1")
    assert result.returncode == 2
    assert f"unknown option {option}" in result.stderr


def test_missing_value_fails(tmp_path, recipe_dir):
    result = run(make_script(tmp_path, recipe_dir), "--stage")
    assert result.returncode == 2
    assert "needs a value" in result.stderr


def test_help_lists_every_option_with_default(tmp_path, recipe_dir):
    result = run(make_script(tmp_path, recipe_dir), "--help")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert any("--stage" in l and "first stage" in l and "[1]" in l for l in lines)
    assert any("--foo_bar" in l and "[a b]" in l for l in lines)
    assert any("--empty" in l and "[]" in l for l in lines)
    assert "Group one" in result.stdout


def test_run_sh_help_and_bad_values(recipe_dir):
    result = subprocess.run(["./run.sh", "--help"], cwd=recipe_dir, capture_output=True, text=True)
    assert result.returncode == 0
    for option in ("stage", "stop_stage", "strategy", "data", "ngpu", "nj"):
        assert f"--{option} " in result.stdout
    bad = subprocess.run(["./run.sh", "--data", "timit"], cwd=recipe_dir, capture_output=True, text=True)
    assert bad.returncode == 2 and "--data must be builtin or librispeech" in bad.stderr
    bad = subprocess.run(["./run.sh", "--nj", "two"], cwd=recipe_dir, capture_output=True, text=True)
    assert bad.returncode == 2 and "--nj must be a non-negative integer" in bad.stderr
    bad = subprocess.run(["./run.sh", "--asr_checkpoints_per_run", "0"], cwd=recipe_dir, capture_output=True, text=True)
    assert bad.returncode == 2 and "--asr_checkpoints_per_run must be a positive integer, not '0'" in bad.stderr
    bad = subprocess.run(["./run.sh", "--strategy", "baseline nope"], cwd=recipe_dir, capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown strategy 'nope'" in bad.stderr and "progressive" in bad.stderr
    bad = subprocess.run(["./run.sh", "--model", "huge"], cwd=recipe_dir, capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown model 'huge'" in bad.stderr and "tiny" in bad.stderr


def test_run_sh_bounds_the_analysed_snapshots_and_says_how_to_ask_for_more(recipe_dir):
    help_text = subprocess.run(["./run.sh", "--help"], cwd=recipe_dir, capture_output=True, text=True).stdout
    line = next(line for line in help_text.splitlines() if "--analysis_checkpoints" in line)
    assert "[spread]" in line and "all" in line
    assert any("--analysis_between" in line and "[4]" in line for line in help_text.splitlines())
    bad = subprocess.run(["./run.sh", "--analysis_between", "a few"], cwd=recipe_dir, capture_output=True, text=True)
    assert bad.returncode == 2 and "--analysis_between must be a non-negative integer, not 'a few'" in bad.stderr


@pytest.mark.parametrize("wrapper", ["demo.sh", "study.sh"])
def test_demo_and_study_pass_only_options_of_run_sh(recipe_dir, wrapper):
    """``make demo`` and ``make study`` are run.sh with their own budgets: an option that run.sh
    no longer has fails before any stage starts (the parser reads them before ``--help``)."""
    result = subprocess.run([f"./{wrapper}", "--help"], cwd=recipe_dir, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Options (default in brackets)" in result.stdout
