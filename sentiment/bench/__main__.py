"""python -m sentiment.bench [prep|train|inspect|serve|quality|curve|scale|accuracy|vectors|units|all] [--json FILE]

Each stage prints its rows: our figure, the reference pipeline's where there is one (re-implemented as the tutorial
wrote it, `reference.py`, and run in this same process on the same reviews), the ratio, the target and whether it is
met. `--json FILE` writes every row machine-readable. Times are medians, or p95 where the target says so.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from .. import cli
from ..config import bound, spec_of
from ..data.sets import BUNDLED_SAMPLE
from ..model.checkpoint import DEFAULT_CHECKPOINT
from ..model.network import describe_device, pick_device
from ..train.config import TrainConfig
from ..train.presets import PRESETS
from .measure import PeakMemory, Row, format_table, write_json
from .stages import STAGES

SLOW = ("quality", "curve", "accuracy", "vectors")  # they train models for minutes: not part of 'all'
SHARE = spec_of(TrainConfig, "train_share")  # --shares within the range the config declares


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sentiment.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stages", nargs="*", choices=[*STAGES, "all"], default=["all"],
                        help=f"'all' runs every stage but {' and '.join(SLOW)}, which train models for minutes")
    parser.add_argument("--json", type=Path, default=None, help="also write every row to this file as JSON")
    parser.add_argument("--data", default=None,
                        help="quality: a bundled data set (sample, sample+more) or a review file (default: the preset's); "
                             "the other stages: a fastText file (default: the bundled sample)")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="model for inspect and quality; vectors: whose embedding to start from")
    parser.add_argument("--reviews", type=int, default=0, help="prep: reviews to read (0 = all)")
    parser.add_argument("--scale-reviews", type=int, default=1_000_000,
                        help="scale: reviews in the repeated-sample file (the full data set has 3.6M)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per timing (inspect and serve run more)")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps per side")
    parser.add_argument("--public-seconds", type=int, default=300,
                        help="serve: wall clock of the public demo's training run (its SENTIMENT_MAX_RUN_SECONDS)")
    parser.add_argument("--embedding", type=int, default=400)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=400)
    parser.add_argument("--baseline-c", type=float, nargs="+", default=[1.0, 4.0, 16.0],
                        help="quality: logistic-regression C values tried on the validation split")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="lab", help="quality and curve: the recipe to train")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="quality, curve and vectors: one training run per seed (each side; curve: per share)")
    parser.add_argument("--shares", type=float, nargs="+", default=[0.25, 0.5, 1.0],
                        help=f"curve: the shares of each source's training reviews trained on (nested), "
                             f"{bound(SHARE.low)} to {bound(SHARE.high)}")
    parser.add_argument("--save-best", type=Path, default=None,
                        help="quality: also write the seed with the lowest validation loss here (the checkpoint "
                             "`train --seeds` would keep from the same seeds)")
    parser.add_argument("--refit", action="store_true",
                        help="quality: once the baseline's C is chosen, train the recipe and the baseline on the "
                             "training and validation splits together (the validation short texts then go unscored)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=2, help="accuracy: epochs for both trainings")
    args = parser.parse_args(argv)
    args.review_file = Path(args.data or BUNDLED_SAMPLE)
    if min(args.repeats, args.train_steps, args.epochs) < 1 or args.reviews < 0 or args.scale_reviews < 3 or (
            args.public_seconds < 10) or not all(SHARE.low <= share <= SHARE.high for share in args.shares):
        parser.error("--repeats, --train-steps and --epochs must be at least 1, --reviews at least 0, "
                     f"--scale-reviews at least 3, --public-seconds at least 10, --shares within {bound(SHARE.low)} "
                     f"to {bound(SHARE.high)}")
    return args


def _cpu_name() -> str:
    """The CPU's model name (Linux), else the machine type: machines of one kind differ, and ratios with them."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    # Before any parallel work, so that the worker threads inherit it: a gradient that vanishes over 200 steps
    # reaches subnormal floats, which some CPUs compute ~100 times slower (the trainer does the same).
    torch.set_flush_denormal(True)
    args = parse_args(argv)
    stages = [s for s in STAGES if s not in SLOW] if "all" in args.stages else list(dict.fromkeys(args.stages))
    device = pick_device(args.device)
    machine = {"cpu": _cpu_name(), "cores": os.cpu_count(),
               "torch": torch.__version__, "device": describe_device(device)}
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, {machine['device']}; "
          "subnormal floats flushed to zero")
    rows: list[Row] = []
    cache = os.environ.get("SENTIMENT_CACHE_DIR")
    try:
        for stage in stages:
            start = time.perf_counter()
            with PeakMemory() as peak:
                rows += STAGES[stage](args)
            rows.append(Row(stage=stage, name=f"{stage}: peak memory of this process", value=peak.peak, unit="MB"))
            print(f"  {stage} done in {time.perf_counter() - start:.0f} s", flush=True)
    finally:  # prep and scale point the cache at temporary folders
        if cache is None:
            os.environ.pop("SENTIMENT_CACHE_DIR", None)
        else:
            os.environ["SENTIMENT_CACHE_DIR"] = cache
    print()
    print(format_table(rows))
    if args.json:
        write_json(rows, args.json, machine)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    cli.run(main)
