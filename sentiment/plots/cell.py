"""One step of the cell, drawn as the tutorial draws it, with this token's real numbers."""
from __future__ import annotations

import math

import numpy as np

from .figure import Figure, figure, token_label

_NODE = dict(sigmoid=("#fff3bf", "#e67700"), tanh=("#d3f9d8", "#2b8a3e"), op=("#ffffff", "#495057"),
             state=("#e7f5ff", "#1864ab"))


def _node(x: float, y: float, text: str, kind: str, width: float = 0.55, height: float = 0.42) -> tuple[dict, dict]:
    fill, line = _NODE[kind]
    shape = dict(type="circle" if kind == "op" else "rect", x0=x - width / 2, x1=x + width / 2, y0=y - height / 2,
                 y1=y + height / 2, fillcolor=fill, line=dict(color=line, width=1.5))
    return shape, dict(x=x, y=y, text=text, showarrow=False, font=dict(size=13, color=line))


def _wire(x0: float, y0: float, x1: float, y1: float, label: str = "", color: str = "#495057") -> dict:
    """An arrow from (x0, y0) to (x1, y1), its label at the arrow's tail side."""
    return dict(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", showarrow=True, arrowhead=2,
                arrowsize=1, arrowwidth=1.5, arrowcolor=color, text="", standoff=12, startstandoff=12)


def _value(x: float, y: float, text: str, anchor: str = "left") -> dict:
    return dict(x=x, y=y, text=text, showarrow=False, xanchor=anchor, font=dict(size=12, color="#212529"))


def _lstm_diagram(v: dict, add) -> tuple[list, list, str]:
    add(0.6, 5, "c<sub>t-1</sub>", "state", width=0.8), add(9.4, 5, "c<sub>t</sub>", "state", width=0.8)
    add(0.6, 1, "h<sub>t-1</sub>", "state", width=0.8), add(9.4, 1, "h<sub>t</sub>", "state", width=0.8)
    add(2.0, 0.1, "x<sub>t</sub>", "state", width=0.8)
    add(3, 5, "×", "op", width=0.4, height=0.4), add(5.1, 5, "+", "op", width=0.4, height=0.4)
    add(5.1, 4, "×", "op", width=0.4, height=0.4), add(8, 2.4, "×", "op", width=0.4, height=0.4)
    add(3, 3, "σ  f", "sigmoid"), add(4.4, 3, "σ  i", "sigmoid"), add(5.8, 3, "tanh  g", "tanh", width=0.8)
    add(6.9, 3, "σ  o", "sigmoid"), add(8, 3.8, "tanh", "tanh", width=0.7)
    wires = [_wire(1, 5, 2.8, 5), _wire(3.2, 5, 4.9, 5), _wire(5.3, 5, 9.0, 5), _wire(3, 3.2, 3, 4.8),
             _wire(4.4, 3.2, 5.0, 3.85), _wire(5.8, 3.2, 5.2, 3.85), _wire(5.1, 4.2, 5.1, 4.8),
             _wire(8, 5, 8, 4.0), _wire(8, 3.6, 8, 2.6), _wire(7.15, 2.85, 7.8, 2.45), _wire(8.2, 2.4, 9.0, 1.1),
             _wire(1, 1, 7, 1), _wire(2, 0.3, 2, 1)]
    wires += [_wire(x, 1, x, 2.8) for x in (3, 4.4, 5.8, 6.9)]
    labels = [
        _value(0.6, 5.45, f"{v['c_prev']:+.3f}", "center"), _value(9.4, 5.45, f"{v['c']:+.3f}", "center"),
        _value(0.6, 0.55, f"{v['h_prev']:+.3f}", "center"), _value(9.4, 0.55, f"{v['h']:+.3f}", "center"),
        _value(3.1, 2.55, f"f = {v['f']:.3f}"), _value(4.5, 2.55, f"i = {v['i']:.3f}"),
        _value(5.9, 2.55, f"g = {v['g']:+.3f}"), _value(6.85, 3.45, f"o = {v['o']:.3f}", "center"),
        _value(3.1, 5.45, f"f·c<sub>t-1</sub> = {v['f'] * v['c_prev']:+.3f}"),
        _value(5.25, 4.3, f"i·g = {v['i'] * v['g']:+.3f}"),
        _value(8.45, 3.8, f"tanh(c) = {math.tanh(v['c']):+.3f}"),
    ]
    title = (f"c = f·c<sub>t-1</sub> + i·g = {v['f']:.3f}×{v['c_prev']:+.3f} + {v['i']:.3f}×{v['g']:+.3f} = "
             f"{v['c']:+.3f}    h = o·tanh(c) = {v['o']:.3f}×{math.tanh(v['c']):+.3f} = {v['h']:+.3f}")
    return wires, labels, title


