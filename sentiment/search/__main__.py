"""python -m sentiment.search: a hyper-parameter search, alone or as one worker of a shared study."""
from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

from .. import cli
from ..model.checkpoint import CHECKPOINT_DIR
from .study import Search, SearchSettings, TrialDone


def describe(done: TrialDone) -> str:
    shown = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in done.params.items())
    result = (f"validation loss {done.val_loss:.4f}, accuracy {done.val_accuracy:.2%}" if done.val_loss is not None
              else "no validation")
    best = f"; best so far: trial {done.best_number} ({done.best_loss:.4f})" if done.best_number is not None else ""
    return f"trial {done.number} {done.state} after {done.epochs} epoch(s), {done.seconds:.0f} s: {result} [{shown}]{best}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sentiment.search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_dataclass_flags(parser, SearchSettings, about="a worker's search", defaults=True)
    parser.add_argument("--out", type=Path, default=None,
                        help="where the study's best trial's checkpoint is kept (default checkpoints/search-STUDY.pt)")
    parser.add_argument("--workdir", type=Path, default=CHECKPOINT_DIR / "search",
                        help="where each trial's checkpoint is written (default checkpoints/search/STUDY/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, show: Callable[[str], None] = print) -> int:
    args = parse_args(argv)
    settings = SearchSettings(**cli.overrides(args, SearchSettings)).validate()
    search = Search(settings, args.workdir)
    show(f"study {settings.study!r}: {len(search.study.trials)} trial(s) so far; running {settings.trials} more")
    for done in search.run():
        show(describe(done))
    kept = search.keep_best(args.out or CHECKPOINT_DIR / f"search-{re.sub(r'[^A-Za-z0-9_.-]+', '-', settings.study)}.pt")
    best = search.best_trial()
    if best is None:
        show("no trial has completed yet")
        return 0
    show(f"best: trial {best.number}, validation loss {best.value:.4f} ({best.params})"
         + (f"; its checkpoint is {kept}" if kept else "; its checkpoint is on the worker that ran it"))
    return 0


if __name__ == "__main__":
    cli.run(main)
