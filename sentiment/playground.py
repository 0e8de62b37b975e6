"""The LSTM playground: build a real `nn.LSTM`, run it once, and report every shape and weight it has."""
from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
import torch
import torch.nn as nn

from .model import ConfigError, check_range

# Bounds that keep one forward pass of the playground well under a second and a few hundred MB.
LIMITS = {"input_size": 4096, "hidden_size": 4096, "num_layers": 8, "batch_size": 1024, "seq_len": 2000}
MAX_ACTIVATIONS = 20_000_000


@dataclass
class LSTMShapes:
    code: str
    shapes: list[list[str]]  # [tensor, shape, meaning]
    parameters: list[list]  # [name, shape, count]
    total_parameters: int
    many_to_one: str
    many_to_many: str


def describe_lstm(input_size: int, hidden_size: int, num_layers: int, batch_size: int, seq_len: int,
                  batch_first: bool = True, bidirectional: bool = False) -> LSTMShapes:
    """Run `nn.LSTM` on zeros of the asked shape and describe what goes in and comes out."""
    sizes = dict(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, batch_size=batch_size, seq_len=seq_len)
    for name, value in sizes.items():
        check_range(name, value, 1, LIMITS[name])
    input_size, hidden_size, num_layers, batch_size, seq_len = (int(v) for v in sizes.values())
    D = 2 if bidirectional else 1
    if batch_size * seq_len * max(input_size, hidden_size * D) * num_layers > MAX_ACTIVATIONS:
        raise ConfigError("that LSTM would need more memory than the playground allows: make the batch, the sequence or the sizes smaller")

    lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=batch_first, bidirectional=bidirectional)
    x_shape = (batch_size, seq_len, input_size) if batch_first else (seq_len, batch_size, input_size)
    state_shape = (num_layers * D, batch_size, hidden_size)
    with torch.no_grad():
        output, (h_n, c_n) = lstm(torch.zeros(x_shape), (torch.zeros(state_shape), torch.zeros(state_shape)))

    def shape(t) -> str:
        return "(" + ", ".join(str(s) for s in tuple(t)) + ")"

    order = "(batch, seq, feature)" if batch_first else "(seq, batch, feature)"
    shapes = [
        ["input x", shape(x_shape), f"{order}: one {input_size}-vector per step"],
        ["h0, c0", shape(state_shape), "(layers × directions, batch, hidden): initial states, zeros if omitted"],
        ["output", shape(output.shape), ("(batch, seq, " if batch_first else "(seq, batch, ")
         + "directions × hidden): the last layer's h at every step"],
        ["h_n", shape(h_n.shape), "final hidden state of every layer and direction"],
        ["c_n", shape(c_n.shape), "final cell state of every layer and direction"],
    ]
    last = "output[:, -1, :]" if batch_first else "output[-1, :, :]"
    many_to_one = (
        f"Many-to-one (a classifier, like our sentiment model): one vector per sequence, `{last}` → "
        f"({batch_size}, {hidden_size * D}); for a unidirectional LSTM this equals `h_n[-1]`."
    )
    if bidirectional:
        many_to_one += (" With two directions the backward half of the last step has read only one token, so "
                        "classifiers use `torch.cat([h_n[-2], h_n[-1]], dim=1)` instead.")
    many_to_many = (f"Many-to-many (tagging every token): the whole `output`, {shape(output.shape)}: "
                    f"one {hidden_size * D}-vector for each of the {seq_len} steps.")
    parameters = [[name, shape(p.shape), p.numel()] for name, p in lstm.named_parameters()]
    code = (
        "import torch\nimport torch.nn as nn\n\n"
        f"lstm = nn.LSTM(input_size={input_size}, hidden_size={hidden_size}, num_layers={num_layers},\n"
        f"               batch_first={batch_first}, bidirectional={bidirectional})\n"
        f"x = torch.randn{x_shape}\n"
        f"h0 = torch.zeros{state_shape}\nc0 = torch.zeros{state_shape}\n"
        "output, (h_n, c_n) = lstm(x, (h0, c0))\n"
        f"print(output.shape)  # torch.Size({list(output.shape)})\n"
        f"print(h_n.shape, c_n.shape)  # torch.Size({list(h_n.shape)}) each\n"
    )
    return LSTMShapes(code, shapes, parameters, sum(p[2] for p in parameters), many_to_one, many_to_many)


def unrolled_diagram(num_layers: int, seq_len: int, bidirectional: bool = False, height: int = 360) -> go.Figure:
    """Cells as boxes (layers up, time steps across) with the arrows that carry x, h and c."""
    steps = min(int(seq_len), 6)  # beyond six steps the picture only gets wider, not clearer
    layers = min(int(num_layers), 4)
    fig = go.Figure()
    arrows = []
    for k in range(layers):
        for t in range(steps):
            fig.add_shape(type="rect", x0=t - 0.3, x1=t + 0.3, y0=k - 0.25, y1=k + 0.25,
                          line=dict(color="#364fc7"), fillcolor="#dbe4ff")
            arrows.append(dict(x=t, y=k - 0.25, ax=t, ay=k - 0.75, text=""))  # input from below
            if t:
                arrows.append(dict(x=t - 0.3, y=k, ax=t - 0.7, ay=k, text=""))  # h, c from the previous step
        fig.add_annotation(x=-0.9, y=k, text=f"layer {k + 1}", showarrow=False)
    for t in range(steps):
        label = f"x{t + 1}" if t < steps - 1 or steps == seq_len else f"x{seq_len}"
        fig.add_annotation(x=t, y=-0.9, text=label, showarrow=False)
        fig.add_annotation(x=t, y=layers - 0.4, text=f"h{t + 1 if t < steps - 1 or steps == seq_len else seq_len}",
                           showarrow=False, font=dict(color="#2b8a3e"))
    for a in arrows:
        fig.add_annotation(xref="x", yref="y", axref="x", ayref="y", showarrow=True, arrowhead=2, **a)
    notes = []
    if steps < seq_len:
        notes.append(f"steps 1–{steps - 1} and {seq_len} of {seq_len} shown")
    if layers < num_layers:
        notes.append(f"{layers} of {num_layers} layers shown")
    if bidirectional:
        notes.append("each layer also runs a second cell right-to-left")
    title = "One cell, unrolled: h and c flow right, h flows up"
    fig.update_layout(title=dict(text=title + ("<br><sub>" + "; ".join(notes) + "</sub>" if notes else "")),
                      height=height, template="plotly_white", showlegend=False,
                      xaxis=dict(visible=False, range=[-1.3, steps - 0.5]),
                      yaxis=dict(visible=False, range=[-1.2, layers - 0.2]), margin=dict(l=10, r=10, t=70, b=10))
    return fig
