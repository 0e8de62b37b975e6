"""What a training run tells its watcher: it never prints, it yields these."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..model.scoring import TestReport


@dataclass(frozen=True)
class Preparing:
    message: str


@dataclass(frozen=True)
class Step:
    phase: str  # "pretrain" (next-token loss) or "train" (the classifier's loss)
    step: int
    total_steps: int
    epoch: int
    train_loss: float
    lr: float
    reviews_per_s: float
    eta_s: float


@dataclass(frozen=True)
class Evaluated:
    step: int
    epoch: int
    val_loss: float
    val_accuracy: float
    improved: bool


@dataclass(frozen=True)
class Finished:
    checkpoint: Path | None
    report: TestReport | None
    stopped: bool
    reason: str
    steps: int
    seconds: float
    ranks: int = 1  # processes that trained together; with more than one, their weights were checked identical
    # With more than one source (a bundled data set of several files), the test report of each source's test reviews.
    by_source: dict[str, TestReport] = field(default_factory=dict)
