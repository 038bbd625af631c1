"""Names and config files for the recipe's shell, from the one rule of each (``utils.naming``).

    python -m espnet_hubert_ae.bin.names strategy progressive my_schedule.yaml  # schedule names, one a line
    python -m espnet_hubert_ae.bin.names run_tag --strategy progressive --model tiny --pretrain_steps 120
    python -m espnet_hubert_ae.bin.names run_tag --strategy progressive --model small --pretrain_steps 2600 \
        --budget ratio --budget_reference baseline   # progressive_small_1300: the baseline's factor
    python -m espnet_hubert_ae.bin.names upstream_tag progressive_tiny_120/p4/step120
    python -m espnet_hubert_ae.bin.names config model tiny                     # the file of a preset

A schedule's name is its ``name:`` (its file's stem without one), so a schedule file named
otherwise works in every stage. An unknown preset or a missing file fails, listing the presets.
"""

from __future__ import annotations

import argparse

from espnet_hubert_ae.pretrain.schedule import BUDGET_MODES, budget_steps
from espnet_hubert_ae.utils.cli import cli_main
from espnet_hubert_ae.defaults import BUDGET
from espnet_hubert_ae.utils.naming import run_tag, upstream_tag
from espnet_hubert_ae.utils.presets import PRESET_KINDS, resolve_preset


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    strategy = sub.add_parser("strategy", help="the name of each schedule (a preset or a file), one a line")
    strategy.add_argument("strategies", nargs="+")
    run = sub.add_parser("run_tag", help="the tag of a pretraining run (exp/pretrain/<run>/)")
    run.add_argument("--strategy", required=True, help="strategy preset or schedule file")
    run.add_argument("--model", required=True, help="model preset or config file")
    run.add_argument("--pretrain_steps", type=int, default=None, help="budget in steps, when one is given")
    run.add_argument("--budget", choices=BUDGET_MODES, default=BUDGET, help="as bin.pretrain's --budget")
    run.add_argument("--budget_reference", default=None, help="as bin.pretrain's --budget_reference")
    tag = sub.add_parser("upstream_tag", help="the file-name tag of a registered name or a checkpoint path")
    tag.add_argument("upstream")
    config = sub.add_parser("config", help="the file a config name or path stands for")
    config.add_argument("kind", choices=PRESET_KINDS)
    config.add_argument("name")
    return p


def _schedule_name(strategy: str) -> str:
    from espnet_hubert_ae.pretrain.schedule import load_schedule

    return load_schedule(strategy).name


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "strategy":
        print("\n".join(_schedule_name(s) for s in args.strategies))
    elif args.command == "run_tag":
        resolve_preset("model", args.model)
        steps = budget_steps(args.strategy, args.pretrain_steps, args.budget, args.budget_reference)
        print(run_tag(_schedule_name(args.strategy), args.model, steps))
    elif args.command == "upstream_tag":
        print(upstream_tag(args.upstream))
    else:
        print(resolve_preset(args.kind, args.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
