"""Benchmark: early-exit layer extraction against a full forward pass taking the same layer.

    python -m espnet_hubert_ae.bench features                       # random HuBERT Base, layer 6
    python -m espnet_hubert_ae.bench features --checkpoint exp/.../valid.acc.best.pth --layer 9

Without ``--checkpoint`` a randomly initialised model of HuBERT Base's shape (12 layers,
768-d; the timing does not depend on the weights) is built; ``--model tiny`` uses the small
test model instead. Prints the time of each way, their ratio, audio seconds per second, and
whether they give identical features (also checked against torchaudio's own
``extract_features`` over all layers). The last line is all figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m espnet_hubert_ae.bench features", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--checkpoint", type=Path, default=None, help="ESPnet HuBERT .pth [random HuBERT Base]")
    p.add_argument("--model", choices=["base", "tiny"], default="base",
                   help="shape of the random model (this benchmark's own default: HuBERT Base's, not the recipe's model)")
    p.add_argument("--layer", type=int, default=None, help="layer to extract [half the layers: 6 of 12]")
    p.add_argument("--seconds", type=float, default=16.0, help="audio per batch")
    p.add_argument("--batch", type=int, default=2, help="utterances per batch (the audio is split among them)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each way, interleaved (best is kept)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    return p


def _timed(fn, device: str) -> tuple[float, float, object]:
    """Wall and CPU seconds of one call (CPU time is less disturbed by other work on the machine)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start, cpu_start = time.perf_counter(), time.process_time()
    result = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu_start, result


def _compare(early_fn, full_fn, repeats: int, device: str) -> dict:
    """Best wall/CPU time of each way, runs interleaved after one warm-up of each."""
    best = {"early": [float("inf"), float("inf")], "full": [float("inf"), float("inf")]}
    results = {"early": early_fn(), "full": full_fn()}  # warm-up: allocator, kernel selection
    for _ in range(repeats):
        for name, fn in (("early", early_fn), ("full", full_fn)):
            wall, cpu, results[name] = _timed(fn, device)
            best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
    return {"best": best, "results": results}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    from espnet_hubert_ae.model.factory import BASE_ENCODER_CONF, TINY_ENCODER_CONF, write_random_checkpoint
    from espnet_hubert_ae.model.hubert import hidden_states, load_pretrain_model, num_layers, wav2vec2_of

    with tempfile.TemporaryDirectory(prefix="bench_features.") as tmp:
        checkpoint = args.checkpoint
        if checkpoint is None:
            conf = BASE_ENCODER_CONF if args.model == "base" else TINY_ENCODER_CONF
            checkpoint = write_random_checkpoint(tmp, conf, num_classes=100)
        model, _ = load_pretrain_model(checkpoint, device=args.device)
    total = num_layers(model)
    layer = total // 2 if args.layer is None else args.layer
    gen = torch.Generator().manual_seed(0)
    samples = int(args.seconds * 16000 / args.batch)
    wavs = (0.1 * torch.randn(args.batch, samples, generator=gen)).to(args.device)
    lengths = torch.full((args.batch,), samples, device=args.device)
    lengths[-1] = samples * 3 // 4  # one padded utterance, as in real batches
    audio_seconds = float(lengths.sum()) / 16000

    print(f"model: {total} layers ({'random ' + args.model if args.checkpoint is None else checkpoint}), "
          f"layer {layer}, {audio_seconds:.1f} s of audio in a batch of {args.batch}, {args.device}, "
          f"{args.threads} threads", flush=True)  # fmt: skip
    runs = _compare(lambda: hidden_states(model, wavs, lengths, upto_layer=layer),
                    lambda: hidden_states(model, wavs, lengths), args.repeats, args.device)  # fmt: skip
    (early_s, early_cpu), (full_s, full_cpu) = runs["best"]["early"], runs["best"]["full"]
    early, full = runs["results"]["early"], runs["results"]["full"]
    identical = bool(torch.equal(early[0][layer], full[0][layer]))
    w2v = wav2vec2_of(model)
    with torch.no_grad():
        reference = w2v.extract_features(wavs, lengths)[0]  # torchaudio: 1-based, all layers
    frames = int(early[1][0])
    matches_torchaudio = layer == 0 or bool(
        torch.allclose(early[0][layer][0, :frames], reference[layer - 1][0, :frames], atol=1e-5)
    )
    figures = {
        "layers": total, "layer": layer, "audio_seconds": round(audio_seconds, 2), "device": args.device,
        "threads": args.threads, "early_exit_seconds": round(early_s, 3), "full_forward_seconds": round(full_s, 3),
        "early_exit_cpu_seconds": round(early_cpu, 3), "full_forward_cpu_seconds": round(full_cpu, 3),
        "speedup": round(full_s / early_s, 2), "cpu_speedup": round(full_cpu / early_cpu, 2),
        "early_exit_audio_s_per_s": round(audio_seconds / early_s, 2),
        "full_forward_audio_s_per_s": round(audio_seconds / full_s, 2), "identical": identical,
        "matches_torchaudio_extract_features": matches_torchaudio,
    }  # fmt: skip
    print(f"  early exit at layer {layer}: {early_s:.2f} s wall, {early_cpu:.2f} s CPU "
          f"({figures['early_exit_audio_s_per_s']:.1f} audio-s/s)")
    print(f"  full forward ({total} layers): {full_s:.2f} s wall, {full_cpu:.2f} s CPU "
          f"({figures['full_forward_audio_s_per_s']:.1f} audio-s/s)")
    print(f"  speed-up x{figures['speedup']:.2f} wall, x{figures['cpu_speedup']:.2f} CPU; identical features: {identical}; "
          f"torchaudio extract_features agrees: {matches_torchaudio}")  # fmt: skip
    print(json.dumps(figures))
    return 0 if identical and matches_torchaudio else 1
