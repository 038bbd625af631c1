"""The random-init control of stages 8-9: prints the untrained checkpoint of a run's architecture.

    python -m espnet_hubert_ae.bin.random_init --like progressive/p4/step120 --out_dir exp/controls/random_init

Prints the path of the run's registered step-0 snapshot when pretraining kept one, else
builds a seeded untrained model from ``--like``'s config.yaml into
``<out_dir>/<run>/step0.pth`` (config.yaml beside it) and prints that path. Evaluate it
with ``--random_init <path>`` in ``superb_asr``, ``phone_recognition`` and ``finetune``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from espnet_hubert_ae.asr.random_init import random_init_checkpoint
from espnet_hubert_ae.defaults import SEED
from espnet_hubert_ae.utils.cli import cli_main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--like", required=True,
                   help="checkpoint .pth, registered name, or strategy (its last checkpoint) whose architecture to use")
    p.add_argument("--out_dir", type=Path, default=Path("exp/controls/random_init"))
    p.add_argument("--seed", type=int, default=SEED, help="seed of the initialisation")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    print(random_init_checkpoint(args.like, args.out_dir, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
