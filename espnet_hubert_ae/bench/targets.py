"""Benchmark: what k-means targets cost per hour of audio, labels by streaming against full dumps.

    python -m espnet_hubert_ae.bench targets                       # built-in corpus: MFCC, small L2, base L6
    python -m espnet_hubert_ae.bench targets --sources base:6 --minutes 0 --dtype_check false   # acceptance run

For each source -- MFCC, or layer L of a randomly initialised model preset (``small:2``,
``base:6``; the cost does not depend on the weights) -- both ways of making the targets run as
their own processes of ``bin/make_targets`` on the same sets with the same threads, one after
the other: ``full`` (``--keep_features``: every set dumped whole, then labelled from the
dumps) and ``streaming`` (the default: only the k-means fit portion dumped, every set labelled
by computing its features and nearest centroids in one pass). Measured for each: wall and CPU
seconds of the feature dumps, the k-means fit and the labels (their records), the peak disk of
the feature files (polled every 50 ms), the peak memory, and per hour of audio. Checked: the
two give identical centroids and labels; the streaming path's feature disk against the size of
the fit portion (its frames x dim x dtype bytes, counted from the audio); the wall-time ratio
streaming / full.

``--extract_layers`` times the feature extraction alone for more layers (the cost model's
early exits). ``--dtype_check`` fits k-means on a float32 fit portion as well, and with
another seed, and gives float16 against float32: inertia on the same float32 frames, label
agreement (direct, and after matching clusters one to one), and the agreement of float16-
rounded against float32 frames under the same centroids; two float32 seeds give k-means' own
spread. The last line is every figure as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SOURCES = ("mfcc", "small:2", "base:6")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m espnet_hubert_ae.bench targets", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--datadir", type=Path, default=Path("egs2/librilight_ae/dump/raw"),
                   help="folder of data dirs (stage 2's output)")  # fmt: skip
    p.add_argument("--train_set", default="train_pretrain", help="set k-means is fitted on (and labelled)")
    p.add_argument("--eval_sets", nargs="*", default=["dev_clean"], help="other sets labelled")
    p.add_argument("--minutes", type=float, default=30.0,
                   help="audio of the train set used, from its first utterances (0: all of it)")
    p.add_argument("--sources", nargs="+", default=list(SOURCES), help="mfcc or <model preset>:<layer>")
    p.add_argument("--k_mfcc", type=int, default=100, help="K for MFCC (HuBERT's first iteration)")
    p.add_argument("--k_layer", type=int, default=500, help="K for layers (HuBERT's second iteration)")
    p.add_argument("--portion", type=float, default=0.1, help="share of the train set k-means is fitted on")
    p.add_argument("--feature_dtype", choices=["float16", "float32"], default="float16")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or 2)
    p.add_argument("--nj", type=int, default=1, help="label shards (in one process)")
    p.add_argument("--extract_layers", nargs="*", default=["base:3", "base:6", "base:9"],
                   help="more <preset>:<layer> whose extraction alone is timed (on 5 minutes)")
    p.add_argument("--dtype_check", choices=["true", "false"], default="true",
                   help="float16 against float32 fits (two more streaming runs per source)")
    p.add_argument("--workdir", type=Path, default=None, help="keep the runs here [a temporary folder]")
    p.add_argument("--extrapolate", type=Path, nargs="+", default=None,
                   help="only print the tables (per hour, and extrapolated to 960 h / 60 kh) from the JSON last "
                        "lines of earlier runs (their figures merged in order)")  # fmt: skip
    return p


# ---------------------------------------------------------------------------------------------
# Data and sources


def subset_sets(args, root: Path) -> tuple[dict[str, Path], dict[str, float]]:
    """The sets to label (the train set cut to ``--minutes``) and their hours of audio."""
    from espnet_hubert_ae.data.datadir import read_ctm, read_datadir, write_datadir

    sets, hours = {}, {}
    for name in [args.train_set, *args.eval_sets]:
        directory = args.datadir / name
        utts = read_datadir(directory)
        if name == args.train_set and args.minutes > 0:
            kept, total = [], 0.0
            for utt in utts:
                if total >= args.minutes * 60:
                    break
                kept.append(utt)
                total += utt.seconds
            ctm = directory / "phones.ctm"
            phones = [s for u in kept for s in read_ctm(ctm).get(u.utt_id, [])] if ctm.is_file() else None
            directory = write_datadir(root / "data" / name, kept, phones=phones)
            utts = kept
        sets[name] = directory
        hours[name] = sum(u.seconds for u in utts) / 3600
    return sets, hours


def source_options(spec: str, root: Path, k: int) -> tuple[list[str], dict]:
    """make_targets options of a source spec, and what it is (a random checkpoint for a layer)."""
    if spec == "mfcc":
        return ["--source", "mfcc", "--k", str(k)], {"source": "mfcc", "dim": 39, "frame_rate": 100}
    preset, layer = spec.split(":")
    checkpoint = random_checkpoint(preset, root / "models" / preset)
    import yaml

    dim = int(yaml.safe_load((checkpoint.parent / "config.yaml").read_text())["encoder_conf"].get("encoder_embed_dim", 768))
    options = ["--source", "layer", "--checkpoint", str(checkpoint), "--layer", layer,
               "--checkpoint_tag", f"random_{preset}", "--k", str(k)]  # fmt: skip
    return options, {"source": f"{preset} layer {layer}", "dim": dim, "frame_rate": 50, "checkpoint": str(checkpoint)}


def random_checkpoint(preset: str, directory: Path) -> Path:
    import yaml

    from espnet_hubert_ae.model.factory import write_random_checkpoint
    from espnet_hubert_ae.model.hubert import ENCODER_NAME
    from espnet_hubert_ae.utils.presets import resolve_preset

    if (directory / "model.pth").is_file():
        return directory / "model.pth"
    config = yaml.safe_load(resolve_preset("model", preset).read_text())
    return write_random_checkpoint(directory, config["encoder_conf"], num_classes=100, seed=1,
                                   encoder=config.get("encoder", ENCODER_NAME))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# One run of make_targets, its disk polled


class DiskPeak:
    """The largest total size of the files under a folder, polled in a thread."""

    def __init__(self, root: Path, interval: float = 0.05):
        self.root, self.interval, self.peak = root, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def size(self) -> int:
        total = 0
        for folder, _, files in os.walk(self.root):
            for name in files:
                try:
                    total += os.stat(os.path.join(folder, name)).st_size
                except FileNotFoundError:
                    pass  # renamed into place meanwhile
        return total

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.size())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.size())


def run_make_targets(out_root: Path, sets: dict[str, Path], train_set: str, options: list[str], args,
                     extra: list[str]) -> dict:  # fmt: skip
    """One make_targets process; returns its summary with the measured wall time and disk peak."""
    out_root.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "espnet_hubert_ae.bin.make_targets", "--datadir", str(next(iter(sets.values())).parent),
            "--sets", *sets, "--train_set", train_set, "--out_root", str(out_root), "--portion", str(args.portion),
            "--nj", str(args.nj), "--seed", "1", *options, *extra]  # fmt: skip
    if len({Path(p).parent for p in sets.values()}) > 1:  # the train subset lies elsewhere: link the others to it
        data = out_root / "data"
        data.mkdir(exist_ok=True)
        for name, path in sets.items():
            (data / name).symlink_to(Path(path).resolve())
        argv[argv.index("--datadir") + 1] = str(data)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY="PASSIVE")
    log = out_root / "make_targets.log"
    with DiskPeak(out_root / "features") as disk, open(log, "w") as f:
        start = time.perf_counter()
        result = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env)
        wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"make_targets failed (exit {result.returncode}); see {log}")
    out_dir = Path(log.read_text().strip().splitlines()[-1])
    summary = json.loads((out_dir / "summary.json").read_text())
    return {"out_dir": str(out_dir), "wall_s": wall, "disk_peak_bytes": disk.peak, "summary": summary}


def path_figures(run: dict, hours: dict[str, float], train_set: str, portion_hours: float) -> dict:
    """A run's costs, totals and per hour of audio."""
    cost = run["summary"]["cost"]
    total_hours = sum(hours.values())
    extract = sum(c.get("cpu_s", 0.0) for c in cost["features"].values())
    labels = sum(c.get("cpu_s", 0.0) for c in cost["labels"].values())
    fit = float(cost["kmeans"].get("cpu_s", 0.0))
    return {
        "wall_s": round(run["wall_s"], 2), "cpu_s": round(extract + fit + labels, 2),
        "dump_cpu_s": round(extract, 2), "kmeans_cpu_s": round(fit, 2), "labels_cpu_s": round(labels, 2),
        "disk_peak_bytes": run["disk_peak_bytes"], "feature_bytes": run["summary"]["feature_bytes"],
        "peak_memory_mb": run["summary"]["peak_memory_mb"],
        "disk_bytes_per_hour": round(run["disk_peak_bytes"] / total_hours),
        "dump_cpu_s_per_hour_dumped": round(extract / (total_hours if run["summary"]["keep_features"] else portion_hours), 2),
        "labels_cpu_s_per_hour": round(labels / total_hours, 2),
        "kmeans_cpu_s_per_fit_hour": round(fit / portion_hours, 2),
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# float16 against float32


def _labels_of(out_dir: Path) -> np.ndarray:
    from espnet_hubert_ae.targets.labels import read_label_text

    found = []
    for text in sorted(out_dir.glob("*/text")):
        labels = read_label_text(text)
        found += [labels[u] for u in sorted(labels)]
    return np.concatenate(found)


def matched_agreement(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Share of frames with the same cluster once the clusters of ``b`` are matched one to one with
    those of ``a`` (Hungarian assignment on their contingency table): agreement up to renaming."""
    from scipy.optimize import linear_sum_assignment

    table = np.zeros((k, k), dtype=np.int64)
    np.add.at(table, (a, b), 1)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(a))


def dtype_check(runs: dict[str, dict], k: int) -> dict:
    """float16 against float32 fits of the same source (see the module docstring)."""
    from espnet_hubert_ae.targets.features import FeatureSet, round_to
    from espnet_hubert_ae.targets.kmeans import ArrayFrames, KMeansModel

    dirs = {name: Path(run["out_dir"]) for name, run in runs.items()}
    models = {name: KMeansModel.load(d / "kmeans") for name, d in dirs.items()}
    fit32 = FeatureSet(runs["float32"]["summary"]["feature_dirs"][0])
    frames = np.concatenate([a for _, a in fit32.iter_chunks()])
    inertia = {name: model.inertia(ArrayFrames(frames)) for name, model in models.items()}
    labels = {name: _labels_of(d) for name, d in dirs.items()}
    reference = models["float32"]
    rounding = float(np.mean(reference.assign(frames)[0] == reference.assign(round_to(frames, "float16"))[0]))
    return {
        "k": k, "fit_frames": int(len(frames)),
        "inertia_float32": round(inertia["float32"], 6), "inertia_float16": round(inertia["float16"], 6),
        "inertia_float32_seed2": round(inertia["float32_seed2"], 6),
        "inertia_rel_diff_float16": round(inertia["float16"] / inertia["float32"] - 1, 6),
        "inertia_rel_diff_seed2": round(inertia["float32_seed2"] / inertia["float32"] - 1, 6),
        "agreement_float16_direct": round(float(np.mean(labels["float16"] == labels["float32"])), 6),
        "agreement_float16_matched": round(matched_agreement(labels["float32"], labels["float16"], k), 6),
        "agreement_seed2_matched": round(matched_agreement(labels["float32"], labels["float32_seed2"], k), 6),
        "agreement_rounding_same_centroids": round(rounding, 6),
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Extraction alone


def extraction_cost(spec: str, sets: dict[str, Path], root: Path, threads: int, seconds: float = 300.0) -> dict:
    """CPU seconds per hour of audio of one source's features alone, on about ``seconds`` of audio."""
    from espnet_hubert_ae.data.datadir import read_datadir
    from espnet_hubert_ae.targets.features import DEFAULT_BATCH_SECONDS, batch_samples_for, compute_batch, plan_batches
    from espnet_hubert_ae.targets.sources import MFCC, FeatureExtractor, Layer
    from espnet_hubert_ae.utils.cost import CostMeter

    import torch

    torch.set_num_threads(threads)
    if spec == "mfcc":
        source = MFCC()
    else:
        preset, layer = spec.split(":")
        source = Layer(random_checkpoint(preset, root / "models" / preset), int(layer))
    utts, total = [], 0.0
    for utt in read_datadir(next(iter(sets.values()))):
        if total >= seconds:
            break
        utts.append(utt)
        total += utt.seconds
    extractor = FeatureExtractor(source)
    _ = extractor.dim  # the model loads outside the measurement
    with CostMeter() as meter:
        for batch in plan_batches(utts, batch_samples_for(source, DEFAULT_BATCH_SECONDS)):
            compute_batch(extractor, batch, "float32")
    return {"source": spec, "audio_s": round(total, 1), "cpu_s": round(meter.cost.cpu_s, 2),
            "cpu_s_per_hour": round(meter.cost.cpu_s / total * 3600, 1)}  # fmt: skip


# ---------------------------------------------------------------------------------------------


def bench_source(spec: str, sets, hours, args, root: Path) -> dict:
    k = args.k_mfcc if spec == "mfcc" else args.k_layer
    options, about = source_options(spec, root, k)
    train_hours = hours[args.train_set]
    from espnet_hubert_ae.data.datadir import read_datadir
    from espnet_hubert_ae.targets.streaming import fit_portion

    train_utts = read_datadir(sets[args.train_set])
    chosen = set(fit_portion([u.utt_id for u in train_utts], args.portion, 1))
    fit_utts = [u for u in train_utts if u.utt_id in chosen]
    portion_hours = sum(u.seconds for u in fit_utts) / 3600
    frames = sum(map(frame_count_of(about), (u.num_samples for u in fit_utts)))
    fit_bytes = frames * about["dim"] * (2 if args.feature_dtype == "float16" else 4)

    tag = spec.replace(":", "_L")
    dtype = ["--feature_dtype", args.feature_dtype]
    runs = {
        "full": run_make_targets(root / tag / "full", sets, args.train_set, options, args, [*dtype, "--keep_features"]),
        "streaming": run_make_targets(root / tag / "streaming", sets, args.train_set, options, args, dtype),
    }
    figures = {name: path_figures(run, hours, args.train_set, portion_hours) for name, run in runs.items()}
    centroids_identical, labels_identical = same_targets(*(Path(runs[n]["out_dir"]) for n in ("full", "streaming")),
                                                         list(sets))  # fmt: skip
    result = {
        **about, "k": k, "train_hours": round(train_hours, 4), "hours": round(sum(hours.values()), 4),
        "fit_hours": round(portion_hours, 4), "fit_frames": frames, "fit_portion_bytes": fit_bytes,
        "feature_dtype": args.feature_dtype, "threads": args.threads, **figures,
        "centroids_identical": centroids_identical, "labels_identical": labels_identical,
        "streaming_disk_over_fit_portion": round(runs["streaming"]["disk_peak_bytes"] / fit_bytes, 4),
        "wall_ratio_streaming_over_full": round(runs["streaming"]["wall_s"] / runs["full"]["wall_s"], 4),
        "cpu_ratio_streaming_over_full": round(figures["streaming"]["cpu_s"] / max(figures["full"]["cpu_s"], 1e-9), 4),
        "disk_ratio_streaming_over_full": round(runs["streaming"]["disk_peak_bytes"] / runs["full"]["disk_peak_bytes"], 4),
    }  # fmt: skip
    if args.dtype_check == "true":
        other = "float32" if args.feature_dtype == "float16" else "float16"
        runs[other] = run_make_targets(root / tag / other, sets, args.train_set, options, args,
                                       ["--feature_dtype", other])  # fmt: skip
        runs[args.feature_dtype] = runs["streaming"]
        runs["float32_seed2"] = run_make_targets(root / tag / "float32_seed2", sets, args.train_set,
                                                 options + ["--seed", "2"], args, ["--feature_dtype", "float32"])  # fmt: skip
        result["dtype_check"] = dtype_check({n: runs[n] for n in ("float16", "float32", "float32_seed2")}, k)
    return result


def same_targets(a: Path, b: Path, set_names: list[str]) -> tuple[bool, bool]:
    """Whether two target directories hold the same centroids, and byte for byte the same labels
    of every set."""
    centroids = bool(np.array_equal(np.load(a / "kmeans" / "centroids.npy"), np.load(b / "kmeans" / "centroids.npy")))
    labels = all((a / s / "text").read_bytes() == (b / s / "text").read_bytes() for s in set_names)
    return centroids, labels


def frame_count_of(about: dict):
    """Frames a source makes of an utterance (MFCC at 100 Hz; a layer: its model's conv stack)."""
    from espnet_hubert_ae.model.hubert import frame_counter
    from espnet_hubert_ae.targets.mfcc import mfcc_frame_count

    if about["source"] == "mfcc":
        return mfcc_frame_count
    return frame_counter(Path(about["checkpoint"]).parent / "config.yaml")


def print_source(r: dict) -> None:
    gb = 1e9
    print(f"{r['source']} (K={r['k']}, {r['dim']}-d, {r['feature_dtype']}): {r['hours']:.2f} h labelled, "
          f"k-means on {r['fit_hours']:.3f} h ({r['fit_frames']} frames, {r['fit_portion_bytes'] / gb:.3f} GB)")  # fmt: skip
    for name in ("full", "streaming"):
        f = r[name]
        print(f"  {name:9s} wall {f['wall_s']:8.1f} s  CPU {f['cpu_s']:8.1f} s (dumps {f['dump_cpu_s']:.1f}, "
              f"k-means {f['kmeans_cpu_s']:.1f}, labels {f['labels_cpu_s']:.1f})  disk peak "
              f"{f['disk_peak_bytes'] / gb:.3f} GB  memory {f['peak_memory_mb']:.0f} MiB")  # fmt: skip
        print(f"  {'':9s} per hour: disk {f['disk_bytes_per_hour'] / gb:.3f} GB, dump CPU {f['dump_cpu_s_per_hour_dumped']} s "
              f"per hour dumped, labels CPU {f['labels_cpu_s_per_hour']} s, k-means CPU {f['kmeans_cpu_s_per_fit_hour']} s "
              f"per hour fitted")  # fmt: skip
    print(f"  streaming / full: wall x{r['wall_ratio_streaming_over_full']}, CPU x{r['cpu_ratio_streaming_over_full']}, "
          f"disk x{r['disk_ratio_streaming_over_full']}; streaming disk / fit portion x{r['streaming_disk_over_fit_portion']}; "
          f"identical centroids {r['centroids_identical']}, labels {r['labels_identical']}")  # fmt: skip
    if "dtype_check" in r:
        d = r["dtype_check"]
        print(f"  float16 vs float32 fit: inertia {d['inertia_rel_diff_float16']:+.4%} (another seed: "
              f"{d['inertia_rel_diff_seed2']:+.4%}); labels agree {d['agreement_float16_direct']:.4f} directly, "
              f"{d['agreement_float16_matched']:.4f} matched (another seed: {d['agreement_seed2_matched']:.4f}); "
              f"float16 rounding alone under the same centroids: {d['agreement_rounding_same_centroids']:.5f}")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Extrapolation: the per-hour figures applied to a schedule at LibriSpeech and Libri-light scale

STRATEGIES = ("baseline", "progressive")
SCALES = (960.0, 60000.0)  # hours of pretraining audio: LibriSpeech, Libri-light


def schedule_phases(strategy: str, model: str = "base") -> list[tuple[str, int]]:
    """The targets of each phase of a strategy preset with a model preset: ``(source, K)``,
    the source ``mfcc`` or ``<model>:<layer>``."""
    import yaml

    from espnet_hubert_ae.pretrain.schedule import load_schedule
    from espnet_hubert_ae.utils.presets import resolve_preset

    layers = int(yaml.safe_load(resolve_preset("model", model).read_text())["encoder_conf"]["encoder_num_layers"])
    return [("mfcc" if phase.targets.kind == "mfcc" else f"{model}:{phase.targets.resolve(layers)}", int(phase.k))
            for phase in load_schedule(strategy).phases]  # fmt: skip


def cost_model(figures: dict) -> dict:
    """Per-hour rates from one run of this benchmark (its JSON): for MFCC and for base layers.

    ``extract``: CPU s to compute an hour of features (the full path's dumps; other layers of a
    measured model: scaled by their extraction-alone timings); ``read`` and ``search``: CPU s
    per hour to read stored features and to search their nearest centroids at the measured K,
    solved from both paths' labelling -- the full path reads and searches every hour
    (``read + search``), the streaming path computes and searches all but the fit portion and
    reads and searches that (a share ``f`` of the hours): ``(1 - f) extract + f read + search``;
    ``fit``: k-means CPU s per hour of fit audio at the measured K; ``bytes``: disk per hour of
    stored features."""
    rates = {}
    alone = {e["source"]: e["cpu_s_per_hour"] for e in figures.get("extraction", [])}
    for r in figures["sources"]:
        spec = "mfcc" if r["source"] == "mfcc" else r["source"].replace(" layer ", ":")
        hours, share = r["hours"], r["fit_hours"] / r["hours"]
        extract = r["full"]["dump_cpu_s"] / hours
        full_labels, streaming_labels = r["full"]["labels_cpu_s"] / hours, r["streaming"]["labels_cpu_s"] / hours
        search = (streaming_labels - (1 - share) * extract - share * full_labels) / (1 - share)
        search = min(max(0.0, search), full_labels)  # measurement noise kept within what was measured
        rates[spec] = {
            "k": r["k"], "dim": r["dim"], "extract": extract, "read": full_labels - search, "search": search,
            "fit": r["full"]["kmeans_cpu_s"] / r["fit_hours"],
            "bytes": r["full"]["feature_bytes"] / hours, "portion": r["fit_hours"] / r["train_hours"],
        }  # fmt: skip
    for spec, per_hour in alone.items():  # other layers of a measured model: scale its extraction
        measured = next((m for m in rates if m.split(":")[0] == spec.split(":")[0] and m in alone), None)
        if spec not in rates and measured is not None:
            rates[spec] = {**rates[measured], "extract": rates[measured]["extract"] * per_hour / alone[measured]}
    return rates


def extrapolate(figures: dict, portion: float = 0.1) -> list[dict]:
    """Disk peak and CPU hours of each phase of each schedule at each scale, both ways, from the
    measured rates; K scales the search and the fit linearly (distances to K centroids)."""
    rates = cost_model(figures)
    rows = []
    for strategy in STRATEGIES:
        for index, (spec, k) in enumerate(schedule_phases(strategy), 1):
            if spec not in rates:
                continue
            r = rates[spec]
            scale_k = k / r["k"]
            for hours in SCALES:
                fit_hours = hours * portion
                fit = r["fit"] * scale_k * fit_hours
                search = hours * r["search"] * scale_k  # reading a dump does not grow with K
                full = hours * r["extract"] + fit + hours * r["read"] + search
                # the fit portion's features computed once (its dump), then read for its labels
                streaming = hours * r["extract"] + fit + fit_hours * r["read"] + search
                rows.append({
                    "strategy": strategy, "phase": index, "source": spec, "k": k, "hours": hours,
                    "full_disk_tb": hours * r["bytes"] / 1e12, "streaming_disk_tb": fit_hours * r["bytes"] / 1e12,
                    "full_cpu_h": full / 3600, "streaming_cpu_h": streaming / 3600, "fit_cpu_h": fit / 3600,
                })  # fmt: skip
    return rows


def per_hour_rows(results: list[dict]) -> list[dict]:
    """Each source's measured figures per hour of audio, both paths: disk of the stored features
    per hour stored, CPU s of extraction per hour stored, of k-means per hour fitted, of labels
    (with the streaming path's extraction) and of everything per hour labelled."""
    rows = []
    for r in results:
        for path in ("full", "streaming"):
            f = r[path]
            stored = r["hours"] if path == "full" else r["fit_hours"]
            rows.append({
                "source": r["source"], "k": r["k"], "dim": r["dim"], "path": path, "stored_hours": stored,
                "hours": r["hours"], "disk_peak_mb": f["disk_peak_bytes"] / 1e6,
                "mb_per_stored_hour": f["feature_bytes"] / stored / 1e6,
                "extract_cpu_s_per_stored_hour": f["dump_cpu_s"] / stored,
                "kmeans_cpu_s_per_fit_hour": f["kmeans_cpu_s"] / r["fit_hours"],
                "labels_cpu_s_per_hour": f["labels_cpu_s"] / r["hours"], "cpu_s_per_hour": f["cpu_s"] / r["hours"],
                "peak_memory_mb": f["peak_memory_mb"],
            })  # fmt: skip
    return rows


def print_per_hour(results: list[dict]) -> None:
    print("measured, per hour of audio (labels of the streaming path include computing the features):")
    print("| targets | K | path | features stored | disk peak (MB) | MB per hour stored | extraction CPU s per hour "
          "stored | k-means CPU s per hour fitted | labels CPU s per hour | all CPU s per hour | peak memory (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in per_hour_rows(results):
        print(f"| {r['source']} ({r['dim']}-d) | {r['k']} | {r['path']} | {r['stored_hours']:.3f} of {r['hours']:.3f} h | "
              f"{r['disk_peak_mb']:.1f} | {r['mb_per_stored_hour']:.1f} | {r['extract_cpu_s_per_stored_hour']:.0f} | "
              f"{r['kmeans_cpu_s_per_fit_hour']:.0f} | {r['labels_cpu_s_per_hour']:.0f} | {r['cpu_s_per_hour']:.0f} | "
              f"{r['peak_memory_mb']:.0f} |")  # fmt: skip


def print_extrapolation(rows: list[dict], portion: float = 0.1) -> None:
    print(f"extrapolated from the per-hour figures (train set only, portion {portion:g}, K scaling search and fit):")
    print("| strategy | phase | targets | K | hours | disk full (TB) | disk streaming (TB) | CPU h full | "
          "CPU h streaming | of which k-means |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['strategy']} | {r['phase']} | {r['source']} | {r['k']} | {r['hours']:g} | {r['full_disk_tb']:.3g} | "
              f"{r['streaming_disk_tb']:.3g} | {r['full_cpu_h']:.3g} | {r['streaming_cpu_h']:.3g} | {r['fit_cpu_h']:.3g} |")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.extrapolate:
        merged = {"sources": [], "extraction": []}
        for path in args.extrapolate:
            figures = json.loads(path.read_text().strip().splitlines()[-1])
            merged["sources"] += figures["sources"]
            merged["extraction"] += figures["extraction"]
        print_per_hour(merged["sources"])
        print_extrapolation(extrapolate(merged, args.portion), args.portion)
        return 0
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    with tempfile.TemporaryDirectory(prefix="bench_targets.") as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        sets, hours = subset_sets(args, root)
        print(f"sets: " + ", ".join(f"{n} {h:.3f} h" for n, h in hours.items()) + f"; {args.threads} threads",
              flush=True)  # fmt: skip
        results = []
        for spec in args.sources:
            results.append(bench_source(spec, sets, hours, args, root))
            print_source(results[-1])
            sys.stdout.flush()
        extraction = [extraction_cost(spec, sets, root, args.threads) for spec in args.extract_layers]
        for e in extraction:
            print(f"extraction alone, {e['source']}: {e['cpu_s_per_hour']} CPU s per hour of audio "
                  f"({e['audio_s']} s measured)")  # fmt: skip
    ok = all(r["labels_identical"] and r["centroids_identical"] for r in results)
    print_per_hour(results)
    table = extrapolate({"sources": results, "extraction": extraction}, args.portion)
    if table:
        print_extrapolation(table, args.portion)
    print(json.dumps({"benchmark": "targets", "sets": {n: round(h, 4) for n, h in hours.items()},
                      "sources": results, "extraction": extraction, "identical": ok}))  # fmt: skip
    return 0 if ok else 1
