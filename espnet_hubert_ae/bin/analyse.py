"""Stage 7: layerwise analysis of pretraining checkpoints on a data set with alignments.

    python -m espnet_hubert_ae.bin.analyse --data dump/raw/dev_clean \\
        --outdir exp/analysis/dev_clean --checkpoints all --reference_strategy baseline
    python -m espnet_hubert_ae.bin.analyse --data data/dev_clean --outdir /tmp/an \\
        --checkpoints progressive_tiny_120/p2/step60 exp/pretrain/x/model.pth --metrics mel_cca phone_probe

Checkpoints are names registered by stage 6 (``all``: every registered one) or checkpoint
files (``config.yaml`` beside them; a registered file goes by its name, another by its folder
and stem). Per layer it computes PWCCA with the log-mel input, with
phone and word identity and (given --word_embeddings) with word embeddings, a linear phone
probe, and k-means cluster quality; writes one JSON per checkpoint and metric, a combined
table, summary statistics and plots. Metrics already computed with the same settings are
read from the output directory instead of being computed again.

The probe and the clusters train on some speakers and are tested on the others (utt2spk),
once per seed of --seeds, all on the same frame sample; the single-frame log-mel and MFCC
inputs are measured the same way, once per data set (<outdir>/controls/).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from espnet_hubert_ae.defaults import REFERENCE_STRATEGY
from espnet_hubert_ae.utils.cli import cli_main, limit_threads
from espnet_hubert_ae.utils.seeds import parse_seeds

logger = logging.getLogger("analyse")


def build_parser() -> argparse.ArgumentParser:
    from espnet_hubert_ae.analysis.config import DEFAULT_METRICS, METRICS, AnalysisConfig

    config = AnalysisConfig()  # every default of the analysis is declared there
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="data directory with phones.ctm / words.ctm")
    p.add_argument("--outdir", type=Path, required=True, help="analysis directory of this data set")
    p.add_argument("--checkpoints", nargs="+", required=True,
                   help="registered names, checkpoint .pth files, or 'all' (every registered checkpoint)")
    p.add_argument("--registry", type=Path, default=None, help="upstream registry (default: exp/upstreams.json upward)")
    p.add_argument("--metrics", nargs="+", choices=METRICS, default=None,
                   help=f"default: {' '.join(DEFAULT_METRICS)} (+ semantic_cca with --word_embeddings)")
    p.add_argument("--max_utterances", type=int, default=config.max_utterances,
                   help="utterances analysed, a seeded sample (0: all)")
    p.add_argument("--seed", type=int, default=config.seed,
                   help="seed of the samples (utterances, instances, folds, frames), the same for every seed below")
    p.add_argument("--seeds", nargs="+", default=[str(s) for s in config.seeds],
                   help='speaker splits of the probe and the clusters, one per seed, e.g. --seeds "1 2 3"; '
                        "results are mean and standard deviation over them")
    p.add_argument("--device", default="cpu")
    p.add_argument("--num_threads", type=int, default=None, help="torch threads (default: OMP_NUM_THREADS)")
    p.add_argument("--metric_threads", type=int, default=1,
                   help="layers whose metrics are computed at once, one thread each (e.g. the cores)")
    p.add_argument("--blas_threads", type=int, default=1,
                   help="BLAS threads of one layer's metrics, with --metric_threads 1 (more only on an otherwise idle machine)")
    p.add_argument("--layer_group", type=int, default=config.layer_group,
                   help="layers per pass over the data (bounds memory on large sets; default: all in one pass)")
    g = p.add_argument_group("CCA protocol")
    g.add_argument("--n_folds", type=int, default=config.n_folds)
    g.add_argument("--n_trials", type=int, default=config.n_trials)
    g.add_argument("--num_phones", type=int, default=config.num_phones,
                   help="keep the N most frequent phones (default: all)")
    g.add_argument("--rare_phones", choices=["error", "drop"], default=config.rare_phones,
                   help="phones with fewer instances than folds: fail (default), or leave them out (small corpora)")
    g.add_argument("--phone_instances", type=int, default=config.phone_instances,
                   help="at most this many instances per phone")
    g.add_argument("--num_words", type=int, default=config.num_words, help="keep the N most frequent words")
    g.add_argument("--word_instances", type=int, default=config.word_instances,
                   help="at most this many instances per word")
    g.add_argument("--word_embeddings", type=Path, default=None, help="GloVe text file for the semantic view")
    g.add_argument("--word_embedding_dim", type=int, default=config.word_embedding_dim,
                   help="expected embedding dimension")
    g.add_argument("--min_labels", type=int, default=config.min_labels,
                   help="a phone or word view with fewer qualifying labels (an instance per fold) is refused")
    g = p.add_argument_group("probe and clusters")
    g.add_argument("--probe_frames", type=int, default=config.probe_frames,
                   help="frames sampled for the probe and k-means")
    g.add_argument("--test_speakers", type=float, default=config.test_speakers,
                   help="share of the speakers whose frames test the probe and the clusters")
    g.add_argument("--kmeans_k", type=int, default=config.kmeans_k, help="clusters for the cluster-quality metric")
    g = p.add_argument_group("summary")
    g.add_argument("--reference_strategy", default=REFERENCE_STRATEGY,
                   help="strategy whose final score defines steps-to-target (none when it has no analysed checkpoint)")
    g.add_argument("--target_layer", type=int, default=None, help="layer scored for steps-to-target (default: best)")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    limit_threads(args.num_threads)
    from espnet_hubert_ae.analysis.config import DEFAULT_METRICS, AnalysisConfig
    from espnet_hubert_ae.analysis.controls import analyse_controls
    from espnet_hubert_ae.analysis.layerwise import MetricThreads, analyse_checkpoint
    from espnet_hubert_ae.analysis.overview import write_report
    from espnet_hubert_ae.analysis.sampling import DataPlan
    from espnet_hubert_ae.upstream.registry import open_registry

    try:
        threads = MetricThreads(layers=args.metric_threads, blas=args.blas_threads)
    except ValueError as err:
        raise ValueError(f"--metric_threads {args.metric_threads} / --blas_threads {args.blas_threads}: {err}") from None

    metrics = args.metrics or DEFAULT_METRICS + (("semantic_cca",) if args.word_embeddings else ())
    config = AnalysisConfig(
        metrics=tuple(metrics),
        max_utterances=args.max_utterances or None,
        n_folds=args.n_folds,
        n_trials=args.n_trials,
        num_phones=args.num_phones,
        rare_phones=args.rare_phones,
        phone_instances=args.phone_instances,
        num_words=args.num_words,
        word_instances=args.word_instances,
        word_embeddings=None if args.word_embeddings is None else str(args.word_embeddings),
        word_embedding_dim=args.word_embedding_dim,
        min_labels=args.min_labels,
        probe_frames=args.probe_frames,
        test_speakers=args.test_speakers,
        seeds=tuple(parse_seeds(args.seeds)),
        kmeans_k=args.kmeans_k,
        layer_group=args.layer_group,
        seed=args.seed,
    )
    refs = open_registry(args.registry).select(args.checkpoints)
    plan = DataPlan(args.data, config)
    plan.check()  # bad alignments / embeddings fail here, before any model runs
    controls = analyse_controls(plan, args.outdir, threads)
    results = [
        analyse_checkpoint(ref, plan, args.outdir, device=args.device, threads=threads, controls=controls)
        for ref in refs
    ]
    write_report(results, args.outdir, args.reference_strategy, args.target_layer, controls)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
