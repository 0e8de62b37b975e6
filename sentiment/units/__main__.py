"""python -m sentiment.units atlas|ablate|unit|match|steer|generate: the Units tab on the command line."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import cli
from ..config import ConfigError
from ..contract import LAYER, Number
from ..explain.review import default_layer, parse_layer
from ..model.checkpoint import DEFAULT_CHECKPOINT
from ..model.predictor import Predictor, load_predictor
from .ablation import RANDOM_DRAWS, ablate
from .atlas import MAX_REVIEWS, UnitAtlas, atlas_corpus, build_atlas

TOP = Number("units to print", 1, 65_536, integer=True)


def _atlas_for(args: argparse.Namespace) -> tuple[Predictor, UnitAtlas]:
    predictor = load_predictor(args.checkpoint)
    layer, direction = parse_layer(predictor, args.layer or default_layer(predictor))
    data = None if args.data is None else Path(args.data)
    if data is not None and not data.is_file():
        raise ConfigError(f"--data {args.data!r}: no such file (leave --data out for the checkpoint's test split)")
    atlas = build_atlas(predictor, layer, direction, *atlas_corpus(predictor, data), progress=_progress)
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
