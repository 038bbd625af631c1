"""Frozen-upstream ASR trained from cached hidden states vs on the live upstream.

    python -m espnet_hubert_ae.bench downstream --checkpoint exp/pretrain/.../model.pth \\
        --train_set dump/raw/train_10h --eval_set dump/raw/dev_clean

Both sides train the same downstream (the cached-feature template, stage 8's by default:
weighted layer sum, BiLSTM, CTC) through ESPnet's ASR task on the same batches: both are
batched by the cache's frame counts, as stage 8 batches. The cached side reads the
hidden states extracted once (``espnet_hubert_ae.asr.cache``); the live side runs the
upstream in every update through ESPnet's s3prl frontend and ``hubert_ae_local``, with the
same per-layer normalisation. Reported: updates per second of training (the epochs' train
time from ESPnet's log, validation excluded) and their ratio, the one-off extraction cost,
and CER/WER on the evaluation set. The cached side trains with every ``--seeds`` to measure
the seed spread (max - min of its CERs); the live side with the first seed. The verdict
(:func:`verdict`; exit status 0 when it passes, 1 otherwise) asks two things: the cache gives
at least ``--min_speedup`` times the live side's updates per second, and the live CER differs
from the cached CER of the same seed by no more than the seed spread (with one seed the spread
is 0: the two must be equal). The last line is all figures as JSON.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Sequence

from espnet_hubert_ae.asr.cache import ensure_cache
from espnet_hubert_ae.asr.configs import cached_config, load_yaml, superb_config
from espnet_hubert_ae.asr.espnet_run import SetData
from espnet_hubert_ae.asr.experiment import AsrExperiment, run_experiment
from espnet_hubert_ae.utils.seeds import parse_seeds
from espnet_hubert_ae.asr.sources import CheckpointSource
from espnet_hubert_ae.defaults import SEEDS, SUPERB_CONFIG
from espnet_hubert_ae.utils.presets import resolve_preset


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m espnet_hubert_ae.bench downstream", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="pretraining checkpoint .pth (config.yaml beside) or name")
    p.add_argument("--train_set", type=Path, required=True, help="labelled training data directory")
    p.add_argument("--eval_set", type=Path, required=True, help="validation and evaluation data directory")
    p.add_argument("--config", default=SUPERB_CONFIG.builtin,
                   help="cached-feature template, preset or YAML (stage 8's on the built-in corpus)")
    p.add_argument("--seeds", nargs="+", default=[str(s) for s in SEEDS],
                   help="seeds of the cached side, whose CER spread the verdict allows (the first: live too; "
                        "the recipe's --seeds)")
    p.add_argument("--updates", type=int, default=None, help="training updates of each side [the template's]")
    p.add_argument("--out_dir", type=Path, default=None, help="keep caches and runs here [a temporary directory]")
    p.add_argument("--min_speedup", type=float, default=5.0,
                   help="the verdict's speed-up: the cache must give at least this many times the live updates/s")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    return p


def with_updates(config: dict, updates: int | None) -> dict:
    """The config trained for ``updates`` updates (same epochs; the scheduler's length follows)."""
    if updates is None:
        return config
    config = copy.deepcopy(config)
    config["num_iters_per_epoch"] = math.ceil(updates / int(config["max_epoch"]))
    if "max_steps" in (config.get("scheduler_conf") or {}):
        config["scheduler_conf"]["max_steps"] = config["num_iters_per_epoch"] * int(config["max_epoch"])
    return config


def live_config(cached: dict, checkpoint: Path, upstream_config: Path) -> dict:
    """The same downstream with the upstream run live (ESPnet's s3prl frontend)."""
    config = copy.deepcopy(cached)
    normalize = bool((config.get("frontend_conf") or {}).get("normalize", False))
    config["frontend"] = "s3prl"
    config["frontend_conf"] = {"frontend_conf": {"normalize": normalize}, "download_dir": None}
    config["freeze_param"] = ["frontend.upstream"]
    return superb_config(config, str(checkpoint.resolve()), upstream_config)


def train_figures(run_dir: Path) -> dict:
    """Updates and training seconds (epochs' train time, validation excluded) from ESPnet's log."""
    text = (run_dir / "train" / "train.log").read_text(encoding="utf-8", errors="replace")
    epochs = re.findall(r"epoch results: \[train\].*?time=([\d.]+ (?:minutes? and [\d.]+ )?seconds?)"
                        r", total_count=(\d+)", text)
    seconds = sum(_seconds(t) for t, _ in epochs)
    updates = int(epochs[-1][1]) if epochs else 0
    return {"updates": updates, "train_seconds": round(seconds, 2),
            "updates_per_second": round(updates / seconds, 3) if seconds else 0.0}


def _seconds(text: str) -> float:
    minutes = re.match(r"([\d.]+) minutes? and ([\d.]+) seconds?", text)
    return float(minutes.group(1)) * 60 + float(minutes.group(2)) if minutes else float(text.split()[0])


def _scores(run_dir: Path, set_name: str) -> dict:
    sets = {s["set"]: s for s in json.loads((run_dir / "results.json").read_text())["sets"]}
    return {k: sets[set_name][k] for k in ("cer", "wer", "empty_hyps")}


def verdict(cached_cers: Sequence[float], live_cer: float, speedup: float, min_speedup: float) -> dict:
    """The benchmark's verdict on its figures: the cache is ``fast_enough`` with a ``speedup``
    of at least ``min_speedup``, and ``cer_within_spread`` when the live CER differs from the
    first cached CER (the same seed's) by at most the seed spread, max - min of ``cached_cers``;
    ``passed`` when both hold."""
    spread = max(cached_cers) - min(cached_cers)
    difference = abs(live_cer - cached_cers[0])
    within = difference <= spread
    fast = speedup >= min_speedup
    return {"cer_seed_spread": spread, "cer_difference_same_seed": difference, "cer_within_spread": within,
            "fast_enough": fast, "passed": fast and within}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    from espnet_hubert_ae.utils.cli import setup_logging

    setup_logging()
    torch.set_num_threads(args.threads)
    seeds = parse_seeds(args.seeds)
    out = args.out_dir or Path(tempfile.mkdtemp(prefix="bench_downstream."))
    source = CheckpointSource(args.checkpoint)
    train_dir, eval_dir = args.train_set, args.eval_set

    start, cpu = time.perf_counter(), time.process_time()
    caches = {d: ensure_cache(source, d, out / "features") for d in (train_dir, eval_dir)}
    extract_seconds = sum(c.extract_seconds for c in caches.values())
    template = with_updates(load_yaml(resolve_preset("asr", args.config)), args.updates)
    cached = cached_config(template, caches[train_dir].num_layers, caches[train_dir].layer_dim)
    live = live_config(template, source.checkpoint, source.config)
    print(f"upstream {source.checkpoint} ({caches[train_dir].num_layers} states x {caches[train_dir].layer_dim}), "
          f"train {train_dir} ({caches[train_dir].utterances} utterances), eval {eval_dir}, "
          f"{args.threads} threads; cache extracted in {extract_seconds:.1f} s", flush=True)

    def run(name: str, config: dict, seed: int, speech: dict) -> dict:
        # Both sides batch by the cache's frame counts (the shape files only drive batching).
        sets = [SetData(d, speech[d], "kaldi_ark" if name == "cached" else "sound", caches[d].shape_file, d / "text")
                for d in (train_dir, eval_dir, eval_dir)]
        run_dir = out / name / f"seed{seed}"
        # The evaluation set's characters join the token list, as stage 8's token_text_sets do.
        run_experiment(AsrExperiment(run_dir, config, sets[0], sets[1], sets[2:], token_text_files=[eval_dir / "text"],
                                     seed=seed, info={"bench": name, "upstream": args.checkpoint}))
        return {"seed": seed, **train_figures(run_dir), **_scores(run_dir, eval_dir.name)}

    cached_runs = [run("cached", cached, s, {d: c.feats_scp for d, c in caches.items()}) for s in seeds]
    live_run = run("live", live, seeds[0], {d: d / "wav.scp" for d in (train_dir, eval_dir)})
    for r in cached_runs + [live_run]:
        side = "live  " if r is live_run else "cached"
        print(f"  {side} seed {r['seed']}: {r['updates']} updates in {r['train_seconds']:.1f} s "
              f"({r['updates_per_second']:.2f} updates/s), CER {r['cer']:.2f} % WER {r['wer']:.2f} % "
              f"({r['empty_hyps']} empty)")
    cached_rate = sum(r["updates_per_second"] for r in cached_runs) / len(cached_runs)
    speedup = cached_rate / live_run["updates_per_second"] if live_run["updates_per_second"] else float("inf")
    cers = [r["cer"] for r in cached_runs]
    judged = verdict(cers, live_run["cer"], speedup, args.min_speedup)
    spread, difference = judged["cer_seed_spread"], judged["cer_difference_same_seed"]
    figures = {
        "checkpoint": str(source.checkpoint), "threads": args.threads, "seeds": seeds,
        "updates": cached_runs[0]["updates"], "cached_updates_per_second": round(cached_rate, 3),
        "live_updates_per_second": live_run["updates_per_second"], "speedup": round(speedup, 2),
        "extract_seconds": round(extract_seconds, 1),
        "extract_in_live_updates": round(extract_seconds * live_run["updates_per_second"], 1),
        "cached_cer": cers, "cached_wer": [r["wer"] for r in cached_runs], "cer_seed_spread": round(spread, 2),
        "live_cer": live_run["cer"], "live_wer": live_run["wer"], "cer_difference_same_seed": round(difference, 2),
        "cer_within_spread": judged["cer_within_spread"], "min_speedup": args.min_speedup,
        "fast_enough": judged["fast_enough"], "passed": judged["passed"],
        "wall_seconds": round(time.perf_counter() - start, 1), "cpu_seconds": round(time.process_time() - cpu, 1),
    }
    print(f"  speed-up x{speedup:.2f} (need x{args.min_speedup:g}); extraction = {figures['extract_in_live_updates']}"
          f" live updates; CER cached {cers} vs live {live_run['cer']:.2f}: difference {difference:.2f} "
          f"{'within' if figures['cer_within_spread'] else 'beyond'} the seed spread {spread:.2f}")
    print(json.dumps(figures))
    return 0 if judged["passed"] else 1
