"""Stage 9: CTC fine-tuning of a whole pretrained model, optionally with its top layers reset.

    python -m espnet_hubert_ae.bin.finetune --upstream progressive_tiny_120/p2/step60 \\
        --config finetune_10h --train_set dump/raw/train_10h \\
        --valid_set dump/raw/dev_other --eval_sets dump/raw/dev_clean dump/raw/test_clean \\
        --reset_top_layers 2 --seeds "1 2"

The encoder of the pretraining checkpoint (a registered name or a .pth with config.yaml
beside it) starts ESPnet's torchaudio HuBERT encoder; ``--reset_top_layers N``
re-initialises its top N transformer layers first (the direct test of the "autoencoder
behaviour"), differently for each seed. Dev/test sets are decoded greedily and scored (WER,
CER, empty hypotheses); results go to ``<exp_dir>/seed<N>/`` and, over the seeds, to
``<exp_dir>/summary.{json,md}``.

``--upstream fbank`` is the FBANK row of the fine-tuning table: log-mel frames have no
encoder to fine-tune, so the frozen-upstream downstream of stage 8 (``--frozen_config``:
weighted sum, BiLSTM, CTC) is trained on the fine-tuning split instead. The random-init
row is a fine-tuning of the untrained model (``--random_init``).
"""

from __future__ import annotations

import functools

from espnet_hubert_ae.asr.cli import add_cache_options, experiment_parser, run_experiment_cli
from espnet_hubert_ae.asr.pipeline import run_finetune, run_frozen
from espnet_hubert_ae.asr.sources import FBANK
from espnet_hubert_ae.defaults import SUPERB_CONFIG
from espnet_hubert_ae.utils.cli import cli_main
from espnet_hubert_ae.utils.naming import upstream_tag
from espnet_hubert_ae.utils.presets import resolve_preset


def build_parser():
    p = experiment_parser(__doc__, "finetune_10h", "exp/finetune",
                          "<exp_root>/<config name>/<upstream>/<train set>_reset<N> (fbank: <train set>_frozen)")
    p.add_argument("--reset_top_layers", type=int, nargs="+", default=[0],
                   help="re-initialise the top N transformer layers; several values: a sweep, one experiment each")
    p.add_argument("--frozen_config", default=SUPERB_CONFIG.librispeech,
                   help="downstream template of the fbank row, preset or YAML (a cached-feature SUPERB-style config)")
    add_cache_options(p)
    return p


def _variants(resets: list[int], upstream: str, control: str | None) -> list[int | None]:
    """Layers to reset: none for fbank (no encoder), 0 for the random-init model (resetting
    untrained layers changes nothing but their draw), else the sweep."""
    return [None] if upstream == FBANK else [0] if control else resets


def _run(args, upstream: str, control: str | None, reset: int | None):
    exp_parent = args.exp_root / args.config.stem / upstream_tag(upstream)
    if upstream == FBANK:
        return run_frozen(FBANK, args.frozen_config, args.exp_dir or exp_parent / f"{args.train_set.name}_frozen",
                          args.train_set, args.valid_set, args.eval_sets, seeds=args.seeds, kind="finetune",
                          cache_root=args.cache_root, dtype=args.dtype, token_text_dirs=args.token_text_sets,
                          ngpu=args.ngpu, lm=args.lm)
    exp_dir = args.exp_dir or exp_parent / f"{args.train_set.name}_reset{reset}"
    return run_finetune(upstream, args.config, exp_dir, args.train_set, args.valid_set, args.eval_sets,
                        reset_top_layers=reset, seeds=args.seeds, control=control,
                        token_text_dirs=args.token_text_sets, ngpu=args.ngpu, lm=args.lm)


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if any(n < 0 for n in args.reset_top_layers):
        raise ValueError(f"--reset_top_layers must be >= 0, not {args.reset_top_layers}")
    args.frozen_config = resolve_preset("asr", args.frozen_config)
    return run_experiment_cli(args, _run, functools.partial(_variants, list(dict.fromkeys(args.reset_top_layers))))


if __name__ == "__main__":
    raise SystemExit(main())
