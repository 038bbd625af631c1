"""Make HuBERT k-means targets (features -> k-means -> 50 Hz labels -> quality) for some sets.

    # MFCC targets of phase 1, K from the strategy's first phase (stage 4):
    python -m espnet_hubert_ae.bin.make_targets --datadir dump/raw \\
        --sets train_pretrain dev_clean --train_set train_pretrain \\
        --strategy progressive --source mfcc --k auto --out_root dump/targets
    # Layer 6 of a checkpoint, K=500, labelled by 4 jobs of one GPU each on SLURM:
    python -m espnet_hubert_ae.bin.make_targets --datadir dump/raw \\
        --sets train_pretrain dev_clean --train_set train_pretrain \\
        --source layer --checkpoint exp/.../valid.acc.best.pth --layer 6 --checkpoint_tag baseline_p1 \\
        --k 500 --out_root dump/targets --nj 4 --device cuda \\
        --label_cmd "local/run_job.sh --backend slurm --gpu 1"

By default only the k-means fit portion's features are stored (``--feature_dtype``), and every
set is labelled by streaming: each shard's features and nearest centroids in one pass, no
dump. ``--keep_features`` stores every set's features whole first and labels from them (the
same labels). The steps may run as separate jobs (what run.sh stage 4 does)::

    make_targets ... --step fit                             # fit dump, k-means, plan; prints the directory
    make_targets --step label --targets_dir DIR --job JOB   # one label shard of every set (a job array)
    make_targets --step missing --targets_dir DIR           # the jobs still to run, e.g. "2,5" (empty: none)
    make_targets --step finish --targets_dir DIR            # merge, quality, summary, .done

Labels go to ``<out_root>/<source>_k<K>-<digest>/<set>/text`` with ``tokens.txt``: named by what
determines them (``targets.pipeline.target_dir``), so strategies asking for the same labels share
them. Features go to ``<feature_root>/<source>/`` (default ``<out_root>/features``). The last
line printed is the target directory.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from espnet_hubert_ae.defaults import KEEP_FEATURES, KMEANS_PORTION, SEED
from espnet_hubert_ae.targets.kmeans import DEFAULT_MAX_ITER
from espnet_hubert_ae.utils.cli import cli_main, limit_threads

logger = logging.getLogger(__name__)

DEFAULT_FIRST_K = 100  # HuBERT's first iteration
STEPS = ("all", "fit", "label", "missing", "finish")


def _bool(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, not {value!r}")
    return value.lower() == "true"


def build_parser() -> argparse.ArgumentParser:
    from espnet_hubert_ae.targets.features import DEFAULT_BATCH_SECONDS, DEFAULT_FEATURE_DTYPE, DTYPES

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--step", choices=STEPS, default="all", help="all steps here, or one of them (see above)")
    p.add_argument("--targets_dir", type=Path, default=None,
                   help="--step label/missing/finish: the target directory that --step fit printed")  # fmt: skip
    p.add_argument("--job", type=int, default=None, help="--step label: the job (1..nj) whose shard to label")
    p.add_argument("--datadir", type=Path, help="folder holding one data dir per set")
    p.add_argument("--sets", nargs="+", help="sets to label (all get the train-fitted model)")
    p.add_argument("--train_set", help="set whose utterances k-means is fitted on")
    p.add_argument("--strategy", nargs="+", default=None,
                   help="--k auto: strategy preset or schedule file whose first-phase K to use (--print_k and "
                        "--print_dir take several: one line each)")  # fmt: skip
    p.add_argument("--source", choices=["mfcc", "layer"], default="mfcc")
    p.add_argument("--checkpoint", type=Path, help="--source layer: ESPnet HuBERT .pth (config.yaml beside it)")
    p.add_argument("--layer", type=int, help="--source layer: 0 = transformer input, L = output of layer L")
    p.add_argument("--checkpoint_tag", default=None, help="--source layer: name of the checkpoint in tags")
    p.add_argument("--k", default="auto", help="clusters; 'auto': the strategy's first-phase K (else 100)")
    p.add_argument("--out_root", type=Path, default=Path("dump/targets"))
    p.add_argument("--feature_root", type=Path, default=None, help="feature dumps [<out_root>/features]")
    p.add_argument("--frames_from", type=Path, default=None,
                   help="model config (YAML) whose frame count sets the label count [HuBERT Base's]")  # fmt: skip
    p.add_argument("--portion", type=float, default=KMEANS_PORTION,
                   help="share of train utterances k-means is fitted on")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--nj", type=int, default=1, help="shards of the fit dump and of every set's labels")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]: features, k-means and the centroid search")
    p.add_argument("--engine", choices=["faiss", "sklearn"], default="faiss", help="k-means engine")
    p.add_argument("--max_iter", type=int, default=DEFAULT_MAX_ITER, help="faiss engine: Lloyd passes at most")
    p.add_argument("--keep_features", type=_bool, nargs="?", const=True, default=KEEP_FEATURES,
                   help="store every set's features whole (and label from them) instead of streaming "
                        f"[{str(KEEP_FEATURES).lower()}]")  # fmt: skip
    p.add_argument("--feature_dtype", choices=sorted(DTYPES), default=DEFAULT_FEATURE_DTYPE,
                   help="precision of stored features (labels use the same rounding either way)")
    p.add_argument("--batch_seconds", type=float, default=DEFAULT_BATCH_SECONDS,
                   help="padded audio per forward pass (layers)")
    p.add_argument("--label_cmd", default=None,
                   help="run the label shards as a job array with this job runner, e.g. "
                        "'local/run_job.sh --gpu 1' [in this process]")  # fmt: skip
    p.add_argument("--print_k", action="store_true", help="print the K that --k resolves to and exit")
    p.add_argument("--print_dir", action="store_true", help="print the target directory and exit")
    return p


def _schedule(strategy: str):
    try:
        from espnet_hubert_ae.pretrain.schedule import load_schedule
    except ImportError:
        return None
    return load_schedule(strategy)


def first_phase_k(strategy: str) -> int:
    """K of the strategy's first phase from its schedule file, or HuBERT's 100 without one."""
    schedule = _schedule(strategy)
    if schedule is None:
        logger.info("no schedule module: using K=%d for the first phase", DEFAULT_FIRST_K)
        return DEFAULT_FIRST_K
    return int(schedule.phases[0].k)


def resolve_k(value: str, strategy: str | None) -> int:
    if value == "auto":
        if strategy is None:
            raise ValueError("--k auto needs --strategy (whose first phase's K it takes)")
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


def _step_on_directory(args: argparse.Namespace) -> int:
    from espnet_hubert_ae.targets.pipeline import finish_targets, label_targets, sets_to_label
    from espnet_hubert_ae.targets.streaming import LabelPlan, missing_jobs

    if args.targets_dir is None:
        raise ValueError(f"--step {args.step} needs --targets_dir (the directory --step fit printed)")
    plan = LabelPlan.read(args.targets_dir)
    if args.step == "missing":
        print(",".join(map(str, missing_jobs(plan, sets_to_label(plan)))))
        return 0
    if args.step == "label":
        if args.job is None or not 1 <= args.job <= plan.nj:
            raise ValueError(f"--step label needs --job in 1..{plan.nj}, not {args.job}")
        if args.device != "cpu":
            plan.device = args.device
        label_targets(plan, jobs=[args.job])
        print(args.targets_dir)
        return 0
    result = finish_targets(args.targets_dir)
    print(result.out_dir)
    return 0


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before faiss loads: spinning OpenMP stalls 2 cores
    if args.step in ("label", "missing", "finish"):
        if args.step == "label":  # the others read plans and labels only: no torch to load
            limit_threads()
        return _step_on_directory(args)
    strategies = args.strategy or [None]
    ks = [resolve_k(args.k, strategy) for strategy in strategies]
    if args.print_k:
        print("\n".join(map(str, ks)))
        return 0
    if len(ks) > 1 and not args.print_dir:
        raise ValueError("several --strategy values are for --print_k and --print_dir only")
    limit_threads()
    from espnet_hubert_ae.model.hubert import frame_counter
    from espnet_hubert_ae.targets.jobs import job_array
    from espnet_hubert_ae.targets.pipeline import fit_targets, make_targets, target_dir

    for option in ("datadir", "sets", "train_set"):
        if getattr(args, option) is None:
            raise ValueError(f"--{option} is required")
    source = build_source(args)
    if args.train_set not in args.sets:
        raise ValueError(f"--train_set {args.train_set} is not among --sets ({' '.join(args.sets)})")
    expected_frames = frame_counter(args.frames_from) if args.frames_from else None
    dirs = [args.targets_dir or target_dir(
        args.out_root, source, k, train_set=args.train_set, portion=args.portion, seed=args.seed, engine=args.engine,
        max_iter=args.max_iter, feature_dtype=args.feature_dtype, expected_frames=expected_frames,
    ) for k in ks]  # fmt: skip
    if args.print_dir:
        print("\n".join(map(str, dirs)))
        return 0
    (k,), (out_dir,) = ks, dirs
    settings = dict(
        sets={name: args.datadir / name for name in args.sets}, train_set=args.train_set, source=source, k=k,
        out_dir=out_dir, portion=args.portion, seed=args.seed, nj=args.nj, device=args.device,
        frames_from=args.frames_from, feature_root=args.feature_root or args.out_root / "features",
        engine=args.engine, max_iter=args.max_iter, keep_features=args.keep_features,
        feature_dtype=args.feature_dtype, batch_seconds=args.batch_seconds,
    )  # fmt: skip
    if args.step == "fit":
        fit_targets(**settings)
        print(out_dir)
        return 0
    result = make_targets(**settings, label_jobs=job_array(args.label_cmd) if args.label_cmd else None)
    print(result.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
