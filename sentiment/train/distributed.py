"""Beyond one process: every rank takes the same steps, reading its share of each batch."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..config import ConfigError
from .config import TrainConfig
from .prepare import PreparedData, prepare_data


def rank_and_world() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless this process belongs to an initialised process group."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def shared_flag(flag: bool, world: int) -> bool:
    """True on every rank when it is true on any: all ranks stop at the same step."""
    if world == 1:
        return flag
    tensor = torch.tensor([int(flag)])
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
    return bool(tensor.item())


def rank_share(batches: list[np.ndarray], rank: int, world: int) -> Iterator[tuple[np.ndarray, np.ndarray, bool]]:
    """For each batch (every rank drew the same ones): the whole batch, the rows this rank reads (rows rank,
    rank + world, rank + 2 world, …) and whether they count. A rank left without a row by a batch smaller than the
    ranks reads the batch's first row and does not count it: it must still take part in the step."""
    for whole in batches:
        mine = whole[rank::world]
        yield (whole, mine, True) if len(mine) else (whole, whole[:1], False)


def average_gradients(parameters: list[torch.nn.Parameter], world: int) -> None:
    """Every rank's gradients replaced by their mean over the ranks (what DDP does for the classifier)."""
    for p in parameters:
        if p.requires_grad:
            if p.grad is None:  # every rank must take part in every reduction
                p.grad = torch.zeros_like(p)
            torch.distributed.all_reduce(p.grad)
            p.grad /= world


def check_replicas(model: torch.nn.Module, world: int, after: str = "training") -> None:
    """Raise unless every rank holds exactly the same weights (DDP, and pre-training's averaged gradients, keep them
    so; this proves it did)."""
    digest = torch.stack([p.detach().double().sum() for p in model.parameters()]).cpu()  # (P,)
    gathered = [torch.empty_like(digest) for _ in range(world)]
    torch.distributed.all_gather(gathered, digest)
    if any(not torch.equal(gathered[0], other) for other in gathered[1:]):
        raise RuntimeError(f"distributed ranks ended {after} with different weights")


def check_distributed(config: TrainConfig, world: int) -> None:
    """ConfigError for the settings a run split between `world` processes cannot honour."""
    if world > 1 and config.batch_size < world:
        raise ConfigError(f"batch_size ({config.batch_size}) is split between {world} ranks: make it at least {world}")


def prepare_in_turn(data: str | Path, config: TrainConfig, stop: threading.Event, rank: int, world: int
                     ) -> PreparedData:
    """`prepare_data`, rank 0 first: it tokenizes and writes the cache, which the other ranks then load."""
    if world > 1 and rank != 0:
        torch.distributed.barrier()
    prepared = prepare_data(data, config, stop)
    if world > 1 and rank == 0:
        torch.distributed.barrier()
    return prepared
