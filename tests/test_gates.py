import html
import json

import numpy as np
import plotly.io as pio
import pytest
import torch
from app_api import typed_array

from sentiment.data.preprocessing import UNK_ID, encode_review
from sentiment.explain.gates import (
    CELL_GATES,
    gate_summaries,
    inspect_review,
    inspect_tokens,
    occlusion,
    reading_occlusion,
    top_units,
    trace_gates,
)
from sentiment.model.network import CELLS, ModelConfig, SentimentNet
from sentiment.plots.figure import TOKENS_IN_VIEW
from sentiment.plots.gates import (
    attribution_figure,
    attribution_highlights,
    gate_heatmaps,
    mean_gate_figure,
    state_heatmaps,
    trajectory_figure,
)
from sentiment.plots.training import training_curves


def _model(layers, bidirectional, seed=0, hidden=7, cell="lstm", learned_state=False, readout="last"):
    torch.manual_seed(seed)
    model = SentimentNet(ModelConfig(vocab_size=60, embedding_dim=9, hidden_size=hidden, num_layers=layers,
                                     bidirectional=bidirectional, cell=cell, learned_state=learned_state,
                                     readout=readout)).eval()
    with torch.no_grad():  # a learned start state as training leaves it: not zeros
        for name, start in model.named_parameters():
            if name.startswith("initial_"):
                start.uniform_(-0.8, 0.8)
    return model


def _hidden_states_by_layer(model, ids):
    """nn.LSTM's (nn.GRU's, nn.RNN's) own per-layer outputs, from a stack of fresh one-layer modules loaded with
    the model's weights."""
    x = model.embedding(ids[None])
    D = model.config.directions
    outputs = []
    for k in range(model.config.num_layers):
        single = CELLS[model.config.cell](x.shape[-1], model.config.hidden_size, 1, batch_first=True,
                                          bidirectional=model.config.bidirectional)
        single.load_state_dict({n: getattr(model.rnn, n.replace("_l0", f"_l{k}")) for n, _ in single.named_parameters()})
        state = None
        if model.config.learned_state:
            state = model.initial_h[k * D : (k + 1) * D]
            if model.config.cell == "lstm":
                state = (state, model.initial_c[k * D : (k + 1) * D])
        x, _ = single(x, state)
        outputs.append(x[0])
    return outputs


