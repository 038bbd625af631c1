"""The defaults that the recipe and the Python command lines share, each declared here and only here.

The Python tools take their option defaults from this module; ``run.sh`` and ``local/data.sh``
read it once, before they parse their options, as shell assignments (every constant below as
``default_<name in lower case>``; a per-corpus one as ``default_<name>_builtin`` and
``default_<name>_librispeech``)::

    python -m espnet_hubert_ae.defaults

so a direct call of a tool and a recipe run measure the same thing, and ``./run.sh --help``
prints these values. A benchmark that uses a size of its own says so in its ``--help``.
"""

from __future__ import annotations

import shlex
import sys
from typing import NamedTuple


class ByCorpus(NamedTuple):
    """A default that depends on the corpus: the built-in one (CPU-sized) and LibriSpeech / Libri-light."""

    builtin: str
    librispeech: str


# --- Data (stages 1-2) ---------------------------------------------------------------------
BUILTIN_MINUTES = 120.0  # built-in corpus: minutes of audio in the pretraining set
LIBRISPEECH_PRETRAIN_SPLITS = ("train-clean-100",)  # LibriSpeech splits pooled into the pretraining set
PRETRAIN_SET = "train_pretrain"  # the pretraining set, the one set filtered by length
VALID_SET = "dev_clean"  # pretraining's validation set and stages 8-9's model selection
EVAL_SETS = ("dev_clean", "dev_other", "test_clean", "test_other")  # the standard evaluation sets
FINETUNE_SETS = ("train_10h", "train_1h", "train_10min")  # the Libri-light fine-tuning sets
MIN_SECONDS = 1.0  # pretraining utterances shorter than this are excluded
MAX_SECONDS = 30.0  # pretraining utterances longer than this are excluded
SEED = 1  # the seed of every stage's sampling and initialisation
SEEDS = (1, 2)  # evaluations with a spread (probe speaker splits, downstream trainings): mean ± std over these

# --- Pretraining (stages 4-5) --------------------------------------------------------------
STRATEGIES = ("baseline", "progressive")  # the strategies a recipe run compares
MODEL = ByCorpus("mel_small", "base")  # model preset (built-in: the log-mel family, see conf/model/mel_small.yaml)
BUILTIN_PRETRAIN_STEPS = 1200  # built-in corpus: the budget (steps of the reference strategy) when none is given
BUILTIN_SNAPSHOT_EVERY = 300  # built-in corpus at that budget: a snapshot every this many global steps
BUDGET = "ratio"  # how a budget is shared: ratio (one factor for every strategy) or equal
REFERENCE_STRATEGY = "baseline"  # whose budget --pretrain_steps is, and whose final score is the target
KMEANS_PORTION = 0.1  # share of the pretraining utterances k-means is fitted on (fairseq, ESPnet: 10%)
FEATURE_DTYPE = "float16"  # precision of the stored k-means features (README, "Targets at scale": measured)
KEEP_FEATURES = False  # store every set's k-means features whole (True) or only the fit portion's, labels by streaming

# --- Analysis (stage 7) and report (stage 10) ----------------------------------------------
ANALYSIS_SET = "dev_clean"  # the set the layerwise analysis measures (needs phone and word alignments)

# --- Downstream evaluations (stages 8-9) ---------------------------------------------------
ASR_CHECKPOINTS_PER_RUN = 3  # stage 8 ASR: checkpoints of each run, spread over its steps, the last included
CACHE_DTYPE = "float16"  # precision of the cached hidden states
SUPERB_CONFIG = ByCorpus("superb_tiny", "superb")  # stage 8 ASR template (conf/asr/)
PR_CONFIG = ByCorpus("pr_tiny", "pr")  # stage 8 phoneme-recognition template (conf/asr/)


def shell_value(value) -> str:
    """A default as the shell sees it: a list as its words separated by spaces, a truth value as
    true or false (what the recipe's options take)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return " ".join(str(v) for v in value)
    return str(value)


def shell_assignments() -> list[str]:
    """``default_<name>=<value>`` for every default above, quoted for ``eval``."""
    lines = []
    for name, value in globals().items():
        if not name.isupper():
            continue
        if isinstance(value, ByCorpus):
            pairs = [(f"{name}_{corpus}", v) for corpus, v in value._asdict().items()]
        else:
            pairs = [(name, value)]
        lines += [f"default_{key.lower()}={shlex.quote(shell_value(v))}" for key, v in pairs]
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        print(f"usage: python -m espnet_hubert_ae.defaults\n\n{__doc__}", file=sys.stderr)
        return 0 if argv[0] in ("-h", "--help") else 2
    print("\n".join(shell_assignments()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
