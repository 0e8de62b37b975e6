"""The playground: build a real `nn.LSTM` (or `nn.GRU`, `nn.RNN`), run it once, and report every shape and weight."""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import torch
from torch import nn

from ..config import Choice, ConfigError, Number
from ..model.network import CELLS
from ..plots.figure import Figure, figure

SIZES = MappingProxyType({"input_size": 4096, "hidden_size": 4096, "num_layers": 8, "batch_size": 1024, "seq_len": 2000})
# What one request may cost, whatever the mix of sizes: its weights, its multiply-adds and the floats it holds
# (every gate of every step is kept for the backward pass a real model would run). Each bound keeps a request well
# under a second and a few hundred MB on 2 CPU cores.
MAX_PARAMETERS = 20_000_000
MAX_MULTIPLY_ADDS = 2_000_000_000
MAX_ACTIVATIONS = 20_000_000
GATE_NAMES = {"lstm": "i, f, g, o", "gru": "r, z, n", "rnn": "one tanh"}
GATE_COUNTS = {"lstm": 4, "gru": 3, "rnn": 1}


@dataclass
class CellShapes:
    code: str
    shapes: list[list[str]]  # [tensor, shape, meaning]
    parameters: list[list]  # [name, shape, count]
    total_parameters: int
    many_to_one: str
    many_to_many: str
    stacking: str  # what the first dimension of each weight stacks


def cost(cell: str, input_size: int, hidden_size: int, num_layers: int, batch_size: int, seq_len: int,
         bidirectional: bool) -> tuple[int, int, int]:
    """(parameters, multiply-adds of one forward pass, activations held) of such a module."""
    k, D, H = GATE_COUNTS[cell], 2 if bidirectional else 1, hidden_size
    parameters = sum(D * k * H * ((input_size if layer == 0 else D * H) + H + 2) for layer in range(num_layers))
    multiply_adds = batch_size * seq_len * (parameters - num_layers * D * k * H * 2)
    activations = batch_size * seq_len * num_layers * D * H * (k + 2)
    return parameters, multiply_adds, activations


def _check_cost(cell: str, input_size: int, hidden_size: int, num_layers: int, batch_size: int, seq_len: int,
                bidirectional: bool) -> None:
    parameters, multiply_adds, activations = cost(cell, input_size, hidden_size, num_layers, batch_size, seq_len,
                                                  bidirectional)
    for what, value, bound in (("weights", parameters, MAX_PARAMETERS), ("multiply-adds", multiply_adds,
                               MAX_MULTIPLY_ADDS), ("activations", activations, MAX_ACTIVATIONS)):
        if value > bound:
            raise ConfigError(f"that {cell.upper()} would need {value:,} {what}; the playground allows {bound:,} per "
                              "request: make the sizes, the layers, the batch or the sequence smaller")


def _code(module: nn.Module, x_shape: tuple, state_shape: tuple, output_shape, h_n_shape) -> str:
    """The few lines a reader can paste to get the same shapes."""
    name = type(module).__name__
    lstm = isinstance(module, nn.LSTM)
    call = "output, (h_n, c_n) = rnn(x, (h0, c0))" if lstm else "output, h_n = rnn(x, h0)"
    states = ("h0", "c0") if lstm else ("h0",)
    return (
        "import torch\nimport torch.nn as nn\n\n"
        f"rnn = nn.{name}(input_size={module.input_size}, hidden_size={module.hidden_size}, "
        f"num_layers={module.num_layers},\n"
        f"{' ' * (len(name) + 10)}batch_first={module.batch_first}, bidirectional={module.bidirectional})\n"
        f"x = torch.randn{x_shape}\n"
        + "".join(f"{s} = torch.zeros{state_shape}\n" for s in states)
        + f"{call}\nprint(output.shape)  # torch.Size({list(output_shape)})\n"
        f"print(h_n.shape)  # torch.Size({list(h_n_shape)})\n"
    )


