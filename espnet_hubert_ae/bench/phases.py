"""Phase switching: training throughput per phase and what a phase costs besides its training steps.

    python -m espnet_hubert_ae.bench phases                       # progressive, the demo's model and budget
    python -m espnet_hubert_ae.bench phases --strategy ci_progressive --model tiny --pretrain_steps 40 \\
        --builtin_minutes 2                                        # a quick look
    python -m espnet_hubert_ae.bench phases \\
        --run_dir egs2/librilight_ae/exp/pretrain/progressive_small_600   # the figures of a finished run

Runs one pretraining schedule end to end on a built-in corpus made for it (generated once under
``--workdir``, then reused): real targets (MFCC, then layers of the previous phase's model), real
ESPnet training. Per phase it prints steps/s of the training loop itself (updates and their
batches), the seconds of its targets (features, k-means, labels: part of HuBERT's algorithm,
shown apart), and the phase-switch overhead: everything else the phase spent -- start-up, building
the model and data loaders, warm start, validation, checkpoints, the layer-health check -- as a
share of the phase's time (targets included) and of its training time (targets excluded). The
reference is the first phase: the last phase's steps/s is compared with it (a ratio near 1 means
that switching phases does not slow training down). ``--run_dir`` reads the same figures from the
phase summaries of a run already trained (by the demo, say) instead of training one. The last
line is JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from espnet_hubert_ae import defaults
from espnet_hubert_ae.utils.cli import limit_threads, setup_logging


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--strategy", default="progressive",
                   help="strategy preset or schedule YAML (this benchmark's own default: the schedule with the "
                        "most phase switches)")
    p.add_argument("--model", default=defaults.MODEL.builtin, help="model preset or config YAML (the demo's)")
    p.add_argument("--pretrain_steps", type=int, default=defaults.BUILTIN_PRETRAIN_STEPS,
                   help="budget of --budget_reference (the demo's); the strategy keeps its schedule's ratio to it")
    p.add_argument("--budget_reference", default=defaults.REFERENCE_STRATEGY)
    p.add_argument("--builtin_minutes", type=float, default=defaults.BUILTIN_MINUTES,
                   help="pretraining audio of the corpus made for it (the demo's)")
    p.add_argument("--workdir", type=Path, default=Path("exp/bench/phases"))
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: OMP_NUM_THREADS)")
    p.add_argument("--seed", type=int, default=defaults.SEED)
    p.add_argument("--run_dir", type=Path, default=None,
                   help="a finished pretraining run (exp/pretrain/<run>) to read instead of training one")
    return p


def prepare_corpus(workdir: Path, minutes: float, seed: int) -> Path:
    """A built-in corpus under ``workdir/data`` (reused when it exists); returns the folder of its sets."""
    from espnet_hubert_ae.data.builtin import prepare_builtin

    prepare_builtin(workdir / "data", minutes=minutes, seed=seed, nj=1, audio_dir=workdir / "audio")
    return workdir / "data"


def phase_rows(exp_dir: Path) -> list[dict]:
    """Per phase: steps, steps/s, targets, overhead and its shares, from the phase summaries."""
    rows = []
    for path in sorted(exp_dir.glob("phase*/summary.json"), key=lambda p: int(p.parent.name[5:])):
        summary = json.loads(path.read_text())
        timing = summary["timing"]
        training_part = timing["phase_s"] - timing["targets_s"]
        overhead = training_part - timing["loop_s"]
        rows.append({
            "phase": summary["phase"], "steps": summary["steps"], "init": summary["plan"]["init"],
            "steps_per_s": summary["steps"] / timing["loop_s"], "loop_s": timing["loop_s"],
            "targets_s": timing["targets_s"], "overhead_s": overhead, "phase_s": timing["phase_s"],
            "overhead_share_of_phase": overhead / timing["phase_s"],
            "overhead_share_of_training": overhead / training_part,
        })  # fmt: skip
    return rows


def train_fresh(args: argparse.Namespace) -> tuple[list[dict], int]:
    """Train ``args.strategy`` from scratch on a built-in corpus; its phase rows and total steps."""
    limit_threads(args.threads)
    from espnet_hubert_ae.pretrain.runner import PretrainJob, run_schedule
    from espnet_hubert_ae.pretrain.schedule import budget_steps

    datadir = prepare_corpus(args.workdir, args.builtin_minutes, args.seed)
    steps = budget_steps(args.strategy, args.pretrain_steps, "ratio", args.budget_reference)
    exp_root = args.workdir / "exp"
    shutil.rmtree(exp_root, ignore_errors=True)  # a measurement of a fresh run, never a resumed one
    job = PretrainJob(
        strategy=args.strategy, model=args.model,
        sets={"train_pretrain": datadir / "train_pretrain", "dev_clean": datadir / "dev_clean"},
        train_set="train_pretrain", valid_set="dev_clean", exp_root=exp_root, targets_root=args.workdir / "targets",
        pretrain_steps=steps, seed=args.seed,
    )  # fmt: skip
    shutil.rmtree(job.targets_root, ignore_errors=True)
    return phase_rows(run_schedule(job)), steps


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.run_dir is not None:
        rows = phase_rows(args.run_dir)
        if not rows:
            raise SystemExit(f"{args.run_dir}: no phase*/summary.json (not a finished pretraining run)")
        schedule = json.loads((args.run_dir / "schedule.json").read_text())
        args.strategy, args.model = schedule.get("strategy", args.strategy), schedule.get("model", args.model)
        steps = sum(r["steps"] for r in rows)
        print(f"{args.strategy} on {args.model}, {steps} steps, read from {args.run_dir}")
    else:
        rows, steps = train_fresh(args)
        print(f"{args.strategy} on {args.model}, {steps} steps, built-in corpus of {args.builtin_minutes:g} minutes")
    print(f"{'phase':>5} {'init':>8} {'steps':>6} {'steps/s':>8} {'loop s':>8} {'targets s':>9} "
          f"{'overhead s':>10} {'% of phase':>10} {'% of training':>13}")
    for r in rows:
        print(f"{r['phase']:>5} {r['init']:>8} {r['steps']:>6} {r['steps_per_s']:>8.3f} {r['loop_s']:>8.1f} "
              f"{r['targets_s']:>9.1f} {r['overhead_s']:>10.1f} {100 * r['overhead_share_of_phase']:>10.1f} "
              f"{100 * r['overhead_share_of_training']:>13.1f}")
    last_vs_first = rows[-1]["steps_per_s"] / rows[0]["steps_per_s"]
    print(f"steps/s, last phase / first phase: {last_vs_first:.3f}; "
          f"largest overhead: {100 * max(r['overhead_share_of_phase'] for r in rows):.1f}% of a phase")
    print(json.dumps({"benchmark": "phases", "strategy": args.strategy, "model": args.model, "steps": steps,
                      "phases": rows, "last_vs_first_steps_per_s": last_vs_first,
                      "max_overhead_share_of_phase": max(r["overhead_share_of_phase"] for r in rows),
                      "max_overhead_share_of_training": max(r["overhead_share_of_training"] for r in rows)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
