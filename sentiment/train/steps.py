"""One optimisation step, the length-bucketed batches it reads, and the learning-rate schedule."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .config import PRECISIONS


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


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ids: torch.Tensor, lengths: torch.Tensor,
               labels: torch.Tensor, clip: float, precision: str = "fp32",
               scaler: torch.amp.GradScaler | None = None, positive_weight: float = 1.0, share: float = 1.0) -> float:
    """One optimisation step on a right-padded batch; returns the batch loss. `model` may be DDP-wrapped.
    `positive_weight` scales the positive reviews' loss (the negatives' is 1); `share` weighs the loss of a rank's
    part of a batch split between ranks (its rows × ranks / the batch's rows), whose gradients DDP averages."""
    device = next(model.parameters()).device  # DDP has no .device
    dtype = PRECISIONS[precision]
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        logits = model(ids.to(device), lengths)  # (B,)
    weight = None if positive_weight == 1.0 else torch.tensor(positive_weight, device=device)
    loss = F.binary_cross_entropy_with_logits(logits.float(), labels.to(device).float(), pos_weight=weight)
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:  # fp16: scale the loss so small gradients survive, unscale before clipping
        scaler.scale(loss * share).backward()
        scaler.unscale_(optimizer)
    else:
        (loss * share).backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return loss.item()


def lr_schedule(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    if schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
