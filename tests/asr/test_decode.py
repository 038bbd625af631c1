"""Greedy CTC decoding on fixed logits: best path, repeats merged, blanks dropped, padding ignored."""

from __future__ import annotations

import torch

from espnet_hubert_ae.asr.decode import greedy_ctc

BLANK, A, B, C = 0, 1, 2, 3


class FixedLogits(torch.nn.Module):
    """An ASR model whose encoder always gives the same frames, read by ESPnet's own CTC layer
    with an identity projection, so the CTC logits are exactly the frames given."""

    def __init__(self, logits: torch.Tensor, valid_frames: int):
        super().__init__()
        from espnet2.asr.ctc import CTC

        self.logits, self.valid_frames = logits, valid_frames
        vocab = logits.shape[-1]
        self.ctc = CTC(odim=vocab, encoder_output_size=vocab)
        with torch.no_grad():
            self.ctc.ctc_lo.weight.copy_(torch.eye(vocab))
            self.ctc.ctc_lo.bias.zero_()

    def encode(self, speech, lengths):
        return self.logits[None], torch.tensor([self.valid_frames])


def _frames(best: list[int], vocab: int = 4) -> torch.Tensor:
    """Logits whose best token per frame is ``best`` (the runner-up a close second)."""
    logits = torch.full((len(best), vocab), -1.0)
    for t, token in enumerate(best):
        logits[t, token] = 2.0
        logits[t, (token + 1) % vocab] = 1.9
    return logits


def test_best_path_merges_repeats_and_drops_blanks():
    path = [BLANK, A, A, BLANK, A, B, B, B, BLANK, C, C, BLANK]
    model = FixedLogits(_frames(path), valid_frames=len(path))
    # repeated frames merge; a blank between two A's keeps both
    assert greedy_ctc(model, torch.zeros(16000)) == [A, A, B, C]


def test_frames_past_the_valid_length_are_padding():
    path = [A, BLANK, B, C, C, A, A]
    model = FixedLogits(_frames(path), valid_frames=4)
    assert greedy_ctc(model, torch.zeros(16000)) == [A, B, C]


def test_all_blank_is_an_empty_hypothesis():
    model = FixedLogits(_frames([BLANK] * 5), valid_frames=5)
    assert greedy_ctc(model, torch.zeros(16000)) == []
