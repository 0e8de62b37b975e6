"""The Units tab's figures."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .figure import NEGATIVE_COLOUR, POSITIVE_COLOUR, Figure, figure


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