def describe_cell(cell: str, input_size: int, hidden_size: int, num_layers: int, batch_size: int, seq_len: int,
                  batch_first: bool = True, bidirectional: bool = False) -> CellShapes:
    """Run `nn.LSTM` (`nn.GRU`, `nn.RNN`) on zeros of the asked shape and describe what goes in and comes out."""
    Choice("cell", choices=tuple(CELLS)).check(cell)
    sizes = dict(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, batch_size=batch_size,
                 seq_len=seq_len)
    input_size, hidden_size, num_layers, batch_size, seq_len = (
        Number(name, 1, SIZES[name], integer=True).check(value) for name, value in sizes.items())
    batch_first, bidirectional = bool(batch_first), bool(bidirectional)
    _check_cost(cell, input_size, hidden_size, num_layers, batch_size, seq_len, bidirectional)
    D = 2 if bidirectional else 1
    module = CELLS[cell](input_size, hidden_size, num_layers, batch_first=batch_first, bidirectional=bidirectional)
    x_shape = (batch_size, seq_len, input_size) if batch_first else (seq_len, batch_size, input_size)
    state_shape = (num_layers * D, batch_size, hidden_size)
    with torch.inference_mode():
        start = torch.zeros(state_shape)
        output, state = module(torch.zeros(x_shape), (start, start) if cell == "lstm" else start)
    h_n = state[0] if cell == "lstm" else state

    def shape(t) -> str:
        return "(" + ", ".join(str(s) for s in tuple(t)) + ")"

    order = "(batch, seq, feature)" if batch_first else "(seq, batch, feature)"
    states = "h0, c0" if cell == "lstm" else "h0"
    shapes = [
        ["input x", shape(x_shape), f"{order}: one {input_size}-vector per step"],
        [states, shape(state_shape), "(layers × directions, batch, hidden): the start state, zeros if omitted"],
        ["output", shape(output.shape), ("(batch, seq, " if batch_first else "(seq, batch, ")
         + "directions × hidden): the last layer's h at every step"],
        ["h_n", shape(h_n.shape), "the final hidden state of every layer and direction"],
    ]
    if cell == "lstm":
        shapes.append(["c_n", shape(state[1].shape), "the final cell state of every layer and direction"])
    last = "output[:, -1, :]" if batch_first else "output[-1, :, :]"
    many_to_one = (f"Many-to-one (a classifier, like our sentiment model): one vector per sequence, `{last}` → "
                   f"({batch_size}, {hidden_size * D}); for a one-direction module this equals `h_n[-1]`.")
    if bidirectional:
        many_to_one += (" With two directions the backward half of the last step has read only one token, so "
                        "classifiers use `torch.cat([h_n[-2], h_n[-1]], dim=1)` instead.")
    many_to_many = (f"Many-to-many (tagging every token): the whole `output`, {shape(output.shape)}: "
                    f"one {hidden_size * D}-vector for each of the {seq_len} steps.")
    k = GATE_COUNTS[cell]
    stacking = (f"Each weight stacks the cell's {k} gates ({GATE_NAMES[cell]}): its first dimension is "
                f"{k} × {hidden_size} = {k * hidden_size}." if k > 1 else
                f"A plain RNN has no gates: one tanh, so each weight's first dimension is the hidden size, {hidden_size}.")
    code = _code(module, x_shape, state_shape, output.shape, h_n.shape)
    rows = [[n, shape(p.shape), p.numel()] for n, p in module.named_parameters()]
    return CellShapes(code=code, shapes=shapes, parameters=rows, total_parameters=sum(r[2] for r in rows),
                      many_to_one=many_to_one, many_to_many=many_to_many, stacking=stacking)


def unrolled_diagram(cell: str, num_layers: int, seq_len: int, bidirectional: bool = False, height: int = 380) -> Figure:
    """Cells as boxes (layers up, time steps across) with the arrows that carry x, h (and c for an LSTM)."""
    steps, layers = min(int(seq_len), 5), min(int(num_layers), 3)  # beyond that the picture gets wider, not clearer
    carried = "h, c" if cell == "lstm" else "h"
    shapes, notes = [], []
    annotations = [dict(x=-1.05, y=k, text=f"layer {k + 1}", showarrow=False) for k in range(layers)]

    def arrow(x, y, ax, ay, text="", color="#495057") -> dict:
        return dict(x=x, y=y, ax=ax, ay=ay, xref="x", yref="y", axref="x", ayref="y", text=text, showarrow=True,
                    arrowhead=2, arrowcolor=color, font=dict(size=11, color=color))

    def step_label(t: int) -> int:
        return t + 1 if t < steps - 1 or steps == seq_len else seq_len

    for k in range(layers):
        for t in range(steps):
            shapes.append(dict(type="rect", x0=t - 0.3, x1=t + 0.3, y0=k - 0.25, y1=k + 0.25,
                               line=dict(color="#364fc7"), fillcolor="#dbe4ff"))
            annotations.append(dict(x=t, y=k, text=cell.upper(), showarrow=False, font=dict(size=10, color="#364fc7")))
            annotations.append(arrow(t, k - 0.25, t, k - 0.75))
            if k:  # the layer below's h at this step is this layer's input
                annotations.append(dict(x=t + 0.15, y=k - 0.5, text=f"h{step_label(t)}", showarrow=False,
                                        font=dict(size=10, color="#2b8a3e")))
            if t:  # the state carried from the step before
                annotations.append(arrow(t - 0.3, k, t - 0.7, k))
                annotations.append(dict(x=t - 0.5, y=k + 0.12, text=carried, showarrow=False,
                                        font=dict(size=10, color="#c92a2a")))
    for t in range(steps):
        annotations.append(dict(x=t, y=-0.9, text=f"x{step_label(t)}", showarrow=False))
        annotations.append(arrow(t, layers - 0.25 + 0.45, t, layers - 0.25))
        annotations.append(dict(x=t, y=layers + 0.32, text=f"output[{step_label(t) - 1}] = h{step_label(t)}",
                                showarrow=False, font=dict(size=10, color="#2b8a3e")))
    if steps < seq_len:
        notes.append(f"steps 1–{steps - 1} and {seq_len} of {seq_len} shown")
    if layers < num_layers:
        notes.append(f"{layers} of {num_layers} layers shown")
    if bidirectional:
        notes.append("each layer also runs a second cell right-to-left; the layer above reads both")
    title = (f"One {cell.upper()} cell per layer, unrolled: {carried} flow right to the next step, h flows up to the "
             "next layer" + ("<br><sub>" + "; ".join(notes) + "</sub>" if notes else ""))
    layout = dict(title=dict(text=title), shapes=shapes, annotations=annotations, showlegend=False,
                  xaxis=dict(visible=False, range=[-1.4, steps - 0.4]),
                  yaxis=dict(visible=False, range=[-1.2, layers + 0.5]), margin=dict(l=10, r=10, t=80, b=10))
    return figure([], layout, height)
