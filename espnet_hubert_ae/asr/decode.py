"""Greedy CTC decoding of a data set with a trained ESPnet ASR model.

Greedy decoding is what the model alone predicts: the most likely token per frame, repeats
merged, blanks removed. It is computed here directly from ``model.encode`` and the CTC
layer rather than through ``espnet2.bin.asr_inference``, whose beam search with a CTC prefix
scorer would give the same result at beam 1 only approximately and far more slowly.
Utterances are decoded one at a time: HuBERT's group-norm conv extractor normalises over
time, so padding a batch would change the features. The input is what the model was trained
on: raw audio, or the set's cached hidden states.

n-gram language models are not supported yet; asking for one fails with a clear message.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from espnet_hubert_ae.asr.espnet_run import SetData
from espnet_hubert_ae.asr.tokens import BLANK, CHARS, Units
from espnet_hubert_ae.data.audio import read_audio
from espnet_hubert_ae.data.datadir import DataDirError, read_table
from espnet_hubert_ae.utils.fileio import atomic_open

logger = logging.getLogger(__name__)


class DecodingError(ValueError):
    """A model, an audio file or a decoding option cannot be used."""


def check_lm_supported(lm: str | os.PathLike | None) -> None:
    if lm:
        raise DecodingError(
            f"n-gram LM decoding (--lm {lm}) is not implemented yet: decode without --lm "
            "(greedy CTC), or rescore the hypotheses outside this recipe"
        )


def load_asr_model(train_dir: str | os.PathLike, model_path: str | os.PathLike, device: str = "cpu"):
    """The trained model (eval mode) and its token list."""
    from espnet2.tasks.asr import ASRTask

    from espnet_hubert_ae.asr.components import register

    register()  # models trained on cached features use the project's frontend
    config = Path(train_dir) / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"{config} missing: {train_dir} is not a finished ESPnet ASR training run")
    model, args = ASRTask.build_model_from_file(config, model_path, device)
    model.eval()
    token_list = list(args.token_list)
    if token_list[0] != BLANK:
        raise DecodingError(f"{config}: token 0 is {token_list[0]!r}, not the CTC blank {BLANK}")
    return model, token_list


@torch.no_grad()
def greedy_ctc(model, speech: torch.Tensor) -> list[int]:
    """Token ids of one utterance (1-D float waveform): best path, repeats merged, no blanks."""
    speech = speech.unsqueeze(0)
    lengths = torch.tensor([speech.shape[1]], dtype=torch.long, device=speech.device)
    encoded, encoded_lengths = model.encode(speech, lengths)
    best = model.ctc.argmax(encoded)[0, : int(encoded_lengths[0])]
    ids = torch.unique_consecutive(best)
    return [int(i) for i in ids if int(i) != 0]


def speech_reader(data: SetData) -> Callable[[str], torch.Tensor]:
    """``utterance -> model input``: a waveform, or the utterance's cached features (float32)."""
    if data.speech_type == "sound":
        wavs = read_table(data.speech)
        return lambda utt_id: torch.from_numpy(read_audio(wavs[utt_id], utt_id=utt_id))
    if data.speech_type == "kaldi_ark":
        import kaldiio

        feats = kaldiio.load_scp(str(data.speech))
        return lambda utt_id: torch.from_numpy(np.asarray(feats[utt_id], dtype=np.float32))
    raise DecodingError(f"{data.speech}: cannot decode speech of type {data.speech_type!r}")


def decode_set(model, token_list: list[str], data: SetData, hyp_path: str | os.PathLike, units: Units = CHARS,
               device: str = "cpu") -> Path:
    """Decode every utterance of ``data``; write ``<utt> <hypothesis>`` lines to ``hyp_path``.

    An utterance with nothing recognised gets a line with its id alone (an empty hypothesis).
    """
    utterances = sorted(read_table(data.speech))
    if not utterances:
        raise DataDirError(f"{data.speech}: no utterances to decode")
    read = speech_reader(data)
    with atomic_open(hyp_path) as out:
        for utt_id in tqdm(utterances, desc=f"decode {data.name}", unit="utt", leave=False, mininterval=5.0):
            text = units.detokenize(token_list[i] for i in greedy_ctc(model, read(utt_id).to(device)))
            out.write(f"{utt_id} {text}".rstrip() + "\n")
    return Path(hyp_path)
