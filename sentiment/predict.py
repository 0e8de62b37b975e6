"""python -m sentiment.predict [--checkpoint FILE] "review text" ... (or - to read one review per line from stdin)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import cli
from .config import ConfigError
from .contract import REVIEW
from .model.checkpoint import DEFAULT_CHECKPOINT
from .model.predictor import load_predictor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sentiment.predict", description=__doc__)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("texts", nargs="+", help="review texts; '-' reads one review per line from stdin")
    args = parser.parse_args(argv)
    texts = [line.rstrip("\n") for line in sys.stdin] if args.texts == ["-"] else args.texts
    checked = []
    for number, text in enumerate(texts, start=1):  # each as the Predict tab checks a review
        try:
            checked.append(REVIEW.check(text))
        except ConfigError as refused:
            parser.error(str(refused) if len(texts) == 1 else f"text {number}: {refused}")
    predictor = load_predictor(args.checkpoint)
    if predictor.checkpoint.preprocessing_note:
        print(f"note: {predictor.checkpoint.preprocessing_note}", file=sys.stderr)
    for text, p in zip(checked, predictor.predict(checked)):
        label = "positive" if p >= 0.5 else "negative"
        print(f"{label:8}  {p:.3f}  {text[:80]}")
    return 0


if __name__ == "__main__":
    cli.run(main)
