"""Layer health: LayerNorm gains and how much each layer changes its input, with their verdicts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from espnet_hubert_ae.model.hubert import load_pretrain_model, wav2vec2_of
from espnet_hubert_ae.pretrain.health import assess, checkpoint_health, layer_norm_gains, layer_updates

# The documented thresholds (README, "Layer health"): a mean LayerNorm gain below 0.3 is a
# collapsing layer, a relative update below 0.01 a dead one.
MIN_LN_GAIN = 0.3
MIN_UPDATE = 0.01

WAVS = [np.random.default_rng(i).standard_normal(16000 + 4000 * i).astype(np.float32) * 0.1 for i in range(2)]


@pytest.fixture
def model(tiny_hubert_checkpoint):
    return load_pretrain_model(tiny_hubert_checkpoint)[0]


def test_a_fresh_model_is_healthy(model):
    record = assess(layer_norm_gains(model), layer_updates(model, WAVS))
    assert [h["ln_gain"] for h in record["layers"]] == [1.0, 1.0]
    # Post-LN at initialisation: each layer's residual branch is small against its normalised input.
    assert all(h["update"] > MIN_UPDATE for h in record["layers"])
    assert record["dead_layers"] == [] and record["collapsing_layers"] == [] and record["warnings"] == []


def test_the_documented_thresholds_divide_healthy_from_faulty():
    # Layer 1 just above both thresholds, layer 2 just below the gain's, layer 3 just below the update's.
    record = assess([MIN_LN_GAIN + 1e-6, MIN_LN_GAIN - 1e-6, 1.0], [0.5, 0.5, MIN_UPDATE - 1e-6])
    assert record["collapsing_layers"] == [2] and record["dead_layers"] == [3]
    assert record["thresholds"] == {"min_ln_gain": 0.3, "min_update": 0.01}
    assert record["warnings"] == ["layer 2: mean LayerNorm gain 0.300 < 0.3 (collapsing)",
                                  "layer 3: changes its input by 0.0100 < 0.01 (dead)"]
    healthy = assess([MIN_LN_GAIN, 1.0], [MIN_UPDATE, 1.0])  # at a threshold is not below it
    assert healthy["collapsing_layers"] == [] and healthy["dead_layers"] == [] and healthy["warnings"] == []


def test_layer_updates_are_the_relative_change_of_each_layers_input(model):
    """||h_L - h_(L-1)|| / ||h_(L-1)|| over the frames of every utterance, from the hidden states."""
    from espnet_hubert_ae.model.hubert import hidden_states

    change, norm = np.zeros(2), np.zeros(2)
    with torch.no_grad():
        for wav in WAVS:
            states, frames = hidden_states(model, torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
            states = [s[0, : int(frames[0])].double().numpy() for s in states]
            for layer in range(2):
                change[layer] += ((states[layer + 1] - states[layer]) ** 2).sum()
                norm[layer] += (states[layer] ** 2).sum()
        updates = layer_updates(model, WAVS)
    np.testing.assert_allclose(updates, np.sqrt(change / norm), rtol=1e-9)


def test_shrunk_gains_are_reported(model):
    layers = wav2vec2_of(model).encoder.transformer.layers
    with torch.no_grad():
        layers[0].layer_norm.weight.fill_(0.1)
        layers[0].final_layer_norm.weight.fill_(0.2)
    record = assess(layer_norm_gains(model), layer_updates(model, WAVS))
    assert record["layers"][0]["ln_gain"] == pytest.approx(0.15)
    assert record["min_ln_gain"] == pytest.approx(0.15) and 0.15 < MIN_LN_GAIN
    assert record["collapsing_layers"] == [1] and record["dead_layers"] == []
    assert any("layer 1" in w and "collapsing" in w for w in record["warnings"])


def test_a_pass_through_layer_is_dead(model):
    # Layer 2 adds nothing to its (already normalised) input: attention and FFN outputs are zero.
    layer = wav2vec2_of(model).encoder.transformer.layers[1]
    with torch.no_grad():
        for linear in (layer.attention.out_proj, layer.feed_forward.output_dense):
            linear.weight.zero_()
            linear.bias.zero_()
    record = assess(layer_norm_gains(model), layer_updates(model, WAVS))
    assert record["layers"][1]["update"] < 1e-4
    assert record["dead_layers"] == [2] and record["collapsing_layers"] == []
    assert any("layer 2" in w and "dead" in w for w in record["warnings"])


def test_checkpoint_health_reads_the_validation_audio(tiny_hubert_checkpoint, noise_sets):
    record = checkpoint_health(tiny_hubert_checkpoint, noise_sets["valid"], num_utterances=2)
    assert record["utterances"] == 2 and len(record["layers"]) == 2
    assert record["min_ln_gain"] == 1.0
