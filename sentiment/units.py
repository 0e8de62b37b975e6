"""What single units of one recurrent layer learned, read across a corpus rather than one review at a time.

Three published questions, asked of the trained classifier:

- Which unit tracks sentiment? Radford et al. (2017) found one unit of a byte LSTM that carried it, by the order in
  which units enter an L1-penalised logistic regression as the penalty loosens. The atlas gives that order beside
  each unit's class gap and its accuracy alone (one threshold on its final h, chosen on one half of the corpus and
  scored on the other).
- Does the model depend on it? Donnelly & Roegiest (2019) found the best single unit could be ablated at no cost.
  `ablate` holds the best k units at their corpus mean at every step and compares with k random units.
- What makes a unit fire? Karpathy, Johnson & Fei-Fei (2015) coloured text by one cell and counted saturated gates;
  LSTMVis (Strobelt et al. 2018) selects a phrase, finds the units on over it and off just before, and lists the
  corpus passages where the same units fire (`find_passages`).

Every value comes from the model's own forward pass (`SentimentNet.run_layers`, with a `Clamp` where units are held)
and the gate trace's step functions, so a unit's value here equals the Predict tab's for the same review and token.

    python -m sentiment.units atlas --checkpoint default.pt     # the table, best units first
    python -m sentiment.units ablate --checkpoint default.pt    # the check by ablation
"""
from __future__ import annotations

import argparse
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import cli
from .checkpoint import DEFAULT_CHECKPOINT, language_model_path
from .config import ConfigError
from .contract import LAYER, Number
from .corpus import EncodedReviews, TokenizedCorpus, tokenize_files
from .data import BUNDLED_DATA
from .explain import default_layer, parse_layer
from .gates import (
    TANH_GATES,
    cell_gates,
    prefix_probabilities,
    start_values,
    step_halves,
    trace_gates,
)
from .model import Clamp, evaluating, reverse_within
from .predictor import Predictor, load_predictor
from .preprocessing import PAD_ID, UNK_ID, encode_review
from .scoring import held_out, score

MAX_REVIEWS = 20_000  # an uploaded corpus holds at most this many reviews
TOP = Number("units to print", 1, 65_536, integer=True)
# Every hidden state of the corpus is kept (one byte each) for `find_passages`; past this many, the atlas reads the
# corpus's first reviews that fit, and says so.
MAX_STATE_BYTES = 256 * 1024 * 1024
SATURATION = (0.1, 0.9)  # a sigmoid gate below 0.1 is shut, above 0.9 open (Karpathy, Johnson & Fei-Fei 2015)
ABLATION_SIZES = (1, 5, 20)
RANDOM_DRAWS = 3
PASSAGES = 10
MAX_FOLLOWED = 64  # a phrase's units the corpus search follows, the widest margin first: bounded memory
_UNIT_BLOCK = 16  # units counted over the corpus at a time
_SCALE = 127  # hidden states lie in [-1, 1]: one byte holds them to within 1/254
_BATCH = 128
_GATE_ROWS = 4096

Progress = Callable[[float, str], None]


def _silent(_share: float, _what: str) -> None:
    pass


# ---------------------------------------------------------------- the corpus and one pass over it

@dataclass
class CorpusStates:
    """Everything one pass of the model over a corpus leaves for the atlas: per review (N rows), per unit (H)."""

    probabilities: np.ndarray  # (N,) the model's P(positive)
    final: np.ndarray  # (N, H) the state after the last token read (token 0 for a backward direction)
    largest: np.ndarray  # (N, H) the largest value over the review
    smallest: np.ndarray  # (N, H)
    states: np.ndarray  # (P, H) int8: every state, review after review, in token order, times _SCALE
    offsets: np.ndarray  # (N + 1,) review i's states are states[offsets[i]:offsets[i + 1]]
    mean_state: np.ndarray  # (H,) over every step of every review
    saturation: dict[str, tuple[np.ndarray, np.ndarray]]  # sigmoid gate → shares of steps shut and open, (H,) each


