"""Why LSTMs remember: gradient flow through time, a synthetic long-range memory task, and accuracy by length.

Three measurements behind the reference article's claim that plain RNNs forget and gated cells do not:

- `gradient_norms`: how strongly the output logit depends on each token's embedding, ‖∂ logit / ∂ e_t‖. Against
  the token's distance from the end of the review, a vanishing gradient shows as a curve that falls off.
- `memory_experiment`: a synthetic task (never reviews) where the label is a marker token placed `distance` steps
  before the end, everything else is noise. A model only solves it if it carries the marker across `distance`
  steps. Trained in seconds per cell type and distance, results streamed as they finish.
- `accuracy_by_length`: a checkpoint's test accuracy per review-length bucket on its own held-out split.

    python -m sentiment.memory [--checkpoints rnn.pt gru.pt lstm.pt] [--distances 5 20 50 100] [--forget-bias 1]"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import Choice, ConfigError, Many, Number, check_settings, param_of, range_of, setting
from ..contract import CHECKPOINT
from ..data.sets import BUNDLED_SAMPLE
from ..model.network import CELLS, ModelConfig, SentimentNet, evaluating
from ..model.predictor import Predictor
from ..model.scoring import held_out, score
from ..train.config import TrainConfig
from ..train.steps import train_step

MEMORY_CHECKPOINTS = ("rnn.pt", "gru.pt", "lstm.pt")  # shipped side by side: the same data and recipe, three cells


# The article's "dog named Cliff" idea, written for reviews: the verdict comes first, then a long neutral stretch.
MEMORY_EXAMPLE = (
    "Terrible leash, it snapped on the first walk and I want my money back. " + " ".join([
        "I bought it for my dog Cliff, a three year old beagle who walks with me twice a day.",
        "We usually go around the block in the morning and to the park near the river in the evening.",
        "The package arrived on a Tuesday in a brown box with a small manual and a spare clip.",
        "The leash is blue, about six feet long, with a padded handle and a metal ring near the clasp.",
        "Cliff weighs about thirty pounds and likes to stop at every tree along the way.",
        "My neighbour has a similar leash in green for her terrier and they often walk with us.",
        "The river path is flat and quiet, with benches every few hundred metres and a small cafe at the end.",
    ])
)


def gradient_norms(model: SentimentNet, ids: Sequence[int] | torch.Tensor) -> np.ndarray:
    """‖∂ logit / ∂ e_t‖ for every token t of one review (token order), with dropout off."""
    device = model.device
    ids = torch.as_tensor(ids, dtype=torch.long, device=device)
    if ids.ndim != 1 or len(ids) == 0:
        raise ValueError("gradient_norms takes the ids of one non-empty review")
    # cuDNN only differentiates RNNs in training mode; the native kernels give the same numbers in eval mode.
    with evaluating(model), torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
        embedded = model.embed(ids[None]).detach().requires_grad_(True)  # (1, T, E)
        lengths = torch.tensor([len(ids)], device=device)
        logit = model.classify(model.readout(model.run_layers(embedded, lengths)[-1], lengths))  # (1,)
        (grad,) = torch.autograd.grad(logit.sum(), embedded)
    return grad[0].norm(dim=-1).float().cpu().numpy()  # (T,)


def gradient_drop(norms: np.ndarray, distance: int) -> float:
    """How many times smaller the gradient is `distance` tokens before the end than at the last token."""
    return float(norms[-1] / max(norms[-1 - distance], 1e-30))


MARKERS = (2, 3)  # token ids of the two markers: 2 means label 0, 3 means label 1 (0 and 1 are _PAD and _UNK)


@dataclass(frozen=True)
class MemoryTask:
    """Sequences of `lead` noise tokens, one marker, then `distance` noise tokens; the label is the marker."""

    distance: int
    lead: int = 5
    noise_symbols: int = 10

    @property
    def vocab_size(self) -> int:
        return MARKERS[1] + 1 + self.noise_symbols

    def sample(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ids (n, T), lengths (n,), labels (n,) with T = lead + 1 + distance."""
        length = self.lead + 1 + self.distance
        ids = rng.integers(MARKERS[1] + 1, self.vocab_size, size=(n, length))
        labels = rng.integers(0, 2, size=n)
        ids[:, self.lead] = np.asarray(MARKERS)[labels]
        return torch.from_numpy(ids), torch.full((n,), length), torch.from_numpy(labels)


@dataclass(frozen=True)
class MemoryResult:
    cell: str
    distance: int
    accuracy: float  # on fresh sequences; 0.5 is chance
    steps: int
    seconds: float
    solved_early: bool  # stopped before the step budget because training accuracy reached 99%


