"""Scoring labelled reviews: the one evaluation path of the trainer, the Predictor, the evaluate CLI, accuracy by
review length and the benchmark."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..data.corpus import EncodedReviews, TokenizedCorpus, tokenize_files
from ..data.sets import BUNDLED_DATA, SPLIT_SEED, split_by_source
from .network import Clamp, SentimentNet, evaluating

if TYPE_CHECKING:
    from .checkpoint import Checkpoint


@torch.inference_mode()
def score(model: SentimentNet, reviews: EncodedReviews, batch_size: int = 256, clamp: Clamp | None = None
          ) -> torch.Tensor:
    """The model's logit for every review, (N,) on the CPU, dropout off; batches group reviews of similar length.
    With a clamp, some units are held fixed while it reads (see `Clamp`)."""
    logits = torch.empty(len(reviews))
    order = np.argsort(reviews.lengths, kind="stable")
    with evaluating(model):
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            ids, lengths, _ = reviews.batch(rows)
            logits[torch.from_numpy(rows)] = model(ids.to(model.device), lengths.to(model.device), clamp).float().cpu()
    return logits


@dataclass
class TestReport:
    """Scores on a labelled set; the confusion matrix rows are the true class (negative, positive)."""

    __test__ = False  # a report on the test split, not a test class for pytest
    n: int
    loss: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    confusion: list[list[int]]

    @classmethod
    def of(cls, logits: torch.Tensor, labels: torch.Tensor | np.ndarray) -> TestReport:
        labels = torch.as_tensor(labels)
        loss = F.binary_cross_entropy_with_logits(logits, labels.float()).item() if len(labels) else float("nan")
        predicted, truth = logits > 0, labels.bool()
        tp = int((predicted & truth).sum())
        fp = int((predicted & ~truth).sum())
        fn = int((~predicted & truth).sum())
        tn = len(labels) - tp - fp - fn
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return cls(n=len(labels), loss=loss, accuracy=(tp + tn) / max(1, len(labels)), precision=precision,
                   recall=recall, f1=f1, confusion=[[tn, fp], [fn, tp]])

    @property
    def predicted_positive(self) -> float:
        """The share of the reviews predicted positive: beside the share that is, it shows a lean."""
        (_, fp), (_, tp) = self.confusion
        return (fp + tp) / max(1, self.n)

    @property
    def positive(self) -> float:
        """The share of the reviews that is positive."""
        return sum(self.confusion[1]) / max(1, self.n)

    def format(self) -> str:
        (tn, fp), (fn, tp) = self.confusion
        return "\n".join([
            f"reviews    {self.n:,}",
            f"accuracy   {self.accuracy:.2%}",
            f"predicted positive {self.predicted_positive:.1%} (positive: {self.positive:.1%})",
            f"loss       {self.loss:.4f}",
            f"precision  {self.precision:.2%}   (positive class)",
            f"recall     {self.recall:.2%}",
            f"F1         {self.f1:.2%}",
            f"confusion  true neg → predicted neg {tn:,} / pos {fp:,}",
            f"           true pos → predicted neg {fn:,} / pos {tp:,}",
        ])


def evaluate(model: SentimentNet, reviews: EncodedReviews) -> TestReport:
    """Loss, accuracy, precision, recall, F1 and confusion matrix over labelled reviews."""
    return TestReport.of(score(model, reviews), reviews.labels)


SOURCE_COLUMNS = ("source", "reviews", "accuracy", "predicted positive", "positive")


def source_rows(reports: dict[str, TestReport]) -> list[tuple[str, ...]]:
    """A row of SOURCE_COLUMNS per source, as text: a lean shows as a predicted positive share far from the true one."""
    return [(name, f"{r.n:,}", f"{r.accuracy:.2%}", f"{r.predicted_positive:.1%}", f"{r.positive:.1%}")
            for name, r in reports.items()]


def source_table(reports: dict[str, TestReport]) -> str:
    """The source rows as aligned plain text."""
    return "\n".join(f"{name:<10} {n:>7}  {accuracy:>8}  {shown:>18}  {positive:>8}"
                     for name, n, accuracy, shown, positive in [SOURCE_COLUMNS, *source_rows(reports)])


def by_source(corpus: TokenizedCorpus, rows: np.ndarray, logits: torch.Tensor) -> dict[str, TestReport]:
    """The test report of each source's reviews among `rows` (scored `logits`); empty for a corpus of one source."""
    if len(corpus.sources) == 1:
        return {}
    source, labels = corpus.source_of(rows), corpus.labels[rows]
    return {name: TestReport.of(logits[mine], labels[mine])
            for k, name in enumerate(corpus.sources) if (mine := source == k).any()}


def held_out(checkpoint: Checkpoint, data: str | Path | None = None) -> tuple[TokenizedCorpus, np.ndarray]:
    """The reviews of `data` (default: the bundled data set the checkpoint was trained on, else the sample) and the
    rows of the checkpoint's own test split among them: the reviews its test report scored (the same row limit and
    split seed as its training run; each source is split on its own, so the sample's test rows are the same whether
    the checkpoint was trained on the sample or on more)."""
    if data is None:
        data = checkpoint.data.get("source") if checkpoint.data.get("source") in BUNDLED_DATA else "sample"
    corpus = tokenize_files(data, limit=checkpoint.train_config.get("limit") or None)
    return corpus, split_by_source(corpus.sizes, seed=checkpoint.data.get("split_seed", SPLIT_SEED)).test
