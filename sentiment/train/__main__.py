"""python -m sentiment.train [--data FILE] [--out FILE] [--preset NAME] [--epochs N] ... : train and save a checkpoint.

Under torchrun (`torchrun --nproc_per_node=N -m sentiment.train ...`) the run is distributed: one process per GPU
(NCCL) or per CPU process (Gloo), DistributedDataParallel, and only rank 0 prints and writes the checkpoint.
"""
from __future__ import annotations

import argparse
import os
import signal
import threading
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import torch
from tqdm import tqdm

from .. import cli
from ..config import ConfigError
from ..data.sets import BUNDLED_DATA, data_name
from ..model.checkpoint import CHECKPOINT_DIR, language_model_path, load_checkpoint
from ..model.network import ModelConfig
from ..model.scoring import source_table
from .config import TrainConfig
from .events import Evaluated, Finished, Preparing, Step
from .loop import train
from .presets import PRESETS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sentiment.train", description=__doc__)
    parser.add_argument("--data", default=None,
                        help=f"a bundled data set ({' or '.join(BUNDLED_DATA)}: the {len(BUNDLED_DATA['sample+more']) - 1} "
                        "files of sentiment/assets/more/ beside the sample), or a fastText .txt/.bz2/.gz or CSV/TSV "
                        "file (default: the preset's)")
    parser.add_argument("--out", type=Path, default=None, help="checkpoint to write (default: checkpoints/CELL-DATE-TIME.pt)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="lab", help="starting values; flags override them (default: lab)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="train once per seed and keep the run with the best validation loss (overrides --seed)")
    parser.add_argument("--pretrain", dest="pretrain_epochs", type=int, metavar="EPOCHS", default=None,
                        help="language-model pre-training epochs before the classifier (the same as --pretrain-epochs)")
    cli.add_dataclass_flags(parser, TrainConfig)
    cli.add_dataclass_flags(parser, ModelConfig, skip=("vocab_size",))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    preset = PRESETS[args.preset]
    config = replace(preset.train, **cli.overrides(args, TrainConfig))
    model_config = replace(preset.model, **cli.overrides(args, ModelConfig))
    if args.data is not None and not args.data.strip():
        raise ConfigError("--data is empty: name a bundled data set or a review file, or leave --data out for the "
                          "preset's")
    args.data = args.data or preset.data
    out = args.out or CHECKPOINT_DIR / f"{model_config.cell}-{datetime.now():%Y%m%d-%H%M%S}.pt"

    stop = threading.Event()
    # Ctrl-C asks the trainer to stop after this batch, so the best checkpoint so far is still tested and kept.
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if args.seeds:
            raise ConfigError("--seeds trains one run after another; under torchrun give one --seed")
        return _train_distributed(config, model_config, args, out, stop)
    print(f"preset {args.preset} on {data_name(args.data)}: {config}\n{model_config}")
    if not args.seeds:
        _show(train(config, model_config, args.data, out, stop), args.quiet)
        return 0
    if config.refit:
        raise ConfigError("--seeds keeps the run with the lowest validation loss, and a refit validates nothing: "
                          "give one --seed")
    return _train_seeds(config, model_config, args, out, stop)


def _train_seeds(config: TrainConfig, model_config: ModelConfig, args: argparse.Namespace, out: Path,
                 stop: threading.Event) -> int:
    """One run per seed into a temporary file beside `out`; the best validation loss replaces `out` (atomically).
    The test reports of every run are printed, but only validation decides."""
    runs = []
    try:
        for seed in dict.fromkeys(args.seeds):
            print(f"\n=== seed {seed} ===")
            path = out.with_name(f".{out.stem}.seed{seed}.pt")
            runs.append((seed, path))
            _show(train(replace(config, seed=seed), model_config, args.data, path, stop), args.quiet)
            if stop.is_set():
                break
        scores = [(load_checkpoint(path).metrics, seed, path) for seed, path in runs]
        print("\nseed  validation loss  test accuracy")
        for metrics, seed, _ in scores:
            print(f"{seed:4}  {metrics['best_val_loss']:15.4f}  {metrics['test']['accuracy']:13.2%}")
        metrics, seed, best = min(scores, key=lambda s: s[0]["best_val_loss"])
        os.replace(best, out)
        if language_model_path(best).is_file():  # its language model, kept beside it
            os.replace(language_model_path(best), language_model_path(out))
        print(f"kept seed {seed} (lowest validation loss) as {out}")
    finally:
        for _, path in runs:
            path.unlink(missing_ok=True)
            language_model_path(path).unlink(missing_ok=True)
    return 0


def _train_distributed(config: TrainConfig, model_config: ModelConfig, args: argparse.Namespace, out: Path,
                       stop: threading.Event) -> int:
    """One rank of a torchrun launch: NCCL and this rank's GPU when CUDA is there, Gloo on CPU otherwise."""
    cuda = torch.cuda.is_available() and config.device != "cpu"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group("nccl" if cuda else "gloo")
    try:
        events = train(config, model_config, args.data, out, stop)
        if torch.distributed.get_rank() == 0:
            print(f"rank 0 of {torch.distributed.get_world_size()} ({'NCCL' if cuda else 'Gloo'}), "
                  f"preset {args.preset}: {config}\n{model_config}")
            _show(events, args.quiet)
        else:
            for _ in events:  # the other ranks train in step, silently
                pass
        torch.distributed.barrier()  # the others wait while rank 0 tests and saves, then all leave the group together
    finally:
        torch.distributed.destroy_process_group()
    return 0


def _show(events, quiet: bool) -> None:
    bar = None
    for event in events:
        if isinstance(event, Step):
            if not quiet:
                if bar is not None and bar.desc != event.phase:  # pre-training done: a new bar for the classifier
                    bar.close()
                    bar = None
                bar = bar or tqdm(total=event.total_steps, desc=event.phase, unit="step", dynamic_ncols=True)
                bar.set_postfix_str(f"epoch {event.epoch} loss {event.train_loss:.3f} "
                                    f"{event.reviews_per_s:,.0f} reviews/s", refresh=False)
                bar.update(event.step - bar.n)
            continue
        message = _describe(event)
        if bar is not None:
            bar.write(message)
        else:
            print(message)
        if isinstance(event, Finished) and bar is not None:
            bar.close()


def _describe(event) -> str:
    if isinstance(event, Preparing):
        return event.message
    if isinstance(event, Evaluated):
        mark = "  (best, saved)" if event.improved else ""
        return f"step {event.step}: validation loss {event.val_loss:.4f}, accuracy {event.val_accuracy:.2%}{mark}"
    if isinstance(event, Finished):
        lines = [f"{event.reason} after {event.steps} steps in {event.seconds:.0f}s; best checkpoint: {event.checkpoint}"]
        if event.ranks > 1:
            lines.append(f"weights identical on all {event.ranks} ranks (checked)")
        if event.report is not None:
            lines += ["test report (best checkpoint, held-out test split):", event.report.format()]
        if event.by_source:
            lines += ["by source:", source_table(event.by_source)]
        return "\n".join(lines)
    return ""


if __name__ == "__main__":
    cli.run(main)
