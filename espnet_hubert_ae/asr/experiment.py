"""One downstream training run, end to end: tokens, config, ESPnet training, decoding, scoring.

An experiment directory (one seed) holds::

    experiment.json        what was run (upstream, checkpoint, sets, seed, reset layers...)
    tokens.txt             token list of the training transcripts (characters or phones)
    train_config.yaml      the generated ESPnet config
    shapes/{train,valid}/  ESPnet shape files
    init_encoder.pth       fine-tuning only: the encoder start point
    train/                 ESPnet's output_dir (config.yaml, checkpoints, train.log, train.sh)
    decode_<model>/<set>/  hyp.txt, scores.json, scores.md
    results.json, results.md   error rates of every evaluation set

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
import yaml

from espnet_hubert_ae.asr import espnet_run
from espnet_hubert_ae.asr.configs import write_yaml
from espnet_hubert_ae.asr.decode import decode_set, load_asr_model
from espnet_hubert_ae.asr.espnet_run import SetData
from espnet_hubert_ae.asr.scoring import format_table, score_files, write_scores
from espnet_hubert_ae.asr.tokens import CHARS, Units, check_transcripts
from espnet_hubert_ae.data.datadir import read_table
from espnet_hubert_ae.utils.fileio import atomic_write_text, done_marker

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class AsrExperiment:
    """Everything one training + evaluation needs."""

    exp_dir: Path
    config: dict
    train: SetData
    valid: SetData
    evals: Sequence[SetData]
    units: Units = CHARS
    token_text_files: Sequence[Path] = ()  # more transcripts whose units join the token list
    init_param: str | None = None
    ngpu: int = 0
    seed: int = 1
    model_name: str | None = None  # model file of the training run to decode with
    info: dict = dataclasses.field(default_factory=dict)


def check_sets(*datadirs: Path, labelled: bool = True) -> None:
    """Fail early, naming the set, when an input data directory is missing (or, ``labelled``,
    has no transcripts)."""
    for datadir in datadirs:
        if not (Path(datadir) / "wav.scp").is_file():
            raise FileNotFoundError(
                f"data directory {datadir} is missing (no wav.scp): run the data stages for this set, "
                "or check the corpus paths in db.sh"
            )
        if labelled:
            espnet_run.transcripts_of(datadir)


def run_experiment(exp: AsrExperiment) -> list:
    """Train (unless done), decode every evaluation set and score it; returns the scores
    (empty when the experiment was finished before)."""
    exp_dir = Path(exp.exp_dir)
    _check_same_config(exp_dir, exp.config)
    if done_marker(exp_dir).exists():
        logger.info("%s is done already", exp_dir)
        return []
    exp_dir.mkdir(parents=True, exist_ok=True)

    train_dir = exp_dir / "train"
    if not done_marker(train_dir).exists():
        atomic_write_text(exp_dir / "experiment.json", json.dumps(_describe(exp), indent=2) + "\n")
        espnet_run.run_training(_prepare_training(exp), train_dir)
    model_path = espnet_run.model_file(train_dir, exp.model_name)

    device = "cuda" if exp.ngpu > 0 and torch.cuda.is_available() else "cpu"
    model = token_list = None
    scores = []
    decode_root = exp_dir / f"decode_{model_path.stem}"
    for data in exp.evals:
        set_dir = decode_root / data.name
        decoded = done_marker(set_dir).exists()
        if not decoded:
            if model is None:
                model, token_list = load_asr_model(train_dir, model_path, device)
            check_transcripts(read_table(data.text), token_list, str(data.text), strict=False, units=exp.units)
            decode_set(model, token_list, data, set_dir / "hyp.txt", exp.units, device)
        scores.append(score_files(data.name, data.text, set_dir / "hyp.txt", exp.units))
        if not decoded:
            write_scores(set_dir, scores[-1:], title=f"{exp_dir.name}: {data.name}")
            done_marker(set_dir).touch()
        logger.info("%s: %s", data.name, {k: v for k, v in scores[-1].as_dict().items() if not isinstance(v, dict)})

    title = f"{exp_dir} ({model_path.name}, greedy CTC)"
    write_scores(exp_dir, scores, title=title)
    os.replace(exp_dir / "scores.json", exp_dir / "results.json")
    os.replace(exp_dir / "scores.md", exp_dir / "results.md")
    _record_layer_weights(exp_dir, model_path)
    done_marker(exp_dir).touch()
    print(format_table(scores, title))
    return scores


def _check_same_config(exp_dir: Path, config: dict) -> None:
    """An experiment trained (or started) with another config is refused, never reused or mixed."""
    path = exp_dir / "train_config.yaml"
    if path.is_file() and yaml.safe_load(path.read_text(encoding="utf-8")) != json.loads(json.dumps(config)):
        raise ValueError(f"{exp_dir} holds an experiment with another training config ({path}); remove it, "
                         "or give this one another --exp_root / --expdir")


def _prepare_training(exp: AsrExperiment) -> list[str]:
    exp_dir = Path(exp.exp_dir)
    token_list = exp_dir / "tokens.txt"
    espnet_run.prepare_tokens(token_list, exp.train, exp.valid, exp.token_text_files, exp.units)
    config = write_yaml(exp_dir / "train_config.yaml", exp.config)
    train_shapes = espnet_run.write_shape_files(exp.train, exp_dir / "shapes" / "train", exp.units)
    valid_shapes = espnet_run.write_shape_files(exp.valid, exp_dir / "shapes" / "valid", exp.units)
    return espnet_run.asr_train_command(
        config=config, output_dir=exp_dir / "train", token_list=token_list, train=exp.train, valid=exp.valid,
        train_shapes=train_shapes, valid_shapes=valid_shapes, units=exp.units, ngpu=exp.ngpu, seed=exp.seed,
        init_param=exp.init_param,
    )


def _record_layer_weights(exp_dir: Path, model_path: Path) -> None:
    """Add the learned softmax layer weights of a weighted-sum frontend to results.json."""
    state = torch.load(model_path, map_location="cpu", weights_only=True)
    for key in ("frontend.weights", "frontend.featurizer.weights"):  # cached / live s3prl frontend
        if key in state:
            results = json.loads((exp_dir / "results.json").read_text(encoding="utf-8"))
            results["layer_weights"] = [round(float(w), 4) for w in torch.softmax(state[key].float(), dim=0)]
            atomic_write_text(exp_dir / "results.json", json.dumps(results, indent=2) + "\n")
            return


def _describe(exp: AsrExperiment) -> dict:
    return {
        **exp.info,
        "units": exp.units.name,
        "train_set": str(exp.train.datadir),
        "valid_set": str(exp.valid.datadir),
        "eval_sets": [str(d.datadir) for d in exp.evals],
        "speech": {d.name: {"path": str(d.speech), "type": d.speech_type} for d in (exp.train, exp.valid, *exp.evals)},
        "token_text_files": [str(p) for p in exp.token_text_files],
        "init_param": exp.init_param,
        "ngpu": exp.ngpu,
        "seed": exp.seed,
    }
