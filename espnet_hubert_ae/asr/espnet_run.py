"""Stock ESPnet ASR training (``python -m espnet2.bin.asr_train``) on our data directories.

ESPnet's asr.sh derives shape files and a token list in earlier stages; here they are
written directly from the data directories (the utterance lengths are known, and no feature
statistics are needed: no global normalisation is used), then asr_train runs as a child
process with its log beside its outputs. The exact command is saved as ``train.sh`` so a run
can be repeated by hand.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from espnet_hubert_ae.asr.tokens import (
    build_token_list,
    check_transcripts,
    text_to_tokens,
    write_token_list,
)
from espnet_hubert_ae.data.datadir import DataDirError, read_table
from espnet_hubert_ae.utils.fileio import atomic_write_text, done_marker

logger = logging.getLogger(__name__)

# Preference order of the model file used for decoding: ESPnet keeps the best checkpoints by
# the config's best_model_criterion (dev CER here) and averages them.
MODEL_FILES = (
    "valid.cer_ctc.ave.pth",
    "valid.cer_ctc.best.pth",
    "valid.loss.ave.pth",
    "valid.loss.best.pth",
    "latest.pth",
)
# asr.sh's fold lengths for raw audio and character text (used by the folded batch type).
SPEECH_FOLD_LENGTH = 80000
TEXT_FOLD_LENGTH = 150


class TrainingError(RuntimeError):
    """ESPnet training failed; the message points at its log."""


def transcripts_of(datadir: str | os.PathLike) -> dict[str, str]:
    """The ``text`` of a data directory; a set without one cannot train or score ASR."""
    path = Path(datadir) / "text"
    if not path.is_file():
        raise DataDirError(f"{datadir}: no transcripts ({path} missing); ASR needs a labelled set")
    return read_table(path)


def write_shape_files(datadir: str | os.PathLike, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """``speech_shape`` (samples) and ``text_shape`` (characters) of a data directory."""
    datadir, out_dir = Path(datadir), Path(out_dir)
    samples = read_table(datadir / "utt2num_samples")
    texts = transcripts_of(datadir)
    speech_shape, text_shape = out_dir / "speech_shape", out_dir / "text_shape"
    atomic_write_text(speech_shape, "".join(f"{u} {samples[u]}\n" for u in sorted(samples)))
    # One dimension only: with batch_type numel a second (vocabulary) dimension would count
    # every character as many times as there are tokens.
    atomic_write_text(text_shape, "".join(f"{u} {max(1, len(text_to_tokens(texts[u])))}\n" for u in sorted(texts)))
    return speech_shape, text_shape


def prepare_tokens(token_list_path: str | os.PathLike, train_dir: str | os.PathLike,
                   valid_dir: str | os.PathLike, token_text_dirs: Sequence[str | os.PathLike] = ()) -> list[str]:
    """Write the character token list of the training text (and of ``token_text_dirs``).

    Validation transcripts must be expressible with it: ESPnet would turn other characters
    into ``<unk>`` without a word.
    """
    texts = list(transcripts_of(train_dir).values())
    for extra in token_text_dirs:
        texts += transcripts_of(extra).values()
    tokens = build_token_list(texts)
    check_transcripts(transcripts_of(valid_dir), tokens, f"{valid_dir}/text (validation set)")
    write_token_list(token_list_path, tokens)
    return tokens


def asr_train_command(
    *,
    config: Path,
    output_dir: Path,
    token_list: Path,
    train_dir: Path,
    valid_dir: Path,
    train_shapes: tuple[Path, Path],
    valid_shapes: tuple[Path, Path],
    ngpu: int = 0,
    seed: int = 1,
    init_param: str | None = None,
) -> list[str]:
    """The asr_train command line for our data layout and a generated config."""
    cmd = [
        sys.executable, "-m", "espnet2.bin.asr_train",
        "--config", str(config),
        "--output_dir", str(output_dir),
        "--token_list", str(token_list),
        "--token_type", "char",
        "--use_preprocessor", "true",
        "--non_linguistic_symbols", "none",
        "--cleaner", "none",
        "--g2p", "none",
        "--train_data_path_and_name_and_type", f"{train_dir}/wav.scp,speech,sound",
        "--train_data_path_and_name_and_type", f"{train_dir}/text,text,text",
        "--valid_data_path_and_name_and_type", f"{valid_dir}/wav.scp,speech,sound",
        "--valid_data_path_and_name_and_type", f"{valid_dir}/text,text,text",
        "--train_shape_file", str(train_shapes[0]),
        "--train_shape_file", str(train_shapes[1]),
        "--valid_shape_file", str(valid_shapes[0]),
        "--valid_shape_file", str(valid_shapes[1]),
        "--fold_length", str(SPEECH_FOLD_LENGTH),
        "--fold_length", str(TEXT_FOLD_LENGTH),
        "--resume", "true",
        "--ngpu", str(ngpu),
        "--seed", str(seed),
    ]
    if ngpu > 1:
        cmd += ["--multiprocessing_distributed", "true"]
    if init_param:
        cmd += ["--init_param", init_param]
    return cmd


def run_training(cmd: list[str], output_dir: Path) -> Path:
    """Run asr_train unless ``output_dir`` is done; returns the output directory.

    Its log is ``output_dir/train.log``; an interrupted run resumes from ESPnet's last
    checkpoint on the next call.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    if done_marker(output_dir).exists():
        logger.info("training in %s is done already", output_dir)
        return output_dir
    script = "#!/usr/bin/env bash\n" + " \\\n    ".join(shlex.quote(c) for c in cmd) + "\n"
    atomic_write_text(output_dir / "train.sh", script)
    log_path = output_dir / "train.log"
    logger.info("training: %s (log: %s)", " ".join(cmd[1:4]), log_path)
    start = time.time()
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"# {' '.join(shlex.quote(c) for c in cmd)}\n")
        log.flush()
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=_training_env())
    if rc != 0:
        raise TrainingError(f"ESPnet ASR training failed (exit {rc}); see {log_path}:\n{_tail(log_path)}")
    model_file(output_dir)  # fails clearly if training left no model
    done_marker(output_dir).touch()
    logger.info("training finished in %.0f s", time.time() - start)
    return output_dir


def model_file(output_dir: str | os.PathLike, name: str | None = None) -> Path:
    """The model file of a finished training run: ``name``, or the preferred one that exists."""
    output_dir = Path(output_dir)
    candidates = [name] if name else list(MODEL_FILES)
    for candidate in candidates:
        if (output_dir / candidate).is_file():
            return output_dir / candidate
    raise FileNotFoundError(f"{output_dir}: no trained model ({' or '.join(candidates)})")


def _training_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])
