"""The defaults shared by the recipe and the Python tools: one declaration each
(``espnet_hubert_ae.defaults``), the same value in ``./run.sh --help``, ``local/data.sh --help``
and every Python command line that has the option; and the recipe's built-in defaults path (no
``--pretrain_steps``: the built-in budget and snapshot interval) as stage 5 plans it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from espnet_hubert_ae import defaults


def help_defaults(script: str, cwd) -> dict[str, tuple[str, str]]:
    """Option -> (comment, default) as ``<script> --help`` prints them."""
    result = subprocess.run([script, "--help"], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    found = {}
    for line in result.stdout.splitlines():
        match = re.match(r"^  --(\w+)\s+(.*) \[(.*)\]$", line)
        if match:
            found[match.group(1)] = (match.group(2), match.group(3))
    return found


def parser_default(module: str, option: str, *subcommand: str):
    """The default of ``option`` in a Python command line (``module.build_parser()``)."""
    import importlib

    parser = importlib.import_module(module).build_parser()
    if subcommand:  # a sub-command's own parser
        parser = parser._subparsers._group_actions[0].choices[subcommand[0]]
    return parser.get_default(option)


def words(value) -> list[str]:
    """A default as a list of words: "1 2" and ["1", "2"] and (1, 2) alike."""
    if isinstance(value, (list, tuple)):
        return [w for v in value for w in str(v).split()]
    return str(value).split()


def same(shell: str, python) -> bool:
    if isinstance(python, bool):
        return shell == str(python).lower()
    if isinstance(python, float):
        return float(shell) == python
    return words(shell) == words(python)


# run.sh option -> the Python command lines (module, option[, sub-command]) that have it too.
SHARED = {
    "seed": [("espnet_hubert_ae.bin.prepare_data", "seed"), ("espnet_hubert_ae.bin.make_targets", "seed"),
             ("espnet_hubert_ae.bin.pretrain", "seed"), ("espnet_hubert_ae.bin.random_init", "seed"),
             ("espnet_hubert_ae.bin.analyse", "seed"), ("espnet_hubert_ae.bench.phases", "seed")],
    "seeds": [("espnet_hubert_ae.bin.analyse", "seeds"), ("espnet_hubert_ae.bin.superb_asr", "seeds"),
              ("espnet_hubert_ae.bin.phone_recognition", "seeds"), ("espnet_hubert_ae.bin.finetune", "seeds"),
              ("espnet_hubert_ae.bench.downstream", "seeds")],
    "builtin_minutes": [("espnet_hubert_ae.bin.prepare_data", "minutes"),
                        ("espnet_hubert_ae.bench.phases", "builtin_minutes")],
    "pretrain_sets": [("espnet_hubert_ae.bin.prepare_data", "pretrain_splits")],
    "min_seconds": [("espnet_hubert_ae.bin.format_data", "min_seconds")],
    "max_seconds": [("espnet_hubert_ae.bin.format_data", "max_seconds")],
    "kmeans_portion": [("espnet_hubert_ae.bin.make_targets", "portion"),
                       ("espnet_hubert_ae.bin.pretrain", "kmeans_portion")],
    "keep_features": [("espnet_hubert_ae.bin.make_targets", "keep_features"),
                      ("espnet_hubert_ae.bin.pretrain", "keep_features")],
    "feature_dtype": [("espnet_hubert_ae.bin.make_targets", "feature_dtype"),
                      ("espnet_hubert_ae.bin.pretrain", "feature_dtype")],
    "budget": [("espnet_hubert_ae.bin.pretrain", "budget"), ("espnet_hubert_ae.bin.names", "budget", "run_tag")],
    "builtin_pretrain_steps": [("espnet_hubert_ae.bench.phases", "pretrain_steps")],
    "reference_strategy": [("espnet_hubert_ae.bin.analyse", "reference_strategy"),
                           ("espnet_hubert_ae.bin.report", "reference_strategy"),
                           ("espnet_hubert_ae.bench.phases", "budget_reference")],
    "analysis_set": [("espnet_hubert_ae.bin.report", "analysis_set")],
    "asr_checkpoints_per_run": [("espnet_hubert_ae.bin.superb_asr", "checkpoints_per_run")],
    "cache_dtype": [("espnet_hubert_ae.bin.superb_asr", "dtype"), ("espnet_hubert_ae.bin.phone_recognition", "dtype"),
                    ("espnet_hubert_ae.bin.finetune", "dtype"), ("espnet_hubert_ae.bin.cache_features", "dtype")],
    "asr_valid_set": [("espnet_hubert_ae.bin.pretrain", "valid_set")],
}
# run.sh option -> the constant it reads (the rest of SHARED's options, and run.sh's own).
DECLARED = {"seed": "SEED", "seeds": "SEEDS", "builtin_minutes": "BUILTIN_MINUTES",
            "pretrain_sets": "LIBRISPEECH_PRETRAIN_SPLITS", "min_seconds": "MIN_SECONDS", "max_seconds": "MAX_SECONDS",
            "strategy": "STRATEGIES", "kmeans_portion": "KMEANS_PORTION", "keep_features": "KEEP_FEATURES",
            "feature_dtype": "FEATURE_DTYPE", "budget": "BUDGET",
            "builtin_pretrain_steps": "BUILTIN_PRETRAIN_STEPS", "builtin_snapshot_every": "BUILTIN_SNAPSHOT_EVERY",
            "analysis_set": "ANALYSIS_SET", "reference_strategy": "REFERENCE_STRATEGY",
            "asr_checkpoints_per_run": "ASR_CHECKPOINTS_PER_RUN", "cache_dtype": "CACHE_DTYPE",
            "asr_valid_set": "VALID_SET"}


RECIPE_DIR = Path(__file__).resolve().parents[2] / "egs2" / "librilight_ae"


@pytest.fixture(scope="module")
def run_sh_help() -> dict[str, tuple[str, str]]:
    return help_defaults("./run.sh", RECIPE_DIR)


@pytest.mark.parametrize("option", sorted(SHARED))
def test_run_sh_help_defaults_equal_the_python_tools(run_sh_help, option):
    shown = run_sh_help[option][1]
    for module, name, *subcommand in SHARED[option]:
        python = parser_default(module, name, *subcommand)
        assert same(shown, python), f"./run.sh --{option} [{shown}] but {module} --{name} [{python}]"


@pytest.mark.parametrize("option", sorted(DECLARED))
def test_run_sh_help_shows_the_declared_default(run_sh_help, option):
    assert same(run_sh_help[option][1], getattr(defaults, DECLARED[option])), run_sh_help[option]


def test_corpus_dependent_defaults_are_named_in_the_help(run_sh_help):
    """Empty by default, resolved by corpus: the help names both values, the tools use one."""
    for option, value, tools in (
        ("model", defaults.MODEL, [("espnet_hubert_ae.bin.pretrain", "model", "builtin"),
                                   ("espnet_hubert_ae.bench.phases", "model", "builtin"),
                                   ("espnet_hubert_ae.bench.logits", "model", "builtin")]),
        ("superb_config", defaults.SUPERB_CONFIG, [("espnet_hubert_ae.bin.superb_asr", "config", "librispeech"),
                                                   ("espnet_hubert_ae.bin.finetune", "frozen_config", "librispeech"),
                                                   ("espnet_hubert_ae.bench.downstream", "config", "builtin")]),
        ("pr_config", defaults.PR_CONFIG, [("espnet_hubert_ae.bin.phone_recognition", "config", "librispeech")]),
    ):
        comment, shown = run_sh_help[option]
        assert shown == "" and f"{value.builtin} for builtin, {value.librispeech} otherwise" in comment, comment
        for module, name, corpus in tools:
            assert parser_default(module, name) == getattr(value, corpus), (module, name)
    assert " ".join(defaults.EVAL_SETS) in run_sh_help["eval_sets"][0]
    assert " ".join(defaults.FINETUNE_SETS) in run_sh_help["finetune_splits"][0]


def test_data_sh_help_defaults_equal_prepare_data(recipe_dir):
    shown = help_defaults("local/data.sh", recipe_dir)
    for option, name in (("builtin_minutes", "minutes"), ("seed", "seed"), ("pretrain_sets", "pretrain_splits")):
        python = parser_default("espnet_hubert_ae.bin.prepare_data", name)
        assert same(shown[option][1], python), (option, shown[option], python)


@pytest.mark.parametrize("script", ["run.sh", "local/data.sh"])
def test_shared_defaults_are_read_not_typed_again(recipe_dir, script):
    """The options block reads each shared default from the package: no value typed a second time."""
    text = (recipe_dir / script).read_text()
    block = text.split("### options")[1].split("### end options")[0]
    assignments = dict(re.findall(r"^(\w+)=(\S*)", block, re.M))
    for option in set(DECLARED) & set(assignments):
        assert assignments[option].startswith("${default_"), f"{script}: {option}={assignments[option]}"


def test_shell_assignments_carry_every_default():
    script = "\n".join(defaults.shell_assignments()) + '\nprintf "%s|" "$default_seeds" "$default_model_builtin" ' \
        '"$default_superb_config_librispeech" "$default_eval_sets" "$default_builtin_minutes"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split("|")[:-1] == [" ".join(map(str, defaults.SEEDS)), defaults.MODEL.builtin,
                                   defaults.SUPERB_CONFIG.librispeech, " ".join(defaults.EVAL_SETS),
                                   str(defaults.BUILTIN_MINUTES)]


def _phase_steps(preset: str) -> list[int]:
    from espnet_hubert_ae.utils.presets import resolve_preset

    return [int(phase["steps"]) for phase in yaml.safe_load(resolve_preset("strategy", preset).read_text())["phases"]]


def test_built_in_defaults_path_plans_the_default_budget_and_snapshots(recipe_copy):
    """./run.sh on the built-in corpus without --pretrain_steps or --snapshot_every, stage 5 on the
    tiny model, stopped at its plan: the reference strategy gets the built-in budget, the other
    its schedule's ratio of it, and each run keeps a snapshot every built-in interval (plus step 0
    and the phase ends), not its schedule's own."""
    recipe = recipe_copy()
    result = subprocess.run(["./run.sh", "--model", "tiny", "--stage", "5", "--stop_stage", "5",
                             "--pretrain_args", "--print_plan"], cwd=recipe, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    budget, every = defaults.BUILTIN_PRETRAIN_STEPS, defaults.BUILTIN_SNAPSHOT_EVERY
    reference = sum(_phase_steps(defaults.REFERENCE_STRATEGY))
    assert list(defaults.STRATEGIES) == ["baseline", "progressive"]
    for strategy in defaults.STRATEGIES:
        phases = _phase_steps(strategy)
        total = round(budget * sum(phases) / reference)
        log = recipe / "exp" / "pretrain" / "logs" / f"{strategy}_tiny_{total}.log"
        assert log.is_file(), f"no {log.name} in {sorted(p.name for p in log.parent.iterdir())}:\n{result.stderr}"
        plan = json.loads(next(line for line in log.read_text().splitlines() if line.startswith("{")))
        assert plan["run"] == f"{strategy}_tiny_{total}" and plan["steps"] == total
        assert len(plan["phases"]) == len(phases)
        ends = [phase["end_step"] for phase in plan["phases"]]
        exact = [total * sum(phases[: i + 1]) / sum(phases) for i in range(len(phases))]
        assert all(abs(end - x) <= 1 for end, x in zip(ends, exact)), (ends, exact)
        kept = [step for phase in plan["phases"] for step in phase["snapshot_steps"]]
        assert kept == sorted({0, *range(every, total + 1, every), *ends}), kept
