"""Stage 5: run every phase of a pretraining schedule (targets, then ESPnet HuBERT training).

    python -m espnet_hubert_ae.bin.pretrain --strategy progressive --model tiny \\
        --datadir dump/raw --train_set train_pretrain --valid_set dev_clean --pretrain_steps 120

``--strategy`` is a strategy preset (baseline, warmstart, height, progressive; progressive_mfcc,
its control) or a schedule YAML; ``--model`` a model preset (tiny, small, mel_tiny, mel_small,
base, large) or a config YAML. Presets ship with the
package (``espnet_hubert_ae/conf/``, which the recipe's ``conf/`` links to). Outputs go to
``exp/pretrain/<strategy>_<model>[_<steps>]/`` (see ``espnet_hubert_ae.pretrain.runner``).
Rerunning the same command after an interruption resumes: finished phases are skipped and the
phase in progress continues from its last checkpoint. ``--print_plan`` prints what would run
(every phase's global steps, targets, K and kept snapshots) as JSON and stops.

Distributed training
--------------------
One node, several GPUs: ESPnet's own DDP (one process per GPU, spawned by ESPnet)::

    python -m espnet_hubert_ae.bin.pretrain ... --ngpu 4

Several nodes with torchrun (one worker process per GPU; run the same command on every node,
or let SLURM do it)::

    python -m espnet_hubert_ae.bin.pretrain ... --ngpu 1 \\
        --launcher "torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500" \\
        -- --multiprocessing_distributed false

Several nodes under SLURM (inside an allocation; torchrun started once per node by srun)::

    python -m espnet_hubert_ae.bin.pretrain ... --ngpu 1 \\
        --launcher "srun --ntasks-per-node 1 torchrun --nnodes $SLURM_NNODES --nproc_per_node 8 \\
                    --rdzv_backend c10d --rdzv_endpoint $(hostname):29500" \\
        -- --multiprocessing_distributed false

CPU processes (for tests; gloo backend)::

    python -m espnet_hubert_ae.bin.pretrain ... --ngpu 0 --launcher "torchrun --nproc_per_node 2" \\
        -- --multiprocessing_distributed false --dist_backend gloo

Options after ``--`` go to ESPnet's trainer unchanged. The targets of each phase (features,
k-means) run in this process, before the training launch; with ``--label_cmd`` their label
shards run as a job array (``--label_jobs`` shards, e.g. one per GPU of this node with
``--label_cmd "local/run_job.sh --backend local --gpu 1"``). In distributed runs the ranks
compare their weights at the end of every phase (``phase<N>/ddp_weights.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

from espnet_hubert_ae import defaults
from espnet_hubert_ae.utils.cli import cli_main, limit_threads


def build_parser() -> argparse.ArgumentParser:
    from espnet_hubert_ae.pretrain.runner import PretrainJob
    from espnet_hubert_ae.pretrain.schedule import BUDGET_MODES

    job = {f.name: f.default for f in dataclasses.fields(PretrainJob)}  # the defaults, declared there
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--strategy", required=True, help="strategy preset or a schedule YAML")
    p.add_argument("--model", default=defaults.MODEL.builtin,
                   help="model preset (tiny, small, base, large) or a config YAML (default: the built-in corpus' model)")
    p.add_argument("--datadir", type=Path, default=Path("dump/raw"), help="directory holding the data sets")
    p.add_argument("--train_set", default=defaults.PRETRAIN_SET)
    p.add_argument("--valid_set", default=defaults.VALID_SET)
    p.add_argument("--exp_root", type=Path, default=job["exp_root"])
    p.add_argument("--targets_root", type=Path, default=job["targets_root"], help="where labels and features go")
    p.add_argument("--pretrain_steps", type=int, default=job["pretrain_steps"],
                   help="budget in steps (default: the schedule's own); phases scale proportionally, see --budget")
    p.add_argument("--budget", choices=BUDGET_MODES, default=defaults.BUDGET,
                   help="ratio: one factor scales every strategy, the one giving --budget_reference --pretrain_steps "
                        "steps (strategies keep their schedule files' ratios); equal: every strategy gets --pretrain_steps")
    p.add_argument("--budget_reference", default=None,
                   help="strategy that gets exactly --pretrain_steps with --budget ratio (default: this one)")
    p.add_argument("--checkpoint_interval", type=int, default=job["checkpoint_interval"],
                   help="steps between resumable checkpoints (default: the model config's num_iters_per_epoch)")
    p.add_argument("--snapshot_every", type=int, default=job["snapshot_every"],
                   help="keep a snapshot every N global steps (plus phase ends and step 0) instead of the "
                        "schedule's own: the same resolution for every strategy")
    p.add_argument("--valid_seconds", type=float, default=job["valid_seconds"],
                   help="audio of the validation subset scored at every checkpoint (0: the whole set)")
    p.add_argument("--ngpu", type=int, default=job["ngpu"])
    p.add_argument("--nj", type=int, default=job["nj"], help="parallel jobs for features")
    p.add_argument("--seed", type=int, default=job["seed"])
    p.add_argument("--kmeans_portion", type=float, default=job["kmeans_portion"],
                   help="portion of the training set k-means fits on")
    p.add_argument("--keep_features", choices=["true", "false"], default=str(job["keep_features"]).lower(),
                   help="layer targets: store every set's features whole before labelling them (default: only the "
                        "k-means fit portion; labels by streaming)")
    p.add_argument("--feature_dtype", choices=["float16", "float32"], default=job["feature_dtype"],
                   help="precision of the stored k-means features")
    p.add_argument("--label_cmd", default=job["label_cmd"],
                   help="run each phase's label shards as a job array with this job runner, e.g. "
                        "'local/run_job.sh --backend local --gpu 1' (one GPU per shard) [in this process]")
    p.add_argument("--label_jobs", type=int, default=job["label_jobs"], help="label shards per set [--nj]")
    p.add_argument("--launcher", default=job["launcher"],
                   help="command that launches training workers, e.g. torchrun ...")
    p.add_argument("--print_plan", action="store_true",
                   help="print the plan (phases, global steps, snapshots) as JSON and stop: nothing is trained")
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then options passed to ESPnet's trainer")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # faiss' OpenMP threads must not spin
    limit_threads()
    from espnet_hubert_ae.pretrain.runner import PretrainError, PretrainJob, plan_run, run_schedule
    from espnet_hubert_ae.pretrain.schedule import budget_steps

    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    sets = {name: args.datadir / name for name in (args.train_set, args.valid_set)}
    for name, path in sets.items():
        if not args.print_plan and not (path / "wav.scp").is_file():
            raise FileNotFoundError(f"data set {name}: {path}/wav.scp not found (run the earlier stages)")
    job = PretrainJob(
        strategy=args.strategy, model=args.model, sets=sets, train_set=args.train_set, valid_set=args.valid_set,
        exp_root=args.exp_root, targets_root=args.targets_root,
        pretrain_steps=budget_steps(args.strategy, args.pretrain_steps, args.budget, args.budget_reference),
        budget=None if args.pretrain_steps is None else {
            "mode": args.budget, "reference": args.budget_reference, "reference_steps": args.pretrain_steps},
        ngpu=args.ngpu, nj=args.nj, seed=args.seed, kmeans_portion=args.kmeans_portion,
        checkpoint_interval=args.checkpoint_interval, valid_seconds=args.valid_seconds or None,
        snapshot_every=args.snapshot_every, keep_features=args.keep_features == "true",
        feature_dtype=args.feature_dtype, label_cmd=args.label_cmd, label_jobs=args.label_jobs,
        train_args=train_args, launcher=args.launcher,
    )  # fmt: skip
    if args.print_plan:
        print(json.dumps(plan_run(job).to_dict()))
        return 0
    try:
        exp_dir = run_schedule(job)
    except PretrainError as err:
        raise ValueError(str(err)) from None
    print(exp_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
