"""One unit's page: its reviews, traced token by token."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import ConfigError
from ..explain.gates import trace_gates
from ..model.predictor import Predictor
from .atlas import UnitAtlas, check_unit


@dataclass
class UnitReview:
    """A review of the corpus with one unit's value at every token, from the gate trace."""

    row: int  # index into the atlas's rows
    label: int
    probability: float
    tokens: list[str]
    values: np.ndarray  # (T,)


@dataclass
class UnitPage:
    unit: int
    state: str  # "hidden_state" or "cell_state"
    final: np.ndarray  # (N,) the unit's final h on every review, for the per-class histograms
    labels: np.ndarray  # (N,)
    up: list[UnitReview]  # the reviews where it reaches its highest values, highest first
    down: list[UnitReview]  # where it reaches its lowest, lowest first


def corpus_tokens(atlas: UnitAtlas, i: int) -> list[str]:
    """The tokens the model read of the atlas's review i, as written (an unknown word keeps its spelling)."""
    return atlas.corpus.tokens(int(atlas.rows[i]))[: max(1, int(atlas.reviews.lengths[i]))]


def traced_review(predictor: Predictor, atlas: UnitAtlas, i: int, unit: int, state: str) -> UnitReview:
    tokens = corpus_tokens(atlas, i)
    trace = trace_gates(predictor.model, atlas.reviews.review(i) if atlas.reviews.lengths[i] else [0], tokens)
    values = trace.layer(atlas.layer, atlas.direction).series(state)[:, unit]
    return UnitReview(row=i, label=int(atlas.labels[i]), probability=float(atlas.read.probabilities[i]), tokens=tokens,
                      values=values)


def describe_unit(predictor: Predictor, atlas: UnitAtlas, unit: object, state: str = "hidden_state",
              count: int = 5) -> UnitPage:
    """One unit over the corpus: its final value by class, and the `count` reviews that drive it highest and lowest,
    each token with the unit's h (or, for an LSTM, its cell state c)."""
    unit = check_unit(unit, atlas.units)
    if state not in ("hidden_state", "cell_state"):
        raise ConfigError(f"state must be hidden_state or cell_state; got {str(state)[:40]!r}")
    if state == "cell_state" and predictor.model.config.cell != "lstm":
        raise ConfigError(f"only an LSTM has a cell state c; this is a {predictor.model.config.cell.upper()}")
    up = np.argsort(-atlas.read.largest[:, unit], kind="stable")[:count]
    down = np.argsort(atlas.read.smallest[:, unit], kind="stable")[:count]
    return UnitPage(unit=unit, state=state, final=atlas.read.final[:, unit], labels=atlas.labels,
                    up=[traced_review(predictor, atlas, int(i), unit, state) for i in up],
                    down=[traced_review(predictor, atlas, int(i), unit, state) for i in down])
