"""Plotly figure builders. Plain functions of plain data; every figure has a fixed height.

Each builder returns a `Figure`: the plotly.js spec as plain dicts and numpy arrays. A gr.Plot takes it as it takes a
go.Figure, by calling its `to_json()`. Token labels go through `token_label`, which escapes them: plotly reads a small
subset of HTML in labels, and a review's `<script>` or `&amp;` must show as the characters the person typed.
"""
from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import orjson
from plotly.colors import get_colorscale

from .gates import TANH_GATES, Attributions, GateTrace, LayerTrace, gate_summaries

TOKENS_IN_VIEW = 60  # longer reviews open on their first 60 tokens, with a range slider to scroll the rest
_GATE_TITLES = {
    "input": "input gate i",
    "forget": "forget gate f",
    "cell": "cell candidate g",
    "output": "output gate o",
    "reset": "reset gate r",
    "update": "update gate z",
    "new": "candidate n",
    "cell_state": "cell state c",
    "hidden_state": "hidden state h",
}
POSITIVE_COLOUR, NEGATIVE_COLOUR = "#f05252", "#9f7aea"  # as gr.HighlightedText colours scores of +1 and -1
# Colour scales spelled out: plotly.js and plotly.py disagree on which end of a named scale such as "RdBu" is red.
GATE_SCALE = get_colorscale("Viridis")  # sigmoid gates, 0..1
SIGNED_SCALE = get_colorscale("RdBu_r")  # tanh values and the cell state: blue negative, red positive
COUNT_SCALE = get_colorscale("Blues")  # light few, dark many
_LAYOUT = dict(margin=dict(l=60, r=20, t=60, b=40), font=dict(size=12))


class Figure:
    """A plotly figure as plain data: `data` (a list of trace dicts) and `layout` (a dict), numpy arrays inside.

    A go.Figure validates and deep-copies every property when built and walks it all again in to_json(), many times
    the work of building these, and plotly.graph_objects is slow to import. This class skips both;
    `to_plotly()` gives the validated go.Figure, which is how the tests check every builder."""

    def __init__(self, data: list[dict], layout: dict) -> None:
        self.data, self.layout = data, layout

    def to_dict(self) -> dict:
        return {"data": self.data, "layout": self.layout}

    def to_json(self) -> str:
        """The JSON plotly.js reads, numpy arrays as its base64 typed arrays (float32, int32)."""
        text = orjson.dumps(self.to_dict(), default=_typed_array)
        # As plotly's own to_json: the JSON may be written into an HTML page, where "</script>" would end a script.
        # On the UTF-8 bytes rather than the str: no ASCII byte occurs inside a multi-byte character.
        return text.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").decode()

    def to_plotly(self):
        import plotly.graph_objects as go  # only tests validate figures

        return go.Figure(self.to_dict())


def _typed_array(value: object) -> object:
    """orjson's fallback for numpy values: numbers as plotly.js typed arrays, anything else as lists."""
    if not isinstance(value, np.ndarray | np.generic):
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    if value.dtype.kind not in "iuf" or value.ndim == 0:
        return value.tolist()
    dtype = "f4" if value.dtype.kind == "f" else "i4"
    array = np.ascontiguousarray(value, dtype=dtype)
    spec = {"dtype": dtype, "bdata": base64.b64encode(array.tobytes()).decode("ascii")}
    if array.ndim > 1:
        spec["shape"] = ", ".join(map(str, array.shape))
    return spec


DISPLAY_CHARS = 24  # a token longer than this is shown shortened: one 1 MB "word" must not fill a page or an axis


def short_token(token: str, limit: int = DISPLAY_CHARS) -> str:
    """The token as shown to a person: at most `limit` characters, a longer one cut with an ellipsis."""
    return token if len(token) <= limit else token[: limit - 1] + "…"


def token_label(token: str) -> str:
    """A token for a plot label: shortened, and escaped (plotly reads a subset of HTML in labels)."""
    return html.escape(short_token(token), quote=False)


def _token_labels(tokens: Sequence[str]) -> tuple[str, ...]:
    return _escaped(tuple(tokens))


@lru_cache(maxsize=16)
def _escaped(tokens: tuple[str, ...]) -> tuple[str, ...]:
    # Every figure of an inspection labels the same tokens, twice: escape them once.
    return tuple(token_label(t) for t in tokens)


