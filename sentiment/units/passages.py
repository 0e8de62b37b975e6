"""Select to match (LSTMVis): the units a phrase turns on, and the corpus passages they turn on for."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import ConfigError
from ..data.preprocessing import encode_review
from ..explain.gates import trace_gates
from ..model.network import evaluating
from ..model.predictor import Predictor
from .atlas import STATE_SCALE, UNIT_BLOCK, UnitAtlas
from .pages import corpus_tokens

PASSAGES = 10


MAX_FOLLOWED = 64  # a phrase's units the corpus search follows, the widest margin first: bounded memory


@dataclass
class Passage:
    row: int  # index into the atlas's rows
    label: int
    probability: float
    units_on: int  # how many of the matched units fire over the passage (and were off just before it)
    start: int  # the passage's first token in the review
    before: list[str]  # a few tokens of context
    tokens: list[str]  # the passage itself: as many tokens as the phrase
    after: list[str]


@dataclass
class Match:
    tokens: list[str]  # the review the phrase was selected in
    span: tuple[int, int]  # the phrase's tokens: tokens[span[0]:span[1]]
    threshold: float
    units: list[int]  # above the threshold on every token of the phrase and not above it just before
    followed: list[int]  # those the passages are matched on: at most MAX_FOLLOWED, the widest margin first
    passages: list[Passage]


def phrase_span(tokens: list[str], phrase: list[str]) -> tuple[int, int] | None:
    """Where the phrase's tokens first occur in a row of the review's tokens."""
    for start in range(len(tokens) - len(phrase) + 1):
        if tokens[start : start + len(phrase)] == phrase:
            return start, start + len(phrase)
    return None


def _pattern(states: np.ndarray, span: tuple[int, int], threshold: float, backward: bool) -> np.ndarray:
    """(H,) each unit's margin over the pattern, above 0 for the units on over the span of (T, H) states and, where
    there is a step before it in reading order, not on at that step: how far its lowest value over the span lies
    above the threshold, or its value before lies below it, whichever is less."""
    margin = states[span[0] : span[1]].min(axis=0) - threshold
    before = span[1] if backward else span[0] - 1
    if 0 <= before < len(states):
        # "not above" the threshold before: a value equal to it still counts, so its margin is a hair above 0
        margin = np.minimum(margin, np.nextafter(threshold - states[before], np.inf))
    return margin


def _window_counts(on: np.ndarray, off_before: np.ndarray, review_of: np.ndarray, length: int, backward: bool
                   ) -> np.ndarray:
    """For (P, S) booleans over the corpus's steps (on: above the threshold; off_before: not above it), the number of
    units on at every step of the `length` steps ending at each position and off at the step before them in reading
    order, (P,); 0 where the window would leave its review."""
    P = len(on)
    runs = np.concatenate([np.zeros((1, on.shape[1]), np.int32), np.cumsum(on, axis=0, dtype=np.int32)])
    end = np.arange(length - 1, P)
    whole = (runs[end + 1] - runs[end + 1 - length]) == length  # (P - length + 1, S) windows ending at `end`
    before = end + 1 if backward else end - length
    has_before = (before >= 0) & (before < P)
    has_before[has_before] &= review_of[before[has_before]] == review_of[end[has_before]]
    quiet = np.ones_like(whole)
    quiet[has_before] = off_before[before[has_before]]
    counts = np.zeros(P, dtype=np.int32)
    counts[end] = (whole & quiet).sum(axis=1)
    counts[end[review_of[end - length + 1] != review_of[end]]] = 0
    return counts


@torch.inference_mode()
def exact_states(predictor: Predictor, atlas: UnitAtlas, indices: np.ndarray) -> list[np.ndarray]:
    """The layer's states (T, H) of some of the atlas's reviews, in float, from one batch through the model."""
    model, H, d = predictor.model, predictor.model.config.hidden_size, int(atlas.direction == "backward")
    ids, lengths, _ = atlas.reviews.subset(indices).batch(np.arange(len(indices)))
    with evaluating(model):
        states = model.run_layers(model.embed(ids.to(model.device)), lengths.to(model.device))[atlas.layer]
    states = states[..., d * H : (d + 1) * H].float().cpu().numpy()
    return [states[b, : int(lengths[b])] for b in range(len(indices))]


def _passages(predictor: Predictor, atlas: UnitAtlas, units: np.ndarray, length: int, threshold: float,
              count: int) -> list[Passage]:
    """The corpus passages where most of the units fire as over the phrase. The stored one-byte states give each
    review an upper bound (lenient by the rounding's width), a few units at a time; reviews are then read in float in
    that order until no review left can beat the `count` best found."""
    backward, offsets = atlas.direction == "backward", atlas.read.offsets
    review_of = np.repeat(np.arange(len(atlas.rows), dtype=np.int32), np.diff(offsets))
    upper, scaled = np.zeros(len(review_of), dtype=np.int32), threshold * STATE_SCALE
    for first in range(0, len(units), UNIT_BLOCK):
        stored = atlas.read.states[:, units[first : first + UNIT_BLOCK]]  # (P, ≤ UNIT_BLOCK)
        upper += _window_counts(stored >= scaled - 1, stored <= scaled + 1, review_of, length, backward)
    bound = np.maximum.reduceat(upper, offsets[:-1])  # (N,)
    order = np.argsort(-bound, kind="stable")
    order = order[bound[order] > 0]
    found: list[tuple[int, int, int]] = []  # (units on, review, first token)
    for first in range(0, len(order), 10 * count):
        chunk = order[first : first + 10 * count]
        for i, states in zip(chunk, exact_states(predictor, atlas, chunk)):
            chosen = states[:, units]
            per_end = _window_counts(chosen > threshold, chosen <= threshold, np.zeros(len(chosen), np.int32), length,
                                     backward)
            end = int(per_end.argmax())
            if per_end[end] > 0:
                found.append((int(per_end[end]), int(i), end + 1 - length))
        found.sort(key=lambda f: (-f[0], f[1]))
        after = first + 10 * count
        if after >= len(order) or (len(found) >= count and found[count - 1][0] >= bound[order[after]]):
            break
    passages = []
    for on, i, start in found[:count]:
        tokens = corpus_tokens(atlas, i)
        passages.append(Passage(row=i, label=int(atlas.labels[i]), probability=float(atlas.read.probabilities[i]),
                                units_on=on, start=start, before=tokens[max(0, start - 8) : start],
                                tokens=tokens[start : start + length],
                                after=tokens[start + length : start + length + 8]))
    return passages


def find_passages(predictor: Predictor, atlas: UnitAtlas, review: str, phrase: str, threshold: float,
                count: int = PASSAGES) -> Match:
    """LSTMVis's select-to-match: the units above `threshold` on every token of `phrase` inside `review` (the
    phrase alone when the review is empty) and not above it at the step before; then the corpus passages ranked by
    how many of those units do the same there."""
    phrase_tokens = encode_review(phrase, predictor.vocab, predictor.max_len)[0]
    if not phrase_tokens:
        raise ConfigError("The phrase is empty: type the words to match, e.g. 'not good'.")
    text = review if review.strip() else phrase
    tokens, ids = encode_review(text, predictor.vocab, predictor.max_len)
    span = phrase_span(tokens, phrase_tokens)
    if span is None:
        raise ConfigError(f"The phrase ({' '.join(phrase_tokens)[:80]!r} as tokens) is not in the first "
                          f"{predictor.max_len} tokens of the review; select it inside the review, or leave the "
                          "review empty to read the phrase alone.")
    trace = trace_gates(predictor.model, ids, tokens)
    states = trace.layer(atlas.layer, atlas.direction).hidden_state
    margin = _pattern(states, span, threshold, atlas.direction == "backward")
    units = np.flatnonzero(margin > 0)
    followed = np.sort(units[np.argsort(-margin[units], kind="stable")[:MAX_FOLLOWED]])
    passages = _passages(predictor, atlas, followed, span[1] - span[0], threshold, count) if len(units) else []
    return Match(tokens=tokens, span=span, threshold=threshold, units=units.tolist(), followed=followed.tolist(),
                 passages=passages)
