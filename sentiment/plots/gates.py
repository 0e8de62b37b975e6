"""The Predict tab's figures: gates and states as heatmaps, the trajectory, the token effects."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..explain.gates import TANH_GATES, Attributions, GateTrace, LayerTrace, gate_summaries
from .figure import (
    GATE_SCALE,
    NEGATIVE_COLOUR,
    POSITIVE_COLOUR,
    SIGNED_SCALE,
    Figure,
    figure,
    short_token,
    token_axis,
    token_labels,
    token_positions,
    unit_labels,
)

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
    return heatmap_stack(layer, tokens, units, tuple(layer.gates), f"Gates of layer {layer.layer + 1} ({layer.direction})", height)


def state_heatmaps(layer: LayerTrace, tokens: Sequence[str], units: Sequence[int], height: int = 460) -> Figure:
    """Cell state c (long-term memory, LSTM only) and hidden state h (the output) per token for the chosen units."""
    what = "Cell and hidden state" if layer.cell_state is not None else "Hidden state"
    return heatmap_stack(layer, tokens, units, layer.states, f"{what} of layer {layer.layer + 1} ({layer.direction})", height)


def _color_axis(name: str) -> str:
    # One shared colour scale per kind of value: sigmoid gates 0..1, tanh values -1..1, the cell state ±max.
    if name == "cell_state":
        return "coloraxis3"
    return "coloraxis2" if name in TANH_GATES or name == "hidden_state" else "coloraxis"


def heatmap_stack(layer: LayerTrace, tokens, units, names, title: str, height: int) -> Figure:
    """Heatmaps stacked top to bottom on one shared token axis, one row per series in `names`."""
    units = list(units)
    rows, gap = len(names), 0.06
    row_height = (1 - gap * (rows - 1)) / rows
    positions, row_labels = token_positions(tuple(tokens)), unit_labels(units)
    data, layout, titles = [], {}, []
    for r, name in enumerate(names):
        top = 1 - r * (row_height + gap)
        y = f"y{r + 1}" if r else "y"
        values = layer.series(name)[:, units].T  # (units, tokens)
        data.append(dict(type="heatmap", z=values, x=positions, y=row_labels,
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
    layout["xaxis"], note = token_axis(tokens, anchor=f"y{rows}" if rows > 1 else "y", categorical=True)
    layout.update(annotations=titles, title=dict(text=title + note))
    return figure(data, layout, height)


def mean_gate_figure(layer: LayerTrace, tokens: Sequence[str], height: int = 380) -> Figure:
    """Average gate value per token, with each gate's saturation (share of values < 0.1 / > 0.9) in the legend."""
    if not layer.gates:
        return _no_gates(layer, "Mean gate activation", height)
    hover = token_labels(tokens)
    data = []
    for summary in gate_summaries(layer):
        name = f"{_GATE_TITLES[summary.gate]} (saturated: {summary.low_saturated:.0%} low, {summary.high_saturated:.0%} high)"
        data.append(dict(type="scatter", y=summary.mean_per_token, mode="lines+markers", name=name,
                         customdata=hover, hovertemplate="%{customdata}: %{y:.3f}<extra>" + summary.gate + "</extra>"))
    xaxis, note = token_axis(tokens)
    title = f"Mean gate activation per token, layer {layer.layer + 1} ({layer.direction})" + note
    return figure(data, dict(title=dict(text=title), xaxis=xaxis, yaxis=dict(title=dict(text="mean over units")),
                              legend=dict(orientation="h", y=-0.45)), height)


def trajectory_figure(trace: GateTrace, height: int = 340) -> Figure:
    """P(positive) had the review stopped after each token: where the model changed its mind."""
    data = [dict(type="scatter", y=trace.trajectory, mode="lines+markers", line=dict(color="#4c6ef5"),
                 customdata=token_labels(trace.tokens),
                 hovertemplate="after %{customdata}: %{y:.3f}<extra></extra>")]
    xaxis, note = token_axis(trace.tokens)
    half = dict(type="line", xref="paper", x0=0, x1=1, y0=0.5, y1=0.5, line=dict(dash="dash", color="gray"))
    return figure(data, dict(title=dict(text="Prediction after each token" + note), xaxis=xaxis, shapes=[half],
                              yaxis=dict(title=dict(text="P(positive)"), range=[0, 1]), showlegend=False), height)


def attribution_figure(attributions: Attributions, height: int = 340) -> Figure:
    """Each token's push on the logit (occlusion with _UNK, either method): up towards positive, down towards negative,
    in the colours of the highlighted tokens beside it (Gradio's scale: red positive, purple negative)."""
    values = attributions.values
    data = [dict(type="bar", y=values,
                 marker=dict(color=np.where(np.asarray(values) >= 0, POSITIVE_COLOUR, NEGATIVE_COLOUR)),
                 customdata=token_labels(attributions.tokens),
                 hovertemplate="%{customdata}: %{y:+.3f}<extra></extra>")]
    xaxis, note = token_axis(attributions.tokens)
    title = f"What each token did {attributions.method}: logit minus the logit with it made unknown" + note
    return figure(data, dict(title=dict(text=title), xaxis=xaxis, yaxis=dict(title=dict(text="effect on the logit")),
                              showlegend=False), height)


def attribution_highlights(attributions: Attributions) -> list[tuple[str, float]]:
    """(token, score in [-1, 1]) pairs for a highlighted-text component; tokens stay plain text, shortened."""
    scale = float(np.abs(attributions.values).max()) or 1.0
    return list(zip(map(short_token, attributions.tokens), np.round(attributions.values / scale, 4).tolist()))
