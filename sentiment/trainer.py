"""The training loop. It never prints: it yields events, and the CLI, the app or a test decides how to show them.

    for event in train(TrainConfig(epochs=1), ModelConfig(hidden_size=128), out="checkpoints/mine.pt"):
        ...  # Preparing, Step, Evaluated, then one Finished

Batches group reviews of similar length and are right-padded only to the batch's longest review; the model
reads each review's output at its own last token, so padding costs little and never changes a prediction.

Started in a process group (`torchrun --nproc_per_node=N -m sentiment.train ...`), the same loop trains with
DistributedDataParallel: each rank reads its own shard of the training split and `batch_size` is split between
the ranks; only rank 0 validates, tests and writes checkpoints, and its stop decisions are shared with the others.
"""
from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import CHECKPOINT_DIR, Checkpoint, save_checkpoint
from .corpus import EncodedReviews, TokenizedCorpus, tokenize_corpus
from .data import BUNDLED_SAMPLE, SPLIT_SEED, split_indices
from .preprocessing import Vocab
from .model import (ConfigError, ModelConfig, SentimentNet, check_range, describe_device, evaluating,
                    pick_device)

SCHEDULES = ("constant", "cosine")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # autocast dtypes


@dataclass
class TrainConfig:
    lr: float = 0.005
    batch_size: int = 400
    epochs: int = 2
    clip: float = 5.0  # gradient-norm clipping; 0 turns it off
    weight_decay: float = 0.0
    schedule: str = "constant"  # learning rate: "constant" or "cosine" decay to 0 over the run
    eval_every: int = 20  # steps between validations (also at every epoch end); 0 = epoch ends only
    patience: int = 0  # stop after this many validations without a better loss; 0 = never stop early
    max_steps: int = 0  # 0 = no limit
    seed: int = 0
    max_len: int = 200  # tokens kept per review
    min_freq: int = 2  # tokens seen fewer times in the training split become _UNK
    max_vocab: int = 0  # 0 = no limit
    limit: int = 0  # reviews read from the data file; 0 = all
    device: str = "auto"
    precision: str = "fp32"  # "bf16" or "fp16" train under autocast (fp16 on CUDA only, with loss scaling)
    # Validate, keep and test an exponential moving average of the weights (decay per step; 0 = off): it smooths
    # the last steps' noise away, so the kept checkpoint depends less on where a validation happened to fall.
    ema: float = 0.0

    def validate(self) -> TrainConfig:
        check_range("lr", self.lr, 1e-7, 10.0, integer=False)
        check_range("batch_size", self.batch_size, 1, 20_000)
        check_range("epochs", self.epochs, 1, 1000)
        check_range("clip", self.clip, 0.0, 1e6, integer=False)
        check_range("weight_decay", self.weight_decay, 0.0, 10.0, integer=False)
        check_range("eval_every", self.eval_every, 0, 10_000_000)
        check_range("patience", self.patience, 0, 10_000)
        check_range("max_steps", self.max_steps, 0, 100_000_000)
        check_range("seed", self.seed, 0, 2**31 - 1)
        check_range("max_len", self.max_len, 1, 5000)
        check_range("min_freq", self.min_freq, 1, 1_000_000)
        check_range("max_vocab", self.max_vocab, 0, 5_000_000)
        check_range("limit", self.limit, 0, 1_000_000_000)
        check_range("ema", self.ema, 0.0, 0.99999, integer=False)
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        if self.precision == "fp16" and pick_device(self.device).type != "cuda":
            raise ConfigError("precision fp16 needs a CUDA GPU; on a CPU use fp32 or bf16")
        pick_device(self.device)
        return self

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Preparing:
    message: str


@dataclass(frozen=True)
class Step:
    step: int
    total_steps: int
    epoch: int
    train_loss: float
    lr: float
    reviews_per_s: float
    eta_s: float


@dataclass(frozen=True)
class Evaluated:
    step: int
    epoch: int
    val_loss: float
    val_accuracy: float
    improved: bool


@dataclass
class TestReport:
    """Scores on a labelled set; the confusion matrix rows are the true class (negative, positive)."""

    n: int
    loss: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    confusion: list[list[int]]

    def format(self) -> str:
        (tn, fp), (fn, tp) = self.confusion
        return "\n".join(
            [
                f"reviews    {self.n:,}",
                f"accuracy   {self.accuracy:.2%}",
                f"loss       {self.loss:.4f}",
                f"precision  {self.precision:.2%}   (positive class)",
                f"recall     {self.recall:.2%}",
                f"F1         {self.f1:.2%}",
                "confusion  true neg → predicted neg {:,} / pos {:,}".format(tn, fp),
                "           true pos → predicted neg {:,} / pos {:,}".format(fn, tp),
            ]
        )


