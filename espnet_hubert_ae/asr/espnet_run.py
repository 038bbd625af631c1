"""ESPnet ASR training (``espnet2.bin.asr_train``) on our data directories or feature caches.

ESPnet's asr.sh derives shape files and a token list in earlier stages; here they are
written directly (the utterance lengths are known, and no feature statistics are needed: no
global normalisation is used), then ESPnet's ASR training runs, with its log beside its
outputs, as ``espnet_hubert_ae.bin.asr_train``: ESPnet's own with the project's downstream
components registered. The exact command is saved as ``train.sh`` so a run can be repeated
by hand.

A set is read either as raw audio (``wav.scp``, ESPnet type ``sound``) or as cached hidden
states (``feats.scp``, type ``kaldi_ark``; see :mod:`espnet_hubert_ae.asr.cache`), with
reference transcripts of characters (the set's ``text``) or phones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

from espnet_hubert_ae.asr.tokens import CHARS, Units, build_token_list, check_transcripts, write_token_list
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
# asr.sh's fold lengths for raw audio, feature frames and character text (folded batches).
FOLD_LENGTHS = {"sound": 80000, "kaldi_ark": 800}
TEXT_FOLD_LENGTH = 150


class TrainingError(RuntimeError):
    """ESPnet training failed; the message points at its log."""


@dataclasses.dataclass(frozen=True)
class SetData:
    """One data set as ESPnet's ASR task reads it."""

    datadir: Path  # the data directory: utterances, audio, character transcripts
    speech: Path  # wav.scp (raw audio) or a feature cache's feats.scp
    speech_type: str  # ESPnet's data type: "sound" or "kaldi_ark"
    speech_shape: Path | None  # the cache's shape file; None: written from utt2num_samples
    text: Path  # reference transcripts in the experiment's units

    @property
    def name(self) -> str:
        return self.datadir.name


def audio_set(datadir: str | os.PathLike, text: str | os.PathLike | None = None) -> SetData:
    """A data directory read as raw audio, with its own ``text`` unless ``text`` is given."""
    datadir = Path(datadir)
    return SetData(datadir, datadir / "wav.scp", "sound", None, Path(text) if text else datadir / "text")


def cached_set(datadir: str | os.PathLike, cache, text: str | os.PathLike | None = None) -> SetData:
    """A data directory read from its feature cache (a :class:`~espnet_hubert_ae.asr.cache.CacheInfo`)."""
    datadir = Path(datadir)
    return SetData(datadir, cache.feats_scp, "kaldi_ark", cache.shape_file, Path(text) if text else datadir / "text")


def transcripts_of(datadir: str | os.PathLike) -> dict[str, str]:
    """The ``text`` of a data directory; a set without one cannot train or score ASR."""
    path = Path(datadir) / "text"
    if not path.is_file():
        raise DataDirError(f"{datadir}: no transcripts ({path} missing); ASR needs a labelled set")
    return read_table(path)


def write_shape_files(data: SetData, out_dir: str | os.PathLike, units: Units = CHARS) -> tuple[Path, Path]:
    """The speech shape file (samples, or the cache's frames) and ``text_shape`` (tokens) of a set."""
    out_dir = Path(out_dir)
    texts = read_table(data.text)
    speech_shape, text_shape = data.speech_shape, out_dir / "text_shape"
    if speech_shape is None:
        samples = read_table(data.datadir / "utt2num_samples")
        speech_shape = out_dir / "speech_shape"
        atomic_write_text(speech_shape, "".join(f"{u} {samples[u]}\n" for u in sorted(samples)))
    # One dimension only: with batch_type numel a second (vocabulary) dimension would count
    # every token as many times as there are tokens in the list.
    atomic_write_text(text_shape, "".join(f"{u} {max(1, len(units.tokenize(texts[u])))}\n" for u in sorted(texts)))
    return speech_shape, text_shape


def prepare_tokens(token_list_path: str | os.PathLike, train: SetData, valid: SetData,
                   token_text_files: Sequence[str | os.PathLike] = (), units: Units = CHARS) -> list[str]:
    """Write the token list of the training transcripts (and of ``token_text_files``).

    Training and validation transcripts must be expressible with it: ESPnet would turn other
    units into ``<unk>`` without a word.
    """
    texts = list(read_table(train.text).values())
    for extra in token_text_files:
        texts += read_table(extra).values()
    tokens = build_token_list(texts, units)
    check_transcripts(read_table(train.text), tokens, f"{train.text} (training set)", units=units)
    check_transcripts(read_table(valid.text), tokens, f"{valid.text} (validation set)", units=units)
    write_token_list(token_list_path, tokens)
    return tokens


