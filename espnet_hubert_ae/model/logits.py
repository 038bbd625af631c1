"""HuBERT's prediction logits in O(frames x classes) memory instead of O(frames x classes x dim).

torchaudio's ``LogitGenerator`` scores each projected frame against every label embedding
with ``cosine_similarity`` over a ``[classes + 1, frames, final_dim]`` tensor that it builds by
broadcasting (the target's embedding first, then all of them). Forward and backward of that
tensor dominate a small model's step on a CPU and grow with K: at 4 x 192 with 32 s batches a
step took 2.8x longer with K=500 targets than with K=100. The same logits are a normalised
matrix product: cos(x, e_k) = (x / |x|) . (e_k / |e_k|) (norms clamped at 1e-8 as
``cosine_similarity`` clamps them), laid out as torchaudio lays them out: column 0 the target
class, then every class with the target (and any class whose embedding equals the target's) at
-inf, all divided by the temperature 0.1.

:func:`use_matmul_logits` switches a model's generator in place: same parameters and state-dict
keys, so checkpoints stay stock torchaudio/ESPnet ones.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchaudio.models.wav2vec2.components import LogitGenerator

LOGIT_TEMPERATURE = 0.1  # torchaudio's (and fairseq's HuBERT) logit temperature
EPS = 1e-8  # cosine_similarity's norm clamp


def matmul_logits(proj_x: Tensor, target: Tensor, label_embeddings: Tensor) -> Tensor:
    """``[frames, classes + 1]`` logits of ``proj_x`` (``[frames, dim]``) for ``target`` labels."""
    x = proj_x.float()
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(EPS)
    e = label_embeddings.float()
    e = e / e.norm(dim=-1, keepdim=True).clamp_min(EPS)
    scores = x @ e.t()  # [frames, classes]
    target = target.long()
    positive = scores.gather(1, target.unsqueeze(1))
    # Classes to hide among the negatives: the target, and any class sharing its embedding.
    _, group = torch.unique(label_embeddings.detach(), dim=0, return_inverse=True)
    same = group[target].unsqueeze(1) == group.unsqueeze(0)
    negatives = scores.masked_fill(same, float("-inf"))
    return (torch.cat([positive, negatives], dim=1) / LOGIT_TEMPERATURE).type_as(proj_x)


class MatmulLogitGenerator(LogitGenerator):
    """torchaudio's ``LogitGenerator`` with :func:`matmul_logits`."""

    def forward(self, x: Tensor, label: Tensor, mask_m: Tensor, mask_u: Tensor) -> tuple[Tensor | None, Tensor | None]:
        proj_x = self.final_proj(x)
        logit_m = None if self.skip_masked else matmul_logits(proj_x[mask_m], label[mask_m], self.label_embeddings)
        logit_u = None if self.skip_nomask else matmul_logits(proj_x[mask_u], label[mask_u], self.label_embeddings)
        return logit_m, logit_u


def use_matmul_logits(model: nn.Module) -> int:
    """Give every torchaudio ``LogitGenerator`` inside ``model`` the matmul forward; returns how many."""
    switched = 0
    for module in model.modules():
        if type(module) is LogitGenerator:
            module.__class__ = MatmulLogitGenerator
            switched += 1
    return switched
