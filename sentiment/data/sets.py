"""The bundled data sets, the typed sentences, and the one fixed split every run and baseline scores."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import DataError

ASSETS = Path(__file__).resolve().parents[1] / "assets"


BUNDLED_SAMPLE = ASSETS / "amazon_reviews_sample.ft.txt.bz2"


# More real Amazon reviews, one file per collection (see assets/more/README.md), shipped beside the sample.
MORE_REVIEWS = tuple(sorted((ASSETS / "more").glob("*.ft.txt.bz2")))


MORE_REVIEW_COUNT = 66_818  # in those files together, for the Train tab's label (a test counts them)


# The bundled data sets, by the name the CLI and the Train tab give them. The sample comes first, so that its rows,
# and so its split, are the same in both.
BUNDLED_DATA = {"sample": (BUNDLED_SAMPLE,), "sample+more": (BUNDLED_SAMPLE, *MORE_REVIEWS)}


# Short sentences a person would type into the Predict box, written for this project without looking at any model's
# output (not taken from a data set), each with its kind: praise and complaints with a negation, contrasts,
# comparisons, plain ones; about half positive. Only measured on, never trained or tuned on.
TYPED_SENTENCES = ASSETS / "typed_sentences.tsv"


SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


# One fixed split for every run, whatever its training seed, so that runs and baselines score the same test set.
SPLIT_SEED = 0


def typed_sentences() -> tuple[list[str], np.ndarray, list[str]]:
    """The typed sentences, their labels (1 = positive) and their kinds (negated-praise, negated-complaint, contrast,
    comparison, plain)."""
    with open(TYPED_SENTENCES, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return ([r["text"] for r in rows], np.array([int(r["label"] == "positive") for r in rows]),
            [r.get("kind") or "" for r in rows])


def data_files(data: str | Path) -> tuple[Path, ...]:
    """The files of a bundled data set named in BUNDLED_DATA, or the one file `data` names."""
    return BUNDLED_DATA.get(str(data), (Path(data),))


def data_name(data: str | Path) -> str:
    """How a person calls `data`: a bundled data set's name, or the file's name."""
    if str(data) in BUNDLED_DATA:
        return str(data)
    path = Path(data)
    return "sample" if path.resolve() == BUNDLED_SAMPLE.resolve() else path.name


def source_name(path: Path) -> str:
    """The name of one file's reviews in per-source reports: 'sample' for the bundled sample, else the name up to its
    first dot ('blitzer' for assets/more/blitzer.ft.txt.bz2)."""
    return "sample" if path.resolve() == BUNDLED_SAMPLE.resolve() else path.name.split(".")[0]


@dataclass
class Splits:
    """Row indices of the train, validation and test parts."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_indices(n: int, seed: int = SPLIT_SEED, fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> Splits:
    """A seeded shuffle cut 80/10/10: the same file and seed always give the same split."""
    if n < 3:
        raise DataError(f"need at least 3 reviews to split into train, validation and test; got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * fractions[1]))
    n_test = max(1, round(n * fractions[2]))
    n_train = n - n_val - n_test
    return Splits(order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :])


def split_by_source(sizes: list[int], seed: int = SPLIT_SEED, train_share: float = 1.0) -> Splits:
    """Each source (a block of `sizes[k]` consecutive rows) split 80/10/10 on its own, so that every source is held out
    in proportion and a source's split never depends on what else is read with it: one source alone is split exactly
    as `split_indices` splits it. With `train_share` below 1 only that share of each source's training rows is kept,
    the first of their shuffled order, so that a smaller share lies within every larger one (a learning curve's runs
    train on nested data and are scored on the same validation and test rows)."""
    parts: list[Splits] = []
    start = 0
    for size in sizes:
        # A source cut to a couple of reviews by a small row limit has none to spare: they are all trained on.
        own = split_indices(size, seed) if size >= 3 or len(sizes) == 1 else Splits(np.arange(size), *[np.arange(0)] * 2)
        kept = own.train[: max(1, round(train_share * len(own.train)))]  # a source with none keeps none
        parts.append(Splits(kept + start, own.val + start, own.test + start))
        start += size
    return Splits(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("train", "val", "test")))