@dataclass(frozen=True)
class Finished:
    checkpoint: Path | None
    report: TestReport | None
    stopped: bool
    reason: str
    steps: int
    seconds: float
    ranks: int = 1  # processes that trained together; with more than one, their weights were checked identical


TrainEvent = Preparing | Step | Evaluated | Finished


def length_bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, pool: int = 50) -> list[np.ndarray]:
    """Shuffled batches of reviews of similar length: shuffle, sort within pools of `pool` batches, cut, shuffle
    the batch order. Padding then adds a few percent instead of doubling the work."""
    order = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), batch_size * pool):
        chunk = order[start : start + batch_size * pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _binary_report(logits: torch.Tensor, labels: torch.Tensor) -> TestReport:
    loss = F.binary_cross_entropy_with_logits(logits, labels.float()).item() if len(labels) else float("nan")
    predicted = logits > 0
    truth = labels.bool()
    tp = int((predicted & truth).sum())
    fp = int((predicted & ~truth).sum())
    fn = int((~predicted & truth).sum())
    tn = len(labels) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return TestReport(len(labels), loss, (tp + tn) / max(1, len(labels)), precision, recall, f1, [[tn, fp], [fn, tp]])


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ids: torch.Tensor, lengths: torch.Tensor,
               labels: torch.Tensor, clip: float, precision: str = "fp32",
               scaler: torch.amp.GradScaler | None = None) -> float:
    """One optimisation step on a right-padded batch; returns the batch loss. `model` may be DDP-wrapped."""
    device = next(model.parameters()).device  # DDP has no .device
    dtype = PRECISIONS[precision]
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        logits = model(ids.to(device), lengths)  # (B,)
    loss = F.binary_cross_entropy_with_logits(logits.float(), labels.to(device).float())
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:  # fp16: scale the loss so small gradients survive, unscale before clipping
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return loss.item()


def _distributed() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless this process belongs to an initialised process group."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _shared_flag(flag: bool, world: int) -> bool:
    """True on every rank when it is true on any: all ranks stop at the same step."""
    if world == 1:
        return flag
    tensor = torch.tensor([int(flag)])
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
    return bool(tensor.item())


def _check_replicas(model: torch.nn.Module, world: int) -> None:
    """Raise unless every rank holds exactly the same weights (DDP keeps them so; this proves it did)."""
    digest = torch.stack([p.detach().double().sum() for p in model.parameters()]).cpu()  # (P,)
    gathered = [torch.empty_like(digest) for _ in range(world)]
    torch.distributed.all_gather(gathered, digest)
    if any(not torch.equal(gathered[0], other) for other in gathered[1:]):
        raise RuntimeError("distributed ranks ended with different weights")


@torch.no_grad()
def evaluate(model: SentimentNet, reviews: EncodedReviews, device: torch.device, batch_size: int = 512) -> TestReport:
    """Loss, accuracy, precision, recall, F1 and confusion matrix over labelled reviews, in length order."""
    order = np.argsort(reviews.lengths, kind="stable")
    logits = torch.empty(len(reviews))
    with evaluating(model):
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            ids, lengths, _ = reviews.batch(rows)
            logits[torch.from_numpy(rows)] = model(ids.to(device), lengths).float().cpu()
    return _binary_report(logits, torch.from_numpy(reviews.labels))


@dataclass
class PreparedData:
    corpus: TokenizedCorpus
    train: EncodedReviews
    val: EncodedReviews
    test: EncodedReviews
    vocab: Vocab
    origin: dict


def prepare_data(data: str | Path, config: TrainConfig) -> PreparedData:
    """Read (or load from cache), split 80/10/10, build the vocabulary on the training part only."""
    corpus = tokenize_corpus(data, limit=config.limit or None)
    splits = split_indices(len(corpus))
    vocab = corpus.build_vocab(splits.train, config.min_freq, config.max_vocab or None)
    path = Path(data)
    origin = {
        "source": "bundled Amazon sample" if path.resolve() == BUNDLED_SAMPLE.resolve() else path.name,
        "format": corpus.report.format,
        "reviews": len(corpus),
        "skipped_lines": corpus.report.skipped,
        "split_seed": SPLIT_SEED,
        "limit": config.limit,
        "train": len(splits.train),
        "val": len(splits.val),
        "test": len(splits.test),
    }
    return PreparedData(
        corpus,
        corpus.encode(vocab, splits.train, config.max_len),
        corpus.encode(vocab, splits.val, config.max_len),
        corpus.encode(vocab, splits.test, config.max_len),
        vocab,
        origin,
    )


