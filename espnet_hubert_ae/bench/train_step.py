"""Training throughput: the project's ESPnet training path vs a bare loop over the same model.

    python -m espnet_hubert_ae.bench train-step --model tiny --steps 10
    python -m espnet_hubert_ae.bench train-step --model base --device cuda --amp --batch 8 --seconds 10

Both sides train the same torchaudio HuBERT (same initial weights, same batches, Adam, grad
clipping, the learning rate set every step) in this process. The project side goes through
everything a phase runs: our ``WeightedLossHubertModel``, ESPnet's ``Trainer.train_one_epoch``
with its reporter, our ``PhaseLR`` scheduler and the phase-end / snapshot hooks. The bare side
calls ``hubert_pretrain_model`` and the HuBERT loss directly. Reported: audio seconds trained
per second for each, the overhead of the project path, and on a GPU the MFU at 45 GFLOP per
audio-second (HuBERT Base training, REFERENCE §2) -- meaningful for the base model only.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from pathlib import Path

import torch
import yaml

TRAIN_GFLOP_PER_AUDIO_SECOND = 45.0  # HuBERT Base, forward + backward
# Dense bf16 tensor-core peaks (TFLOP/s); fp32 runs are compared with the same figure.
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tiny",
                   help="model preset (tiny, small, base, large) or a config YAML (this benchmark's own default: "
                        "tiny, a quick measurement; the recipe's models are a --model away)")
    p.add_argument("--k", type=int, default=100, help="number of clusters (label classes)")
    p.add_argument("--batch", type=int, default=4, help="utterances per batch")
    p.add_argument("--seconds", type=float, default=4.0, help="seconds of audio per utterance")
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    p.add_argument("--warmup_steps", type=int, default=2, help="untimed steps first")
    p.add_argument("--repeats", type=int, default=2, help="measurements per side (alternating; best kept)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--amp", action="store_true", help="mixed precision (ESPnet's use_amp: bf16 where supported)")
    p.add_argument("--peak_tflops", type=float, default=None, help="device peak for MFU (default: by GPU name)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: OMP_NUM_THREADS)")
    return p


def make_model(model_name: str, k: int, device: str):
    from espnet_hubert_ae.model.factory import pretrain_config
    from espnet_hubert_ae.utils.presets import resolve_preset
    from espnet_hubert_ae.pretrain.task import PhaseHubertTask

    model_config = yaml.safe_load(resolve_preset("model", model_name).read_text())
    config = pretrain_config(model_config["encoder_conf"], k, model_config["encoder"])
    config["model_conf"] = {}
    torch.manual_seed(0)
    model = PhaseHubertTask.build_model(argparse.Namespace(**config)).to(device)
    return model, model_config


def make_batches(count: int, batch: int, seconds: float, k: int, count_frames, seed: int = 0
                 ) -> list[tuple[list[str], dict]]:
    g = torch.Generator().manual_seed(seed)
    samples = int(seconds * 16000)
    frames = count_frames(samples)
    out = []
    for i in range(count):
        out.append((
            [f"utt{i}-{j}" for j in range(batch)],
            {"speech": 0.1 * torch.randn(batch, samples, generator=g),
             "speech_lengths": torch.full((batch,), samples),
             "text": torch.randint(0, k, (batch, frames), generator=g),
             "text_lengths": torch.full((batch,), frames)},
        ))  # fmt: skip
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_project(model, batches, args, lr: float, grad_clip: float) -> float:
    """Seconds for ``batches`` through ESPnet's train_one_epoch with our scheduler and hooks."""
    from espnet2.train.distributed_utils import DistributedOption
    from espnet2.train.reporter import Reporter

    from espnet_hubert_ae.pretrain.task import PhaseHubertTask, PhaseLR, PhaseTrainer

    parser = PhaseHubertTask.get_parser()
    options = PhaseTrainer.build_options(parser.parse_args([
        "--ngpu", "1" if args.device.startswith("cuda") else "0", "--grad_clip", str(grad_clip),
        "--log_interval", "1000000", "--use_amp", str(bool(args.amp)).lower(), "--output_dir", "/nonexistent",
    ]))  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    scheduler = PhaseLR(optimizer, run_start=0, run_end=10**9, run_warmup=10)
    scheduler.step_hooks.append(lambda step: None)  # a snapshot hook that never fires
    PhaseTrainer._phase_end_step = 10**9
    scaler = torch.amp.GradScaler("cuda") if args.amp and args.device.startswith("cuda") else None
    reporter = Reporter()
    reporter.set_epoch(1)
    warm, timed = batches[: args.warmup_steps], batches[args.warmup_steps :]
    seconds = []
    for part in (warm, timed):
        _sync(args.device)
        start = time.perf_counter()
        with reporter.observe("train") as sub:
            PhaseTrainer.train_one_epoch(
                model=model, iterator=part, optimizers=[optimizer], schedulers=[scheduler], scaler=scaler,
                reporter=sub, summary_writer=None, options=options, distributed_option=DistributedOption(),
            )  # fmt: skip
        _sync(args.device)
        seconds.append(time.perf_counter() - start)
    return seconds[1]


