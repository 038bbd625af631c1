"""Pretraining throughput on one device: audio seconds per second, peak memory, data-loading share.

    python -m espnet_hubert_ae.bench throughput --model tiny --steps 4 --synthetic_minutes 2   # CPU, CI
    python -m espnet_hubert_ae.bench throughput --model base --device cuda --amp true \\
        --batch_bins 1400000 --steps 50 --synthetic_minutes 60                            # one GPU

Trains one phase of ``--model`` for ``--warmup_steps`` + ``--steps`` updates through exactly what
stage 5 runs: the phase runner, ESPnet's HuBERT task with its data loader (``--num_workers``
processes), its trainer with ``use_amp`` as ESPnet applies it (autocast and a gradient scaler
on a GPU), the project's scheduler and hooks. Only the labels are stand-ins (random, with the
model's frame count): what they are does not change the cost of a step. The data are a
built-in corpus' sets (``--datadir``) or noise utterances of 2-16 s made for the run
(``--synthetic_minutes``).

From ESPnet's per-step log (``log_interval`` 1) it takes, over the steps after the warm-up,
the time of each update (``train_time``: waiting for the batch, moving it, forward, backward,
optimiser) and the time spent waiting for the data loader (``iter_time``). Printed: audio
seconds per second per device (the audio of an update, counted as it is trained on, over its
time), the share of the time in data loading, peak device memory (allocated and reserved by
torch; on a CPU the process' peak resident memory), seconds per update. The last line is JSON.

HuBERT Base anchor: about 1,900-2,000 audio seconds per second on one H100 in minimal
reimplementations (400k steps in about 10 hours on 16 H100s).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

STEP_LINE = re.compile(r"\d+epoch:train:(\d+)-(\d+)batch: (.*)$")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m espnet_hubert_ae.bench throughput", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--model", default="tiny", help="model preset (tiny, small, base, large) or config YAML")
    p.add_argument("--steps", type=int, default=20, help="timed updates")
    p.add_argument("--warmup_steps", type=int, default=3, help="updates before the timed ones")
    p.add_argument("--device", default="cpu", help="cpu or cuda (one device)")
    p.add_argument("--amp", choices=["true", "false"], default=None,
                   help="ESPnet's use_amp (default: the model config's on a GPU, false on the CPU)")
    p.add_argument("--batch_bins", type=int, default=None,
                   help="audio samples per update (default: the model config's; base: 11.2M = 700 s is "
                        "HuBERT's whole 8-GPU batch, 1.4M = 87.5 s is its per-GPU share)")
    p.add_argument("--num_workers", type=int, default=None, help="data loader processes (default: the config's)")
    p.add_argument("--k", type=int, default=100, help="label classes")
    p.add_argument("--datadir", type=Path, default=Path("egs2/librilight_ae/dump/raw"),
                   help="folder of data dirs holding --train_set and --valid_set")  # fmt: skip
    p.add_argument("--train_set", default="train_pretrain")
    p.add_argument("--valid_set", default="dev_clean")
    p.add_argument("--synthetic_minutes", type=float, default=None,
                   help="train on this much noise audio made for the run instead of --datadir")
    p.add_argument("--workdir", type=Path, default=None,
                   help="keep the run (data, logs, checkpoints) here [a temporary folder, removed at the end]")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: OMP_NUM_THREADS)")
    return p


def write_noise_set(directory: Path, minutes: float, seed: int) -> Path:
    """A data dir of noise utterances of 2-16 s (``minutes`` of audio) written as 16-bit wav."""
    import soundfile

    from espnet_hubert_ae.data.datadir import Utterance, write_datadir

    rng = np.random.default_rng(seed)
    utts, total, i = [], 0.0, 0
    while total < minutes * 60:
        samples = int(rng.uniform(2.0, 16.0) * 16000)
        path = directory.parent / "audio" / directory.name / f"{directory.name}-{i:05d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, (0.1 * rng.standard_normal(samples)).astype(np.float32), 16000, subtype="PCM_16")
        utts.append(Utterance(f"{directory.name}-{i:05d}", str(path), f"spk{i % 4}", samples))
        total += samples / 16000
        i += 1
    return write_datadir(directory, utts)


def random_labels(job, strategy, plan, source_checkpoint, train_config):
    """Seeded random labels with the model's frame count (the phase runner's ``make_labels``)."""
    from espnet_hubert_ae.model.hubert import frame_counter
    from espnet_hubert_ae.pretrain.runner import Labels
    from espnet_hubert_ae.targets.labels import write_label_text, write_tokens

    frames = frame_counter(train_config)
    out = Path(job.targets_root) / f"random_k{plan.k}"
    rng = np.random.default_rng(1)
    texts = {}
    for name in (job.train_set, job.valid_set):
        items = []
        for line in (Path(job.sets[name]) / "utt2num_samples").read_text().splitlines():
            utt, n = line.split()
            items.append((utt, rng.integers(0, plan.k, frames(int(n)))))
        texts[name] = out / name / "text"
        write_label_text(texts[name], items)
    write_tokens(out / "tokens.txt", plan.k)
    return Labels(texts, out / "tokens.txt", plan.k, {"source": "random"})


def parse_steps(log: Path) -> list[dict[str, float]]:
    """Per-update figures from ESPnet's ``log_interval`` 1 lines (values under 1e-3 are not
    printed: 0 here)."""
    steps = []
    for line in log.read_text(errors="replace").splitlines():
        match = STEP_LINE.search(line)
        if not match or match.group(1) != match.group(2):
            continue
        values = {}
        for item in match.group(3).split(", "):
            key, _, value = item.partition("=")
            try:
                values[key.strip()] = float(value)
            except ValueError:
                pass
        steps.append({"iter_time": values.get("iter_time", 0.0), "train_time": values.get("train_time", 0.0)})
    return steps


def write_schedule(path: Path, steps: int, k: int, warmup: int) -> Path:
    import yaml

    schedule = {
        "name": "throughput", "description": "one phase for the throughput benchmark",
        "loss": {"masked": 1.0, "unmasked": 0.0, "feature_penalty": 10.0}, "lr": {"warmup": warmup, "decay": "linear"},
        "phases": [{"steps": steps, "targets": "mfcc", "k": k, "init": "scratch"}],
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(schedule, sort_keys=False))
    return path


def peak_device_memory(device: str) -> dict:
    import torch

    if device.startswith("cuda"):
        return {"peak_allocated_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3),
                "peak_reserved_gb": round(torch.cuda.max_memory_reserved() / 2**30, 3)}  # fmt: skip
    from espnet_hubert_ae.utils.cost import peak_memory_mb

    return {"peak_host_memory_gb": round(peak_memory_mb() / 1024, 3)}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.workdir is None:
        with tempfile.TemporaryDirectory(prefix="bench_throughput.") as tmp:
            args.workdir = Path(tmp)
            return measure(args)
    return measure(args)


def measure(args: argparse.Namespace) -> int:
    from espnet_hubert_ae.utils.cli import limit_threads, setup_logging

    setup_logging()
    threads = limit_threads(args.threads)
    import torch
    import yaml

    from espnet_hubert_ae.pretrain.runner import PretrainJob, run_schedule
    from espnet_hubert_ae.utils.presets import resolve_preset

    gpu = args.device.startswith("cuda")
    if gpu and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no GPU is visible to torch")
    if args.synthetic_minutes:
        data = args.workdir / "data"
        shutil.rmtree(data, ignore_errors=True)
        sets = {"train": write_noise_set(data / "train", args.synthetic_minutes, 1),
                "valid": write_noise_set(data / "valid", 0.5, 2)}  # fmt: skip
    else:
        sets = {"train": args.datadir / args.train_set, "valid": args.datadir / args.valid_set}
        for name, path in sets.items():
            if not (path / "wav.scp").is_file():
                raise SystemExit(f"{path}: no data dir (run the recipe's stages 1-2, or use --synthetic_minutes)")
    config = yaml.safe_load(resolve_preset("model", args.model).read_text())
    amp = args.amp if args.amp is not None else str(bool(gpu and config.get("use_amp", False))).lower()
    train_args = ["--log_interval", "1", "--use_amp", amp, "--accum_grad", "1"]
    if args.batch_bins:
        train_args += ["--batch_bins", str(args.batch_bins)]
    if args.num_workers is not None:
        train_args += ["--num_workers", str(args.num_workers)]
    total = args.warmup_steps + args.steps
    schedule = write_schedule(args.workdir / "throughput.yaml", total, args.k, max(1, args.warmup_steps))
    exp_root = args.workdir / "exp"
    shutil.rmtree(exp_root, ignore_errors=True)  # a fresh run, never a resumed one
    job = PretrainJob(
        strategy=str(schedule), model=args.model, sets={"train": sets["train"], "valid": sets["valid"]},
        train_set="train", valid_set="valid", exp_root=exp_root, targets_root=args.workdir / "targets",
        ngpu=1 if gpu else 0, checkpoint_interval=total, valid_seconds=5.0, train_args=train_args,
    )  # fmt: skip
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    exp_dir = run_schedule(job, make_labels=random_labels)
    phase = exp_dir / "phase1"
    summary = json.loads((phase / "summary.json").read_text())
    steps = parse_steps(phase / "train.log")
    if len(steps) < total:
        raise SystemExit(f"{phase / 'train.log'}: {len(steps)} per-update lines, expected {total}")
    timed = steps[args.warmup_steps : total]
    audio_per_step = summary["cost"]["training"]["audio_s"] / summary["steps"]
    train_s = sum(s["train_time"] for s in timed)
    loading_s = sum(s["iter_time"] for s in timed)
    devices = 1
    result = {
        "benchmark": "throughput", "model": Path(args.model).stem, "device": args.device,
        "device_name": torch.cuda.get_device_name() if gpu else f"cpu x{threads}", "amp": amp == "true",
        "steps": args.steps, "warmup_steps": args.warmup_steps, "audio_s_per_step": round(audio_per_step, 2),
        "step_s": round(train_s / len(timed), 4),
        "audio_s_per_s_per_device": round(audio_per_step * len(timed) / train_s / devices, 2),
        "data_loading_share": round(loading_s / train_s, 4),
        "whole_run_audio_s_per_s": round(summary["cost"]["training"]["audio_s"] / summary["timing"]["loop_s"], 2),
        **peak_device_memory(args.device),
    }  # fmt: skip
    memory = ", ".join(f"{k} {v}" for k, v in result.items() if k.startswith("peak_"))
    print(f"{result['model']} on {result['device_name']} (amp {result['amp']}): {result['audio_s_per_s_per_device']} "
          f"audio-s/s per device, {result['step_s']} s per update of {result['audio_s_per_step']} s of audio, "
          f"data loading {100 * result['data_loading_share']:.1f}% of the time; {memory}")  # fmt: skip
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
