"""The matmul logits equal torchaudio's cosine-similarity logits, values and gradients."""

from __future__ import annotations

import pytest
import torch
from torchaudio.models.wav2vec2.components import LogitGenerator, _compute_logits

from espnet_hubert_ae.model.logits import MatmulLogitGenerator, matmul_logits, use_matmul_logits


@pytest.mark.parametrize("classes", [5, 100])
def test_values_and_gradients_equal_torchaudios(classes):
    torch.manual_seed(0)
    x = torch.randn(300, 16, requires_grad=True)
    embeddings = torch.nn.Parameter(torch.rand(classes, 16))
    target = torch.randint(0, classes, (300,))
    ours = matmul_logits(x, target, embeddings)
    theirs = _compute_logits(x, target, embeddings)
    assert ours.shape == theirs.shape == (300, classes + 1)
    assert torch.equal(torch.isinf(ours), torch.isinf(theirs))  # the target hidden among the negatives
    finite = torch.isfinite(theirs)
    assert torch.allclose(ours[finite], theirs[finite], atol=1e-5)
    weights = torch.randn(300, classes + 1)
    grads = []
    for logits in (ours, theirs):
        loss = (torch.where(finite, logits, 0.0) * weights).sum() + torch.nn.functional.cross_entropy(
            logits, torch.zeros(300, dtype=torch.long))
        grads.append(torch.autograd.grad(loss, (x, embeddings)))
    for mine, reference in zip(*grads):
        assert torch.allclose(mine, reference, atol=1e-4)


def test_a_class_sharing_the_targets_embedding_is_hidden_too():
    embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    x = torch.tensor([[1.0, 1.0]])
    ours = matmul_logits(x, torch.tensor([0]), embeddings)
    assert torch.equal(torch.isinf(ours), torch.isinf(_compute_logits(x, torch.tensor([0]), embeddings)))
    assert torch.isinf(ours[0, 1:3]).all() and torch.isfinite(ours[0, 3])


def test_the_switch_keeps_parameters_and_state_dict_keys():
    model = torch.nn.Sequential(LogitGenerator(8, 10, 4, skip_masked=False, skip_nomask=True))
    keys = list(model.state_dict())
    assert use_matmul_logits(model) == 1 and isinstance(model[0], MatmulLogitGenerator)
    assert list(model.state_dict()) == keys
    x, label = torch.randn(2, 7, 8), torch.randint(0, 10, (2, 7))
    mask_m = torch.rand(2, 7) > 0.5
    logit_m, logit_u = model[0](x, label, mask_m, ~mask_m)
    assert logit_m.shape == (int(mask_m.sum()), 11) and logit_u is None