def figure(data: list[dict], layout: dict, height: int) -> Figure:
    return Figure(data, {"template": _template(), "height": height, **_LAYOUT, **layout})


@lru_cache(maxsize=1)
def _template() -> dict:
    """plotly_white's page, font and axis style, without its defaults for trace types and 3-D, polar, geo or
    ternary axes these figures never use: the template travels inside every figure's JSON."""
    import plotly.io as pio  # once, on the first figure: it imports plotly's whole figure machinery

    layout = pio.templates["plotly_white"].layout.to_plotly_json()
    used = ("colorway", "font", "hoverlabel", "hovermode", "paper_bgcolor", "plot_bgcolor", "title", "xaxis", "yaxis")
    return {"layout": {key: layout[key] for key in used if key in layout}}


@lru_cache(maxsize=16)
def _token_positions(tokens: tuple[str, ...]) -> tuple[str, ...]:
    # A heatmap's hover can only show its own x, not the axis' tick text: x is the token with its position,
    # unique, so the same word twice stays two columns. 200 labels instead of a (units, tokens) hover matrix.
    return tuple(f"{label} ({t + 1})" for t, label in enumerate(_escaped(tokens)))


def _token_axis(tokens: Sequence[str], anchor: str | None = None, categorical: bool = False) -> tuple[dict, str]:
    """The x axis: token text under each position; a long review opens on its first tokens with a slider.
    Positions are 0, 1, 2..., the x that plotly gives a line or bar trace without one; categorical: the
    `_token_positions` labels."""
    positions = _token_positions(tuple(tokens)) if categorical else np.arange(len(tokens))
    axis = dict(tickmode="array", tickvals=positions, ticktext=_token_labels(tokens), tickangle=-60, automargin=True)
    if categorical:
        axis["type"] = "category"
    if anchor:
        axis["anchor"] = anchor
    if len(tokens) <= TOKENS_IN_VIEW:
        return axis, ""
    axis.update(range=[-0.5, TOKENS_IN_VIEW - 0.5], rangeslider=dict(visible=True, thickness=0.05))
    return axis, f" — tokens 1–{TOKENS_IN_VIEW} of {len(tokens)} shown: drag the slider under the plot to scroll"


def _unit_labels(units: Sequence[int]) -> list[str]:
    return [f"unit {u}" for u in units]


def _no_gates(layer: LayerTrace, what: str, height: int) -> Figure:
    note = dict(text="A plain RNN has no gates: each step overwrites h = tanh(W x + U h + b).", x=0.5, y=0.5,
                xref="paper", yref="paper", showarrow=False, font=dict(size=14))
    return figure([], dict(title=dict(text=f"{what} of layer {layer.layer + 1} ({layer.direction})"), annotations=[note],
                            xaxis=dict(visible=False), yaxis=dict(visible=False)), height)


def gate_heatmaps(layer: LayerTrace, tokens: Sequence[str], units: Sequence[int], height: int = 760) -> Figure:
    """One heatmap per gate (LSTM: input, forget, candidate, output; GRU: reset, update, candidate), tokens across,
    the chosen units down."""
    if not layer.gates:
        return _no_gates(layer, "Gates", height)
    return _heatmap_stack(layer, tokens, units, tuple(layer.gates), f"Gates of layer {layer.layer + 1} ({layer.direction})", height)


def state_heatmaps(layer: LayerTrace, tokens: Sequence[str], units: Sequence[int], height: int = 460) -> Figure:
    """Cell state c (long-term memory, LSTM only) and hidden state h (the output) per token for the chosen units."""
    what = "Cell and hidden state" if layer.cell_state is not None else "Hidden state"
    return _heatmap_stack(layer, tokens, units, layer.states, f"{what} of layer {layer.layer + 1} ({layer.direction})", height)


def _color_axis(name: str) -> str:
    # One shared colour scale per kind of value: sigmoid gates 0..1, tanh values -1..1, the cell state ±max.
    if name == "cell_state":
        return "coloraxis3"
    return "coloraxis2" if name in TANH_GATES or name == "hidden_state" else "coloraxis"


