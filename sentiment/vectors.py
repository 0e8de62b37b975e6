"""python -m sentiment.vectors export CHECKPOINT OUT.vec: a checkpoint's embedding as a fastText text file."""
from __future__ import annotations

import argparse

from .cli import run
from .model.word_vectors import export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sentiment.vectors", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    exporting = commands.add_parser("export", help="write a checkpoint's embedding as a fastText .vec file")
    exporting.add_argument("checkpoint", help="a checkpoint file, such as checkpoints/default.pt")
    exporting.add_argument("out", help="the .vec file to write")
    args = parser.parse_args(argv)
    print(f"wrote {export(args.checkpoint, args.out):,} vectors to {args.out}")
    return 0


if __name__ == "__main__":
    run(main)