def _gru_diagram(v: dict, add) -> tuple[list, list, str]:
    add(0.6, 5, "h<sub>t-1</sub>", "state", width=0.8), add(9.4, 5, "h<sub>t</sub>", "state", width=0.8)
    add(2.0, 0.1, "x<sub>t</sub>", "state", width=0.8)
    add(3.5, 5, "×", "op", width=0.4, height=0.4), add(6.5, 5, "+", "op", width=0.4, height=0.4)
    add(6.5, 3.9, "×", "op", width=0.4, height=0.4), add(5.0, 3.9, "1−", "op", width=0.4, height=0.4)
    add(2.5, 2.6, "σ  r", "sigmoid"), add(3.5, 2.6, "σ  z", "sigmoid"), add(6.5, 2.6, "tanh  n", "tanh", width=0.8)
    wires = [_wire(1, 5, 3.3, 5), _wire(3.7, 5, 6.3, 5), _wire(6.7, 5, 9.0, 5), _wire(3.5, 2.8, 3.5, 4.8),
             _wire(3.6, 2.8, 4.85, 3.8), _wire(5.2, 3.9, 6.3, 3.9), _wire(6.5, 2.8, 6.5, 3.7),
             _wire(6.5, 4.1, 6.5, 4.8), _wire(2, 0.3, 2, 1.4), _wire(1.2, 4.8, 2.4, 2.8),
             _wire(2.7, 2.6, 6.1, 2.6), _wire(2, 1.4, 6.4, 2.4)]
    labels = [
        _value(0.6, 5.45, f"{v['h_prev']:+.3f}", "center"), _value(9.4, 5.45, f"{v['h']:+.3f}", "center"),
        _value(2.0, 2.1, f"r = {v['r']:.3f}", "center"), _value(3.6, 2.15, f"z = {v['z']:.3f}"),
        _value(6.6, 2.15, f"n = {v['n']:+.3f}"), _value(3.6, 5.45, f"z·h<sub>t-1</sub> = {v['z'] * v['h_prev']:+.3f}"),
        _value(6.7, 4.3, f"(1−z)·n = {(1 - v['z']) * v['n']:+.3f}"),
    ]
    title = (f"h = (1−z)·n + z·h<sub>t-1</sub> = {1 - v['z']:.3f}×{v['n']:+.3f} + {v['z']:.3f}×{v['h_prev']:+.3f}"
             f" = {v['h']:+.3f}")
    return wires, labels, title


def _rnn_diagram(v: dict, add) -> tuple[list, list, str]:
    add(0.6, 3, "h<sub>t-1</sub>", "state", width=0.8), add(9.4, 3, "h<sub>t</sub>", "state", width=0.8)
    add(2.5, 0.6, "x<sub>t</sub>", "state", width=0.8), add(5, 3, "tanh", "tanh", width=0.8)
    wires = [_wire(1, 3, 4.6, 3), _wire(2.5, 0.8, 4.7, 2.8), _wire(5.4, 3, 9.0, 3)]
    labels = [_value(0.6, 3.45, f"{v['h_prev']:+.3f}", "center"), _value(9.4, 3.45, f"{v['h']:+.3f}", "center")]
    title = f"h = tanh(W<sub>ih</sub> x + W<sub>hh</sub> h<sub>t-1</sub> + b) = {v['h']:+.3f}: no gates, no separate memory"
    return wires, labels, title


_CELL_DIAGRAMS = {"lstm": _lstm_diagram, "gru": _gru_diagram, "rnn": _rnn_diagram}


def cell_figure(step, height: int = 440) -> Figure:
    """One step of one unit drawn as the tutorial draws the cell, each wire and gate with its real value.
    `step` is an `explain.CellStep`."""
    nodes, node_labels = [], []

    def add(x, y, text, kind, **size):
        shape, annotation = _node(x, y, text, kind, **size)
        nodes.append(shape)
        node_labels.append(annotation)

    wires, labels, title = _CELL_DIAGRAMS[step.cell](step.values, add)
    heading = (f"Token {step.token_index + 1} “{token_label(step.token)}”, unit {step.unit} of layer {step.layer + 1} "
               f"({step.direction})")
    layout = dict(title=dict(text=f"{heading}<br><sub>{title}</sub>", x=0.01), shapes=nodes,
                  annotations=wires + node_labels + labels,
                  xaxis=dict(visible=False, range=[0, 10.6]), yaxis=dict(visible=False, range=[-0.3, 5.9]),
                  showlegend=False, margin=dict(l=10, r=10, t=70, b=10))
    return figure([], layout, height)


def layer_gate_bars(step, height: int = 420) -> Figure:
    """Every unit's gates (and states) at the step's token, one row of bars each; the chosen unit stands out.
    `step` is an `explain.CellStep`."""
    names = list(step.layer_vectors)
    rows, gap = len(names), 0.08
    row_height = (1 - gap * (rows - 1)) / rows
    data, layout, titles = [], {}, []
    for r, name in enumerate(names):
        values = np.asarray(step.layer_vectors[name])
        top = 1 - r * (row_height + gap)
        colours = np.where(np.arange(len(values)) == step.unit, "#e8590c", "#868e96")
        suffix = str(r + 1) if r else ""
        data.append(dict(type="bar", y=values, marker=dict(color=colours), xaxis=f"x{suffix}", yaxis=f"y{suffix}",
                         hovertemplate="unit %{x}: " + name + " = %{y:.3f}<extra></extra>"))
        bounded = name in ("i", "f", "o", "r", "z")  # sigmoid gates, 0..1; the rest are tanh values or states
        layout[f"yaxis{suffix}"] = dict(domain=[max(0.0, round(top - row_height, 6)), round(top, 6)],
                                        range=[0, 1] if bounded else None, showticklabels=False, zeroline=True)
        layout[f"xaxis{suffix}"] = dict(anchor=f"y{suffix}", showticklabels=r == rows - 1, matches="x" if r else None)
        titles.append(dict(text=name, x=-0.02, y=top - row_height / 2, xref="paper", yref="paper", showarrow=False,
                           xanchor="right", font=dict(size=14)))
    layout[f"xaxis{rows if rows > 1 else ''}"]["title"] = dict(text=f"unit (unit {step.unit} in orange)")
    layout.update(annotations=titles, showlegend=False, bargap=0.1, margin=dict(l=40, r=20, t=50, b=50),
                  title=dict(text=f"The whole layer at token {step.token_index + 1}"))
    return figure(data, layout, height)
