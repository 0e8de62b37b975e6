"""Plotly figure builders. Plain functions of plain data; every figure has a fixed height.

Each builder returns a `Figure`: the plotly.js spec as plain dicts and numpy arrays. A gr.Plot takes it as it takes a
go.Figure, by calling its `to_json()`. Token labels go through `token_label`, which escapes them: plotly reads a small
subset of HTML in labels, and a review's `<script>` or `&amp;` must show as the characters the person typed."""
from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import orjson
from plotly.colors import get_colorscale

TOKENS_IN_VIEW = 60  # longer reviews open on their first 60 tokens, with a range slider to scroll the rest


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


def token_labels(tokens: Sequence[str]) -> tuple[str, ...]:
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
def token_positions(tokens: tuple[str, ...]) -> tuple[str, ...]:
    # A heatmap's hover can only show its own x, not the axis' tick text: x is the token with its position,
    # unique, so the same word twice stays two columns. 200 labels instead of a (units, tokens) hover matrix.
    return tuple(f"{label} ({t + 1})" for t, label in enumerate(_escaped(tokens)))


def token_axis(tokens: Sequence[str], anchor: str | None = None, categorical: bool = False) -> tuple[dict, str]:
    """The x axis: token text under each position; a long review opens on its first tokens with a slider.
    Positions are 0, 1, 2..., the x that plotly gives a line or bar trace without one; categorical: the
    `token_positions` labels."""
    positions = token_positions(tuple(tokens)) if categorical else np.arange(len(tokens))
    axis = dict(tickmode="array", tickvals=positions, ticktext=token_labels(tokens), tickangle=-60, automargin=True)
    if categorical:
        axis["type"] = "category"
    if anchor:
        axis["anchor"] = anchor
    if len(tokens) <= TOKENS_IN_VIEW:
        return axis, ""
    axis.update(range=[-0.5, TOKENS_IN_VIEW - 0.5], rangeslider=dict(visible=True, thickness=0.05))
    return axis, f" — tokens 1–{TOKENS_IN_VIEW} of {len(tokens)} shown: drag the slider under the plot to scroll"


def unit_labels(units: Sequence[int]) -> list[str]:
    return [f"unit {u}" for u in units]
