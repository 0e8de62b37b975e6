"""The training loop. It never prints: it yields events, and the CLI, the app or a test decides how to show them.

    for event in train(TrainConfig(epochs=1), ModelConfig(hidden_size=128), out="checkpoints/mine.pt"):
        ...  # Preparing, Step, Evaluated, then one Finished

Batches group reviews of similar length and are right-padded only to the batch's longest review; the model
reads each review's output at its own last token, so padding costs little and never changes a prediction.

Started in a process group (`torchrun --nproc_per_node=N -m sentiment.train ...`), the same loop trains with
DistributedDataParallel: every rank draws the same batches of `batch_size` reviews and reads only its share of each
(`rank_share`), its loss weighted by that share, and the gradients are averaged (by DDP for the classifier, at every
step of language-model pre-training), so that N processes take the steps one process takes, up to float rounding
(with dropout off: each process draws masks for its part of a batch, not for the whole). Only rank 0 validates, tests
and writes checkpoints, and its stop decisions are shared with the others."""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from ..data.corpus import EncodedReviews, Stopped
from ..data.sets import data_name
from ..model.checkpoint import CHECKPOINT_DIR, Checkpoint, language_model_path, save_checkpoint, stored
from ..model.network import ModelConfig, SentimentNet, describe_device, pick_device
from ..model.scoring import TestReport, by_source, evaluate, score
from ..model.word_vectors import WordVectors
from .config import TrainConfig
from .distributed import check_distributed, check_replicas, prepare_in_turn, rank_and_world, rank_share, shared_flag
from .events import Evaluated, Finished, Preparing, Step
from .prepare import PreparedData, one_sentence_each, sentence_weights, word_vectors_for
from .pretraining import pretrain
from .steps import length_bucketed_batches, lr_schedule, train_step

TrainEvent = Preparing | Step | Evaluated | Finished


class _Fit:
    """The classifier's optimisation and what it keeps: the best (averaged) weights by validation loss."""

    def __init__(self, model: SentimentNet, config: TrainConfig, total_steps: int, world: int,
                 positive_weight: float = 1.0) -> None:
        self.model, self.config, self.positive_weight = model, config, positive_weight
        self.stepped = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = lr_schedule(self.optimizer, config.schedule, total_steps)
        self.scaler = torch.amp.GradScaler(model.device.type) if config.precision == "fp16" else None
        self.averaged = None
        if config.ema:
            ema = torch.optim.swa_utils.get_ema_multi_avg_fn(config.ema)
            self.averaged = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=ema)
            self.averaged.update_parameters(model)  # the initial weights are the first sample of the average
        self.kept = self.averaged.module if self.averaged else model  # the weights validated, saved and tested
        self.best_state: dict | None = None
        self.best_loss = math.inf
        self.evals_without_gain = 0

    def step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], share: float = 1.0) -> float:
        loss = train_step(self.stepped, self.optimizer, *batch, self.config.clip, self.config.precision, self.scaler,
                          self.positive_weight, share)
        self.scheduler.step()
        if self.averaged:
            self.averaged.update_parameters(self.model)
        return loss

    def validate(self, reviews: EncodedReviews) -> tuple[TestReport, bool]:
        """Score the kept weights; keep them when their loss is the best so far. (report, improved)."""
        report = evaluate(self.kept, reviews)
        improved = report.loss < self.best_loss
        if improved:
            self.best_loss, self.evals_without_gain = report.loss, 0
            self.keep()
        else:
            self.evals_without_gain += 1
        return report, improved

    def keep(self) -> None:
        self.best_state = stored(self.kept.state_dict())


