"""The Memory tab's figures."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..explain.gates import LayerTrace
from .figure import Figure, figure, token_axis, token_label, token_labels
from .gates import heatmap_stack


def memory_heatmaps(layer: LayerTrace, tokens: Sequence[str], units: Sequence[int], height: int = 460) -> Figure:
    """What a cell keeps from token to token: the LSTM's forget gate and cell state, the GRU's update gate and
    hidden state, a plain RNN's hidden state."""
    names = {"lstm": ("forget", "cell_state"), "gru": ("update", "hidden_state")}.get(_cell_of(layer), ("hidden_state",))
    return heatmap_stack(layer, tokens, units, names, f"What layer {layer.layer + 1} keeps", height)


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
    hover = token_labels(tokens)
    data = [dict(type="scatter", y=p, mode="lines", name=token_label(name), customdata=hover,
                 hovertemplate="after %{customdata}: %{y:.3f}<extra>" + token_label(name) + "</extra>")
            for name, p in trajectories.items()]
    xaxis, note = token_axis(tokens)
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
