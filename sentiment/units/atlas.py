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
    python -m sentiment.units ablate --checkpoint default.pt    # the check by ablation"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import ConfigError
from ..data.corpus import EncodedReviews, TokenizedCorpus, tokenize_files
from ..data.sets import BUNDLED_DATA
from ..explain.gates import TANH_GATES, cell_gates, start_values, step_halves
from ..model.network import evaluating, reverse_within
from ..model.predictor import Predictor
from ..model.scoring import held_out

MAX_REVIEWS = 20_000  # an uploaded corpus holds at most this many reviews


# Every hidden state of the corpus is kept (one byte each) for `find_passages`; past this many, the atlas reads the
# corpus's first reviews that fit, and says so.
MAX_STATE_BYTES = 256 * 1024 * 1024


SATURATION = (0.1, 0.9)  # a sigmoid gate below 0.1 is shut, above 0.9 open (Karpathy, Johnson & Fei-Fei 2015)


UNIT_BLOCK = 16  # units counted over the corpus at a time


STATE_SCALE = 127  # hidden states lie in [-1, 1]: one byte holds them to within 1/254


_BATCH = 128


_GATE_ROWS = 4096


Progress = Callable[[float, str], None]


def silent(_share: float, _what: str) -> None:
    pass


@dataclass
class CorpusStates:
    """Everything one pass of the model over a corpus leaves for the atlas: per review (N rows), per unit (H)."""

    probabilities: np.ndarray  # (N,) the model's P(positive)
    final: np.ndarray  # (N, H) the state after the last token read (token 0 for a backward direction)
    largest: np.ndarray  # (N, H) the largest value over the review
    smallest: np.ndarray  # (N, H)
    states: np.ndarray  # (P, H) int8: every state, review after review, in token order, times STATE_SCALE
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
                progress: Progress = silent) -> CorpusStates:
    """Run the model once over the reviews (longest batches last) and keep what the atlas needs of one layer and
    direction."""
    model, H, N = predictor.model, predictor.model.config.hidden_size, len(reviews)
    read = np.maximum(reviews.lengths, 1)  # a review with no tokens is read as one _PAD step
    offsets = np.concatenate([[0], np.cumsum(read)])
    out = CorpusStates(probabilities=np.empty(N, np.float32), final=np.empty((N, H), np.float32),
                       largest=np.empty((N, H), np.float32), smallest=np.empty((N, H), np.float32),
                       states=np.empty((int(offsets[-1]), H), np.int8), offsets=offsets, mean_state=np.zeros(H),
                       saturation={})
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
            out.states[positions.numpy()] = (values * STATE_SCALE).round().to(torch.int8).numpy()
            for gate, count in counts.items():
                saturated[gate] = saturated.get(gate, 0) + count
            progress(min(N, start + _BATCH) / N, f"reading {min(N, start + _BATCH):,} of {N:,} reviews")
    steps = int(offsets[-1])
    out.mean_state = (out.mean_state / max(1, steps)).astype(np.float32)
    out.saturation = {g: ((count[0] / steps).numpy(), (count[1] / steps).numpy()) for g, count in saturated.items()}
    return out


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
                rows: np.ndarray, progress: Progress = silent) -> UnitAtlas:
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
    return UnitAtlas(checkpoint=predictor.name, layer=layer, direction=direction, corpus_name=corpus_name,
                     corpus=corpus, rows=rows, reviews=reviews, read=read, halves=halves, thresholds=thresholds,
                     signs=signs, accuracy=accuracy, l1_rank=rank, cut=cut)


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
