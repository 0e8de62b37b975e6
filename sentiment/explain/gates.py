"""Look inside the recurrent layers: every gate and state of every token, the prediction after each token, and
what each token did to the prediction.

An LSTM layer (PyTorch's `nn.LSTM`, its gates stacked i, f, g, o) computes at every step t:

    i = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)     input gate: how much new information to write
    f = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)     forget gate: how much of c_{t-1} to keep
    g =    tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)     cell candidate: the new information itself
    o = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)     output gate: how much of the memory to show
    c = f * c_{t-1} + i * g                                cell state (long-term memory)
    h = o * tanh(c)                                        hidden state (short-term memory, the output)

A GRU (`nn.GRU`, stacked r, z, n) has no separate cell state:

    r = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)     reset gate: how much of the past the candidate sees
    z = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)     update gate: how much of h_{t-1} to keep
    n =    tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn))   candidate
    h = (1 - z) * n + z * h_{t-1}

and a plain RNN has no gates at all: h = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

The model runs the review once (`SentimentNet.run_layers`); its hidden states give h_{t-1} for every step at once,
so the trace computes the gates of all steps from the layer's own weights with two matrix products, and only the
cell state needs a step-by-step loop. Recomputing h from those gates and comparing it with the model's own output
is the exactness check (`GateTrace.max_error`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import Choice, ConfigError
from ..data.preprocessing import PAD_ID, UNK_ID, Vocab, encode_review
from ..model.network import Clamp, SentimentNet, evaluating

# Each cell's gates in the order PyTorch stacks their weights: LSTM i, f, g, o; GRU r, z, n; RNN none.
CELL_GATES = {"lstm": ("input", "forget", "cell", "output"), "gru": ("reset", "update", "new"), "rnn": ()}
TANH_GATES = ("cell", "new")  # the candidates, in -1..1; every other gate is a sigmoid in 0..1
DIRECTIONS = ("forward", "backward")


@dataclass
class LayerTrace:
    """One layer and direction; every array is (tokens, hidden) in token order (also for 'backward')."""

    layer: int
    direction: str
    gates: dict[str, np.ndarray]  # CELL_GATES order: LSTM input/forget/cell/output, GRU reset/update/new, RNN none
    hidden_state: np.ndarray
    cell_state: np.ndarray | None = None  # LSTM only: the long-term memory c
    start: tuple[np.ndarray, np.ndarray | None] | None = None  # (h, c) before the first token read, (H,) each

    def series(self, name: str) -> np.ndarray:
        return self.gates[name] if name in self.gates else getattr(self, name)

    @property
    def states(self) -> tuple[str, ...]:
        return ("cell_state", "hidden_state") if self.cell_state is not None else ("hidden_state",)

    def before(self, name: str) -> np.ndarray:
        """The state (`hidden_state` or `cell_state`) the cell held before reading each token, (T, H): the start
        state for the first token read (token 0 forward, the last token backward), else its neighbour's."""
        states, start = getattr(self, name), self.start[name == "cell_state"]
        if self.direction == "forward":
            return np.concatenate([start[None], states[:-1]])
        return np.concatenate([states[1:], start[None]])


@dataclass
class GateTrace:
    tokens: list[str]
    ids: list[int]
    layers: list[LayerTrace]  # layer 0 forward, (layer 0 backward), layer 1 forward, ...
    logit: float
    probability: float
    trajectory: np.ndarray  # (tokens,) P(positive) had the review stopped after each token
    max_error: float  # largest |h recomputed from the gates − h from the nn.LSTM / nn.GRU / nn.RNN module|

    def layer(self, layer: int, direction: str = "forward") -> LayerTrace:
        for trace in self.layers:
            if trace.layer == layer and trace.direction == direction:
                return trace
        raise KeyError(f"no layer {layer} {direction} in this trace")


ATTRIBUTION_METHODS = {
    "when read": "occlusion with _UNK at the moment of reading: the logit right after the model read the token, "
                 "minus its logit had it read _UNK there instead (same history); one batched step, exact",
    "on the final prediction": "occlusion with _UNK: the review's logit minus its logit with that token made "
                               "unknown, re-scoring the review once per token; exact, O(tokens²) work",
}
ATTRIBUTION = Choice("attribution", choices=tuple(ATTRIBUTION_METHODS))


@dataclass
class Attributions:
    """Each token's value is a real change in the model's logit, measured by re-scoring with the token replaced
    by `_UNK` (see ATTRIBUTION_METHODS). Positive: the token pushed towards positive."""

    tokens: list[str]
    values: np.ndarray  # (tokens,)
    logits: np.ndarray  # (tokens,) the logit each value starts from (per prefix, or the review's, repeated)
    occluded_logits: np.ndarray  # (tokens,) the same logit with the token replaced by _UNK
    method: str

    @property
    def description(self) -> str:
        return ATTRIBUTION_METHODS[self.method]


