"""Stage 1: write the Kaldi-style data directories of a corpus under ``data/``.

    python -m espnet_hubert_ae.bin.prepare_data --data builtin --datadir data --minutes 30
    python -m espnet_hubert_ae.bin.prepare_data --data librispeech --datadir data \\
        --librispeech /corpora/LibriSpeech --librilight_limited /corpora/librispeech_finetuning
"""

from __future__ import annotations

import argparse
from pathlib import Path

from espnet_hubert_ae import defaults
from espnet_hubert_ae.utils.cli import cli_main, limit_threads, split_names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", choices=["builtin", "librispeech"], default="builtin")
    p.add_argument("--datadir", type=Path, default=Path("data"), help="where the data directories go")
    p.add_argument("--seed", type=int, default=defaults.SEED)
    p.add_argument("--nj", type=int, default=1, help="parallel worker processes")
    g = p.add_argument_group("built-in corpus")
    g.add_argument("--minutes", type=float, default=defaults.BUILTIN_MINUTES, help="minutes of audio in train_pretrain")
    g.add_argument("--audio_dir", type=Path, default=None, help="where the generated audio goes")
    g = p.add_argument_group("LibriSpeech / Libri-light (paths from db.sh)")
    g.add_argument("--librispeech", type=Path, default=None, help="LibriSpeech root (db.sh: LIBRISPEECH)")
    g.add_argument("--pretrain_splits", nargs="+", default=list(defaults.LIBRISPEECH_PRETRAIN_SPLITS))
    g.add_argument("--eval_sets", nargs="*", default=None,
                   help="evaluation sets to prepare, each required (default: every one the corpus has)")
    g.add_argument("--finetune_sets", nargs="*", default=None,
                   help="Libri-light sets to prepare, each required (default: every one the corpus has)")
    g.add_argument("--librilight_limited", type=Path, default=None, help="db.sh: LIBRILIGHT_LIMITED")
    g.add_argument("--librilight_unlab", type=Path, default=None, help="db.sh: LIBRILIGHT_UNLAB")
    g.add_argument("--unlab_subset", default=None, help="small, medium or large")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    limit_threads()
    if args.data == "builtin":
        from espnet_hubert_ae.data.builtin import prepare_builtin

        prepare_builtin(args.datadir, minutes=args.minutes, seed=args.seed, nj=args.nj, audio_dir=args.audio_dir)
    else:
        from espnet_hubert_ae.data.librispeech import prepare_librispeech

        if args.librispeech is None:
            raise ValueError("--data librispeech needs the LibriSpeech root: set LIBRISPEECH in db.sh")
        prepare_librispeech(
            args.datadir,
            librispeech=args.librispeech,
            pretrain_splits=args.pretrain_splits,
            eval_sets=split_names(args.eval_sets) or None,
            finetune_sets=split_names(args.finetune_sets) or None,
            librilight_limited=args.librilight_limited,
            librilight_unlab=args.librilight_unlab,
            unlab_subset=args.unlab_subset,
            nj=args.nj,
        )
    (args.datadir / ".corpus").write_text(args.data + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
