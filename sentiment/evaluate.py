"""python -m sentiment.evaluate [--checkpoint FILE] [--data FILE] [--split test|all] : print a test report."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from . import cli
from .data.corpus import tokenize_files
from .data.sets import BUNDLED_DATA, data_name
from .model.checkpoint import DEFAULT_CHECKPOINT
from .model.predictor import load_predictor
from .model.scoring import TestReport, by_source, held_out, score, source_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sentiment.evaluate", description=__doc__)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--data", default="sample",
                        help=f"a bundled data set ({' or '.join(BUNDLED_DATA)}) or a review file (default: sample)")
    parser.add_argument(
        "--split", choices=("test", "all"), default=None,
        help="'test': the held-out part of the checkpoint's own split (default for a bundled data set); "
        "'all': every review in the file (default for other files)",
    )
    args = parser.parse_args(argv)
    predictor = load_predictor(args.checkpoint)
    split = args.split or ("test" if data_name(args.data) in BUNDLED_DATA else "all")
    if split == "test":
        corpus, rows = held_out(predictor.checkpoint, args.data)
    else:
        corpus = tokenize_files(args.data)
        rows = np.arange(len(corpus))
    reviews = corpus.encode(predictor.vocab, rows, predictor.max_len)
    logits = score(predictor.model, reviews)
    print(f"checkpoint {args.checkpoint} on {data_name(args.data)} ({split} split): {corpus.report.summary()}")
    report = TestReport.of(logits, reviews.labels)
    print(report.format())
    if report.positive in (0.0, 1.0):
        print(f"every review here is {'positive' if report.positive else 'negative'}: the accuracy is the recall of "
              "that class")
    if sources := by_source(corpus, rows, logits):
        print(source_table(sources))
    if predictor.checkpoint.preprocessing_note:
        print(f"note: {predictor.checkpoint.preprocessing_note}")
    return 0


if __name__ == "__main__":
    cli.run(main)
