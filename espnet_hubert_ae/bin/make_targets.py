"""Make HuBERT k-means targets (features -> k-means -> 50 Hz labels -> quality) for some sets.

    # MFCC targets of phase 1, K from the strategy's first phase (stage 4):
    python -m espnet_hubert_ae.bin.make_targets --datadir dump/raw \\
        --sets train_pretrain dev_clean --train_set train_pretrain \\
        --strategy progressive --phase 1 --source mfcc --k auto --out_root dump/targets
    # Layer 6 of a checkpoint, K=500:
    python -m espnet_hubert_ae.bin.make_targets --datadir dump/raw \\
        --sets train_pretrain dev_clean --train_set train_pretrain \\
        --strategy baseline --phase 2 --source layer --checkpoint exp/.../valid.acc.best.pth \\
        --layer 6 --checkpoint_tag baseline_p1 --k 500 --out_root dump/targets

Labels go to ``<out_root>/<strategy>_p<phase>_<source>_k<K>/<set>/text`` with ``tokens.txt``,
features to ``<feature_root>/<source>/<set>/`` (default ``<out_root>/features``). The last
line printed is the target directory.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from espnet_hubert_ae.defaults import KMEANS_PORTION, SEED
from espnet_hubert_ae.targets.kmeans import DEFAULT_MAX_ITER
from espnet_hubert_ae.utils.cli import cli_main, limit_threads

logger = logging.getLogger(__name__)

DEFAULT_FIRST_K = 100  # HuBERT's first iteration


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datadir", type=Path, help="folder holding one data dir per set")
    p.add_argument("--sets", nargs="+", help="sets to label (all get the train-fitted model)")
    p.add_argument("--train_set", help="set whose utterances k-means is fitted on")
    p.add_argument("--strategy", required=True, help="strategy preset or schedule file (its name goes in the tag)")
    p.add_argument("--phase", type=int, default=1, help="phase the targets are for (part of the tag)")
    p.add_argument("--source", choices=["mfcc", "layer"], default="mfcc")
    p.add_argument("--checkpoint", type=Path, help="--source layer: ESPnet HuBERT .pth (config.yaml beside it)")
    p.add_argument("--layer", type=int, help="--source layer: 0 = transformer input, L = output of layer L")
    p.add_argument("--checkpoint_tag", default=None, help="--source layer: name of the checkpoint in tags")
    p.add_argument("--k", default="auto", help="clusters; 'auto': the strategy's first-phase K (else 100)")
    p.add_argument("--out_root", type=Path, default=Path("dump/targets"))
    p.add_argument("--feature_root", type=Path, default=None, help="feature dumps [<out_root>/features]")
    p.add_argument("--frames_from", type=Path, default=None,
                   help="model config (YAML) whose conv stack sets the label count [HuBERT Base's]")  # fmt: skip
    p.add_argument("--portion", type=float, default=KMEANS_PORTION,
                   help="share of train utterances k-means is fitted on")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--nj", type=int, default=1, help="feature shards (and worker processes on CPU)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] for layer features and k-means")
    p.add_argument("--engine", choices=["faiss", "sklearn"], default="faiss", help="k-means engine")
    p.add_argument("--max_iter", type=int, default=DEFAULT_MAX_ITER, help="faiss engine: Lloyd passes at most")
    p.add_argument("--print_k", action="store_true", help="print the K that --k resolves to and exit")
    return p


def _schedule(strategy: str):
    try:
        from espnet_hubert_ae.pretrain.schedule import load_schedule
    except ImportError:
        return None
    return load_schedule(strategy)


def strategy_name(strategy: str) -> str:
    """The name a strategy goes by in tags: its schedule's name (a preset's, or a file's).

    A bare name that is no preset (ad-hoc targets with an explicit --k) is used as it is.
    """
    is_file_like = "/" in strategy or strategy.endswith((".yaml", ".yml"))
    try:
        schedule = _schedule(strategy)
    except ValueError:
        if is_file_like:
            raise
        return strategy
    return schedule.name if schedule is not None else Path(strategy).stem


def first_phase_k(strategy: str) -> int:
    """K of the strategy's first phase from its schedule file, or HuBERT's 100 without one."""
    schedule = _schedule(strategy)
    if schedule is None:
        logger.info("no schedule module: using K=%d for the first phase", DEFAULT_FIRST_K)
        return DEFAULT_FIRST_K
    return int(schedule.phases[0].k)


def resolve_k(value: str, strategy: str) -> int:
    if value == "auto":
        return first_phase_k(strategy)
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"--k must be an integer or 'auto', not {value!r}") from None


def build_source(args: argparse.Namespace):
    from espnet_hubert_ae.targets.sources import MFCC, Layer

    if args.source == "mfcc":
        return MFCC()
    if args.checkpoint is None or args.layer is None:
        raise ValueError("--source layer needs --checkpoint and --layer")
    return Layer(args.checkpoint, args.layer, tag=args.checkpoint_tag)


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    k = resolve_k(args.k, args.strategy)
    if args.print_k:
        print(k)
        return 0
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before faiss loads: spinning OpenMP stalls 2 cores
    limit_threads()
    from espnet_hubert_ae.model.hubert import frame_counter
    from espnet_hubert_ae.targets.pipeline import make_targets
    from espnet_hubert_ae.utils.naming import target_tag

    for option in ("datadir", "sets", "train_set"):
        if getattr(args, option) is None:
            raise ValueError(f"--{option} is required")
    source = build_source(args)
    if args.train_set not in args.sets:
        raise ValueError(f"--train_set {args.train_set} is not among --sets ({' '.join(args.sets)})")
    out_dir = args.out_root / target_tag(strategy_name(args.strategy), args.phase, source.name, k)
    result = make_targets(
        sets={name: args.datadir / name for name in args.sets},
        train_set=args.train_set,
        source=source,
        k=k,
        out_dir=out_dir,
        portion=args.portion,
        seed=args.seed,
        nj=args.nj,
        device=args.device,
        expected_frames=frame_counter(args.frames_from) if args.frames_from else None,
        feature_root=args.feature_root or args.out_root / "features",
        engine=args.engine,
        max_iter=args.max_iter,
    )
    print(result.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