@dataclass(frozen=True)
class MemorySettings:
    """The memory experiment's small models and their training, each field declared once (sentiment/config.py): its
    checks, the Memory tab's inputs and this module's flags read these."""

    hidden_size: int = setting(32, "hidden size", "units in each small model's one recurrent layer", low=1, high=512)
    embedding_dim: int = setting(16, "embedding size", "the length of each token's vector",
                                 **range_of(ModelConfig, "embedding_dim"))
    steps: int = setting(1500, "most training steps per model", "a model stops sooner once it solves the task", low=1,
                         high=5000)
    seconds: float = setting(20.0, "most seconds per model", "a model stops sooner once it solves the task", low=0.1,
                             high=3600.0)
    batch_size: int = setting(64, "batch size", "sequences per optimisation step",
                              **range_of(TrainConfig, "batch_size"))
    lr: float = setting(0.01, "learning rate", "Adam's step size", **range_of(TrainConfig, "lr"))
    forget_bias: float = setting(1.0, "forget-gate bias", "the LSTM's, at initialization (as in the review model); try "
                                 "3 for long distances", **range_of(ModelConfig, "forget_bias"))
    test_size: int = setting(1000, "test sequences", "fresh sequences each model is scored on", low=1, high=100_000)
    seed: int = setting(0, "seed", "the same seed gives the same models", **range_of(TrainConfig, "seed"))

    def validate(self) -> MemorySettings:
        check_settings(self)
        return self


# What a person sets of the experiment, declared once: the Memory tab's endpoints and this module's flags read these.
CELL_TYPES = Many("cell types", item=Choice("cell type", choices=tuple(CELLS)), most=len(CELLS))


DISTANCES = Many("distances", item=Number("distance", 1, 100, integer=True), most=10)


FORGET_BIAS = param_of(MemorySettings, "forget_bias")


STEPS = param_of(MemorySettings, "steps")


COMPARED = Many("checkpoints", item=CHECKPOINT, most=6)


def train_memory_model(cell: str, task: MemoryTask, settings: MemorySettings = MemorySettings()) -> MemoryResult:
    """Train one small model of `cell` type on the task from scratch and score it on fresh sequences."""
    CELL_TYPES.item.check(cell)
    Number("distance", 0, 2000, integer=True).check(task.distance)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    config = ModelConfig(vocab_size=task.vocab_size, embedding_dim=settings.embedding_dim,
                         hidden_size=settings.hidden_size, num_layers=1, dropout=0.0, cell=cell,
                         forget_bias=settings.forget_bias)
    model = SentimentNet(config.validate())
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    started = time.perf_counter()
    recent: list[float] = []
    step = 0
    model.train()
    while step < settings.steps and time.perf_counter() - started < settings.seconds:
        ids, lengths, labels = task.sample(settings.batch_size, rng)
        train_step(model, optimizer, ids, lengths, labels, clip=1.0)
        step += 1
        with torch.no_grad(), evaluating(model):
            recent.append(float(((model(ids, lengths) > 0).long() == labels).float().mean()))
        if len(recent) >= 10 and np.mean(recent[-10:]) >= 0.99:
            break
    seconds = time.perf_counter() - started
    model.eval()
    ids, lengths, labels = task.sample(settings.test_size, np.random.default_rng(settings.seed + 1))
    with torch.no_grad():
        accuracy = float(((model(ids, lengths) > 0).long() == labels).float().mean())
    return MemoryResult(cell=cell, distance=task.distance, accuracy=accuracy, steps=step, seconds=seconds,
                        solved_early=step < settings.steps and seconds < settings.seconds)


def memory_experiment(cells: Sequence[str] = ("rnn", "gru", "lstm"), distances: Sequence[int] = (5, 20, 50, 100),
                      settings: MemorySettings = MemorySettings()) -> Iterator[MemoryResult]:
    """Train and score every cell type at every distance, nearest distance first, yielding each result."""
    settings.validate()
    if not cells or not distances:
        raise ConfigError("choose at least one cell type and one distance")
    for distance in sorted(distances):
        for cell in cells:
            yield train_memory_model(cell, MemoryTask(int(distance)), settings)


LENGTH_EDGES = (25, 50, 100, 150)  # review length buckets, in tokens: ≤25, 26–50, 51–100, 101–150, >150


@dataclass(frozen=True)
class LengthBucket:
    label: str
    reviews: int
    accuracy: float


def accuracy_by_length(predictor: Predictor, data: str | Path = BUNDLED_SAMPLE,
                       edges: Sequence[int] = LENGTH_EDGES) -> list[LengthBucket]:
    """Test accuracy of a checkpoint per bucket of review length (tokens before the `max_len` cut), on the
    checkpoint's own held-out split of `data`."""
    corpus, rows = held_out(predictor.checkpoint, data)
    reviews = corpus.encode(predictor.vocab, rows, predictor.max_len)
    correct = (score(predictor.model, reviews).numpy() > 0) == reviews.labels.astype(bool)
    lengths = corpus.offsets[rows + 1] - corpus.offsets[rows]
    bucket = np.searchsorted(np.asarray(edges), lengths, side="left")  # ≤ edges[0] → 0, ...
    bounds = [0, *edges]
    labels = [f"{lo + 1}–{hi}" for lo, hi in zip(bounds, edges)] + [f"> {edges[-1]}"]
    return [LengthBucket(labels[b], int((bucket == b).sum()), float(correct[bucket == b].mean()) if (bucket == b).any() else float("nan"))
            for b in range(len(labels))]
