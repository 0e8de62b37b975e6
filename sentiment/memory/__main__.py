"""python -m sentiment.memory: the memory experiment and accuracy by review length on the command line."""
from __future__ import annotations

import argparse

from .. import cli
from ..contract import REVIEW
from ..data.preprocessing import encode_review
from ..model.predictor import load_predictor
from .experiment import (
    CELL_TYPES,
    COMPARED,
    DISTANCES,
    FORGET_BIAS,
    MEMORY_CHECKPOINTS,
    MEMORY_EXAMPLE,
    STEPS,
    MemorySettings,
    accuracy_by_length,
    gradient_drop,
    gradient_norms,
    memory_experiment,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sentiment.memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", nargs="+", default=list(MEMORY_CHECKPOINTS), help="names in checkpoints/")
    parser.add_argument("--review", type=REVIEW.flag_type(), default=MEMORY_EXAMPLE,
                        help="review for the gradient flow (default: the Cliff one)")
    parser.add_argument("--cells", nargs="+", type=CELL_TYPES.item.flag_type(), default=["rnn", "gru", "lstm"],
                        help=CELL_TYPES.expects())
    parser.add_argument("--distances", nargs="+", type=DISTANCES.item.flag_type(), default=[5, 20, 50, 100],
                        help=DISTANCES.expects())
    parser.add_argument("--forget-bias", type=FORGET_BIAS.flag_type(), default=MemorySettings.forget_bias,
                        help=FORGET_BIAS.expects())
    parser.add_argument("--steps", type=STEPS.flag_type(), default=MemorySettings.steps, help=STEPS.expects())
    args = parser.parse_args(argv)
    cells, distances = CELL_TYPES.check(args.cells), DISTANCES.check(args.distances)  # the counts, as the tab's
    predictors = {path.name: load_predictor(path, "cpu") for path in COMPARED.check(args.checkpoints)}

    print("gradient flow, ‖∂ logit / ∂ embedding‖ by distance from the end of the review:")
    for name, predictor in predictors.items():
        norms = gradient_norms(predictor.model, encode_review(args.review, predictor.vocab, predictor.max_len)[1])
        at = {d: norms[-1 - d] for d in (0, 10, 25, 50, 100) if d < len(norms)}
        drop = gradient_drop(norms, max(at))
        print(f"  {name:12} " + "  ".join(f"d={d}: {v:.2e}" for d, v in at.items()) + f"  (falls {drop:,.0f}×)")
    print("\naccuracy by review length (tokens), each checkpoint's held-out test split:")
    for name, predictor in predictors.items():
        print(f"  {name:12} " + "  ".join(f"{b.label}: {b.accuracy:.1%} ({b.reviews})" for b in accuracy_by_length(predictor)))
    print(f"\nsynthetic memory task (not reviews), test accuracy; LSTM forget-gate bias at start {args.forget_bias}:")
    settings = MemorySettings(forget_bias=args.forget_bias, steps=args.steps).validate()
    for result in memory_experiment(cells, distances, settings):
        print(f"  {result.cell:4} distance {result.distance:4}: {result.accuracy:6.1%} after {result.steps:5,} steps, "
              f"{result.seconds:5.1f} s")
    return 0


if __name__ == "__main__":
    cli.run(main)