def _heatmap_stack(layer: LayerTrace, tokens, units, names, title: str, height: int) -> Figure:
    """Heatmaps stacked top to bottom on one shared token axis, one row per series in `names`."""
    units = list(units)
    rows, gap = len(names), 0.06
    row_height = (1 - gap * (rows - 1)) / rows
    positions, unit_labels = _token_positions(tuple(tokens)), _unit_labels(units)
    data, layout, titles = [], {}, []
    for r, name in enumerate(names):
        top = 1 - r * (row_height + gap)
        y = f"y{r + 1}" if r else "y"
        values = layer.series(name)[:, units].T  # (units, tokens)
        data.append(dict(type="heatmap", z=values, x=positions, y=unit_labels,
                         yaxis=y, xaxis="x", coloraxis=_color_axis(name),
                         hovertemplate="%{x} · %{y}<br>" + name + " = %{z:.3f}<extra></extra>"))
        layout[f"yaxis{r + 1}" if r else "yaxis"] = dict(domain=[max(0.0, round(top - row_height, 6)), round(top, 6)], autorange="reversed")
        titles.append(dict(text=_GATE_TITLES[name], x=0.5, y=top, xref="paper", yref="paper", showarrow=False,
                           xanchor="center", yanchor="bottom"))
    c_max = 1.0
    if layer.cell_state is not None:
        c_max = float(np.abs(layer.cell_state[:, units]).max()) or 1.0
    axes = {
        "coloraxis": dict(colorscale=GATE_SCALE, cmin=0, cmax=1, colorbar=dict(title=dict(text="gate"), len=0.45, y=0.78)),
        "coloraxis2": dict(colorscale=SIGNED_SCALE, cmin=-1, cmax=1, colorbar=dict(title=dict(text="tanh"), len=0.45, y=0.22)),
        "coloraxis3": dict(colorscale=SIGNED_SCALE, cmin=-c_max, cmax=c_max,
                           colorbar=dict(title=dict(text="c"), len=0.45, y=0.78, x=1.1)),
    }
    layout.update({k: v for k, v in axes.items() if k in {_color_axis(n) for n in names}})
    layout["xaxis"], note = _token_axis(tokens, anchor=f"y{rows}" if rows > 1 else "y", categorical=True)
    layout.update(annotations=titles, title=dict(text=title + note))
    return figure(data, layout, height)


def mean_gate_figure(layer: LayerTrace, tokens: Sequence[str], height: int = 380) -> Figure:
    """Average gate value per token, with each gate's saturation (share of values < 0.1 / > 0.9) in the legend."""
    if not layer.gates:
        return _no_gates(layer, "Mean gate activation", height)
    hover = _token_labels(tokens)
    data = []
    for summary in gate_summaries(layer):
        name = f"{_GATE_TITLES[summary.gate]} (saturated: {summary.low_saturated:.0%} low, {summary.high_saturated:.0%} high)"
        data.append(dict(type="scatter", y=summary.mean_per_token, mode="lines+markers", name=name,
                         customdata=hover, hovertemplate="%{customdata}: %{y:.3f}<extra>" + summary.gate + "</extra>"))
    xaxis, note = _token_axis(tokens)
    title = f"Mean gate activation per token, layer {layer.layer + 1} ({layer.direction})" + note
    return figure(data, dict(title=dict(text=title), xaxis=xaxis, yaxis=dict(title=dict(text="mean over units")),
                              legend=dict(orientation="h", y=-0.45)), height)


def trajectory_figure(trace: GateTrace, height: int = 340) -> Figure:
    """P(positive) had the review stopped after each token: where the model changed its mind."""
    data = [dict(type="scatter", y=trace.trajectory, mode="lines+markers", line=dict(color="#4c6ef5"),
                 customdata=_token_labels(trace.tokens),
                 hovertemplate="after %{customdata}: %{y:.3f}<extra></extra>")]
    xaxis, note = _token_axis(trace.tokens)
    half = dict(type="line", xref="paper", x0=0, x1=1, y0=0.5, y1=0.5, line=dict(dash="dash", color="gray"))
    return figure(data, dict(title=dict(text="Prediction after each token" + note), xaxis=xaxis, shapes=[half],
                              yaxis=dict(title=dict(text="P(positive)"), range=[0, 1]), showlegend=False), height)


