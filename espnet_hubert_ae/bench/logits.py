"""HuBERT's prediction logits: the matmul form (``model.logits``) against torchaudio's own.

    python -m espnet_hubert_ae.bench logits                      # the small model, K=100 and 500
    python -m espnet_hubert_ae.bench logits --model base --k 100 500 --seconds 16

Builds the model preset's torchaudio HuBERT (randomly initialised, as ESPnet's encoder builds
it) and times full training steps (forward, the masked-frame cross entropy and the feature
penalty, backward) on the same random audio and labels, once with torchaudio's logits and once
with the matmul ones, for each K. Per K it prints seconds per step (the fastest of
``--steps`` after a warm-up step) and the speed-up; the logits of both agree (largest
difference printed). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import time

from espnet_hubert_ae.defaults import MODEL
from espnet_hubert_ae.utils.cli import limit_threads


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=MODEL.builtin, help="model preset or config YAML (the demo's)")
    p.add_argument("--k", type=int, nargs="+", default=[100, 500], help="numbers of target classes")
    p.add_argument("--seconds", type=float, default=32.0, help="seconds of audio per step (4 utterances)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per variant, after one warm-up step")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: OMP_NUM_THREADS)")
    return p


def build_model(model: str, num_classes: int):
    """The preset's torchaudio ``HuBERTPretrainModel``, as its ESPnet encoder builds it, and the
    preset's frame counter."""
    import yaml

    from espnet_hubert_ae.model.encoders import pretrain_encoder_class
    from espnet_hubert_ae.model.hubert import frame_counter
    from espnet_hubert_ae.utils.presets import resolve_preset

    config = yaml.safe_load(resolve_preset("model", model).read_text())
    encoder = pretrain_encoder_class(config["encoder"])(input_size=1, num_classes=num_classes, **config["encoder_conf"])
    return encoder.hubert_pretrain_model, frame_counter(config)


def time_steps(model, wav, lengths, labels, steps: int) -> float:
    import torch

    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        logit_m, _, penalty = model(wav, labels, lengths)
        loss = torch.nn.functional.cross_entropy(logit_m, torch.zeros(len(logit_m), dtype=torch.long)) + penalty
        loss.backward()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def logit_difference(generator, num_classes: int, frames: int = 500) -> float:
    """Largest difference between torchaudio's logits and the matmul ones on random frames."""
    import torch
    from torchaudio.models.wav2vec2.components import _compute_logits

    from espnet_hubert_ae.model.logits import matmul_logits

    with torch.no_grad():
        proj = generator.final_proj(torch.randn(frames, generator.final_proj.in_features))
        target = torch.randint(0, num_classes, (frames,))
        reference = _compute_logits(proj, target, generator.label_embeddings)
        ours = matmul_logits(proj, target, generator.label_embeddings)
    finite = torch.isfinite(reference)
    return float((ours[finite] - reference[finite]).abs().max())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    threads = limit_threads(args.threads)
    import torch

    from espnet_hubert_ae.data.datadir import SAMPLE_RATE
    from espnet_hubert_ae.model.logits import use_matmul_logits

    samples = int(args.seconds * SAMPLE_RATE / 4)
    wav, lengths = torch.randn(4, samples), torch.full((4,), samples)
    rows = []
    print(f"model {args.model}, {args.seconds:g} s of audio per step, {threads} threads")
    for k in args.k:
        torch.manual_seed(0)
        model, count_frames = build_model(args.model, k)
        labels = torch.randint(0, k, (4, count_frames(samples)))
        difference = logit_difference(model.logit_generator, k)
        stock = time_steps(model, wav, lengths, labels, args.steps)
        use_matmul_logits(model)
        matmul = time_steps(model, wav, lengths, labels, args.steps)
        rows.append({"k": k, "torchaudio_s_per_step": stock, "matmul_s_per_step": matmul,
                     "speedup": stock / matmul, "max_logit_difference": difference})
        print(f"K={k:>5}: torchaudio {stock:.3f} s/step, matmul {matmul:.3f} s/step, speed-up {stock / matmul:.2f}x "
              f"(logits differ by at most {difference:.2g})", flush=True)
    print(json.dumps({"benchmark": "logits", "model": args.model, "seconds": args.seconds, "threads": threads,
                      "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