def train(
    config: TrainConfig | None = None,
    model_config: ModelConfig | None = None,
    data: str | Path = BUNDLED_SAMPLE,
    out: str | Path = CHECKPOINT_DIR / "model.pt",
    stop: threading.Event | None = None,
) -> Iterator[TrainEvent]:
    """Train on `data`, keep the checkpoint with the best validation loss at `out`, end with a test report.

    Setting `stop` ends the run after the current batch; the best checkpoint so far is kept and tested.
    """
    config = (config or TrainConfig()).validate()
    model_config = model_config or ModelConfig()
    stop = stop or threading.Event()
    out = Path(out)
    device = pick_device(config.device)
    started = time.perf_counter()

    rank, world = _distributed()
    main = rank == 0
    if world > 1 and config.batch_size < world:
        raise ConfigError(f"batch_size ({config.batch_size}) is split between {world} ranks: make it at least {world}")

    yield Preparing(f"Reading and tokenizing {Path(data).name} …")
    if world > 1 and not main:
        torch.distributed.barrier()  # rank 0 tokenizes and writes the cache first; the others then load it
    prepared = prepare_data(data, config)
    if world > 1 and main:
        torch.distributed.barrier()
    model_config = replace(model_config, vocab_size=len(prepared.vocab)).validate()
    how = "loaded from cache" if prepared.corpus.from_cache else "tokenized"
    yield Preparing(
        f"{how}: {prepared.corpus.report.summary()}; split {len(prepared.train):,} / {len(prepared.val):,} / "
        f"{len(prepared.test):,}; vocabulary {len(prepared.vocab):,} tokens; training on {describe_device(device)}"
    )

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train_reviews, batch_size = prepared.train, config.batch_size
    if world > 1:  # equal shards, so every rank takes the same number of steps
        per_rank = len(train_reviews) // world
        shard = rng.permutation(len(train_reviews))[: per_rank * world].reshape(world, per_rank)[rank]
        train_reviews, batch_size = train_reviews.subset(np.sort(shard)), config.batch_size // world
        rng = np.random.default_rng([config.seed, rank])
    model = SentimentNet(model_config).to(device)
    stepped = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler(device.type) if config.precision == "fp16" else None
    averaged = None
    if config.ema:
        ema = torch.optim.swa_utils.get_ema_multi_avg_fn(config.ema)
        averaged = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=ema)
        averaged.update_parameters(model)  # the initial weights are the first sample of the average
    kept = averaged.module if averaged else model  # the weights that are validated, saved and tested
    steps_per_epoch = math.ceil(len(train_reviews) / batch_size)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    if config.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)))
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)

    def make_checkpoint(metrics: dict) -> Checkpoint:
        return Checkpoint(model_config, asdict(config), prepared.vocab, best_state, metrics, prepared.origin)

    best_state: dict | None = None
    best_loss = math.inf
    evals_without_gain = 0
    step = 0
    reviews_seen = 0
    train_seconds = 0.0
    reason = "finished"

    def validate_and_keep(epoch: int) -> Evaluated:
        """Rank 0 only."""
        nonlocal best_state, best_loss, evals_without_gain
        report = evaluate(kept, prepared.val, device)
        improved = report.loss < best_loss
        if improved:
            best_loss, evals_without_gain = report.loss, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in kept.state_dict().items()})
            save_checkpoint(out, make_checkpoint({"step": step, "val_loss": report.loss, "val_accuracy": report.accuracy}))
        else:
            evals_without_gain += 1
        return Evaluated(step, epoch, report.loss, report.accuracy, improved)

    model.train()
    epoch = 1
    while reason == "finished" and step < total_steps:
        batches = length_bucketed_batches(train_reviews.lengths, batch_size, rng)
        for i, rows in enumerate(batches):
            if _shared_flag(stop.is_set(), world):
                reason = "stopped"
                break
            tick = time.perf_counter()
            loss = train_step(stepped, optimizer, *train_reviews.batch(rows), config.clip, config.precision, scaler)
            scheduler.step()
            if averaged:
                averaged.update_parameters(model)
            step += 1
            reviews_seen += len(rows) * world
            train_seconds += time.perf_counter() - tick
            eta = train_seconds / step * (total_steps - step)
            if main:
                yield Step(step, total_steps, epoch, loss, scheduler.get_last_lr()[0], reviews_seen / train_seconds, eta)

            last_step = step >= total_steps
            if last_step or i == len(batches) - 1 or (config.eval_every and step % config.eval_every == 0):
                if main:
                    yield validate_and_keep(epoch)
                if _shared_flag(bool(config.patience) and evals_without_gain >= config.patience, world):
                    reason = "early stop"
            if last_step or reason != "finished":
                break
        epoch += 1

    if world > 1:
        _check_replicas(model, world)
    if not main:
        yield Finished(None, None, reason == "stopped", reason, step, time.perf_counter() - started, world)
        return
    if best_state is None:  # stopped before the first validation: keep what there is
        yield validate_and_keep(epoch)
    model.load_state_dict(best_state)
    report = evaluate(model, prepared.test, device)
    save_checkpoint(out, make_checkpoint({"best_val_loss": best_loss, "test": asdict(report), "steps": step}))
    yield Finished(out, report, reason == "stopped", reason, step, time.perf_counter() - started, world)