def train(
    config: TrainConfig | None = None,
    model_config: ModelConfig | None = None,
    data: str | Path = "sample",
    out: str | Path = CHECKPOINT_DIR / "model.pt",
    stop: threading.Event | None = None,
) -> Iterator[TrainEvent]:
    """Train on `data` (a bundled data set's name, or a file), keep the checkpoint with the best validation loss at
    `out`, end with a test report (and one per source when `data` has several).

    Setting `stop` ends the run after the current batch; the best checkpoint so far is kept and tested. With
    `config.refit` nothing is validated: the run trains its epochs on the training and validation splits and keeps
    the last (averaged) weights.
    """
    config = (config or TrainConfig()).validate()
    stop = stop or threading.Event()
    # A gradient that vanishes over a long review reaches subnormal floats, which some x86 CPUs compute ~100 times
    # slower. Flushed to zero before this thread's first parallel work, its worker threads inherit the setting.
    torch.set_flush_denormal(True)
    started = time.perf_counter()
    rank, world = rank_and_world()
    check_distributed(config, world)

    yield Preparing(f"Reading and tokenizing {data_name(data)} …")
    try:
        prepared = prepare_in_turn(data, config, stop, rank, world)
        model_config = replace(model_config or ModelConfig(), vocab_size=len(prepared.vocab)).validate()
        vectors, model_config, said = word_vectors_for(config, prepared, model_config, stop if world == 1 else None)
    except Stopped:
        yield Finished(checkpoint=None, report=None, stopped=True,
                       reason="stopped while preparing the data: nothing was trained or saved", steps=0,
                       seconds=time.perf_counter() - started, ranks=world)
        return
    device = pick_device(config.device)
    how = "loaded from cache" if prepared.corpus.from_cache else "tokenized"
    yield Preparing(
        f"{how}: {prepared.corpus.report.summary()}; split {prepared.origin['train']:,} / {len(prepared.val):,} / "
        f"{len(prepared.test):,}{' (training on train + validation)' if config.refit else ''}; "
        f"vocabulary {len(prepared.vocab):,} tokens{said}; training on {describe_device(device)}"
    )

    run = _Run(config, model_config, prepared, Path(out), stop, rank, world, device, vectors)
    if config.pretrain_epochs:
        projection = yield from pretrain(run.model, run.reviews, config, run.rng, stop, world)
        if config.keep_language_model and projection is not None:
            run.keep_language_model(projection)
        if world > 1:  # before DDP would copy rank 0's weights over any difference
            check_replicas(run.model, world, "pre-training")
    run.start_fit()
    while run.reason == "finished" and run.step < run.total_steps and not shared_flag(stop.is_set(), world):
        yield from run.epoch()
    yield from run.finish(started)