def run_bare(model, batches, args, lr: float, grad_clip: float) -> float:
    """Seconds for ``batches`` through torchaudio's model and the HuBERT loss, nothing else."""
    hubert = model.encoder.hubert_pretrain_model
    optimizer = torch.optim.Adam(hubert.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    use_amp = args.amp and args.device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    hubert.train()
    warm, timed = batches[: args.warmup_steps], batches[args.warmup_steps :]
    seconds = []
    step = 0
    for part in (warm, timed):
        _sync(args.device)
        start = time.perf_counter()
        for _, batch in part:
            speech = batch["speech"].to(args.device)
            labels = batch["text"].to(args.device)
            lengths = batch["speech_lengths"].to(args.device)
            with torch.autocast("cuda", dtype=dtype, enabled=use_amp):
                logit_m, logit_u, penalty = hubert(speech, labels, lengths)
                target = torch.zeros(logit_m.shape[0], dtype=torch.long, device=logit_m.device)
                loss = torch.nn.functional.cross_entropy(logit_m, target, reduction="sum") + 10.0 * penalty * logit_m.shape[0]
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            torch.nn.utils.clip_grad_norm_(hubert.parameters(), grad_clip)
            for group in optimizer.param_groups:
                group["lr"] = lr * min(1.0, (step + 1) / 10)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad()
            step += 1
        _sync(args.device)
        seconds.append(time.perf_counter() - start)
    return seconds[1]


def peak_tflops(args) -> float | None:
    if args.peak_tflops:
        return args.peak_tflops
    if not args.device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from espnet_hubert_ae.utils.cli import limit_threads

    threads = limit_threads(args.threads)
    model, model_config = make_model(args.model, args.k, args.device)
    lr = float(model_config.get("optim_conf", {}).get("lr", 5e-4))
    grad_clip = float(model_config.get("grad_clip", 10.0))
    from espnet_hubert_ae.model.hubert import frame_counter

    batches = make_batches(args.warmup_steps + args.steps, args.batch, args.seconds, args.k, frame_counter(model_config))
    initial = copy.deepcopy(model.state_dict())
    audio_seconds = args.steps * args.batch * args.seconds
    timings: dict[str, list[float]] = {"bare": [], "project": []}
    for _ in range(args.repeats):
        for side, run in (("bare", run_bare), ("project", run_project)):
            model.load_state_dict(initial)
            timings[side].append(run(model, batches, args, lr, grad_clip))
    best = {side: min(values) for side, values in timings.items()}
    result = {
        "benchmark": "train-step", "model": Path(args.model).stem, "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu x{threads}",
        "amp": args.amp, "batch": args.batch, "seconds_per_utt": args.seconds, "steps": args.steps,
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "bare_audio_s_per_s": round(audio_seconds / best["bare"], 2),
        "project_audio_s_per_s": round(audio_seconds / best["project"], 2),
        "project_step_s": round(best["project"] / args.steps, 4), "bare_step_s": round(best["bare"] / args.steps, 4),
        "overhead_pct": round(100 * (best["project"] / best["bare"] - 1), 2),
        "all_seconds": {k: [round(v, 3) for v in vs] for k, vs in timings.items()},
    }  # fmt: skip
    peak = peak_tflops(args)
    if peak:
        result["peak_tflops"] = peak
        result["mfu_pct_at_45gflop_per_audio_s"] = round(
            100 * result["project_audio_s_per_s"] * TRAIN_GFLOP_PER_AUDIO_SECOND / (peak * 1000), 2
        )
    print(f"bare loop    {result['bare_audio_s_per_s']:10.1f} audio-s/s")
    print(f"project path {result['project_audio_s_per_s']:10.1f} audio-s/s   overhead {result['overhead_pct']:+.1f}%")
    if "mfu_pct_at_45gflop_per_audio_s" in result:
        print(f"MFU {result['mfu_pct_at_45gflop_per_audio_s']:.1f}% of {peak:.0f} TFLOP/s")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
