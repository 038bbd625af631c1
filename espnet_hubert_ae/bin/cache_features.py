"""Stage 8: extract every hidden state of upstreams once per data set, for frozen downstreams.

    python -m espnet_hubert_ae.bin.cache_features --upstreams fbank progressive/p4/step120 \\
        --sets dump/raw/train_10h dump/raw/dev_clean --cache_root exp/features

An upstream is ``fbank`` (the 80-d log-mel control), a registered checkpoint name or a
checkpoint .pth (config.yaml beside it). Each (upstream, set) goes to
``<cache_root>/<upstream>/<set>/`` (format: ``espnet_hubert_ae.asr.cache``); finished ones
are reused, interrupted ones resume. ``--nj N --job J`` takes every N-th upstream from the
J-th (1-based), so N jobs share the upstreams without sharing a cache.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from espnet_hubert_ae.asr.cache import DTYPES, SHARD_UTTERANCES, ensure_cache
from espnet_hubert_ae.asr.sources import feature_source
from espnet_hubert_ae.defaults import CACHE_DTYPE
from espnet_hubert_ae.utils.cli import cli_main, limit_threads

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstreams", nargs="+", required=True, help="fbank, registered names or checkpoint .pth files")
    p.add_argument("--sets", type=Path, nargs="+", required=True, help="data directories (wav.scp)")
    p.add_argument("--cache_root", type=Path, default=Path("exp/features"))
    p.add_argument("--dtype", choices=DTYPES, default=CACHE_DTYPE,
                   help="stored precision (float16: kaldiio's numpy arks, half the size)")
    p.add_argument("--shard_utterances", type=int, default=SHARD_UTTERANCES,
                   help="utterances per shard (the unit of resumption)")
    p.add_argument("--nj", type=int, default=1, help="number of jobs sharing the upstreams")
    p.add_argument("--job", type=int, default=1, help="this job's index, 1..nj")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 1 <= args.job <= args.nj:
        raise ValueError(f"--job {args.job} must be between 1 and --nj {args.nj}")
    limit_threads()
    for upstream in args.upstreams[args.job - 1:: args.nj]:
        source = feature_source(upstream)
        for datadir in args.sets:
            info = ensure_cache(source, datadir, args.cache_root, args.dtype, args.shard_utterances)
            logger.info("%s / %s: %d utterances, %d x %d values per frame, %s", upstream, datadir.name,
                        info.utterances, info.num_layers, info.layer_dim, info.directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