class _Run:
    """One training run's model, data and progress: its epochs, then its test and checkpoint."""

    def __init__(self, config: TrainConfig, model_config: ModelConfig, prepared: PreparedData, out: Path,
                 stop: threading.Event, rank: int, world: int, device: torch.device,
                 vectors: WordVectors | None = None) -> None:
        self.config, self.model_config, self.prepared, self.out, self.stop = config, model_config, prepared, out, stop
        self.rank, self.world, self.main = rank, world, rank == 0
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.reviews = prepared.train
        self.sentences, self.sentence_owner = prepared.sentences, prepared.sentence_owner
        self.sentence_weights = (None if self.sentences is None
                                 else sentence_weights(self.sentences, prepared.vocab, config))
        self.model = SentimentNet(model_config).to(device)
        self.language_model: tuple[dict, dict] | None = None  # (weights, projection) as pre-training left them
        if vectors is not None:
            vectors.copy_into(self.model.embedding)
        if config.freeze_embedding:
            self.model.embedding.weight.requires_grad_(False)
        self.step, self.epochs_done, self.reviews_seen, self.train_seconds, self.reason = 0, 0, 0, 0.0, "finished"

    def start_fit(self) -> None:
        """The classifier's optimiser, schedule and kept weights, sized to the run's steps."""
        config, prepared = self.config, self.prepared
        owners = len(np.unique(self.sentence_owner)) if config.sentences and self.sentence_owner is not None else 0
        sentences = config.sentences * owners  # one sentence drawn from each review that has any, each time
        self.total_steps = math.ceil((len(self.reviews) + sentences) / config.batch_size) * config.epochs
        if config.max_steps:
            self.total_steps = min(self.total_steps, config.max_steps)
        positives = int(prepared.train.labels.sum())  # of the whole training split, so that every rank weighs alike
        weight = (len(prepared.train) - positives) / max(1, positives) if config.balance else 1.0
        self.fit = _Fit(self.model, config, self.total_steps, self.world, weight)
        self.model.train()

    def save(self, metrics: dict) -> None:
        config = {**asdict(self.config), "vectors": Path(self.config.vectors).name}  # not a path of this machine
        save_checkpoint(self.out, Checkpoint(model_config=self.model_config, train_config=config,
                                             vocab=self.prepared.vocab, state_dict=self.fit.best_state, metrics=metrics,
                                             data=self.prepared.origin))
        # Its language model goes beside it, in lm/ (not a classifier: its head is untrained, so no checkpoint list
        # offers it); one left by an earlier run of the same name would no longer match it.
        kept = language_model_path(self.out)
        if self.language_model is None:
            kept.unlink(missing_ok=True)
            return
        weights, projection = self.language_model
        save_checkpoint(kept, Checkpoint(model_config=self.model_config, train_config=config, vocab=self.prepared.vocab,
                                         state_dict=weights, metrics={}, data=self.prepared.origin,
                                         language_model={f"projection.{k}": v for k, v in projection.items()}))

    def keep_language_model(self, projection: torch.nn.Linear) -> None:
        """Hold the model as pre-training left it, with its output projection, until the checkpoint is saved."""
        self.language_model = (stored(self.model.state_dict()), stored(projection.state_dict()))

    def epoch(self) -> Iterator[TrainEvent]:
        """One pass over the training reviews and this epoch's sentences; validates where the config says."""
        config, fit = self.config, self.fit
        self.epochs_done += 1
        reviews = self.reviews
        for _ in range(config.sentences):
            reviews = reviews.extended(one_sentence_each(self.sentences, self.sentence_owner, self.rng,
                                                         self.sentence_weights))
        batches = list(rank_share(length_bucketed_batches(reviews.lengths, config.batch_size, self.rng), self.rank,
                                  self.world))
        for i, (whole, rows, counted) in enumerate(batches):
            if shared_flag(self.stop.is_set(), self.world):
                self.reason = "stopped"
                return
            tick = time.perf_counter()
            loss = fit.step(reviews.batch(rows), share=counted * len(rows) * self.world / len(whole))
            self.step += 1
            self.reviews_seen += len(whole)
            self.train_seconds += time.perf_counter() - tick
            if self.main:
                yield Step(phase="train", step=self.step, total_steps=self.total_steps, epoch=self.epochs_done,
                           train_loss=loss, lr=fit.scheduler.get_last_lr()[0],
                           reviews_per_s=self.reviews_seen / self.train_seconds,
                           eta_s=self.train_seconds / self.step * (self.total_steps - self.step))
            last_step = self.step >= self.total_steps
            if not config.refit and (last_step or i == len(batches) - 1
                                     or (config.eval_every and self.step % config.eval_every == 0)):
                yield from self.validate()
            if last_step or self.reason != "finished":
                return

    def validate(self) -> Iterator[Evaluated]:
        """Score the kept weights on the validation split (rank 0), save them when best, and stop early together."""
        fit = self.fit
        if self.main:
            report, improved = fit.validate(self.prepared.val)
            if improved:
                self.save({"step": self.step, "val_loss": report.loss, "val_accuracy": report.accuracy})
            yield Evaluated(step=self.step, epoch=self.epochs_done, val_loss=report.loss, val_accuracy=report.accuracy,
                            improved=improved)
        if shared_flag(bool(self.config.patience) and fit.evals_without_gain >= self.config.patience, self.world):
            self.reason = "early stop"

    def finish(self, started: float) -> Iterator[Finished]:
        """Check the replicas agree, test the best weights (rank 0) and save them with the test report."""
        reason = "stopped" if self.stop.is_set() else self.reason
        if self.world > 1:
            check_replicas(self.model, self.world)
        seconds = time.perf_counter() - started
        if not self.main:
            yield Finished(checkpoint=None, report=None, stopped=reason == "stopped", reason=reason, steps=self.step,
                           seconds=seconds, ranks=self.world)
            return
        if self.step == 0:
            yield Finished(checkpoint=None, report=None, stopped=True,
                           reason="stopped before the first training step: nothing was trained or saved", steps=0,
                           seconds=seconds, ranks=self.world)
            return
        fit, prepared = self.fit, self.prepared
        if fit.best_state is None:  # a refit, or stopped before the first validation: keep the weights as they are
            fit.keep()
        self.model.load_state_dict(fit.best_state)
        logits = score(self.model, prepared.test)
        report = TestReport.of(logits, prepared.test.labels)
        sources = by_source(prepared.corpus, prepared.test_rows, logits)
        self.save({"best_val_loss": fit.best_loss if fit.best_loss < math.inf else None, "test": asdict(report),
                   "steps": self.step,
                   **({"test_by_source": {name: asdict(r) for name, r in sources.items()}} if sources else {})})
        yield Finished(checkpoint=self.out, report=report, stopped=reason == "stopped", reason=reason, steps=self.step,
                       seconds=time.perf_counter() - started, ranks=self.world, by_source=sources)