def attribution_figure(attributions: Attributions, height: int = 340) -> Figure:
    """Each token's push on the logit (occlusion with _UNK, either method): up towards positive, down towards negative,
    in the colours of the highlighted tokens beside it (Gradio's scale: red positive, purple negative)."""
    values = attributions.values
    data = [dict(type="bar", y=values,
                 marker=dict(color=np.where(np.asarray(values) >= 0, POSITIVE_COLOUR, NEGATIVE_COLOUR)),
                 customdata=_token_labels(attributions.tokens),
                 hovertemplate="%{customdata}: %{y:+.3f}<extra></extra>")]
    xaxis, note = _token_axis(attributions.tokens)
    title = f"What each token did {attributions.method}: logit minus the logit with it made unknown" + note
    return figure(data, dict(title=dict(text=title), xaxis=xaxis, yaxis=dict(title=dict(text="effect on the logit")),
                              showlegend=False), height)


def attribution_highlights(attributions: Attributions) -> list[tuple[str, float]]:
    """(token, score in [-1, 1]) pairs for a highlighted-text component; tokens stay plain text, shortened."""
    scale = float(np.abs(attributions.values).max()) or 1.0
    return list(zip(map(short_token, attributions.tokens), np.round(attributions.values / scale, 4).tolist()))


def training_curves(history: dict[str, list], height: int = 420) -> Figure:
    """Loss (left) and accuracy (right) against the step, for training batches and validation runs, and the
    language model's loss while pre-training."""
    # Copies: a run in another thread keeps appending to these lists.
    keys = ("pretrain_step", "pretrain_loss", "step", "train_loss", "val_step", "val_loss", "val_accuracy")
    series = {key: np.array(history.get(key, [])) for key in keys}
    data = [
        dict(type="scatter", x=series["pretrain_step"], y=series["pretrain_loss"], name="pre-training: next-token loss",
             mode="lines", line=dict(color="#7950f2"), xaxis="x3", yaxis="y3"),
        dict(type="scatter", x=series["step"], y=series["train_loss"], name="train loss", mode="lines",
             line=dict(color="#adb5bd")),
        dict(type="scatter", x=series["val_step"], y=series["val_loss"], name="validation loss", mode="lines+markers",
             line=dict(color="#e8590c")),
        dict(type="scatter", x=series["val_step"], y=series["val_accuracy"], name="validation accuracy",
             mode="lines+markers", line=dict(color="#2f9e44"), xaxis="x2", yaxis="y2"),
    ]
    pretrained = len(series["pretrain_step"]) > 0
    panels = (("pre-training loss", "loss", "validation accuracy") if pretrained else ("loss", "validation accuracy"))
    bounds = [(i / len(panels) + 0.04 * bool(i), (i + 1) / len(panels) - 0.04 * (i < len(panels) - 1))
              for i in range(len(panels))]
    first = 1 if pretrained else 0
    titles = [dict(text=text, x=(lo + hi) / 2, y=1, xref="paper", yref="paper", xanchor="center", yanchor="bottom",
                   showarrow=False) for text, (lo, hi) in zip(panels, bounds)]
    step = dict(text="step")
    layout = dict(xaxis=dict(domain=bounds[first], title=step), yaxis=dict(anchor="x"),
                  xaxis2=dict(domain=bounds[first + 1], anchor="y2", title=step), yaxis2=dict(anchor="x2", tickformat=".0%"),
                  annotations=titles, legend=dict(orientation="h", y=-0.2))
    if pretrained:
        layout.update(xaxis3=dict(domain=bounds[0], anchor="y3", title=step), yaxis3=dict(anchor="x3"))
    else:
        data = data[1:]
    return figure(data, layout, height)


