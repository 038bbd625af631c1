"""Dump the k-means features (MFCC or a checkpoint layer) of some sets, one shard per job.

    # shard JOB of 4 of every set (a job array: local/run_job.sh JOB=1:4 ...):
    python -m espnet_hubert_ae.bin.dump_features --datadir dump/raw --sets train_pretrain dev_clean \\
        --source mfcc --feature_root dump/targets/features --nj 4 --job JOB
    # every unfinished shard, one process each:
    python -m espnet_hubert_ae.bin.dump_features --datadir dump/raw --sets dev_clean --nj 4

Output: ``<feature_root>/<source>/<set>/`` (see espnet_hubert_ae.targets.features); finished
shards are skipped, so rerunning after an interruption resumes.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from espnet_hubert_ae.targets.features import DEFAULT_BATCH_SECONDS
from espnet_hubert_ae.utils.cli import cli_main, limit_threads


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datadir", type=Path, required=True, help="folder holding one data dir per set")
    p.add_argument("--sets", "--set", dest="set_names", nargs="+", required=True, help="sets to dump")
    p.add_argument("--source", choices=["mfcc", "layer"], default="mfcc")
    p.add_argument("--checkpoint", type=Path, help="--source layer: ESPnet HuBERT .pth (config.yaml beside it)")
    p.add_argument("--layer", type=int, help="--source layer: 0 = transformer input, L = output of layer L")
    p.add_argument("--checkpoint_tag", default=None, help="--source layer: name of the checkpoint in tags")
    p.add_argument("--feature_root", type=Path, default=Path("dump/targets/features"))
    p.add_argument("--nj", type=int, default=1, help="number of shards")
    p.add_argument("--job", type=int, default=None, help="dump only this shard (1..nj)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch_seconds", type=float, default=DEFAULT_BATCH_SECONDS,
                   help="padded audio per forward pass (layers)")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.job is not None and not 1 <= args.job <= args.nj:
        raise ValueError(f"--job must be in 1..{args.nj}, not {args.job}")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    limit_threads()
    from espnet_hubert_ae.bin.make_targets import build_source
    from espnet_hubert_ae.data.datadir import read_datadir
    from espnet_hubert_ae.targets.features import dump_features

    source = build_source(args)
    for set_name in args.set_names:  # one process for every set: imports and model load are paid once
        directory = args.feature_root / source.name / set_name
        dump_features(
            read_datadir(args.datadir / set_name), source, directory, nj=args.nj, job=args.job,
            workers=1 if args.job is not None else args.nj, device=args.device, batch_seconds=args.batch_seconds,
        )  # fmt: skip
        print(directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
