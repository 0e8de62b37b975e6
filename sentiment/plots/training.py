"""The Train tab's figures: the live curves and the confusion matrix."""
from __future__ import annotations

import numpy as np

from .figure import COUNT_SCALE, Figure, figure


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