def confusion_figure(confusion: list[list[int]], height: int = 340) -> Figure:
    """The test confusion matrix; rows are the true class."""
    z = np.asarray(confusion)
    labels = ["negative", "positive"]
    data = [dict(type="heatmap", z=z, x=labels, y=labels, colorscale=COUNT_SCALE, showscale=False, text=z.tolist(),
                 texttemplate="%{text:,}", hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>")]
    return figure(data, dict(title=dict(text="Test confusion matrix"), xaxis=dict(title=dict(text="predicted")),
                              yaxis=dict(title=dict(text="true"), autorange="reversed")), height)


# ---------------------------------------------------------------- Memory tab

def memory_heatmaps(layer: LayerTrace, tokens: Sequence[str], units: Sequence[int], height: int = 460) -> Figure:
    """What a cell keeps from token to token: the LSTM's forget gate and cell state, the GRU's update gate and
    hidden state, a plain RNN's hidden state."""
    names = {"lstm": ("forget", "cell_state"), "gru": ("update", "hidden_state")}.get(_cell_of(layer), ("hidden_state",))
    return _heatmap_stack(layer, tokens, units, names, f"What layer {layer.layer + 1} keeps", height)


def _cell_of(layer: LayerTrace) -> str:
    return "lstm" if "forget" in layer.gates else "gru" if "update" in layer.gates else "rnn"


def gradient_flow_figure(norms: dict[str, np.ndarray], height: int = 400) -> Figure:
    """‖∂ logit / ∂ embedding‖ against the token's distance from the end, log scale, one line per model."""
    data = []
    for name, values in norms.items():
        distance = np.arange(len(values))[::-1]  # token t is len - 1 - t steps from the end
        data.append(dict(type="scatter", x=distance, y=values, mode="lines", name=token_label(name),
                         hovertemplate="%{x} tokens from the end: %{y:.2e}<extra>" + token_label(name) + "</extra>"))
    return figure(data, dict(title=dict(text="Gradient of the prediction with respect to each token's embedding"),
                              xaxis=dict(title=dict(text="distance from the end of the review (tokens)")),
                              yaxis=dict(title=dict(text="‖∂ logit / ∂ embedding‖"), type="log", exponentformat="power"),
                              legend=dict(orientation="h", y=-0.25)), height)


def trajectories_figure(trajectories: dict[str, np.ndarray], tokens: Sequence[str], height: int = 360) -> Figure:
    """P(positive) after each token, one line per model: who still remembers the opening verdict at the end."""
    hover = _token_labels(tokens)
    data = [dict(type="scatter", y=p, mode="lines", name=token_label(name), customdata=hover,
                 hovertemplate="after %{customdata}: %{y:.3f}<extra>" + token_label(name) + "</extra>")
            for name, p in trajectories.items()]
    xaxis, note = _token_axis(tokens)
    half = dict(type="line", xref="paper", x0=0, x1=1, y0=0.5, y1=0.5, line=dict(dash="dash", color="gray"))
    return figure(data, dict(title=dict(text="Prediction after each token" + note), xaxis=xaxis, shapes=[half],
                              yaxis=dict(title=dict(text="P(positive)"), range=[0, 1]),
                              legend=dict(orientation="h", y=-0.5)), height)


def memory_figure(results: Sequence, height: int = 380) -> Figure:
    """Accuracy on the synthetic memory task against the distance to remember, one line per cell type."""
    data = []
    for cell in dict.fromkeys(r.cell for r in results):
        mine = sorted((r for r in results if r.cell == cell), key=lambda r: r.distance)
        data.append(dict(type="scatter", x=[r.distance for r in mine], y=[r.accuracy for r in mine],
                         mode="lines+markers", name=cell.upper(), customdata=[[r.steps, r.seconds] for r in mine],
                         hovertemplate="distance %{x}: %{y:.1%} after %{customdata[0]} steps, %{customdata[1]:.1f} s"
                                       "<extra>" + cell.upper() + "</extra>"))
    chance = dict(type="line", xref="paper", x0=0, x1=1, y0=0.5, y1=0.5, line=dict(dash="dash", color="gray"))
    return figure(data, dict(title=dict(text="Synthetic memory task (not reviews): accuracy against distance"),
                              xaxis=dict(title=dict(text="steps between the marker and the end")), shapes=[chance],
                              yaxis=dict(title=dict(text="test accuracy (0.5 = chance)"), range=[0.4, 1.02], tickformat=".0%")),
                   height)


def length_accuracy_figure(buckets: dict[str, Sequence], height: int = 380) -> Figure:
    """Test accuracy per review-length bucket, one group of bars per bucket, one bar per model."""
    data = [dict(type="bar", x=[b.label for b in rows], y=[b.accuracy for b in rows], name=token_label(name),
                 customdata=[b.reviews for b in rows],
                 hovertemplate="%{x} tokens: %{y:.1%} of %{customdata} reviews<extra>" + token_label(name) + "</extra>")
            for name, rows in buckets.items()]
    return figure(data, dict(title=dict(text="Test accuracy by review length"), barmode="group",
                              xaxis=dict(title=dict(text="review length (tokens)")),
                              yaxis=dict(title=dict(text="accuracy"), tickformat=".0%", range=[0.5, 1]),
                              legend=dict(orientation="h", y=-0.25)), height)


# ---------------------------------------------------------------- one step of the cell

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


# ---------------------------------------------------------------- units across a corpus

def unit_atlas_figure(gaps: np.ndarray, accuracy: np.ndarray, l1_rank: np.ndarray, height: int = 420) -> Figure:
    """Every unit of a layer: how far apart the classes' mean final h lie against how well it predicts alone; the
    units that entered the L1 sweep first are brightest, those that never entered darkest."""
    entered = np.where(l1_rank > 0, l1_rank, len(l1_rank) + 1)
    data = [dict(type="scatter", x=gaps, y=accuracy, mode="markers",
                 marker=dict(color=entered, colorscale="Viridis", reversescale=True, size=8,
                             colorbar=dict(title=dict(text="L1 rank"))),
                 customdata=np.stack([np.arange(len(gaps)), l1_rank], axis=1),
                 hovertemplate="unit %{customdata[0]}: gap %{x:+.3f}, alone %{y:.1%}, L1 rank %{customdata[1]}"
                               "<extra></extra>")]
    chance = dict(type="line", xref="paper", x0=0, x1=1, y0=0.5, y1=0.5, line=dict(dash="dash", color="gray"))
    return figure(data, dict(title=dict(text="Every unit: class gap against accuracy alone"), shapes=[chance],
                              xaxis=dict(title=dict(text="mean final h, positive minus negative reviews")),
                              yaxis=dict(title=dict(text="accuracy alone (held-out half)"), tickformat=".0%"),
                              showlegend=False), height)


def unit_histogram_figure(values: np.ndarray, labels: np.ndarray, unit: int, threshold: float,
                          height: int = 340) -> Figure:
    """The unit's final h over the corpus, one histogram per class, with its single-unit threshold."""
    positive = np.asarray(labels).astype(bool)
    data = [dict(type="histogram", x=values[mine], name=name, opacity=0.6, nbinsx=60,
                 marker=dict(color=colour), hovertemplate="%{x}: %{y} reviews<extra>" + name + "</extra>")
            for name, mine, colour in (("negative reviews", ~positive, NEGATIVE_COLOUR),
                                       ("positive reviews", positive, POSITIVE_COLOUR))]
    shapes = [dict(type="line", yref="paper", y0=0, y1=1, x0=threshold, x1=threshold,
                   line=dict(dash="dash", color="gray"))] if np.isfinite(threshold) else []
    return figure(data, dict(title=dict(text=f"Unit {unit}: its final h by class (dashed: its threshold)"),
                              barmode="overlay", shapes=shapes, xaxis=dict(title=dict(text="final h")),
                              yaxis=dict(title=dict(text="reviews")), legend=dict(orientation="h", y=-0.3)), height)


def ablation_figure(whole: float, rows: Sequence, height: int = 340) -> Figure:
    """Accuracy with the best k units held at their mean, beside k random units (the range over draws as error
    bars), and the whole model as a line."""
    data = []
    for ablated, colour in (("best", "#e8590c"), ("random", "#868e96")):
        mine = [r for r in rows if r.ablated == ablated]
        data.append(dict(type="bar", x=[f"k = {r.k}" for r in mine], y=[r.accuracy for r in mine],
                         name=f"{ablated} units held", marker=dict(color=colour),
                         error_y=dict(type="data", symmetric=False, array=[r.highest - r.accuracy for r in mine],
                                      arrayminus=[r.accuracy - r.lowest for r in mine]),
                         hovertemplate="%{x}: %{y:.2%}<extra>" + ablated + "</extra>"))
    line = dict(type="line", xref="paper", x0=0, x1=1, y0=whole, y1=whole, line=dict(dash="dash", color="#2f9e44"))
    low, high = min([whole, *(r.lowest for r in rows)]), max([whole, *(r.highest for r in rows)])
    return figure(data, dict(title=dict(text="Accuracy with units held at their mean (dashed: the whole model)"),
                              barmode="group", shapes=[line], yaxis=dict(title=dict(text="accuracy"), tickformat=".1%",
                                                                         range=[max(0.0, low - 0.02), min(1.0, high + 0.01)]),
                              legend=dict(orientation="h", y=-0.25)), height)
