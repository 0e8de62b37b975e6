"""Look inside the LSTM: per-token gates, cell and hidden states, the prediction trajectory and attributions.

For one review and every layer and direction, `trace_gates` recomputes what `nn.LSTM` does at each step, in
PyTorch's gate order and math:

    i = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)     input gate: how much new information to write
    f = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)     forget gate: how much of c_{t-1} to keep
    g =    tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)     cell candidate: the new information itself
    o = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)     output gate
    c = f * c_{t-1} + i * g                                cell state (long-term memory)
    h = o * tanh(c)                                        hidden state (short-term memory, the output)

A step-by-step loop would cost six forward passes. Instead each layer runs once through `nn.LSTM` itself;
its hidden states give h_{t-1} for every step at once, so the four gates of all steps come from one matrix
product per layer (the input half x W_ih + b_ih of layer 0 depends on the token alone: `input_table` holds it for
the most frequent tokens), and only the cell state needs a cheap element-wise scan. Recomputing h = o * tanh(c) from
those gates and comparing it with `nn.LSTM`'s own output is the exactness check (`GateTrace.max_error`).

A GRU (`nn.GRU`'s math) has no separate cell state, and with h_{t-1} known every step is direct:

    r = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)     reset gate: how much of the past the candidate sees
    z = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)     update gate: how much of h_{t-1} to keep
    n =    tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn))   candidate
    h = (1 - z) * n + z * h_{t-1}

A plain RNN has no gates at all: h = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from .model import SentimentNet, evaluating
from .preprocessing import PAD_ID, UNK_ID, Vocab, encode_review

# Each cell's gates in the order PyTorch stacks their weights: LSTM i, f, g, o; GRU r, z, n; RNN none.
CELL_GATES = {"lstm": ("input", "forget", "cell", "output"), "gru": ("reset", "update", "new"), "rnn": ()}
GATES = CELL_GATES["lstm"]
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

    def series(self, name: str) -> np.ndarray:
        return self.gates[name] if name in self.gates else getattr(self, name)

    @property
    def states(self) -> tuple[str, ...]:
        return ("cell_state", "hidden_state") if self.cell_state is not None else ("hidden_state",)


@dataclass
class GateTrace:
    tokens: list[str]
    ids: list[int]
    layers: list[LayerTrace]  # layer 0 forward, (layer 0 backward), layer 1 forward, ...
    logit: float
    probability: float
    trajectory: np.ndarray  # (tokens,) P(positive) had the review stopped after each token
    max_error: float  # largest |h recomputed from the gates − h from the nn.LSTM / nn.GRU / nn.RNN module|
    # Per entry of `layers`: h_{t-1} W_hh + b_hh (T, kH), kept so reading_occlusion need not recompute it.
    recurrent: list[torch.Tensor] = field(default_factory=list, repr=False)

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


_single_layers: weakref.WeakKeyDictionary[nn.RNNBase, list[nn.RNNBase]] = weakref.WeakKeyDictionary()


def _layer_modules(rnn: nn.RNNBase) -> list[nn.RNNBase]:
    """One-layer modules of the same type sharing the parameters of each layer of `rnn` (no copies), built once."""
    if rnn not in _single_layers:
        layers = []
        directions = 2 if rnn.bidirectional else 1
        for k in range(rnn.num_layers):
            in_size = rnn.input_size if k == 0 else rnn.hidden_size * directions
            single = type(rnn)(in_size, rnn.hidden_size, 1, batch_first=True, bidirectional=rnn.bidirectional)
            for name in single._flat_weights_names:
                setattr(single, name, getattr(rnn, name.replace("_l0", f"_l{k}")))
            layers.append(single.to(rnn.weight_hh_l0.device))
        _single_layers[rnn] = layers
    return _single_layers[rnn]


def _cell_scan(forget: np.ndarray, written: np.ndarray) -> np.ndarray:
    """c_t = f_t * c_{t-1} + w_t from c_{-1} = 0, over the rows of (T, H) arrays, in log2(T) vectorised steps.

    A linear recurrence is an associative scan: after the pass with offset k, row t holds the composition of
    the steps t-2k+1..t, as (product of their f, their combined w) (Hillis & Steele 1986). Only products and sums,
    no division, so it agrees with the step-by-step loop to float rounding."""
    keep, cell = forget.copy(), written.copy()
    T, k = len(cell), 1
    while k < T:
        cell[k:] += keep[k:] * cell[:-k]  # the product is complete before any row is overwritten
        if 2 * k < T:  # the last pass needs no products of f
            keep[k:] *= keep[:-k]  # numpy buffers the overlapping operand
        k *= 2
    return cell


def _weights(rnn: nn.RNNBase, k: int, reverse: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """w_ih (kH, in), w_hh (kH, H), b_ih (kH,), b_hh (kH,) of layer k; k = 4 gates (LSTM), 3 (GRU) or 1 (RNN)."""
    suffix = f"_l{k}" + ("_reverse" if reverse else "")
    return tuple(getattr(rnn, name + suffix) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def _packed(weight: torch.Tensor) -> torch.Tensor:
    """`weight` (out, in) as `_affine` multiplies by it. On the CPU in float32: reordered once for oneDNN, which
    runs AVX-512 code where MKL's sgemm runs AVX2 on AMD CPUs (0.13 ms against 0.29 ms for a review's
    recurrent half, 200 × 192 × 768, here). Elsewhere, or in a torch build without that operator: as it is."""
    weight = weight.detach()
    onednn = torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled  # built in, not switched off
    if weight.device.type == "cpu" and weight.dtype == torch.float32 and onednn:
        try:
            return torch.ops.mkldnn._reorder_linear_weight(weight)
        except (AttributeError, RuntimeError):  # the operator is internal to torch: absent or refusing, use MKL
            pass
    return weight


def _affine(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x W^T + b, (N, out), for x (N, in) and a `_packed` weight."""
    if weight.is_mkldnn:
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
    return torch.addmm(bias, x, weight.T)


