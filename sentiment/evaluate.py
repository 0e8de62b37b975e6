"""python -m sentiment.evaluate [--checkpoint FILE] [--data FILE] [--split test|all] : print a test report."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from . import cli
from .checkpoint import DEFAULT_CHECKPOINT, load_predictor
from .corpus import tokenize_corpus
from .data import BUNDLED_SAMPLE
from .scoring import evaluate, held_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sentiment.evaluate", description=__doc__)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--data", type=Path, default=BUNDLED_SAMPLE)
    parser.add_argument(
        "--split", choices=("test", "all"), default=None,
        help="'test': the held-out part of the checkpoint's own split (default for the bundled sample); "
        "'all': every review in the file (default for other files)",
    )
    args = parser.parse_args(argv)
    predictor = load_predictor(args.checkpoint)
    corpus = tokenize_corpus(args.data)
    split = args.split or ("test" if args.data.resolve() == BUNDLED_SAMPLE.resolve() else "all")
    if split == "test":
        corpus, rows = held_out(predictor.checkpoint, args.data)
    else:
        rows = np.arange(len(corpus))
    reviews = corpus.encode(predictor.vocab, rows, predictor.max_len)
    report = evaluate(predictor.model, reviews)
    print(f"checkpoint {args.checkpoint} on {args.data.name} ({split} split): {corpus.report.summary()}")
    print(report.format())
    if predictor.checkpoint.preprocessing_note:
        print(f"note: {predictor.checkpoint.preprocessing_note}")
    return 0


if __name__ == "__main__":
    cli.run(main)
