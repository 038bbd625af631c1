"""The ESPnet components of cached-feature downstreams: weighted layer sum, BiLSTM, identity."""

import pytest
import torch

from espnet_hubert_ae.asr.components import (
    BiLSTMEncoder,
    IdentityEncoder,
    WeightedLayerSum,
    register,
    reverse_within_lengths,
)


def test_layer_sum_weights_each_state_by_its_softmax_weight():
    torch.manual_seed(0)
    states = [torch.randn(2, 5, 3) * (i + 1) for i in range(4)]
    frontend = WeightedLayerSum(num_layers=4, layer_dim=3, normalize=False)
    with torch.no_grad():
        frontend.weights.copy_(torch.tensor([0.0, 1.0, 2.0, -1.0]))
    out, lengths = frontend(torch.cat(states, dim=-1), torch.tensor([5, 3]))
    w = torch.softmax(torch.tensor([0.0, 1.0, 2.0, -1.0]), 0)
    torch.testing.assert_close(out, sum(wi * s for wi, s in zip(w, states)))
    assert lengths.tolist() == [5, 3] and frontend.output_size() == 3
    assert frontend.layer_weights() == pytest.approx(w.tolist())


def test_layer_sum_normalises_each_state_before_summing():
    states = [torch.randn(1, 4, 6) * 100 + 50, torch.randn(1, 4, 6)]
    frontend = WeightedLayerSum(num_layers=2, layer_dim=6, normalize=True)
    out, _ = frontend(torch.cat(states, dim=-1), torch.tensor([4]))
    expected = sum(0.5 * torch.nn.functional.layer_norm(s, (6,)) for s in states)
    torch.testing.assert_close(out, expected)


def test_layer_sum_refuses_features_of_another_shape():
    with pytest.raises(ValueError, match="5 layers x 4"):
        WeightedLayerSum(5, 4)(torch.zeros(1, 3, 12), torch.tensor([3]))


def test_reverse_within_lengths_keeps_padding_in_place():
    x = torch.arange(10.0).view(2, 5, 1)
    out = reverse_within_lengths(x, torch.tensor([5, 3]))
    assert out[:, :, 0].tolist() == [[4, 3, 2, 1, 0], [7, 6, 5, 8, 9]]
    torch.testing.assert_close(reverse_within_lengths(out, torch.tensor([5, 3])), x)


def test_bilstm_equals_a_packed_bidirectional_lstm_on_valid_frames():
    """Same weights as torch's packed BiLSTM: same outputs on every frame inside each utterance."""
    torch.manual_seed(0)
    encoder = BiLSTMEncoder(input_size=6, hidden_size=5, num_layers=2).eval()
    reference = torch.nn.LSTM(6, 5, num_layers=2, bidirectional=True, batch_first=True)
    with torch.no_grad():
        for layer in range(2):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(encoder.forward_layers[layer], f"{name}_l0").copy_(getattr(reference, f"{name}_l{layer}"))
                getattr(encoder.backward_layers[layer], f"{name}_l0").copy_(
                    getattr(reference, f"{name}_l{layer}_reverse"))
    x, lengths = torch.randn(3, 7, 6), torch.tensor([7, 4, 2])
    out, out_lengths, _ = encoder(x, lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected, _ = torch.nn.utils.rnn.pad_packed_sequence(reference(packed)[0], batch_first=True)
    assert out.shape == (3, 7, 10) and encoder.output_size() == 10 and out_lengths is lengths
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(out[b, :n], expected[b, :n])


def test_identity_encoder_and_registration():
    x, lengths = torch.randn(2, 3, 4), torch.tensor([3, 1])
    out, out_lengths, _ = IdentityEncoder(4)(x, lengths)
    assert out is x and out_lengths is lengths
    register()
    from espnet2.tasks import asr

    assert asr.frontend_choices.get_class("layer_sum") is WeightedLayerSum
    assert asr.encoder_choices.get_class("blstm") is BiLSTMEncoder
    assert asr.encoder_choices.get_class("identity") is IdentityEncoder