# Layer 0's input half x W_ih + b_ih depends on the token alone. For the most frequent tokens (the lowest ids:
# `Vocab` orders them so) it is computed once per model and looked up, which removes one of the trace's two matrix
# products. 64 MB holds 21,845 of the shipped model's 21,862 tokens; a review with a token beyond the table pays
# for the whole product's weights all the same (~0.07 ms). Bounded, since a large model's table can take gigabytes.
INPUT_TABLE_BYTES = 64 * 2**20


@dataclass
class _Prepared:
    """What the trace reads of a model's weights, prepared once: layer 0's input tables and the packed weights."""

    key: tuple  # the weights' storage and in-place update counts when prepared
    tables: list[torch.Tensor]  # per direction, (N, kH): x W_ih + b_ih for token ids 0..N-1
    weights: dict[tuple[int, bool], tuple[torch.Tensor, ...]]  # (layer, reverse) → `_packed` w_ih, w_hh; b_ih, b_hh


_prepared: weakref.WeakKeyDictionary[SentimentNet, _Prepared] = weakref.WeakKeyDictionary()


def _prepare(model: SentimentNet) -> _Prepared:
    """The model's `_Prepared`, built on first use and again once its embedding or recurrent weights change
    (training, a loaded state dict): `_version` counts a tensor's in-place updates."""
    params = [model.embedding.weight, *model.rnn.parameters()]
    # A model built under inference_mode has no version counters: its tables then last as long as its tensors.
    key = tuple((p.data_ptr(), 0 if p.is_inference() else p._version) for p in params)
    prepared = _prepared.get(model)
    if prepared is not None and prepared.key == key:
        return prepared
    halves = [_weights(model.rnn, 0, bool(d)) for d in range(model.config.directions)]
    row_bytes = sum(w_ih.shape[0] for w_ih, *_ in halves) * model.embedding.weight.element_size()
    rows = min(model.config.vocab_size, max(UNK_ID + 1, INPUT_TABLE_BYTES // row_bytes))
    with torch.inference_mode():
        embedded = model.embedding.weight[:rows]  # (N, E)
        tables = [torch.addmm(b_ih, embedded, w_ih.T) for w_ih, _, b_ih, _ in halves]  # (N, kH) each
        weights = {}
        for k in range(model.config.num_layers):
            for reverse in (False, True)[: model.config.directions]:
                w_ih, w_hh, b_ih, b_hh = _weights(model.rnn, k, reverse)
                weights[k, reverse] = _packed(w_ih), _packed(w_hh), b_ih, b_hh
    _prepared[model] = prepared = _Prepared(key, tables, weights)
    return prepared


def input_table(model: SentimentNet) -> list[torch.Tensor]:
    """Per direction, x W_ih + b_ih of layer 0 for the first N token ids, (N, kH), N as INPUT_TABLE_BYTES allows."""
    return _prepare(model).tables


def _input_half(prepared: _Prepared, k: int, reverse: bool, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """x_t W_ih + b_ih for every step of layer k, (T, kH), from its input x (T, in); layer 0 reads token `ids` (T,)
    from the input table and computes only the rarer tokens' rows."""
    w_ih, _, b_ih, _ = prepared.weights[k, reverse]
    if k > 0:
        return _affine(x, w_ih, b_ih)
    table = prepared.tables[int(reverse)]
    inputs = table.index_select(0, ids.clamp(max=len(table) - 1))  # (T, kH)
    rare = (ids >= len(table)).nonzero().squeeze(1)
    if len(rare):
        inputs[rare] = _affine(x[rare], w_ih, b_ih)
    return inputs


def _tanh(x: torch.Tensor) -> torch.Tensor:
    # torch.tanh on the CPU is ~6× slower than numpy's vectorised float32 tanh (44 µs against 7 µs for a
    # (200, 192) array, torch 2.13, 2 cores); both are within an ulp or two of the exact value.
    if x.device.type != "cpu" or x.dtype != torch.float32:
        return torch.tanh(x)
    return torch.from_numpy(np.tanh(x.detach().numpy()))


def _cell_gates(cell: str, inputs: torch.Tensor, recurrent: torch.Tensor) -> dict[str, torch.Tensor]:
    """The gates (N, H) from the input half x W_ih + b_ih and the recurrent half h_{t-1} W_hh + b_hh, (N, kH) each."""
    if cell == "lstm":
        # The sum goes into `inputs` when it has the shape (the caller hands it over): one (N, 4H) buffer fewer.
        pre = inputs.add_(recurrent) if inputs.shape == recurrent.shape else inputs + recurrent  # (N, 4H)
        i, f, g, o = pre.chunk(4, dim=-1)
        return {"input": torch.sigmoid(i), "forget": torch.sigmoid(f), "cell": _tanh(g), "output": torch.sigmoid(o)}
    if cell == "gru":
        x_r, x_z, x_n = inputs.chunk(3, dim=-1)
        h_r, h_z, h_n = recurrent.chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)
        return {"reset": r, "update": torch.sigmoid(x_z + h_z), "new": _tanh(x_n + r * h_n)}
    return {}


def _cell_step(cell: str, gates: dict[str, torch.Tensor], inputs: torch.Tensor, recurrent: torch.Tensor,
               h_prev: torch.Tensor, c_prev: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One step of each row from its own previous state: (h, c), c None except for an LSTM."""
    if cell == "lstm":
        c = gates["forget"] * c_prev + gates["input"] * gates["cell"]
        return gates["output"] * _tanh(c), c
    if cell == "gru":
        return (1 - gates["update"]) * gates["new"] + gates["update"] * h_prev, None
    return _tanh(inputs + recurrent), None


def _start_state(model: SentimentNet, k: int, d: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """h and (LSTM) c before the first token that layer k, direction d reads, (H,) each: zeros unless learned."""
    if not model.config.learned_state:
        zero = torch.zeros(model.config.hidden_size, device=model.device)
        return zero, zero if model.config.cell == "lstm" else None
    i = k * model.config.directions + d  # nn.LSTM's order of (h0, c0) rows
    return model.initial_h[i, 0], model.initial_c[i, 0] if model.initial_c is not None else None


def _trace_direction(model: SentimentNet, prepared: _Prepared, k: int, inputs: torch.Tensor, h: torch.Tensor,
                     reverse: bool) -> tuple[LayerTrace, float, torch.Tensor]:
    """Gates of one direction of layer k, given its input half x W_ih + b_ih (T, kH) and the module's hidden states
    h (T, H). Also returns the recurrent half, h_{t-1} W_hh + b_hh (T, kH), for reading_occlusion."""
    cell = model.config.cell
    _, w_hh, _, b_hh = prepared.weights[k, reverse]
    h_start, c_start = _start_state(model, k, int(reverse))
    # The step before token t is token t-1 going forward, token t+1 going backward.
    h_prev = torch.cat([h[1:], h_start[None]]) if reverse else torch.cat([h_start[None], h[:-1]])  # (T, H)
    recurrent = _affine(h_prev, w_hh, b_hh)  # (T, kH): with `inputs`, every gate of every step
    gates = _cell_gates(cell, inputs, recurrent)
    arrays = {name: g.float().cpu().numpy() for name, g in gates.items()}
    cell_state = None
    if cell == "lstm":
        # c_{t-1} is not an output of nn.LSTM: the scan rebuilds it from the gates, h = o * tanh(c) checks it.
        i, f, g, o = (arrays[name] for name in CELL_GATES["lstm"])
        written = i * g  # (T, H)
        first = -1 if reverse else 0
        written[first] += f[first] * c_start.float().cpu().numpy()  # the scan starts from c = 0: fold c_start in
        cell_state = _cell_scan(f[::-1], written[::-1])[::-1] if reverse else _cell_scan(f, written)
        hidden = o * np.tanh(cell_state)
        cell_state = np.ascontiguousarray(cell_state)
    else:
        hidden = _cell_step(cell, gates, inputs, recurrent, h_prev, None)[0].float().cpu().numpy()
    error = float(np.abs(hidden - h.float().cpu().numpy()).max())
    return LayerTrace(k, DIRECTIONS[int(reverse)], arrays, hidden, cell_state), error, recurrent


@torch.inference_mode()
def _forward_layers(model: SentimentNet, ids: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Inputs (T, in) and outputs (T, H * directions) of every layer, from the recurrent module itself."""
    x = model.embedding(ids[None])  # (1, T, E)
    start = model.initial_state(1)  # (L * D, 1, H), or None for zeros
    D = model.config.directions
    inputs, outputs = [], []
    for k, single in enumerate(_layer_modules(model.rnn)):
        state = None
        if start is not None:
            state = tuple(s[k * D : (k + 1) * D] for s in start) if isinstance(start, tuple) else start[k * D : (k + 1) * D]
        out, _ = single(x, state)  # (1, T, H * directions)
        inputs.append(x[0])
        outputs.append(out[0])
        x = out
    return inputs, outputs


@torch.inference_mode()
def prefix_probabilities(model: SentimentNet, ids: torch.Tensor) -> np.ndarray:
    """P(positive) for every prefix of one review, scored as a batch (exact for any model, O(T²) work)."""
    T = len(ids)
    batch = ids.expand(T, T).clone()  # (T, T): row t keeps tokens 0..t
    lengths = torch.arange(1, T + 1)
    batch[torch.arange(T)[None, :] >= lengths[:, None]] = PAD_ID
    return torch.sigmoid(model(batch, lengths)).float().cpu().numpy()


@torch.inference_mode()
def trace_gates(model: SentimentNet, ids: list[int] | torch.Tensor, tokens: list[str] | None = None) -> GateTrace:
    """Every gate and state of every layer and direction for one review (token ids, first token first), with
    dropout off."""
    device = model.device
    ids = torch.as_tensor(ids, dtype=torch.long, device=device)
    if ids.ndim != 1 or len(ids) == 0:
        raise ValueError("trace_gates takes the ids of one non-empty review")
    with evaluating(model):
        return _trace(model, ids, tokens)


def _trace(model: SentimentNet, ids: torch.Tensor, tokens: list[str] | None) -> GateTrace:
    H = model.config.hidden_size
    inputs, outputs = _forward_layers(model, ids)
    prepared = _prepare(model)
    layers, errors, recurrent = [], [], []
    for k, (x, out) in enumerate(zip(inputs, outputs)):
        for d in range(model.config.directions):
            half = _input_half(prepared, k, bool(d), x, ids)
            trace, error, pre = _trace_direction(model, prepared, k, half, out[:, d * H : (d + 1) * H], reverse=bool(d))
            layers.append(trace)
            errors.append(error)
            recurrent.append(pre)
    last = outputs[-1]  # (T, H * directions)
    if model.config.bidirectional:
        features = torch.cat([last[-1, :H], last[0, H:]])  # forward at the last token, backward at the first
        trajectory = prefix_probabilities(model, ids)
    else:
        features = last[-1]
        # Unidirectional: the hidden state after token t is exactly what the model reads had the review ended at t.
        trajectory = torch.sigmoid(model.head(last).squeeze(-1)).float().cpu().numpy()  # (T,)
    logit = model.head(features)  # (1,)
    return GateTrace(
        tokens=list(tokens) if tokens is not None else [str(int(i)) for i in ids],
        ids=ids.tolist(),
        layers=layers,
        logit=float(logit),
        probability=float(torch.sigmoid(logit)),
        trajectory=trajectory,
        max_error=max(errors),
        recurrent=recurrent,
    )


@torch.inference_mode()
def occlusion(model: SentimentNet, ids: list[int] | torch.Tensor, tokens: list[str] | None = None,
              trace: GateTrace | None = None, batch_size: int = 32) -> Attributions:
    """Score the review once per token with that token replaced by _UNK, `batch_size` copies at a time.

    For a unidirectional model with its `trace` at hand, the copy that hides token t starts from the traced
    states after token t-1 (nothing before t changes), which halves the work; otherwise every copy is
    scored whole by the model. Dropout is off."""
    device = model.device
    ids = torch.as_tensor(ids, dtype=torch.long, device=device)
    with evaluating(model):
        return _occlusion(model, ids, tokens, trace, batch_size)


def _occlusion(model: SentimentNet, ids: torch.Tensor, tokens: list[str] | None, trace: GateTrace | None,
               batch_size: int) -> Attributions:
    device = ids.device
    T = len(ids)
    logit = float(model(ids[None], torch.tensor([T])))
    occluded = torch.empty(T)
    resume = trace is not None and not model.config.bidirectional
    if resume:
        before = [_states_before(model, trace, k) for k in range(model.config.num_layers)]
        h_before = torch.stack([h for h, _ in before])  # (L, T, H): the state before token t, per layer
        c_before = torch.stack([c for _, c in before]) if model.config.cell == "lstm" else None
    for start in range(0, T, batch_size):
        rows = torch.arange(start, min(T, start + batch_size), device=device)
        b = len(rows)
        if resume:
            # Row j hides token t = start + j and reads tokens t..T-1, right-padded to T - start steps.
            batch = torch.full((b, T - start), PAD_ID, dtype=torch.long, device=device)  # (b, T - start)
            for j, t in enumerate(rows.tolist()):
                batch[j, : T - t] = ids[t:]
            batch[:, 0] = UNK_ID
            state = h_before[:, rows].contiguous()
            if c_before is not None:
                state = (state, c_before[:, rows].contiguous())
            out, _ = model.rnn(model.embedding(batch), state)
            last = out[torch.arange(b, device=device), T - 1 - rows]  # (b, H)
            occluded[start : start + b] = model.head(last).squeeze(-1).float().cpu()
        else:
            batch = ids.expand(b, T).clone()  # (b, T)
            batch[torch.arange(b, device=device), rows] = UNK_ID
            occluded[start : start + b] = model(batch, torch.full((b,), T)).float().cpu()
    return Attributions(
        tokens=list(tokens) if tokens is not None else [str(int(i)) for i in ids],
        values=(logit - occluded).numpy(),
        logits=np.full(T, logit, dtype=np.float32),
        occluded_logits=occluded.numpy(),
        method="on the final prediction",
    )


def _states_before(model: SentimentNet, trace: GateTrace, k: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """h and (LSTM) c before each token in layer k of a unidirectional model, (T, H) each: the start state, then
    the traced states."""
    traced = trace.layer(k)
    h_start, c_start = _start_state(model, k, 0)

    def shifted(start: torch.Tensor, states: np.ndarray) -> torch.Tensor:
        return torch.cat([start[None], torch.from_numpy(states[:-1]).to(start.device)])

    return shifted(h_start, traced.hidden_state), shifted(c_start, traced.cell_state) if c_start is not None else None


@torch.inference_mode()
def reading_occlusion(model: SentimentNet, trace: GateTrace) -> Attributions:
    """Occlusion at the moment of reading, for a unidirectional model: for every token t at once, one step from
    the traced states after token t-1 with `_UNK` as the input, through every layer, then the head.

    A token's value is then logit(tokens 0..t) - logit(tokens 0..t-1, _UNK): what reading it did to the running
    verdict, next to the trajectory. Its effect on later tokens (a "not" before "good") is what the slower
    `occlusion` measures."""
    if model.config.bidirectional:
        raise ValueError("occlusion at the moment of reading needs a unidirectional model; use occlusion()")
    device = model.device
    cell = model.config.cell
    prepared = _prepare(model)
    x = None
    for k in range(model.config.num_layers):
        # The _UNK variant's input half; the history, the recurrent half, stays the trace's. In layer 0 it is one
        # row for every position (the input table always holds _UNK); above, the layer below's variant reads it.
        w_ih, _, b_ih, _ = prepared.weights[k, False]
        inputs = prepared.tables[0][UNK_ID : UNK_ID + 1].clone() if k == 0 else _affine(x, w_ih, b_ih)  # (1 or T, kH)
        gates = _cell_gates(cell, inputs, trace.recurrent[k])
        h_prev, c_prev = _states_before(model, trace, k)
        x = _cell_step(cell, gates, inputs, trace.recurrent[k], h_prev, c_prev)[0]  # (T, H)
    occluded = model.head(x).squeeze(-1).float().cpu().numpy()  # (T,)
    top = torch.from_numpy(trace.layer(model.config.num_layers - 1).hidden_state).to(device)  # (T, H)
    logits = model.head(top).squeeze(-1).float().cpu().numpy()  # (T,) the running verdict after each token
    return Attributions(list(trace.tokens), logits - occluded, logits, occluded, "when read")


def top_units(trace: GateTrace, model: SentimentNet, layer: int, direction: str = "forward", count: int = 16) -> np.ndarray:
    """Indices of the units worth showing, most important first.

    In the last layer: the units that move the final logit most, |h_T[u] · w_out[u]|. In lower layers,
    which the output layer does not read directly: the units whose hidden state varies most over the review."""
    t = trace.layer(layer, direction)
    count = max(1, min(count, t.hidden_state.shape[1]))
    if layer == model.config.num_layers - 1:
        H = model.config.hidden_size
        d = DIRECTIONS.index(direction)
        weights = model.head.weight[0, d * H : (d + 1) * H].detach().float().cpu().numpy()  # (H,)
        final = t.hidden_state[-1] if direction == "forward" else t.hidden_state[0]
        score = np.abs(final * weights)
    else:
        score = t.hidden_state.var(axis=0)
    return np.argsort(-score, kind="stable")[:count]


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
        mean = torch.from_numpy(values).mean(dim=1).numpy()  # numpy's row means take twice as long here
        summaries.append(GateSummary(gate, mean, np.count_nonzero(values < low) / values.size,
                                     np.count_nonzero(values > 0.9) / values.size))
    return summaries


@dataclass
class Inspection:
    """Everything the Predict tab shows for one review."""

    trace: GateTrace
    attributions: Attributions


def inspect_review(model: SentimentNet, vocab: Vocab, text: str, max_len: int,
                   attribution: str = "when read") -> Inspection:
    """Encode like training (first `max_len` tokens), then `inspect_tokens`."""
    tokens, ids = encode_review(text, vocab, max_len)
    if not ids:
        raise ValueError("the review has no words to read")
    return inspect_tokens(model, tokens, ids, attribution)


def inspect_tokens(model: SentimentNet, tokens: list[str], ids: list[int], attribution: str = "when read") -> Inspection:
    """Trace the gates of an encoded review and attribute the prediction with one of ATTRIBUTION_METHODS. A
    bidirectional model has no single moment of reading: it always gets full occlusion."""
    if attribution not in ATTRIBUTION_METHODS:
        raise ValueError(f"attribution must be one of {', '.join(ATTRIBUTION_METHODS)}; got {attribution!r}")
    trace = trace_gates(model, ids, tokens)
    if attribution == "when read" and not model.config.bidirectional:
        return Inspection(trace, reading_occlusion(model, trace))
    return Inspection(trace, occlusion(model, ids, tokens, trace))


def unknown_tokens(tokens: list[str], ids: list[int]) -> list[str]:
    return [t for t, i in zip(tokens, ids) if i == UNK_ID]