def _read_batch(predictor: Predictor, ids: torch.Tensor, lengths: torch.Tensor, layer: int, reverse: bool
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """One batch: (logits (B,), the layer's states in token order (B, T, H), real positions (B, T), and for each
    sigmoid gate how many of the real steps it was shut and open, (2, H))."""
    model, H = predictor.model, predictor.model.config.hidden_size
    x = model.embed(ids)  # (B, T, E)
    outputs = model.run_layers(x, lengths)  # [(B, T, D*H)]
    logits = model.classify(model.readout(outputs[-1], lengths))  # (B,)
    inputs = x if layer == 0 else outputs[layer - 1]
    states = outputs[layer][..., int(reverse) * H : (int(reverse) + 1) * H]  # (B, T, H) token order
    if reverse:  # the gates read the review in the direction's own order
        inputs, reading = reverse_within(inputs, lengths), reverse_within(states, lengths)
    else:
        reading = states
    h_start = start_values(model, layer, reverse)[0]  # (H,)
    h_prev = torch.cat([h_start.expand(len(ids), 1, H), reading[:, :-1]], dim=1)  # (B, T, H)
    real = torch.arange(ids.size(1), device=ids.device)[None, :] < lengths[:, None]  # (B, T)
    inputs, h_prev = inputs[real], h_prev[real]  # (n, in), (n, H)
    counts: dict[str, torch.Tensor] = {}
    for start in range(0, len(inputs), _GATE_ROWS):  # a few thousand steps at a time: bounded memory
        part = slice(start, start + _GATE_ROWS)
        gates = cell_gates(model.config.cell, *step_halves(model, layer, reverse, inputs[part], h_prev[part]))
        for gate, value in gates.items():
            if gate not in TANH_GATES:
                shut_open = torch.stack([(value < SATURATION[0]).sum(dim=0), (value > SATURATION[1]).sum(dim=0)])
                counts[gate] = counts.get(gate, 0) + shut_open.cpu()
    return logits, states, real, counts


@torch.inference_mode()
def read_states(predictor: Predictor, reviews: EncodedReviews, layer: int, reverse: bool,
                progress: Progress = _silent) -> CorpusStates:
    """Run the model once over the reviews (longest batches last) and keep what the atlas needs of one layer and
    direction."""
    model, H, N = predictor.model, predictor.model.config.hidden_size, len(reviews)
    read = np.maximum(reviews.lengths, 1)  # a review with no tokens is read as one _PAD step
    offsets = np.concatenate([[0], np.cumsum(read)])
    out = CorpusStates(np.empty(N, np.float32), np.empty((N, H), np.float32), np.empty((N, H), np.float32),
                       np.empty((N, H), np.float32), np.empty((int(offsets[-1]), H), np.int8), offsets,
                       np.zeros(H), {})
    saturated: dict[str, torch.Tensor] = {}  # gate → steps shut and open, (2, H)
    order = np.argsort(reviews.lengths, kind="stable")
    with evaluating(model):
        for start in range(0, N, _BATCH):
            rows = order[start : start + _BATCH]
            ids, lengths, _ = reviews.batch(rows)
            ids, lengths = ids.to(model.device), lengths.to(model.device)
            logits, states, real, counts = _read_batch(predictor, ids, lengths, layer, reverse)
            out.probabilities[rows] = torch.sigmoid(logits).float().cpu().numpy()
            last = torch.zeros_like(lengths) if reverse else lengths - 1
            out.final[rows] = states[torch.arange(len(rows)), last].float().cpu().numpy()
            out.largest[rows] = states.masked_fill(~real[..., None], -2.0).amax(dim=1).float().cpu().numpy()
            out.smallest[rows] = states.masked_fill(~real[..., None], 2.0).amin(dim=1).float().cpu().numpy()
            values = states[real].float().cpu()  # (n, H): review after review, token after token
            out.mean_state += values.double().sum(dim=0).numpy()
            positions = (torch.from_numpy(offsets[rows])[:, None] + torch.arange(states.size(1))[None, :])[real.cpu()]
            out.states[positions.numpy()] = (values * _SCALE).round().to(torch.int8).numpy()
            for gate, count in counts.items():
                saturated[gate] = saturated.get(gate, 0) + count
            progress(min(N, start + _BATCH) / N, f"reading {min(N, start + _BATCH):,} of {N:,} reviews")
    steps = int(offsets[-1])
    out.mean_state = (out.mean_state / max(1, steps)).astype(np.float32)
    out.saturation = {g: ((count[0] / steps).numpy(), (count[1] / steps).numpy()) for g, count in saturated.items()}
    return out


# ---------------------------------------------------------------- what one unit says alone

def best_thresholds(values: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each column of `values` (n, H), the threshold and side (+1: positive above it, -1: below) that classify
    `labels` (n,) best: (thresholds (H,), signs (H,)). Cuts fall midway between neighbouring distinct values."""
    n = len(labels)
    order = np.argsort(values, axis=0, kind="stable")
    ordered = np.take_along_axis(values, order, axis=0)  # (n, H)
    positives_below = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(labels[order], axis=0)])  # (n+1, H)
    negatives_below = np.arange(n + 1)[:, None] - positives_below
    right_above = negatives_below + (labels.sum() - positives_below)  # correct when positive above the cut
    distinct = np.ones((n + 1, values.shape[1]), dtype=bool)
    distinct[1:n] = ordered[1:] > ordered[:-1]  # no cut between equal values
    above, below = np.where(distinct, right_above, -1), np.where(distinct, n - right_above, -1)
    signs = np.where(above.max(axis=0) >= below.max(axis=0), 1, -1)
    cut = np.where(signs > 0, above.argmax(axis=0), below.argmax(axis=0))  # (H,) values below the cut: cut of them
    padded = np.concatenate([np.full((1, values.shape[1]), -np.inf), ordered, np.full((1, values.shape[1]), np.inf)])
    columns = np.arange(values.shape[1])
    low, high = padded[cut, columns], padded[cut + 1, columns]
    thresholds = np.where(np.isinf(low), low, np.where(np.isinf(high), high, (low + high) / 2))
    return thresholds, signs


def threshold_accuracy(values: np.ndarray, labels: np.ndarray, thresholds: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """(H,) the accuracy of each column's threshold and side on (n, H) values."""
    with np.errstate(invalid="ignore"):
        positive = signs * (values - thresholds) > 0
    return (positive == labels[:, None].astype(bool)).mean(axis=0)


def l1_entry_order(features: np.ndarray, labels: np.ndarray, penalties: int = 40, steps: int = 60) -> np.ndarray:
    """(H,) the order, from 1, in which units take a non-zero weight in an L1-penalised logistic regression on the
    standardised features as the penalty loosens from the first value at which all weights are zero to a thousandth
    of it (Radford et al. 2017); 0 for a unit that never enters. Proximal gradient steps, warm-started."""
    X = torch.from_numpy(features).double()
    X = (X - X.mean(dim=0)) / X.std(dim=0).clamp_min(1e-12)  # (n, H)
    y = torch.from_numpy(labels).double()
    n = len(y)
    share = y.mean().clamp(1e-6, 1 - 1e-6)
    bias, weights = torch.log(share / (1 - share)), torch.zeros(X.size(1), dtype=torch.float64)
    step = n / (0.25 * torch.linalg.matrix_norm(X, ord=2) ** 2)  # 1 / the gradient's Lipschitz constant
    largest = (X.T @ (y - share)).abs().max() / n
    if largest == 0:  # every feature constant: no unit tells the classes apart, none enters
        return np.zeros(X.size(1), dtype=np.int64)
    rank, entered = np.zeros(X.size(1), dtype=np.int64), 0
    for penalty in largest * torch.logspace(0, -3, penalties + 1, dtype=torch.float64)[1:]:
        for _ in range(steps):
            error = torch.sigmoid(X @ weights + bias) - y  # (n,)
            weights = weights - step * (X.T @ error) / n
            weights = weights.sign() * (weights.abs() - step * penalty).clamp_min(0)
            bias = bias - step * error.mean()
        new = np.flatnonzero((weights.numpy() != 0) & (rank == 0))
        for unit in new[np.argsort(-np.abs(weights.numpy()[new]), kind="stable")]:
            entered += 1
            rank[unit] = entered
    return rank


# ---------------------------------------------------------------- the atlas

@dataclass
class UnitAtlas:
    """Every unit of one layer and direction over a corpus. Units are numbered from 0 within the direction."""

    checkpoint: str
    layer: int
    direction: str
    corpus_name: str
    corpus: TokenizedCorpus
    rows: np.ndarray  # (N,) the corpus rows read
    reviews: EncodedReviews  # those rows, encoded for the checkpoint
    read: CorpusStates
    halves: tuple[np.ndarray, np.ndarray]  # indices into rows: thresholds are chosen on the first, scored on the other
    thresholds: np.ndarray  # (H,)
    signs: np.ndarray  # (H,) +1: positive above the threshold
    accuracy: np.ndarray  # (H,) on the second half
    l1_rank: np.ndarray  # (H,) 1 entered first; 0 never
    cut: int  # reviews left out to bound memory (0: none)
    ablations: dict = field(default_factory=dict)  # ablate's results by its arguments: a second ask is instant

    @property
    def labels(self) -> np.ndarray:
        return self.reviews.labels

    @property
    def units(self) -> int:
        return self.read.final.shape[1]

    @property
    def model_accuracy(self) -> float:
        """The whole model's accuracy on the half the single units are scored on."""
        scored = self.halves[1]
        return float(((self.read.probabilities[scored] > 0.5) == self.labels[scored].astype(bool)).mean())

    def gap(self, values: np.ndarray) -> np.ndarray:
        """(H,) the mean over positive reviews minus the mean over negative ones."""
        positive = self.labels.astype(bool)
        return values[positive].mean(axis=0) - values[~positive].mean(axis=0)

    def best(self, k: int) -> np.ndarray:
        """The k units that predict best alone, the best first."""
        return np.argsort(-self.accuracy, kind="stable")[:k]

    def rows_of_units(self) -> list[dict]:
        """One row per unit, the best single units first: what the table shows."""
        final_gap, largest_gap = self.gap(self.read.final), self.gap(self.read.largest)
        rows = []
        for unit in self.best(self.units):
            row = {"unit": int(unit), "alone": float(self.accuracy[unit]), "final gap": float(final_gap[unit]),
                   "largest gap": float(largest_gap[unit]), "L1 rank": int(self.l1_rank[unit]) or None}
            for gate, (shut, opened) in self.read.saturation.items():
                row[f"{gate} < {SATURATION[0]}"], row[f"{gate} > {SATURATION[1]}"] = float(shut[unit]), float(opened[unit])
            rows.append(row)
        return rows


def check_unit(unit: object, units: int) -> int:
    """A unit's index, from 0, in a layer of `units`; anything else is refused with a sentence."""
    if isinstance(unit, bool) or not isinstance(unit, (int, float, np.integer)) or not float(unit).is_integer():
        raise ConfigError(f"unit must be a whole number from 0 to {units - 1}; got {str(unit)[:40]!r}")
    if not 0 <= int(unit) < units:
        raise ConfigError(f"unit must be between 0 and {units - 1} ({units} units in this layer); got {int(unit)}")
    return int(unit)


def _fitting_rows(reviews: EncodedReviews, units: int) -> int:
    """How many of the reviews' states fit in MAX_STATE_BYTES."""
    steps = np.cumsum(np.maximum(reviews.lengths, 1)) * units
    return int(np.searchsorted(steps, MAX_STATE_BYTES, side="right"))


def build_atlas(predictor: Predictor, layer: int, direction: str, corpus_name: str, corpus: TokenizedCorpus,
                rows: np.ndarray, progress: Progress = _silent) -> UnitAtlas:
    """Read the corpus rows once with the checkpoint's model and describe every unit of the layer and direction."""
    reviews = corpus.encode(predictor.vocab, rows, predictor.max_len)
    kept = _fitting_rows(reviews, predictor.model.config.hidden_size)
    if kept < 2:
        raise ConfigError("this checkpoint's layer is too wide for the atlas to keep even two reviews' states")
    cut, rows = len(rows) - min(kept, len(rows)), rows[:kept]
    reviews = corpus.encode(predictor.vocab, rows, predictor.max_len)
    if len(set(reviews.labels.tolist())) < 2:
        raise ConfigError(f"{corpus_name}: the atlas compares the two classes, and these reviews are all of one")
    read = read_states(predictor, reviews, layer, direction == "backward", lambda share, what: progress(0.8 * share, what))
    progress(0.85, "choosing each unit's threshold")
    order = np.random.default_rng(0).permutation(len(rows))
    halves = (np.sort(order[: len(rows) // 2]), np.sort(order[len(rows) // 2 :]))
    thresholds, signs = best_thresholds(read.final[halves[0]], reviews.labels[halves[0]])
    accuracy = threshold_accuracy(read.final[halves[1]], reviews.labels[halves[1]], thresholds, signs)
    progress(0.9, "the L1 logistic sweep")
    rank = l1_entry_order(read.final, reviews.labels)
    return UnitAtlas(predictor.name, layer, direction, corpus_name, corpus, rows, reviews, read, halves, thresholds,
                     signs, accuracy, rank, cut)


def atlas_corpus(predictor: Predictor, data: Path | None) -> tuple[str, TokenizedCorpus, np.ndarray]:
    """(its name, the corpus, the rows to read): the checkpoint's own test split, or every review of a file (at most
    MAX_REVIEWS: a larger one is refused)."""
    if data is None:
        corpus, rows = held_out(predictor.checkpoint)
        source = predictor.checkpoint.data.get("source")
        if source in BUNDLED_DATA:
            return f"the test split of {source}", corpus, rows
        # held_out scores a checkpoint trained on another file on the bundled sample's test split, never seen by it
        return f"the bundled sample's test split (its own data, {str(source)[:60]}, is not here)", corpus, rows
    corpus = tokenize_files(data, limit=MAX_REVIEWS + 1)
    if len(corpus) > MAX_REVIEWS:
        raise ConfigError(f"{Path(data).name}: more than {MAX_REVIEWS:,} reviews; the atlas reads at most "
                          f"{MAX_REVIEWS:,} (keep the first ones in a smaller file)")
    return Path(data).name, corpus, np.arange(len(corpus))


class AtlasCache:
    """Atlases by checkpoint file state, layer, direction and corpus; a few at a time (each keeps its corpus's states),
    and one built at a time, so that memory stays bounded however many requests come. A request for an atlas being
    built waits for it."""

    def __init__(self, size: int = 2):
        self._size, self._items = size, OrderedDict()
        self._lock, self._building = threading.Lock(), threading.Lock()

    def _kept(self, key: tuple) -> UnitAtlas | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def get(self, predictor: Predictor, path: Path, layer: int, direction: str, data: Path | None = None,
            progress: Progress = _silent) -> UnitAtlas:
        key = (str(path), path.stat().st_mtime_ns, layer, direction,
               None if data is None else (str(data), data.stat().st_mtime_ns))
        if (atlas := self._kept(key)) is not None:
            return atlas
        with self._building:
            if (atlas := self._kept(key)) is not None:  # built while this request waited
                return atlas
            atlas = build_atlas(predictor, layer, direction, *atlas_corpus(predictor, data), progress=progress)
            with self._lock:
                self._items[key] = atlas
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
            return atlas


atlases = AtlasCache()


# ---------------------------------------------------------------- the check by ablation

@dataclass
class AblationRow:
    ablated: str  # "best" or "random"
    k: int
    accuracy: float  # the mean over the draws for random units
    lowest: float  # the range over the draws (equal to accuracy for the best units)
    highest: float
    units: list[int]  # the best units, or the first draw's


@dataclass
class Ablation:
    """The whole model, and the model with units held at their corpus mean at every step, on the whole corpus."""

    whole: float
    best_unit: int
    best_alone: float  # on the held-out half
    whole_on_half: float  # the whole model on that half
    reviews: int
    rows: list[AblationRow]

    def row(self, ablated: str, k: int) -> AblationRow:
        return next(r for r in self.rows if r.ablated == ablated and r.k == k)

    def verdict(self) -> str:
        """What the ablation says about the best single unit, in sentences: a cost is accuracy lost, in points."""
        def points(accuracy: float) -> str:
            return f"{100 * (self.whole - accuracy):.2f} points"

        one, random_one = self.row("best", 1), self.row("random", 1)
        cost, random_cost = self.whole - one.accuracy, self.whole - random_one.lowest
        sentences = [(f"Unit {self.best_unit} predicts best alone: {self.best_alone:.1%} on the held-out half, where "
                      f"the whole model reads {self.whole_on_half:.1%}. On all {self.reviews:,} reviews the whole model "
                      f"reads {self.whole:.1%}; with unit {self.best_unit} held at its mean at every step it loses "
                      f"{points(one.accuracy)} (a random unit: at most {points(random_one.lowest)}).")]
        for k in sorted({r.k for r in self.rows if r.k > 1}):
            best, random = self.row("best", k), self.row("random", k)
            sentences.append(f"The best {k} units together cost {points(best.accuracy)}; {k} random units between "
                             f"{points(random.highest)} and {points(random.lowest)}.")
        if cost < 0.01:
            sentences.append("So the model barely depends on the unit that predicts best"
                             + (", though it leans on it more than on a random unit" if cost > random_cost else "")
                             + ": what the unit carries is carried by other units too (Donnelly & Roegiest 2019 "
                             "found the same).")
        else:
            sentences.append("So the model does depend on the unit that predicts best: without it, it loses more than "
                             "a point.")
        return " ".join(sentences)


def ablated_accuracy(predictor: Predictor, atlas: UnitAtlas, units: np.ndarray) -> float:
    """The model's accuracy on the atlas's reviews with `units` held at their corpus mean at every step (none held:
    the plain model, read one step at a time)."""
    values = torch.full((atlas.units,), float("nan"))
    values[torch.as_tensor(units, dtype=torch.long)] = torch.from_numpy(atlas.read.mean_state[units])
    clamp = Clamp(atlas.layer, atlas.direction == "backward", values)
    logits = score(predictor.model, atlas.reviews, clamp=clamp)
    return float(((logits > 0).numpy() == atlas.labels.astype(bool)).mean())


def ablate(predictor: Predictor, atlas: UnitAtlas, sizes: tuple[int, ...] = ABLATION_SIZES, draws: int = RANDOM_DRAWS,
           seed: int = 0, progress: Progress = _silent) -> Ablation:
    """Hold the best k units (by accuracy alone), then k random units (`draws` times), at their mean. Kept with the
    atlas."""
    sizes = tuple(k for k in sizes if k <= atlas.units)
    if (sizes, draws, seed) not in atlas.ablations:
        atlas.ablations[sizes, draws, seed] = _ablate(predictor, atlas, sizes, draws, seed, progress)
    return atlas.ablations[sizes, draws, seed]


def _ablate(predictor: Predictor, atlas: UnitAtlas, sizes: tuple[int, ...], draws: int, seed: int,
            progress: Progress) -> Ablation:
    rng = np.random.default_rng(seed)
    runs = [("best", k, atlas.best(k)) for k in sizes]
    runs += [("random", k, rng.choice(atlas.units, size=k, replace=False)) for k in sizes for _ in range(draws)]
    whole = float(((atlas.read.probabilities > 0.5) == atlas.labels.astype(bool)).mean())  # as a logit above 0
    results: dict[tuple[str, int], list[tuple[float, np.ndarray]]] = {}
    for done, (ablated, k, units) in enumerate(runs):
        progress(done / len(runs), f"holding the {ablated} {k} unit(s) at their mean ({done + 1} of {len(runs)})")
        results.setdefault((ablated, k), []).append((ablated_accuracy(predictor, atlas, units), units))
    rows = [AblationRow(ablated, k, float(np.mean([a for a, _ in found])), min(a for a, _ in found),
                        max(a for a, _ in found), [int(u) for u in found[0][1]])
            for (ablated, k), found in results.items()]
    best = int(atlas.best(1)[0])
    return Ablation(whole, best, float(atlas.accuracy[best]), atlas.model_accuracy, len(atlas.rows), rows)


# ---------------------------------------------------------------- one unit's page

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
    return UnitReview(i, int(atlas.labels[i]), float(atlas.read.probabilities[i]), tokens, values)


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
    return UnitPage(unit, state, atlas.read.final[:, unit], atlas.labels,
                    [traced_review(predictor, atlas, int(i), unit, state) for i in up],
                    [traced_review(predictor, atlas, int(i), unit, state) for i in down])


# ---------------------------------------------------------------- select to match (LSTMVis)

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
    upper, scaled = np.zeros(len(review_of), dtype=np.int32), threshold * _SCALE
    for first in range(0, len(units), _UNIT_BLOCK):
        stored = atlas.read.states[:, units[first : first + _UNIT_BLOCK]]  # (P, ≤ _UNIT_BLOCK)
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
        passages.append(Passage(i, int(atlas.labels[i]), float(atlas.read.probabilities[i]), on, start,
                                tokens[max(0, start - 8) : start], tokens[start : start + length],
                                tokens[start + length : start + length + 8]))
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
    return Match(tokens, span, threshold, units.tolist(), followed.tolist(), passages)


# ---------------------------------------------------------------- steer a unit

@dataclass
class Steering:
    tokens: list[str]
    unit: int
    value: float | None  # None: no clamp
    probability: float  # the model as it is (equal to the Predict tab's)
    trajectory: np.ndarray  # (T,) P(positive) after each token
    unit_values: np.ndarray  # (T,) the unit's own h, free
    clamped_probability: float
    clamped_trajectory: np.ndarray  # (T,); equal to `trajectory` with no clamp


@torch.inference_mode()
def steer(predictor: Predictor, layer: int, direction: str, review: str, unit: object, value: float | None
          ) -> Steering:
    """Read the review with the unit's h held at `value` at every step (None: free), beside the free reading."""
    model, H = predictor.model, predictor.model.config.hidden_size
    unit = check_unit(unit, H)
    tokens, ids = encode_review(review, predictor.vocab, predictor.max_len)
    if not ids:
        raise ConfigError("Nothing to read in this review: it has no words, only spaces or control characters.")
    trace = trace_gates(model, ids, tokens)
    free = trace.layer(layer, direction).hidden_state[:, unit]
    if value is None:
        return Steering(tokens, unit, None, trace.probability, trace.trajectory, free, trace.probability,
                        trace.trajectory)
    values = torch.full((H,), float("nan"))
    values[unit] = value
    clamp = Clamp(layer, direction == "backward", values)
    ids_t = torch.as_tensor(ids, device=model.device)
    with evaluating(model):
        if model.config.bidirectional:
            trajectory = prefix_probabilities(model, ids_t, clamp)
        else:
            top = model.run_layers(model.embed(ids_t[None]), torch.tensor([len(ids)]), clamp)[-1][0]  # (T, H)
            trajectory = torch.sigmoid(model.classify(model.prefix_readout(top))).float().cpu().numpy()
    return Steering(tokens, unit, float(value), trace.probability, trace.trajectory, free, float(trajectory[-1]),
                    trajectory)


MAX_GENERATED = 60  # tokens a generation may add


@dataclass
class Generated:
    prompt: list[str]
    value: float  # the unit was held at +value, then at -value
    free: list[str]  # the model as it is
    high: list[str]
    low: list[str]


@torch.inference_mode()
def sample_tokens(predictor: Predictor, ids: list[int], count: int, seed: int, clamp: Clamp | None = None
                  ) -> list[int]:
    """`count` token ids drawn one at a time from the language model after `ids`: the model's own layers (with the
    clamp), its forward top-layer state, the pre-training's projection and the tied embedding. _PAD and _UNK are
    never drawn; the same seed draws the same text."""
    model, H = predictor.model, predictor.model.config.hidden_size
    projection = predictor.checkpoint.projection(model.device)
    generator = torch.Generator().manual_seed(seed)
    ids = list(ids)
    with evaluating(model):
        for _ in range(count):
            x = torch.as_tensor(ids, device=model.device)[None]
            top = model.run_layers(model.embed(x), torch.tensor([len(ids)]), clamp)[-1][0, -1, :H]  # (H,) forward
            logits = model.next_token_logits(top, projection).float().cpu()  # (V',)
            logits[[PAD_ID, UNK_ID]] = float("-inf")
            ids.append(int(torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)))
    return ids[len(ids) - count :]


def language_model_file(checkpoint: Path) -> Path:
    """The language model kept beside a checkpoint (`language_model_path`); a sentence when there is none."""
    path = language_model_path(checkpoint)
    if not path.is_file():
        raise ConfigError(f"{checkpoint.name} has no language model kept beside it ({path.parent.name}/{path.name}): "
                          "train it with language-model pre-training and 'keep the language model' "
                          "(--keep-language-model) to generate text")
    return path


def generate(language_model: Predictor, layer: int, direction: str, prompt: str, unit: object, value: float,
             count: int = 30, seed: int = 0) -> Generated:
    """Text after the prompt three ways, with one seed: free, with the unit's h held at +|value| and at -|value|
    (Radford et al. 2017 steered their sentiment unit so)."""
    H = language_model.model.config.hidden_size
    if language_model.checkpoint.projection() is None:
        raise ConfigError(f"{language_model.name or 'this file'} is a classifier's checkpoint, not a language model")
    if direction == "backward":
        raise ConfigError("the language model reads forwards: choose a forward layer to steer what it writes")
    unit = check_unit(unit, H)
    if count >= language_model.max_len:
        raise ConfigError(f"this model reads at most {language_model.max_len} tokens: generate fewer than that")
    tokens, ids = encode_review(prompt, language_model.vocab, language_model.max_len - count)
    if not ids:
        raise ConfigError("The prompt is empty: type the start of a review, e.g. 'This blender is'.")
    vocab = language_model.vocab.itos

    def text(clamp: Clamp | None) -> list[str]:
        return [vocab[i] for i in sample_tokens(language_model, ids, count, seed, clamp)]

    def held(at: float) -> Clamp:
        values = torch.full((H,), float("nan"))
        values[unit] = at
        return Clamp(layer, False, values)

    return Generated(tokens, abs(value), text(None), text(held(abs(value))), text(held(-abs(value))))


# ---------------------------------------------------------------- the command line

def _atlas_for(args: argparse.Namespace) -> tuple[Predictor, UnitAtlas]:
    predictor = load_predictor(args.checkpoint)
    layer, direction = parse_layer(predictor, args.layer or default_layer(predictor))
    data = None if args.data is None else Path(args.data)
    if data is not None and not data.is_file():
        raise ConfigError(f"--data {args.data!r}: no such file (leave --data out for the checkpoint's test split)")
    atlas = atlases.get(predictor, args.checkpoint, layer, direction, data, _progress)
    print(file=sys.stderr)
    return predictor, atlas


def _progress(share: float, what: str) -> None:
    print(f"\r{share:4.0%} {what:<70}", end="", file=sys.stderr, flush=True)


def _print_atlas(atlas: UnitAtlas, top: int) -> None:
    print(f"{atlas.checkpoint}, layer {atlas.layer + 1} {atlas.direction}, over {atlas.corpus_name}: "
          f"{len(atlas.rows):,} reviews" + (f" (the first ones; {atlas.cut:,} left out to bound memory)" if atlas.cut else ""))
    print(f"whole model {atlas.model_accuracy:.2%} on the half the units are scored on; the best units alone:")
    rows = atlas.rows_of_units()[:top]
    columns = list(rows[0])
    print("  ".join(f"{c:>13}" for c in columns))
    for row in rows:
        print("  ".join(f"{'—' if v is None else (f'{v:.3f}' if isinstance(v, float) else v):>13}" for v in row.values()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sentiment.units", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("atlas", "ablate"), help="atlas: the table; ablate: the check by ablation")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--layer", type=LAYER.flag_type(), default="", help="a layer from 0 ('1:backward' for a bidirectional model's); "
                        "default: the top one")
    parser.add_argument("--data", default=None, help=f"a review file of at most {MAX_REVIEWS:,} reviews "
                        "(default: the checkpoint's test split)")
    parser.add_argument("--top", type=TOP.flag_type(), default=20, help="units to print (atlas; default 20)")
    args = parser.parse_args(argv)
    predictor, atlas = _atlas_for(args)
    if args.command == "atlas":
        _print_atlas(atlas, args.top)
        return 0
    ablation = ablate(predictor, atlas, progress=_progress)
    print(file=sys.stderr)
    print(f"{'held at the mean':<18} {'k':>3}  accuracy  (range over {RANDOM_DRAWS} draws for random units)")
    print(f"{'nothing':<18} {0:>3}  {ablation.whole:.2%}")
    for row in ablation.rows:
        spread = f"  ({row.lowest:.2%} to {row.highest:.2%})" if row.ablated == "random" else ""
        print(f"{row.ablated + ' units':<18} {row.k:>3}  {row.accuracy:.2%}{spread}")
    print(ablation.verdict())
    return 0


if __name__ == "__main__":
    cli.run(main)
