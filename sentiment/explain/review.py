"""Everything the Predict tab shows for one review, as data: the inspection, the units worth showing, the figures,
one cell step, and the review's path through preprocessing. The app formats these; the benchmark times them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import ConfigError, Number
from ..data.preprocessing import UNK_ID, clean_text, tokenize_review
from ..model.network import READOUTS
from ..model.predictor import Predictor
from ..plots.figure import Figure, short_token
from ..plots.gates import attribution_figure, gate_heatmaps, mean_gate_figure, state_heatmaps, trajectory_figure
from .gates import DIRECTIONS, Inspection, LayerTrace, inspect_review, top_units, unknown_tokens


def layer_choices(predictor: Predictor) -> list[tuple[str, str]]:
    """(label, value) for every layer and direction of the model, the top layer last; the value is 'K' or 'K:D'
    with K counted from 0 and D forward or backward."""
    config = predictor.model.config
    if not config.bidirectional:
        return [(f"layer {k + 1}", str(k)) for k in range(config.num_layers)]
    return [(f"layer {k + 1} {d}", f"{k}:{d}") for k in range(config.num_layers) for d in DIRECTIONS]


def default_layer(predictor: Predictor) -> str:
    """The top layer, forward."""
    config = predictor.model.config
    return f"{config.num_layers - 1}" + (":forward" if config.bidirectional else "")


def parse_layer(predictor: Predictor, value: object) -> tuple[int, str]:
    """A `layer_choices` value → (layer from 0, direction); anything else is a ConfigError that lists the choices."""
    choices = dict((v, label) for label, v in layer_choices(predictor))
    if not isinstance(value, str) or value not in choices:
        shown = ", ".join(f"{v!r} ({label})" for v, label in list(choices.items())[:8])
        raise ConfigError(f"layer must be one of {shown} for {predictor.name or 'this checkpoint'}; got {str(value)[:40]!r}")
    layer, _, direction = value.partition(":")
    return int(layer), direction or "forward"


@dataclass
class Explanation:
    inspection: Inspection
    layer: LayerTrace  # the layer and direction chosen
    units: np.ndarray  # the units shown, most important first
    unknown: list[str]  # tokens the vocabulary does not know, read as _UNK
    truncated: bool  # the review was cut at the checkpoint's max_len
    readout: str  # how the head reads the review, in words

    @property
    def probability(self) -> float:
        return self.inspection.trace.probability

    def figures(self) -> dict[str, Figure]:
        trace, attributions = self.inspection.trace, self.inspection.attributions
        return {
            "trajectory": trajectory_figure(trace),
            "attributions": attribution_figure(attributions),
            "gates": gate_heatmaps(self.layer, trace.tokens, self.units),
            "states": state_heatmaps(self.layer, trace.tokens, self.units),
            "mean_gates": mean_gate_figure(self.layer, trace.tokens),
        }


UNITS_SHOWN = Number("units to show", 1, 64, integer=True)  # how many of a layer's units the figures show


def explain(predictor: Predictor, text: str, layer: str | None = None, units: int = 12,
            attribution: str = "when read") -> Explanation:
    """Inspect one review with a checkpoint: `layer` a `layer_choices` value (default: the top layer), `units` how
    many units to show (1–64), `attribution` one of gates.ATTRIBUTION_METHODS."""
    k, direction = parse_layer(predictor, default_layer(predictor) if layer is None else layer)
    units = UNITS_SHOWN.check(units)
    inspection = inspect_review(predictor.model, predictor.vocab, text, predictor.max_len, attribution)
    trace = inspection.trace
    return Explanation(
        inspection=inspection,
        layer=trace.layer(k, direction),
        units=top_units(trace, predictor.model, k, direction, units),
        unknown=unknown_tokens(trace.tokens, trace.ids),
        truncated=len(trace.tokens) == predictor.max_len,
        readout=READOUTS[predictor.model.config.readout],
    )


@dataclass
class CellStep:
    """One token's step through one unit of a layer, with the whole layer's gates at that token."""

    token: str
    token_index: int  # from 0
    unit: int  # from 0
    cell: str  # lstm, gru or rnn
    layer: int  # from 0
    direction: str
    values: dict[str, float]  # lstm: f, i, g, o, c_prev, c, h_prev, h; gru: r, z, n, h_prev, h; rnn: h_prev, h
    layer_vectors: dict[str, list[float]]  # every unit's gates (and c, h) at this token

    def to_dict(self) -> dict:
        """The step as JSON: the chosen unit's values as top-level keys, the token, and the layer's vectors."""
        return {"token": short_token(self.token), "token_index": self.token_index, "unit": self.unit,
                "cell": self.cell, "layer": self.layer, "direction": self.direction, **self.values,
                "layer_vectors": self.layer_vectors}


_SHORT = {"input": "i", "forget": "f", "cell": "g", "output": "o", "reset": "r", "update": "z", "new": "n"}


def unit_step(layer: LayerTrace, tokens: list[str], token: int, unit: int, cell: str) -> CellStep:
    """The traced values of `unit` at token `token` (both from 0): every gate, the state before and after; the
    state before is the one the cell read the token with (the next token's, going backward)."""
    T, H = layer.hidden_state.shape
    token = Number(f"token index (from 0; this review has {T} tokens)", 0, T - 1, integer=True).check(token)
    unit = Number(f"unit index (from 0; this layer has {H} units)", 0, H - 1, integer=True).check(unit)
    values = {_SHORT[name]: float(gate[token, unit]) for name, gate in layer.gates.items()}
    values["h_prev"] = float(layer.before("hidden_state")[token, unit])
    values["h"] = float(layer.hidden_state[token, unit])
    if layer.cell_state is not None:
        values["c_prev"] = float(layer.before("cell_state")[token, unit])
        values["c"] = float(layer.cell_state[token, unit])
    vectors = {_SHORT[name]: gate[token].tolist() for name, gate in layer.gates.items()}
    vectors["h"] = layer.hidden_state[token].tolist()
    if layer.cell_state is not None:
        vectors["c"] = layer.cell_state[token].tolist()
    return CellStep(token=tokens[token], token_index=token, unit=unit, cell=cell, layer=layer.layer,
                    direction=layer.direction, values=values, layer_vectors=vectors)


@dataclass
class Reading:
    """A review's path through preprocessing, as the model reads it."""

    cleaned: str
    tokens: list[str]  # every token of the cleaned text (up to a bound)
    ids: list[int]
    kept: int  # the first `kept` tokens are what the model reads (max_len)
    vocabulary: int
    unknown: list[str]


def reading(predictor: Predictor, text: str, shown: int = 1000) -> Reading:
    """cleaned text → tokens → ids (unknown words as _UNK) → the row the model reads, cut at the checkpoint's
    max_len; at most `shown` tokens are listed."""
    tokens = tokenize_review(text, max_tokens=max(shown, predictor.max_len))
    ids = predictor.vocab.encode(tokens)
    kept = min(len(tokens), predictor.max_len)
    return Reading(cleaned=clean_text(text[: 40 * shown]), tokens=tokens, ids=ids, kept=kept,
                   vocabulary=len(predictor.vocab),
                   unknown=sorted({t for t, i in zip(tokens[:kept], ids) if i == UNK_ID}))