# ---------------------------------------------------------------- the cells, one named line per gate

def cell_gates(cell: str, x_part: torch.Tensor, h_part: torch.Tensor) -> dict[str, torch.Tensor]:
    """The gates (N, H) of N steps from the input half x W_ih + b_ih and the recurrent half h_{t-1} W_hh + b_hh,
    (N, kH) each, in PyTorch's stacking order."""
    if cell == "lstm":
        x_i, x_f, x_g, x_o = x_part.chunk(4, dim=-1)
        h_i, h_f, h_g, h_o = h_part.chunk(4, dim=-1)
        return {
            "input": torch.sigmoid(x_i + h_i),
            "forget": torch.sigmoid(x_f + h_f),
            "cell": torch.tanh(x_g + h_g),
            "output": torch.sigmoid(x_o + h_o),
        }
    if cell == "gru":
        x_r, x_z, x_n = x_part.chunk(3, dim=-1)
        h_r, h_z, h_n = h_part.chunk(3, dim=-1)
        reset = torch.sigmoid(x_r + h_r)
        return {
            "reset": reset,
            "update": torch.sigmoid(x_z + h_z),
            "new": torch.tanh(x_n + reset * h_n),
        }
    return {}


def cell_update(cell: str, gates: dict[str, torch.Tensor], x_part: torch.Tensor, h_part: torch.Tensor,
                h_prev: torch.Tensor, c_prev: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One step of each row from its own previous state: (h, c), c None except for an LSTM."""
    if cell == "lstm":
        c = gates["forget"] * c_prev + gates["input"] * gates["cell"]
        h = gates["output"] * torch.tanh(c)
        return h, c
    if cell == "gru":
        h = (1 - gates["update"]) * gates["new"] + gates["update"] * h_prev
        return h, None
    return torch.tanh(x_part + h_part), None


def step_halves(model: SentimentNet, layer: int, reverse: bool, x: torch.Tensor, h_prev: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """x W_ih + b_ih and h_prev W_hh + b_hh of one layer and direction, (N, kH) each, for inputs x (N, in) and the
    states before them h_prev (N, H)."""
    w = model.layer_parameters(layer, reverse)
    return (torch.addmm(w["bias_ih_l0"], x, w["weight_ih_l0"].T),
            torch.addmm(w["bias_hh_l0"], h_prev, w["weight_hh_l0"].T))


def start_values(model: SentimentNet, layer: int, reverse: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """h and (LSTM) c before the first token a layer and direction reads, (H,) each."""
    start = model.start_state(layer, reverse, 1)
    if start is None:
        zeros = torch.zeros(model.config.hidden_size, device=model.device)
        return zeros, zeros if model.config.cell == "lstm" else None
    h, c = start if isinstance(start, tuple) else (start, None)
    return h[0, 0], c[0, 0] if c is not None else None


# ---------------------------------------------------------------- the trace

def _trace_direction(model: SentimentNet, layer: int, reverse: bool, x: torch.Tensor, h: torch.Tensor
                     ) -> tuple[LayerTrace, float]:
    """Gates and states of one layer and direction from its inputs x (T, in) and the model's hidden states h
    (T, H), both in token order; and the largest difference between h and h recomputed from the gates."""
    cell = model.config.cell
    h_start, c_start = start_values(model, layer, reverse)
    # The state before token t is that after token t-1 going forward, after token t+1 going backward.
    h_prev = torch.cat([h[1:], h_start[None]]) if reverse else torch.cat([h_start[None], h[:-1]])  # (T, H)
    x_part, h_part = step_halves(model, layer, reverse, x, h_prev)
    gates = cell_gates(cell, x_part, h_part)
    cell_state = None
    if cell == "lstm":
        # c_{t-1} is not an output of the module: rebuild it step by step; h = o * tanh(c) then checks it.
        written = gates["input"] * gates["cell"]  # (T, H)
        cell_state = torch.empty_like(written)
        c = c_start
        for t in (range(len(h) - 1, -1, -1) if reverse else range(len(h))):
            c = gates["forget"][t] * c + written[t]
            cell_state[t] = c
        hidden = gates["output"] * torch.tanh(cell_state)
    else:
        hidden = cell_update(cell, gates, x_part, h_part, h_prev, None)[0]
    error = float((hidden - h).abs().max())

    def numpy(t: torch.Tensor | None) -> np.ndarray | None:
        return None if t is None else t.float().cpu().numpy()

    trace = LayerTrace(layer=layer, direction=DIRECTIONS[int(reverse)],
                       gates={name: numpy(g) for name, g in gates.items()}, hidden_state=numpy(hidden),
                       cell_state=numpy(cell_state), start=(numpy(h_start), numpy(c_start)))
    return trace, error


@torch.inference_mode()
def prefix_probabilities(model: SentimentNet, ids: torch.Tensor, clamp: Clamp | None = None) -> np.ndarray:
    """P(positive) for every prefix of one review, scored as a batch (exact for any model, O(T²) work)."""
    T = len(ids)
    batch = ids.expand(T, T).clone()  # (T, T): row t keeps tokens 0..t
    lengths = torch.arange(1, T + 1, device=ids.device)
    batch[torch.arange(T, device=ids.device)[None, :] >= lengths[:, None]] = PAD_ID
    return torch.sigmoid(model(batch, lengths, clamp)).float().cpu().numpy()


@torch.inference_mode()
def trace_gates(model: SentimentNet, ids: list[int] | torch.Tensor, tokens: list[str] | None = None) -> GateTrace:
    """Every gate and state of every layer and direction for one review (token ids, first token first), with
    dropout off."""
    ids = torch.as_tensor(ids, dtype=torch.long, device=model.device)
    if ids.ndim != 1 or len(ids) == 0:
        raise ValueError("trace_gates takes the ids of one non-empty review")
    H, lengths = model.config.hidden_size, torch.tensor([len(ids)], device=model.device)
    with evaluating(model):
        x = model.embed(ids[None])  # (1, T, E)
        outputs = model.run_layers(x, lengths)  # [(1, T, D*H)]
        layers, errors = [], []
        for k, (inputs, states) in enumerate(zip([x, *outputs[:-1]], outputs)):
            for d in range(model.config.directions):
                trace, error = _trace_direction(model, k, bool(d), inputs[0], states[0, :, d * H : (d + 1) * H])
                layers.append(trace)
                errors.append(error)
        logit = model.classify(model.readout(outputs[-1], lengths))  # (1,)
        if model.config.bidirectional:
            trajectory = prefix_probabilities(model, ids)
        else:  # the states after token t are exactly what the model reads had the review ended at t
            trajectory = torch.sigmoid(model.classify(model.prefix_readout(outputs[-1][0]))).float().cpu().numpy()
    return GateTrace(
        tokens=list(tokens) if tokens is not None else [str(int(i)) for i in ids],
        ids=ids.tolist(),
        layers=layers,
        logit=float(logit),
        probability=float(torch.sigmoid(logit)),
        trajectory=trajectory,
        max_error=max(errors),
    )


# ---------------------------------------------------------------- token effects

@torch.inference_mode()
def occlusion(model: SentimentNet, ids: list[int] | torch.Tensor, tokens: list[str] | None = None,
              batch_size: int = 32) -> Attributions:
    """Score the review once per token with that token replaced by _UNK, `batch_size` copies at a time, dropout off."""
    ids = torch.as_tensor(ids, dtype=torch.long, device=model.device)
    T = len(ids)
    occluded = torch.empty(T)
    with evaluating(model):
        logit = float(model(ids[None], torch.tensor([T], device=ids.device)))
        for start in range(0, T, batch_size):
            rows = torch.arange(start, min(T, start + batch_size), device=ids.device)
            batch = ids.expand(len(rows), T).clone()  # (b, T)
            batch[torch.arange(len(rows), device=ids.device), rows] = UNK_ID
            occluded[start : start + len(rows)] = model(batch, torch.full((len(rows),), T, device=ids.device)).float().cpu()
    return Attributions(
        tokens=list(tokens) if tokens is not None else [str(int(i)) for i in ids],
        values=(logit - occluded).numpy(),
        logits=np.full(T, logit, dtype=np.float32),
        occluded_logits=occluded.numpy(),
        method="on the final prediction",
    )


@torch.inference_mode()
def reading_occlusion(model: SentimentNet, trace: GateTrace) -> Attributions:
    """Occlusion at the moment of reading, for a unidirectional model: for every token t at once, one step from
    the traced states before token t with `_UNK` as the input, through every layer, then the head.

    A token's value is then logit(tokens 0..t) - logit(tokens 0..t-1, _UNK): what reading it did to the running
    verdict, next to the trajectory. Its effect on later tokens (a "not" before "good") is what the slower
    `occlusion` measures."""
    if model.config.bidirectional:
        raise ValueError("occlusion at the moment of reading needs a unidirectional model; use occlusion()")
    cell, device = model.config.cell, model.device
    T = len(trace.tokens)

    def tensor(array: np.ndarray | None) -> torch.Tensor | None:
        return None if array is None else torch.from_numpy(array).to(device)

    with evaluating(model):
        x = model.embed(torch.full((T,), UNK_ID, device=device))  # (T, E): _UNK read at every position
        for k in range(model.config.num_layers):
            traced = trace.layer(k)
            h_prev = tensor(traced.before("hidden_state"))
            c_prev = tensor(traced.before("cell_state")) if cell == "lstm" else None
            x_part, h_part = step_halves(model, k, False, x, h_prev)
            x = cell_update(cell, cell_gates(cell, x_part, h_part), x_part, h_part, h_prev, c_prev)[0]  # (T, H)
        states = tensor(trace.layer(model.config.num_layers - 1).hidden_state)  # (T, H) the traced top layer
        logits = model.classify(model.prefix_readout(states)).float().cpu().numpy()  # the running verdict
        occluded = model.classify(model.prefix_readout(states, last=x)).float().cpu().numpy()
    return Attributions(tokens=list(trace.tokens), values=logits - occluded, logits=logits, occluded_logits=occluded,
                        method="when read")


# ---------------------------------------------------------------- what the Predict tab shows

def top_units(trace: GateTrace, model: SentimentNet, layer: int, direction: str = "forward", count: int = 16) -> np.ndarray:
    """Indices of the units worth showing, most important first.

    In the last layer: the units whose share of the final logit is largest (`SentimentNet.unit_contributions`:
    |h_T[u] · w[u]| for the tutorial's readout, summed over the last, largest and average state for a pooled one).
    In lower layers, which the head does not read directly: the units whose hidden state varies most."""
    t = trace.layer(layer, direction)
    count = max(1, min(count, t.hidden_state.shape[1]))
    if layer == model.config.num_layers - 1:
        score = np.abs(logit_shares(trace, model, direction))
    else:
        score = t.hidden_state.var(axis=0)
    return np.argsort(-score, kind="stable")[:count]


@torch.inference_mode()
def logit_shares(trace: GateTrace, model: SentimentNet, direction: str = "forward") -> np.ndarray:
    """(H,) each top-layer unit's share of the review's logit, for one direction."""
    top = [torch.from_numpy(trace.layer(model.config.num_layers - 1, d).hidden_state)
           for d in DIRECTIONS[: model.config.directions]]
    states = torch.cat(top, dim=-1).to(model.device)[None]  # (1, T, D*H)
    features = model.readout(states, torch.tensor([states.size(1)], device=model.device))[0]
    H, d = model.config.hidden_size, DIRECTIONS.index(direction)
    return model.unit_contributions(features)[d * H : (d + 1) * H].float().cpu().numpy()


@dataclass
class GateSummary:
    gate: str
    mean_per_token: np.ndarray  # (tokens,) average over units
    low_saturated: float  # share of values < 0.1 (sigmoid gates) or < -0.9 (the tanh candidate)
    high_saturated: float  # share of values > 0.9


def gate_summaries(layer: LayerTrace) -> list[GateSummary]:
    """Mean activation per token and saturation per gate (Karpathy, Johnson & Fei-Fei 2015's measure); none for an RNN."""
    summaries = []
    for gate, values in layer.gates.items():
        low = -0.9 if gate in TANH_GATES else 0.1
        summaries.append(GateSummary(gate=gate, mean_per_token=values.mean(axis=1),
                                     low_saturated=np.count_nonzero(values < low) / values.size,
                                     high_saturated=np.count_nonzero(values > 0.9) / values.size))
    return summaries


@dataclass
class Inspection:
    """Everything the Predict tab shows for one review."""

    trace: GateTrace
    attributions: Attributions


def inspect_review(model: SentimentNet, vocab: Vocab, text: str, max_len: int,
                   attribution: str = "when read") -> Inspection:
    """Encode like training (first `max_len` tokens), then `inspect_tokens`."""
    ATTRIBUTION.check(attribution)
    tokens, ids = encode_review(text, vocab, max_len)
    if not ids:
        raise ConfigError("Nothing to read in this review: it has no words, only spaces or control characters.")
    return inspect_tokens(model, tokens, ids, attribution)


def inspect_tokens(model: SentimentNet, tokens: list[str], ids: list[int], attribution: str = "when read") -> Inspection:
    """Trace the gates of an encoded review and attribute the prediction with one of ATTRIBUTION_METHODS. A
    bidirectional model has no single moment of reading: it always gets full occlusion."""
    ATTRIBUTION.check(attribution)
    trace = trace_gates(model, ids, tokens)
    if attribution == "when read" and not model.config.bidirectional:
        return Inspection(trace, reading_occlusion(model, trace))
    return Inspection(trace, occlusion(model, ids, tokens))


def unknown_tokens(tokens: list[str], ids: list[int]) -> list[str]:
    return [t for t, i in zip(tokens, ids) if i == UNK_ID]
