"""Greedy CTC decoding of a data directory with a trained ESPnet ASR model.

Greedy decoding is what the model alone predicts: the most likely token per frame, repeats
merged, blanks removed. It is computed here directly from ``model.encode`` and the CTC
layer rather than through ``espnet2.bin.asr_inference``, whose beam search with a CTC prefix
scorer would give the same result at beam 1 only approximately and far more slowly.
Utterances are decoded one at a time: HuBERT's group-norm conv extractor normalises over
time, so padding a batch would change the features.

n-gram language models are not supported yet; asking for one fails with a clear message.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from tqdm import tqdm

from espnet_hubert_ae.asr.tokens import BLANK, tokens_to_text
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


def decode_datadir(model, token_list: list[str], datadir: str | os.PathLike, hyp_path: str | os.PathLike,
                   device: str = "cpu") -> Path:
    """Decode every utterance of ``datadir``; write ``<utt> <hypothesis>`` lines to ``hyp_path``.

    An utterance with nothing recognised gets a line with its id alone (an empty hypothesis).
    """
    wavs = read_table(Path(datadir) / "wav.scp")
    if not wavs:
        raise DataDirError(f"{datadir}: no utterances to decode")
    with atomic_open(hyp_path) as out:
        for utt_id in tqdm(sorted(wavs), desc=f"decode {Path(datadir).name}", unit="utt", leave=False):
            speech = torch.from_numpy(read_audio(wavs[utt_id], utt_id=utt_id)).to(device)
            text = tokens_to_text(token_list[i] for i in greedy_ctc(model, speech))
            out.write(f"{utt_id} {text}".rstrip() + "\n")
    return Path(hyp_path)