def asr_train_command(
    *,
    config: Path,
    output_dir: Path,
    token_list: Path,
    train: SetData,
    valid: SetData,
    train_shapes: tuple[Path, Path],
    valid_shapes: tuple[Path, Path],
    units: Units = CHARS,
    ngpu: int = 0,
    seed: int = 1,
    init_param: str | None = None,
) -> list[str]:
    """The training command line for our data layout and a generated config."""
    cmd = [
        sys.executable, "-m", "espnet_hubert_ae.bin.asr_train",
        "--config", str(config),
        "--output_dir", str(output_dir),
        "--token_list", str(token_list),
        "--token_type", units.token_type,
        "--use_preprocessor", "true",
        "--non_linguistic_symbols", "none",
        "--cleaner", "none",
        "--g2p", "none",
        "--train_data_path_and_name_and_type", f"{train.speech},speech,{train.speech_type}",
        "--train_data_path_and_name_and_type", f"{train.text},text,text",
        "--valid_data_path_and_name_and_type", f"{valid.speech},speech,{valid.speech_type}",
        "--valid_data_path_and_name_and_type", f"{valid.text},text,text",
        "--train_shape_file", str(train_shapes[0]),
        "--train_shape_file", str(train_shapes[1]),
        "--valid_shape_file", str(valid_shapes[0]),
        "--valid_shape_file", str(valid_shapes[1]),
        "--fold_length", str(FOLD_LENGTHS[train.speech_type]),
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
    """Train unless ``output_dir`` is done; returns the output directory.

    ``cmd`` is the command line of :func:`asr_train_command`. It is saved as ``train.sh`` and
    run in this process (its arguments go to ESPnet's ``ASRTask.main``): a job that trains
    many downstreams (seeds, upstreams) then imports ESPnet once, and that import alone costs
    about 20 s of CPU, more than training a small downstream on cached features. The log is
    ``output_dir/train.log``; an interrupted run resumes from ESPnet's last checkpoint on the
    next call.
    """
    from espnet_hubert_ae.asr.components import train

    output_dir.mkdir(parents=True, exist_ok=True)
    if done_marker(output_dir).exists():
        logger.info("training in %s is done already", output_dir)
        return output_dir
    script = "#!/usr/bin/env bash\n" + " \\\n    ".join(shlex.quote(c) for c in cmd) + "\n"
    atomic_write_text(output_dir / "train.sh", script)
    log_path = output_dir / "train.log"
    logger.info("training %s (log: %s)", output_dir, log_path)
    start = time.time()
    try:
        with _output_to(log_path, cmd), _argv(cmd[2:]):
            train(cmd[3:])
    except (Exception, SystemExit) as err:  # ESPnet exits on bad options and raises on failures
        raise TrainingError(f"ESPnet ASR training failed ({err!r}); see {log_path}:\n{_tail(log_path)}") from None
    model_file(output_dir)  # fails clearly if training left no model
    done_marker(output_dir).touch()
    logger.info("training finished in %.0f s", time.time() - start)
    return output_dir


@contextlib.contextmanager
def _argv(argv: list[str]):
    """``sys.argv`` of the block (ESPnet logs it as its command line)."""
    saved, sys.argv = sys.argv, list(argv)
    try:
        yield
    finally:
        sys.argv = saved


@contextlib.contextmanager
def _output_to(log_path: Path, cmd: list[str]):
    """Send logging, stdout and stderr of the block to ``log_path`` (appended), then restore."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"# {' '.join(shlex.quote(c) for c in cmd)}\n")
        log.flush()
        handler = logging.StreamHandler(log)
        handler.setFormatter(logging.Formatter("%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"))
        root.handlers = [handler]
        root.setLevel(logging.INFO)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            root.handlers = handlers
            root.setLevel(level)


def model_file(output_dir: str | os.PathLike, name: str | None = None) -> Path:
    """The model file of a finished training run: ``name``, or the preferred one that exists."""
    output_dir = Path(output_dir)
    candidates = [name] if name else list(MODEL_FILES)
    for candidate in candidates:
        if (output_dir / candidate).is_file():
            return output_dir / candidate
    raise FileNotFoundError(f"{output_dir}: no trained model ({' or '.join(candidates)})")


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])
