"""python -m sentiment.train [--data FILE] [--out FILE] [--preset NAME] [--epochs N] ... : train and save a checkpoint."""
from __future__ import annotations

import argparse
import signal
import threading
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from . import cli
from .checkpoint import CHECKPOINT_DIR
from .data import BUNDLED_SAMPLE
from .model import ModelConfig
from .presets import PRESETS
from .trainer import Evaluated, Finished, Preparing, Step, TrainConfig, train


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sentiment.train", description=__doc__)
    parser.add_argument("--data", type=Path, default=BUNDLED_SAMPLE, help="fastText .txt/.bz2/.gz or CSV/TSV (default: the bundled Amazon sample)")
    parser.add_argument("--out", type=Path, default=None, help="checkpoint to write (default: checkpoints/CELL-DATE-TIME.pt)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="lab", help="starting values; flags override them (default: lab)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    cli.add_dataclass_flags(parser, TrainConfig)
    cli.add_dataclass_flags(parser, ModelConfig, skip=("vocab_size",))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    preset = PRESETS[args.preset]
    config = replace(preset.train, **cli.overrides(args, TrainConfig))
    model_config = replace(preset.model, **cli.overrides(args, ModelConfig))
    out = args.out or CHECKPOINT_DIR / f"{model_config.cell}-{datetime.now():%Y%m%d-%H%M%S}.pt"

    stop = threading.Event()
    # Ctrl-C asks the trainer to stop after this batch, so the best checkpoint so far is still tested and kept.
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"preset {args.preset}: {config}\n{model_config}")
    for event in train(config, model_config, args.data, out, stop):
        if isinstance(event, Preparing):
            print(event.message)
        elif isinstance(event, Step) and not args.quiet:
            cli.progress_line(
                event.step / event.total_steps,
                f"step {event.step}/{event.total_steps} epoch {event.epoch} loss {event.train_loss:.3f} "
                f"{event.reviews_per_s:,.0f} reviews/s ETA {event.eta_s:,.0f}s",
            )
        elif isinstance(event, Evaluated):
            mark = "  (best, saved)" if event.improved else ""
            print(f"\nstep {event.step}: validation loss {event.val_loss:.4f}, accuracy {event.val_accuracy:.2%}{mark}")
        elif isinstance(event, Finished):
            print(f"\n{event.reason} after {event.steps} steps in {event.seconds:.0f}s; best checkpoint: {event.checkpoint}")
            print("test report (best checkpoint, held-out test split):")
            print(event.report.format())
    return 0


if __name__ == "__main__":
    cli.run(main)
