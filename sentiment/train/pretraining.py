"""Language-model pre-training (ULMFiT): predict the next token before the classifier trains."""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Generator

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ConfigError
from ..data.corpus import EncodedReviews
from ..data.preprocessing import PAD_ID, UNK_ID
from ..model.network import ModelConfig, SentimentNet
from .config import TrainConfig
from .distributed import average_gradients, rank_share, shared_flag
from .events import Step
from .steps import length_bucketed_batches, lr_schedule


def _steps(texts: int, config: TrainConfig) -> int:
    """Pre-training's steps: its epochs' batches, at most `max_steps` (which caps the classifier's again)."""
    steps = math.ceil(texts / config.batch_size) * config.pretrain_epochs
    return min(steps, config.max_steps) if config.max_steps else steps


def _check_pretrainable(config: ModelConfig) -> None:
    if config.bidirectional and config.num_layers > 1:
        raise ConfigError("pre-training a bidirectional model needs num_layers 1: a second layer's forward direction "
                          "would read the first layer's backward states, which have seen the tokens it must predict")


def pretrain(model: SentimentNet, reviews: EncodedReviews, config: TrainConfig, rng: np.random.Generator,
             stop: threading.Event, world: int = 1) -> Generator[Step, None, torch.nn.Linear]:
    """Language-model pre-training of the embedding and the recurrent layers on the reviews' text: each forward state
    predicts the next token and, in a bidirectional layer, each backward state the one before. A projection to the
    embedding size and the embedding itself make the output layer (tied weights, Press & Wolf 2017); it is dropped
    afterwards (`keep_language_model` keeps it), and the classifier's head is not touched. Under `world` > 1 processes
    each reads its share of every batch (`rank_share`) and their gradients are averaged at every step: the steps one
    process would take. Returns the projection, or None when stopped before the end."""
    c = model.config
    _check_pretrainable(c)
    H, vocab_out = c.hidden_size, model.lm_outputs
    # A one-token text (a title such as "Awesome") has no next token to predict: a batch of them alone would average
    # a loss over nothing.
    reviews = reviews.subset(np.flatnonzero(reviews.lengths > 1))
    rank = torch.distributed.get_rank() if world > 1 else 0
    projection = torch.nn.Linear(H, c.embedding_dim).to(model.device)
    parameters = [p for name, p in model.named_parameters() if not name.startswith("head.")]
    optimizer = torch.optim.AdamW([*parameters, *projection.parameters()], lr=config.lr, weight_decay=config.weight_decay)
    total_steps = _steps(len(reviews), config)
    scheduler = lr_schedule(optimizer, config.schedule, total_steps)

    def next_token_loss(states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = model.next_token_logits(model.dropout(states), projection)  # (B, T - 1, V')
        return F.cross_entropy(logits.reshape(-1, vocab_out), targets.reshape(-1), ignore_index=PAD_ID)

    step, read, seconds = 0, 0, 0.0
    model.train()
    for epoch in range(1, config.pretrain_epochs + 1):
        batches = length_bucketed_batches(reviews.lengths, config.batch_size, rng)
        for whole, rows, counted in rank_share(batches, rank, world):
            if shared_flag(stop.is_set(), world):
                return None
            tick = time.perf_counter()
            # Each text predicts its tokens after the first: this rank's share of the batch's predictions weighs its
            # mean loss, so that the ranks' averaged gradient is the whole batch's.
            share = counted * (reviews.lengths[rows] - 1).sum() * world / (reviews.lengths[whole] - 1).sum()
            ids, lengths, _ = reviews.batch(rows)
            ids = ids.to(model.device)
            states = model.run_layers(model.embed(ids), lengths)[-1]  # (B, T, D*H)
            targets = torch.where(ids < vocab_out, ids, UNK_ID)  # (B, T); _PAD (0) is ignored
            pairs = [(states[:, :-1, :H], targets[:, 1:])]  # the state after token t predicts token t+1
            if c.bidirectional:  # the backward state at token t has read t..end: it predicts token t-1
                real = torch.arange(ids.size(1), device=ids.device)[None, 1:] < lengths.to(ids.device)[:, None]
                pairs.append((states[:, 1:, H:], targets[:, :-1].masked_fill(~real, PAD_ID)))
            loss = sum(next_token_loss(h, y) for h, y in pairs) / len(pairs)
            optimizer.zero_grad(set_to_none=True)
            (loss * share).backward()
            if world > 1:
                average_gradients([*parameters, *projection.parameters()], world)
            if config.clip:
                torch.nn.utils.clip_grad_norm_(parameters, config.clip)
            optimizer.step()
            scheduler.step()
            step, read, seconds = step + 1, read + len(whole), seconds + time.perf_counter() - tick
            yield Step(phase="pretrain", step=step, total_steps=total_steps, epoch=epoch, train_loss=loss.item(),
                       lr=scheduler.get_last_lr()[0], reviews_per_s=read / seconds,
                       eta_s=seconds / step * (total_steps - step))
            if step == total_steps:  # the last epoch's end, or max_steps
                return projection
    return projection
