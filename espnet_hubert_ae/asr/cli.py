"""What the stage 8 and stage 9 command lines share: which upstreams, the data, the seeds, the cache.

A command evaluates a list of upstreams (``--upstream``, the checkpoints of ``--run``
pretraining runs, the ``--random_init`` control), one after the other in one process, so that ESPnet is
imported once; ``--nj N --job J`` takes every N-th of them from the J-th, for N parallel jobs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from espnet_hubert_ae.asr.cache import DTYPES
from espnet_hubert_ae.asr.espnet_run import TrainingError
from espnet_hubert_ae.asr.pipeline import run_checkpoints
from espnet_hubert_ae.asr.seeds import summary_table
from espnet_hubert_ae.defaults import CACHE_DTYPE, SEEDS
from espnet_hubert_ae.utils.seeds import parse_seeds
from espnet_hubert_ae.utils.cli import limit_threads
from espnet_hubert_ae.utils.presets import resolve_preset


def experiment_parser(doc: str, config: str, exp_root: str, layout: str,
                      checkpoints_per_run: int = 1) -> argparse.ArgumentParser:
    """The shared options; ``layout`` says where under ``--exp_root`` an experiment goes, and
    ``checkpoints_per_run`` how many checkpoints of a ``--run`` the command evaluates by default."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream", nargs="+", action="extend", default=[],
                   help="registered upstream names, checkpoint .pth files, or fbank (the log-mel control)")
    p.add_argument("--run", nargs="+", action="extend", default=[],
                   help="pretraining runs (their run tags): evaluate their registered checkpoints")
    p.add_argument("--checkpoints_per_run", type=int, default=checkpoints_per_run,
                   help="with --run: this many checkpoints of each run, spread over its steps, the last "
                        "included (1: the last only)")
    p.add_argument("--random_init", default=None,
                   help="also evaluate this checkpoint as the random-init control (see bin/random_init)")
    p.add_argument("--config", default=config, help="ESPnet ASR config template: a preset (conf/asr/) or a YAML")
    p.add_argument("--train_set", type=Path, required=True, help="labelled training data directory")
    p.add_argument("--valid_set", type=Path, required=True, help="validation data directory (model selection)")
    p.add_argument("--eval_sets", type=Path, nargs="+", required=True, help="data directories to decode and score")
    p.add_argument("--token_text_sets", type=Path, nargs="*", default=[],
                   help="more labelled sets whose characters join the token list (a small training set may "
                        "lack some characters of the others; one list can serve every split)")
    p.add_argument("--exp_root", type=Path, default=Path(exp_root), help=f"experiments go to {layout}")
    p.add_argument("--exp_dir", type=Path, default=None, help="explicit experiment directory (overrides --exp_root)")
    p.add_argument("--ngpu", type=int, default=0)
    p.add_argument("--seeds", nargs="+", default=[str(s) for s in SEEDS],
                   help='seeds, one training each, summarised as mean and std, e.g. --seeds "1 2 3"')
    p.add_argument("--nj", type=int, default=1, help="number of parallel jobs sharing the upstreams")
    p.add_argument("--job", type=int, default=1, help="this job's index, 1..nj")
    p.add_argument("--lm", default=None, help="n-gram LM for decoding (not supported yet)")
    return p


def add_cache_options(p: argparse.ArgumentParser) -> None:
    """Where cached hidden states live (templates with ``frontend: layer_sum``)."""
    p.add_argument("--cache_root", type=Path, default=Path("exp/features"),
                   help="feature caches, <cache_root>/<upstream>/<set>/ (extracted when missing)")
    p.add_argument("--dtype", choices=DTYPES, default=CACHE_DTYPE, help="precision of newly extracted caches")


def upstream_list(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """(upstream, control) pairs named by the options, in order, each once."""
    items = [(u, None) for u in args.upstream]
    for run in args.run:
        items += [(name, None) for name in run_checkpoints(run, args.checkpoints_per_run)]
    if args.random_init:
        items.append((args.random_init, "random_init"))
    if not items:
        raise ValueError("nothing to evaluate: give --upstream, --run or --random_init")
    return list(dict.fromkeys(items))


def run_experiment_cli(args: argparse.Namespace, run: Callable[..., dict],
                       variants: Callable[[str, str | None], list] = lambda upstream, control: [None]) -> int:
    """``run(args, upstream, control, variant)`` for this job's share of the upstreams and
    their ``variants`` (e.g. the layers reset before fine-tuning), printing each summary, with
    ``--config`` resolved to its file. A failed training is reported as one line naming its
    log, and the rest still runs; the exit status is 1 if any failed."""
    if not 1 <= args.job <= args.nj:
        raise ValueError(f"--job {args.job} must be between 1 and --nj {args.nj}")
    args.config = resolve_preset("asr", args.config)
    args.seeds = parse_seeds(args.seeds)
    limit_threads()
    work = [(u, c, v) for u, c in upstream_list(args) for v in variants(u, c)][args.job - 1:: args.nj]
    if args.exp_dir is not None and len(work) > 1:
        raise ValueError(f"--exp_dir names one experiment, but {len(work)} are to be run")
    failed = 0
    for upstream, control, variant in work:
        try:
            summary = run(args, upstream, control, variant)
        except TrainingError as err:
            print(f"ERROR: {upstream}: {err}", file=sys.stderr)
            failed += 1
            continue
        print(summary_table(summary, title=f"{summary['kind']}: {upstream}"))
    return 1 if failed else 0