def _recurrent_state(layer, t: int, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the traced state at step t, the state the cell's update rule gives from the traced gates and `previous`):
    the LSTM's c_t = f c_{t-1} + i g, the GRU's h_t = (1 - z) n + z h_{t-1}."""
    gates = {name: values[t] for name, values in layer.gates.items()}
    if layer.cell_state is not None:
        return layer.cell_state[t], gates["forget"] * previous + gates["input"] * gates["cell"]
    return layer.hidden_state[t], (1 - gates["update"]) * gates["new"] + gates["update"] * previous


@pytest.mark.parametrize("cell,layers,bidirectional,learned_state", [
    ("lstm", 1, False, False), ("lstm", 2, False, False), ("lstm", 3, False, False), ("lstm", 1, True, False),
    ("lstm", 2, True, False), ("lstm", 3, True, False), ("gru", 1, False, False), ("gru", 2, False, False),
    ("gru", 2, True, False), ("lstm", 2, False, True), ("lstm", 2, True, True), ("gru", 2, True, True),
])
def test_trace_reproduces_nn_lstm_and_nn_gru(cell, layers, bidirectional, learned_state):
    model = _model(layers, bidirectional, seed=layers, cell=cell, learned_state=learned_state)
    T = 23
    ids = torch.randint(2, 60, (T,))
    trace = trace_gates(model, ids)
    with torch.no_grad():
        probability = torch.sigmoid(model(ids[None], torch.tensor([T]))).item()
        reference = _hidden_states_by_layer(model, ids)
    assert trace.probability == pytest.approx(probability, abs=1e-5)
    assert trace.trajectory[-1] == pytest.approx(probability, abs=1e-5)
    H = model.config.hidden_size
    for k in range(layers):
        for d, direction in enumerate(("forward", "backward")[: model.config.directions]):
            layer = trace.layer(k, direction)
            expected = reference[k][:, d * H : (d + 1) * H].detach().numpy()
            assert np.abs(layer.hidden_state - expected).max() < 1e-5
            assert tuple(layer.gates) == CELL_GATES[cell]
            assert all(values.shape == (T, H) for values in layer.gates.values())
            assert (layer.cell_state is not None) == (cell == "lstm")
            # the state follows the cell's update rule from the traced gates, step after step, from the start state
            previous = np.zeros(H)
            if learned_state:
                start = model.initial_c if cell == "lstm" else model.initial_h
                previous = start[k * model.config.directions + d, 0].detach().numpy()
            for t in (range(T) if direction == "forward" else range(T - 1, -1, -1)):
                traced, from_gates = _recurrent_state(layer, t, previous)
                assert np.allclose(traced, from_gates, atol=1e-5)
                previous = traced
    assert trace.max_error < 1e-5


def test_a_model_built_under_inference_mode_can_be_traced():
    ids = torch.randint(2, 60, (23,))
    with torch.inference_mode():
        model = _model(1, False)
    trace = trace_gates(model, ids)
    assert trace.max_error < 1e-5
    assert trace.probability == pytest.approx(trace_gates(_model(1, False), ids).probability, abs=1e-6)


def test_inspecting_a_model_mid_training_turns_dropout_off_and_leaves_it_training():
    torch.manual_seed(0)
    model = SentimentNet(ModelConfig(vocab_size=60, embedding_dim=9, hidden_size=7, num_layers=2, dropout=0.5,
                                     embedding_dropout=0.3)).train()
    ids = torch.randint(2, 60, (23,))
    trace, attributions = trace_gates(model, ids), occlusion(model, ids)
    assert model.training
    model.eval()
    assert trace.probability == pytest.approx(trace_gates(model, ids).probability, abs=1e-6)
    assert np.allclose(attributions.values, occlusion(model, ids).values, atol=1e-6)


def test_rnn_trace_has_hidden_states_only():
    model = _model(2, False, cell="rnn")
    ids = torch.randint(2, 60, (12,))
    trace = trace_gates(model, ids)
    with torch.no_grad():
        reference = _hidden_states_by_layer(model, ids)
    for k in range(2):
        layer = trace.layer(k)
        assert layer.gates == {} and layer.cell_state is None and layer.states == ("hidden_state",)
        assert np.abs(layer.hidden_state - reference[k].numpy()).max() < 1e-5
    units = top_units(trace, model, 1, count=3)
    assert [t.type for t in state_heatmaps(trace.layer(1), trace.tokens, units).to_plotly().data] == ["heatmap"]
    assert "has no gates" in gate_heatmaps(trace.layer(1), trace.tokens, units).to_plotly().layout.annotations[0].text


@pytest.mark.parametrize("readout", ["last", "pool"])
def test_trajectory_is_the_prediction_for_every_prefix(readout):
    model = _model(2, False, readout=readout)
    ids = torch.randint(2, 60, (15,))
    trace = trace_gates(model, ids)
    with torch.no_grad():
        for t in (0, 6, 14):
            prefix = torch.sigmoid(model(ids[None, : t + 1], torch.tensor([t + 1]))).item()
            assert trace.trajectory[t] == pytest.approx(prefix, abs=1e-5)
    bidirectional = _model(2, True, readout=readout)
    trace = trace_gates(bidirectional, ids)
    with torch.no_grad():
        prefix = torch.sigmoid(bidirectional(ids[None, :5], torch.tensor([5]))).item()
    assert trace.trajectory[4] == pytest.approx(prefix, abs=1e-5)


@pytest.mark.parametrize("layers,bidirectional,cell,learned_state,readout", [
    (1, False, "lstm", False, "last"), (2, False, "lstm", False, "last"), (2, True, "lstm", False, "last"),
    (2, False, "gru", False, "last"), (2, False, "rnn", False, "last"), (1, True, "gru", False, "last"),
    (2, False, "lstm", True, "last"), (2, False, "gru", True, "last"), (2, True, "lstm", True, "last"),
    (1, False, "lstm", False, "pool"), (2, True, "gru", True, "pool"),
])
def test_occlusion_values_are_the_real_change_in_the_logit(layers, bidirectional, cell, learned_state, readout):
    model = _model(layers, bidirectional, hidden=11, cell=cell, learned_state=learned_state, readout=readout)
    ids = torch.randint(2, 60, (40,))
    trace = trace_gates(model, ids)
    attributions = occlusion(model, ids, batch_size=16)
    with torch.no_grad():
        for t in (0, 17, 39):
            hidden = ids.clone()
            hidden[t] = UNK_ID
            change = (model(ids[None], torch.tensor([40])) - model(hidden[None], torch.tensor([40]))).item()
            assert attributions.values[t] == pytest.approx(change, abs=1e-5)
    assert np.allclose(attributions.logits, trace.logit, atol=1e-5)


@pytest.mark.parametrize("layers,cell,learned_state,readout", [
    (1, "lstm", False, "last"), (2, "lstm", False, "last"), (3, "lstm", False, "last"), (2, "gru", False, "last"),
    (2, "rnn", False, "last"), (2, "lstm", True, "last"), (2, "gru", True, "last"), (1, "rnn", True, "last"),
    (1, "lstm", False, "pool"), (2, "lstm", True, "pool"), (2, "gru", False, "pool"),
])
def test_occlusion_when_read_is_the_real_change_in_the_running_logit(layers, cell, learned_state, readout):
    model = _model(layers, False, hidden=11, cell=cell, learned_state=learned_state, readout=readout)
    ids = torch.randint(2, 60, (30,))
    ids[4] = UNK_ID  # a token that is already unknown changes nothing
    attributions = reading_occlusion(model, trace_gates(model, ids))
    with torch.no_grad():
        for t in (0, 4, 13, 29):
            prefix, hidden = ids[None, : t + 1], ids[None, : t + 1].clone()
            hidden[0, t] = UNK_ID
            length = torch.tensor([t + 1])
            change = (model(prefix, length) - model(hidden, length)).item()
            assert attributions.values[t] == pytest.approx(change, abs=1e-5)
            assert attributions.logits[t] == pytest.approx(model(prefix, length).item(), abs=1e-5)
    assert attributions.values[4] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="unidirectional"):
        reading_occlusion(_model(1, True), trace_gates(_model(1, True), ids))


def test_inspection_attribution_methods(predictor):
    text = "Not good at all, the lid broke."
    fast = inspect_review(predictor.model, predictor.vocab, text, predictor.max_len)
    final = inspect_review(predictor.model, predictor.vocab, text, predictor.max_len, "on the final prediction")
    assert fast.attributions.method == "when read" and "moment of reading" in fast.attributions.description
    assert final.attributions.method == "on the final prediction"
    # the two methods agree on the last token: reading it is the end of the review
    assert fast.attributions.values[-1] == pytest.approx(final.attributions.values[-1], abs=1e-4)
    with pytest.raises(ValueError, match="attribution must be one of"):
        inspect_review(predictor.model, predictor.vocab, text, predictor.max_len, "saliency")
    # From the encoded review (what the bench times), the same inspection
    tokens, ids = encode_review(text, predictor.vocab, predictor.max_len)
    from_ids = inspect_tokens(predictor.model, tokens, ids)
    assert from_ids.trace.tokens == fast.trace.tokens
    assert np.array_equal(from_ids.attributions.values, fast.attributions.values)
    with pytest.raises(ValueError, match="attribution must be one of"):
        inspect_tokens(predictor.model, tokens, ids, "saliency")


def test_one_token_and_max_len_reviews(predictor):
    one = inspect_review(predictor.model, predictor.vocab, "Great", predictor.max_len)
    assert one.trace.tokens == ["great"] and one.trace.trajectory.shape == (1,)
    long = inspect_review(predictor.model, predictor.vocab, "The motor is loud but it works. " * 100, predictor.max_len)
    assert len(long.trace.tokens) == predictor.max_len == len(long.attributions.values)
    assert long.trace.probability == pytest.approx(predictor.predict("The motor is loud but it works. " * 100)[0], abs=1e-5)
    with pytest.raises(ValueError):
        inspect_review(predictor.model, predictor.vocab, "   ", predictor.max_len)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_for_a_pooled_readout_the_units_shown_are_those_with_the_largest_share_of_the_logit(bidirectional):
    model = _model(1, bidirectional, hidden=11, readout="pool")
    ids = torch.randint(2, 60, (25,))
    trace = trace_gates(model, ids)
    H = 11
    with torch.no_grad():
        states = model.run_layers(model.embed(ids[None]), torch.tensor([25]))[-1][0]  # (T, D*H)
        w = model.head.weight[0]  # (3 * D*H,): last, largest, average
        DH = H * model.config.directions
        features = model.readout(states[None], torch.tensor([25]))[0]
        shares = (w[:DH] * features[:DH] + w[DH : 2 * DH] * features[DH : 2 * DH] + w[2 * DH :] * features[2 * DH :])
        assert shares.sum() + model.head.bias[0] == pytest.approx(trace.logit, abs=1e-5)  # the shares add up
    for d, direction in enumerate(("forward", "backward")[: model.config.directions]):
        mine = shares[d * H : (d + 1) * H].abs().numpy()
        assert list(top_units(trace, model, 0, direction, count=4)) == list(np.argsort(-mine)[:4])


def test_top_units_rank_by_contribution_to_the_logit(predictor):
    inspection = inspect_review(predictor.model, predictor.vocab, "Sturdy and cheap, very happy", predictor.max_len)
    units = top_units(inspection.trace, predictor.model, 0, count=5)
    h_last = inspection.trace.layer(0).hidden_state[-1]
    weights = predictor.model.head.weight[0].detach().numpy()
    contributions = np.abs(h_last * weights)
    assert list(units) == list(np.argsort(-contributions)[:5])


def test_gate_summaries_measure_saturation():
    model = _model(1, False)
    layer = trace_gates(model, torch.randint(2, 60, (30,))).layer(0)
    summaries = {s.gate: s for s in gate_summaries(layer)}
    assert set(summaries) == set(CELL_GATES["lstm"])
    forget = layer.gates["forget"]
    assert summaries["forget"].low_saturated == pytest.approx((forget < 0.1).mean())
    assert summaries["forget"].high_saturated == pytest.approx((forget > 0.9).mean())
    assert np.allclose(summaries["input"].mean_per_token, layer.gates["input"].mean(axis=1))


def test_plot_builders_are_valid_figures_with_tokens_as_literal_text(predictor):
    text = 'Watch out <script>alert("x")</script> &amp; <b>bold</b> claims'
    inspection = inspect_review(predictor.model, predictor.vocab, text, predictor.max_len)
    trace, tokens = inspection.trace, inspection.trace.tokens
    assert "<" in tokens and "script" in tokens and "&" in tokens
    units = top_units(trace, predictor.model, 0, count=6)
    figures = [
        gate_heatmaps(trace.layer(0), tokens, units),
        state_heatmaps(trace.layer(0), tokens, units),
        mean_gate_figure(trace.layer(0), tokens),
        trajectory_figure(trace),
        attribution_figure(inspection.attributions),
    ]
    figures = [figure.to_plotly() for figure in figures]  # full plotly validation of what the fast builders produced
    for figure in figures:
        assert figure.layout.height
        assert list(figure.layout.xaxis.ticktext) == [html.escape(t, quote=False) for t in tokens]
    gates = figures[0]
    assert [t.type for t in gates.data] == ["heatmap"] * 4
    assert [a.text for a in gates.layout.annotations] == ["input gate i", "forget gate f", "cell candidate g", "output gate o"]
    assert list(gates.data[0].y) == [f"unit {u}" for u in units]
    assert list(gates.layout.xaxis.tickvals) == list(gates.data[0].x)  # every token's text under its own column
    assert np.allclose(np.asarray(gates.data[1].z), trace.layer(0).gates["forget"][:, units].T)
    highlights = attribution_highlights(inspection.attributions)
    assert [t for t, _ in highlights] == tokens and max(abs(s) for _, s in highlights) == pytest.approx(1.0)


def test_figure_json_carries_the_values_and_stays_inside_a_script_tag(predictor):
    text = "Broke in a week </script><script>alert(1)</script> never again"
    inspection = inspect_review(predictor.model, predictor.vocab, text, predictor.max_len)
    trace, layer = inspection.trace, inspection.trace.layer(0)
    units = top_units(trace, predictor.model, 0, count=5)
    figure = gate_heatmaps(layer, trace.tokens, units)
    sent = figure.to_json()
    assert "</script>" not in sent and "<" not in sent
    pio.from_json(sent)  # plotly validates what the browser gets
    for gate, heatmap in zip(layer.gates, json.loads(sent)["data"]):
        assert np.array_equal(typed_array(heatmap["z"]), layer.gates[gate][:, units].T.astype(np.float32))
        # Hover shows x: each token with its position, so repeated words stay separate columns.
        assert heatmap["x"] == [f"{html.escape(t, quote=False)} ({i + 1})" for i, t in enumerate(trace.tokens)]
        assert heatmap["hovertemplate"].startswith("%{x} · %{y}")
    curves = json.loads(training_curves({"step": [1, 2, 3], "train_loss": [0.69, 0.5, float("nan")],
                                               "val_step": [3], "val_loss": [0.4], "val_accuracy": [0.8]}).to_json())
    assert typed_array(curves["data"][0]["x"]).tolist() == [1, 2, 3]
    loss = typed_array(curves["data"][0]["y"])  # a diverged step stays a gap in the curve, still valid JSON
    assert np.allclose(loss[:2], [0.69, 0.5]) and np.isnan(loss[2])


def test_long_reviews_open_on_a_window_with_a_slider(predictor):
    inspection = inspect_review(predictor.model, predictor.vocab, "It works well enough. " * 60, predictor.max_len)
    figure = trajectory_figure(inspection.trace).to_plotly()
    assert tuple(figure.layout.xaxis.range) == (-0.5, TOKENS_IN_VIEW - 0.5)
    assert figure.layout.xaxis.rangeslider.visible and "drag the slider" in figure.layout.title.text
