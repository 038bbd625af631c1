"""What the stage 8 and stage 9 command lines share: which upstream, the data, the experiment."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from espnet_hubert_ae.asr.espnet_run import TrainingError
from espnet_hubert_ae.upstream.registry import open_registry
from espnet_hubert_ae.utils.presets import resolve_preset


def experiment_parser(doc: str, config: str, exp_root: str, layout: str) -> argparse.ArgumentParser:
    """The shared options; ``layout`` says where under ``--exp_root`` an experiment goes."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--upstream", help="registered upstream name or checkpoint .pth")
    which.add_argument("--run", help="use the last registered checkpoint of this pretraining run (its run tag)")
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
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--lm", default=None, help="n-gram LM for decoding (not supported yet)")
    return p


def run_experiment_cli(args: argparse.Namespace, run: Callable[[argparse.Namespace], object]) -> int:
    """Resolve ``--config`` to its file and ``--run`` to its last checkpoint, then
    ``run(args)``; a failed training is reported as one line (its log is named in it)."""
    args.config = resolve_preset("asr", args.config)
    if args.run:
        args.upstream = open_registry().last(args.run).name
    try:
        run(args)
    except TrainingError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    return 0
