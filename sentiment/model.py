"""SentimentNet: embedding → recurrent layers (LSTM by default; GRU or plain tanh RNN to compare) → the last real
token's hidden state → dropout → linear → one logit."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence

from .preprocessing import PAD_ID

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}  # nn.RNN with its default tanh


class ConfigError(ValueError):
    """A hyper-parameter out of range, with a message meant for the person who set it."""


def check_range(name: str, value, low, high, integer: bool = True) -> None:
    """Raise ConfigError unless low <= value <= high (and a whole number when `integer`)."""
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
        raise ConfigError(f"{name} must be {kind} between {low} and {high}; got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}; got {value}")


@dataclass
class ModelConfig:
    vocab_size: int = 0  # set from the vocabulary when training starts
    embedding_dim: int = 400
    hidden_size: int = 512
    num_layers: int = 2
    dropout: float = 0.5  # between LSTM layers and before the output layer
    embedding_dropout: float = 0.0
    bidirectional: bool = False
    cell: str = "lstm"  # "lstm", "gru" or "rnn"
    # LSTM only: the forget gates' bias at initialization; None keeps PyTorch's (drawn around 0, a forget gate of
    # about 0.5). 1 (Gers et al. 2000; Jozefowicz et al. 2015) starts every cell keeping most of its memory: it
    # helps the shipped model and long memory, but a 2 × 512 LSTM at lr 0.005 then learns nothing in 60 steps.
    forget_bias: float | None = None
    # Learn the state (h0, c0) every review starts from instead of zeros. The reference pipeline gets one without
    # saying so: it left-pads with a learned padding embedding, read before every short review. At its configuration
    # that is worth 10 points of test accuracy after 72 steps (README, "The reference configuration").
    learned_state: bool = False

    def validate(self) -> ModelConfig:
        if self.cell not in CELLS:
            raise ConfigError(f"cell must be one of {', '.join(CELLS)}; got {self.cell!r}")
        check_range("vocab_size", self.vocab_size, 2, 5_000_000)
        check_range("embedding_dim", self.embedding_dim, 1, 4096)
        check_range("hidden_size", self.hidden_size, 1, 4096)
        check_range("num_layers", self.num_layers, 1, 8)
        check_range("dropout", self.dropout, 0.0, 0.95, integer=False)
        check_range("embedding_dropout", self.embedding_dropout, 0.0, 0.95, integer=False)
        if self.forget_bias is not None:
            check_range("forget_bias", self.forget_bias, -10.0, 10.0, integer=False)
        return self

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known}).validate()

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1


class SentimentNet(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=PAD_ID)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        self.rnn = CELLS[config.cell](
            config.embedding_dim,
            config.hidden_size,
            config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            bidirectional=config.bidirectional,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size * config.directions, 1)
        if config.learned_state:
            shape = (config.num_layers * config.directions, 1, config.hidden_size)  # nn.LSTM's (L * D, B, H)
            self.initial_h = nn.Parameter(torch.zeros(shape))
            self.initial_c = nn.Parameter(torch.zeros(shape)) if config.cell == "lstm" else None
        if config.cell == "lstm" and config.forget_bias is not None:
            H = config.hidden_size
            with torch.no_grad():
                for name, bias in self.rnn.named_parameters():
                    if name.startswith("bias_"):  # gates stacked i, f, g, o: the forget gate is the second quarter
                        bias[H : 2 * H] = config.forget_bias if name.startswith("bias_ih") else 0.0

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def initial_state(self, batch: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None:
        """What the recurrent module starts from: None (zeros), or the learned h0 ((h0, c0) for an LSTM), (L * D, B, H)."""
        if not self.config.learned_state:
            return None
        h = self.initial_h.expand(-1, batch, -1).contiguous()
        return (h, self.initial_c.expand(-1, batch, -1).contiguous()) if self.initial_c is not None else h

    def features(self, embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The review vector the head reads: (B, T, E) right-padded embeddings → (B, D)."""
        if self.config.bidirectional:
            # The backward direction must start at each review's own last token, not at the padding:
            # packing gives it that (cuDNN runs packed batches fast; on CPU it is the slower path).
            packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
            _, state = self.rnn(packed, self.initial_state(len(lengths)))
            h_n = state[0] if self.config.cell == "lstm" else state  # (L * 2, B, H)
            return torch.cat([h_n[-2], h_n[-1]], dim=-1)  # (B, 2H)
        # With right padding, the output at a review's last real token has not seen any padding yet,
        # so one unpacked pass over the batch is exact for every review in it.
        output, _ = self.rnn(embedded, self.initial_state(embedded.size(0)))  # (B, T, H)
        last = (lengths - 1).clamp(min=0).to(output.device)
        return output[torch.arange(output.size(0), device=output.device), last]  # (B, H)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (B, T) right-padded with PAD, lengths (B,) → logits (B,); the linear layer runs once a review."""
        embedded = self.embedding_dropout(self.embedding(ids))  # (B, T, E)
        return self.head(self.dropout(self.features(embedded, lengths))).squeeze(-1)  # (B,)


def pick_device(name: str = "auto") -> torch.device:
    """'auto' → CUDA when present, else CPU; 'cuda' without a GPU is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for, but no CUDA GPU is available here (use 'auto' or 'cpu')")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda'; got {name!r}")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA GPU: {torch.cuda.get_device_name(device)}"
    return f"CPU ({torch.get_num_threads()} threads)"


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode (dropout off) inside the block, back in the mode it was in after it."""
    was_training = model.training
    if was_training:  # eval() walks every submodule: skipped when there is nothing to switch
        model.eval()
    try:
        yield model
    finally:
        if was_training:
            model.train()
