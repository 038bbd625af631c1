"""The two downstream ASR evaluations, end to end: config, training, decoding, scoring.

- :func:`run_superb`: SUPERB-style (stage 8): frozen upstream, weighted sum of its hidden
  states, BiLSTM + CTC, through ESPnet's s3prl frontend and ``hubert_ae_local``.
- :func:`run_finetune`: fine-tuning (stage 9): the whole pretrained encoder with CTC,
  optionally with its top N transformer layers re-initialised.

An experiment directory holds::

    experiment.json        what was run (upstream, checkpoint, sets, reset layers...)
    tokens.txt             character token list of the training text
    train_config.yaml      the generated ESPnet config
    shapes/{train,valid}/  ESPnet shape files
    init_encoder.pth       fine-tuning only: the encoder start point
    train/                 ESPnet's output_dir (config.yaml, checkpoints, train.log, train.sh)
    decode_<model>/<set>/  hyp.txt, scores.json, scores.md
    results.json, results.md   WER/CER of every evaluation set

Each step leaves a ``.done`` marker, so a rerun continues where an interrupted one stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Sequence

import torch

from espnet_hubert_ae.asr import espnet_run
from espnet_hubert_ae.asr.configs import finetune_config, load_yaml, superb_config, write_yaml
from espnet_hubert_ae.asr.decode import check_lm_supported, decode_datadir, load_asr_model
from espnet_hubert_ae.asr.reset import write_init_state
from espnet_hubert_ae.asr.scoring import SetScore, format_table, score_files, write_scores
from espnet_hubert_ae.asr.tokens import check_transcripts, read_token_list
from espnet_hubert_ae.utils.fileio import atomic_write_text, done_marker

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class AsrExperiment:
    """Everything one ASR training + evaluation needs."""

    exp_dir: Path
    config: dict
    train_dir: Path
    valid_dir: Path
    eval_dirs: Sequence[Path]
    token_text_dirs: Sequence[Path] = ()
    init_param: str | None = None
    ngpu: int = 0
    seed: int = 1
    model_name: str | None = None  # model file of the training run to decode with
    info: dict = dataclasses.field(default_factory=dict)


def check_sets(*datadirs: Path) -> None:
    """Fail early, naming the set, when an input data directory is missing or unlabelled."""
    for datadir in datadirs:
        if not (Path(datadir) / "wav.scp").is_file():
            raise FileNotFoundError(
                f"data directory {datadir} is missing (no wav.scp): run the data stages for this set, "
                "or check the corpus paths in db.sh"
            )
        espnet_run.transcripts_of(datadir)


def run_experiment(exp: AsrExperiment) -> list[SetScore]:
    """Train (unless done), decode every evaluation set and score it; returns the scores."""
    exp_dir = Path(exp.exp_dir)
    if done_marker(exp_dir).exists():
        logger.info("%s is done already", exp_dir)
        return []
    check_sets(exp.train_dir, exp.valid_dir, *exp.eval_dirs)
    exp_dir.mkdir(parents=True, exist_ok=True)

    train_dir = exp_dir / "train"
    if not done_marker(train_dir).exists():
        atomic_write_text(exp_dir / "experiment.json", json.dumps(_describe(exp), indent=2) + "\n")
        cmd = _prepare_training(exp)
        espnet_run.run_training(cmd, train_dir)
    model_path = espnet_run.model_file(train_dir, exp.model_name)

    device = "cuda" if exp.ngpu > 0 and torch.cuda.is_available() else "cpu"
    model = token_list = None
    scores = []
    decode_root = exp_dir / f"decode_{model_path.stem}"
    for eval_dir in exp.eval_dirs:
        name = Path(eval_dir).name
        set_dir = decode_root / name
        decoded = done_marker(set_dir).exists()
        if not decoded:
            if model is None:
                model, token_list = load_asr_model(train_dir, model_path, device)
            check_transcripts(espnet_run.transcripts_of(eval_dir), token_list, f"{eval_dir}/text", strict=False)
            decode_datadir(model, token_list, eval_dir, set_dir / "hyp.txt", device)
        scores.append(score_files(name, Path(eval_dir) / "text", set_dir / "hyp.txt"))
        if not decoded:
            write_scores(set_dir, scores[-1:], title=f"{exp_dir.name}: {name}")
            done_marker(set_dir).touch()
        logger.info("%s: WER %.2f%% CER %.2f%% (%d utterances, %d words)", scores[-1].name, scores[-1].wer,
                    scores[-1].cer, scores[-1].num_utts, scores[-1].word.ref_len)

    title = f"{exp_dir} ({model_path.name}, greedy CTC)"
    write_scores(exp_dir, scores, title=title)
    os.replace(exp_dir / "scores.json", exp_dir / "results.json")
    os.replace(exp_dir / "scores.md", exp_dir / "results.md")
    done_marker(exp_dir).touch()
    print(format_table(scores, title))
    return scores


def _prepare_training(exp: AsrExperiment) -> list[str]:
    exp_dir = Path(exp.exp_dir)
    token_list = exp_dir / "tokens.txt"
    espnet_run.prepare_tokens(token_list, exp.train_dir, exp.valid_dir, exp.token_text_dirs)
    check_transcripts(espnet_run.transcripts_of(exp.train_dir), read_token_list(token_list), f"{exp.train_dir}/text")
    config = write_yaml(exp_dir / "train_config.yaml", exp.config)
    train_shapes = espnet_run.write_shape_files(exp.train_dir, exp_dir / "shapes" / "train")
    valid_shapes = espnet_run.write_shape_files(exp.valid_dir, exp_dir / "shapes" / "valid")
    return espnet_run.asr_train_command(
        config=config, output_dir=exp_dir / "train", token_list=token_list,
        train_dir=Path(exp.train_dir), valid_dir=Path(exp.valid_dir),
        train_shapes=train_shapes, valid_shapes=valid_shapes,
        ngpu=exp.ngpu, seed=exp.seed, init_param=exp.init_param,
    )


def _describe(exp: AsrExperiment) -> dict:
    return {
        **exp.info,
        "train_set": str(exp.train_dir),
        "valid_set": str(exp.valid_dir),
        "eval_sets": [str(d) for d in exp.eval_dirs],
        "token_text_sets": [str(d) for d in exp.token_text_dirs],
        "init_param": exp.init_param,
        "ngpu": exp.ngpu,
        "seed": exp.seed,
    }


def run_superb(
    upstream: str,
    template: str | os.PathLike,
    exp_dir: str | os.PathLike,
    train_dir: Path,
    valid_dir: Path,
    eval_dirs: Sequence[Path],
    *,
    upstream_name: str = "hubert_ae_local",
    token_text_dirs: Sequence[Path] = (),
    ngpu: int = 0,
    seed: int = 1,
    lm: str | None = None,
) -> list[SetScore]:
    """SUPERB-style ASR on a frozen upstream (a checkpoint path or a registered name)."""
    from espnet_hubert_ae.upstream.registry import resolve_upstream

    check_lm_supported(lm)
    checkpoint, upstream_config = resolve_upstream(upstream)
    # The absolute checkpoint path goes into the config: the training process then needs no
    # registry lookup, and the experiment stays valid if names are registered again.
    config = superb_config(load_yaml(template), str(checkpoint.resolve()), upstream_config, upstream_name)
    exp = AsrExperiment(
        Path(exp_dir), config, Path(train_dir), Path(valid_dir), [Path(d) for d in eval_dirs],
        token_text_dirs=[Path(d) for d in token_text_dirs], ngpu=ngpu, seed=seed,
        info={"kind": "superb", "upstream": upstream, "checkpoint": str(checkpoint), "template": str(template)},
    )
    return run_experiment(exp)


def run_finetune(
    upstream: str,
    template: str | os.PathLike,
    exp_dir: str | os.PathLike,
    train_dir: Path,
    valid_dir: Path,
    eval_dirs: Sequence[Path],
    *,
    reset_top_layers: int = 0,
    token_text_dirs: Sequence[Path] = (),
    ngpu: int = 0,
    seed: int = 1,
    lm: str | None = None,
) -> list[SetScore]:
    """CTC fine-tuning of a pretrained checkpoint, its top ``reset_top_layers`` layers reset."""
    from espnet_hubert_ae.upstream.registry import resolve_upstream

    check_lm_supported(lm)
    checkpoint, pretrain_config = resolve_upstream(upstream)
    exp_dir = Path(exp_dir)
    config = finetune_config(load_yaml(template), pretrain_config)
    init_state = exp_dir / "init_encoder.pth"
    reset_keys: list[str] = []
    if not done_marker(exp_dir / "train").exists():
        check_sets(train_dir, valid_dir, *eval_dirs)
        reset_keys = write_init_state(init_state, checkpoint, pretrain_config, reset_top_layers, seed)
    exp = AsrExperiment(
        exp_dir, config, Path(train_dir), Path(valid_dir), [Path(d) for d in eval_dirs],
        token_text_dirs=[Path(d) for d in token_text_dirs],
        init_param=f"{init_state}::encoder", ngpu=ngpu, seed=seed,
        info={"kind": "finetune", "upstream": upstream, "checkpoint": str(checkpoint), "template": str(template),
              "reset_top_layers": reset_top_layers, "reset_tensors": len(reset_keys)},
    )
    return run_experiment(exp)
