"""SentimentNet: embedding → recurrent layers (an LSTM by default; a GRU or a plain tanh RNN to compare) → what the
head reads of the review → dropout → linear → one logit.

The model owns its computation in four steps. `forward` chains them; the gate trace, the token effects and the
Memory tab call them one by one, so nothing rebuilds the forward pass elsewhere:

    x = model.embed(ids)                              # (B, T, E)     ids right-padded with _PAD
    outputs = model.run_layers(x, lengths)            # [(B, T, D*H)] every layer's hidden states, bottom first
                                                      #               (with a Clamp: some units held fixed)
    features = model.readout(outputs[-1], lengths)   # (B, F)        the review as one vector
    logits = model.classify(features)                 # (B,)

A forward direction's state at a review's last real token has not read any of the padding after it. The backward
direction reads each review from its own last token (the review reversed within its length), so padding never
changes a prediction, and no packed sequences are needed: on a CPU they are several times slower.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from types import MappingProxyType

import torch
import torch.nn as nn

from ..config import ConfigError, check_settings, setting
from ..data.preprocessing import PAD_ID

CELLS = MappingProxyType({"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN})  # nn.RNN with its default tanh
LM_OUTPUTS = 2048  # language-model pre-training predicts the most frequent tokens; rarer ones are one class, _UNK
# How the head reads the review, in words a learner reads on the Predict tab.
READOUTS = {
    "last": "the hidden state after the last token (the tutorial's many-to-one readout)",
    "pool": "the hidden state after the last token, beside the largest and the average value each unit took over the "
            "whole review (concat pooling)",
}


@dataclass
class ModelConfig:
    vocab_size: int = setting(0, "vocabulary size", "set from the vocabulary when training starts", low=2,
                              high=5_000_000)
    cell: str = setting("lstm", "cell type", "LSTM (the tutorial's), GRU (3 gates) or a plain tanh RNN (no gates)",
                        choices=tuple(CELLS), group="basic")
    hidden_size: int = setting(512, "hidden size", "units in each recurrent layer: its memory's width", low=1,
                               high=4096, group="basic", public=256)
    num_layers: int = setting(2, "layers", "recurrent layers stacked; each reads the one below", low=1, high=8,
                              group="basic", public=2)
    embedding_dim: int = setting(400, "embedding size", "the length of each token's vector", low=1, high=4096,
                                 group="model", public=256)
    readout: str = setting("last", "readout", "last: the state after the last token; pool: with the max and mean too",
                           choices=tuple(READOUTS), group="model")
    dropout: float = setting(0.5, "dropout", "share of values zeroed while training, between layers and before the head",
                             low=0.0, high=0.95, group="model")
    embedding_dropout: float = setting(0.0, "embedding dropout", "share of token-vector values zeroed while training",
                                       low=0.0, high=0.95, group="model")
    # None keeps PyTorch's (drawn around 0, a forget gate of about 0.5). 1 (Gers et al. 2000; Jozefowicz et al.
    # 2015) starts every cell keeping most of its memory: it helps the shipped model and long memory, but a 2 × 512
    # LSTM at lr 0.005 then learns nothing in 60 steps.
    forget_bias: float | None = setting(None, "forget-gate bias at start",
                                        "LSTM only; 1 keeps memory from the start; empty: PyTorch's", low=-10.0,
                                        high=10.0, group="model")
    bidirectional: bool = setting(False, "bidirectional", "a second cell reads each review right to left",
                                  group="switches", public=False)
    # The reference pipeline gets one without saying so: it left-pads with a learned padding embedding, read before
    # every short review. At its configuration that is worth 10 points of test accuracy after 72 steps
    # (`python -m sentiment.bench accuracy`).
    learned_state: bool = setting(False, "learn the start state", "learn h0 (and c0) instead of zeros",
                                  group="switches")

    def validate(self, vocab_known: bool = True) -> ModelConfig:
        """Self, every setting checked; without `vocab_known`, the settings a person sets before a run, whose
        vocabulary (and with it vocab_size) is read from its data only once it starts."""
        check_settings(self, skip=() if vocab_known else ("vocab_size",))
        return self

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known}).validate()

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def feature_size(self) -> int:
        """Length of the vector the head reads: D*H per readout part (last; last, max and mean)."""
        return self.hidden_size * self.directions * (3 if self.readout == "pool" else 1)


@dataclass(frozen=True)
class Clamp:
    """Hold some units of one layer and direction at fixed values at every step: the next step reads the held value
    as its own past, and the layers above and the head read it too (the cell state c runs on). Ablation holds a unit
    at its mean over a corpus; steering holds it where a person chooses."""

    layer: int
    reverse: bool
    values: torch.Tensor  # (H,) the value each unit is held at; NaN where a unit runs free

    def apply(self, h: torch.Tensor) -> torch.Tensor:
        """(B, H) states → the same with the held units replaced."""
        values = self.values.to(h.device, h.dtype).expand_as(h)
        return torch.where(torch.isnan(values), h, values)


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, ...) → each row's first `lengths[b]` steps in reverse order, the padding after them left in place.
    Its own inverse: the backward direction reads a reversed review forwards, then its outputs are put back."""
    steps = torch.arange(x.size(1), device=x.device)  # (T,)
    last = lengths.to(x.device)[:, None] - 1  # (B, 1)
    index = torch.where(steps <= last, last - steps, steps)  # (B, T)
    return x.gather(1, index.view(*index.shape, *[1] * (x.dim() - 2)).expand_as(x))


class SentimentNet(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        H, D = config.hidden_size, config.directions
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=PAD_ID)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        # The tutorial's module holds the weights (weight_ih_l0, weight_hh_l0_reverse, ...). `run_layers` runs it a
        # layer and a direction at a time, which is what gives the trace every layer's states; dropout between
        # layers is therefore `layer_dropout`, not the module's own.
        self.rnn = CELLS[config.cell](config.embedding_dim, H, config.num_layers, batch_first=True,
                                      bidirectional=config.bidirectional)
        self.layer_dropout = nn.Dropout(config.dropout if config.num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.feature_size, 1)
        # For every layer and direction, a one-layer module that holds that layer's own weights: the same Parameter
        # objects as `rnn` (built on the meta device, then given them), so training, loading and .to() reach both.
        # In a tuple they are not submodules: the state_dict names each weight once, as `rnn` does.
        self.layer_modules = tuple(tuple(self._one_layer(k, bool(d)) for d in range(D)) for k in range(config.num_layers))
        if config.learned_state:
            shape = (config.num_layers * D, 1, H)  # nn.LSTM's (L * D, B, H)
            self.initial_h = nn.Parameter(torch.zeros(shape))
            self.initial_c = nn.Parameter(torch.zeros(shape)) if config.cell == "lstm" else None
        if config.cell == "lstm" and config.forget_bias is not None:
            with torch.no_grad():
                for name, bias in self.rnn.named_parameters():
                    if name.startswith("bias_"):  # gates stacked i, f, g, o: the forget gate is the second quarter
                        bias[H : 2 * H] = config.forget_bias if name.startswith("bias_ih") else 0.0

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    # ------------------------------------------------------------ the four steps

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids → (B, T, E) token vectors (embedding dropout while training)."""
        return self.embedding_dropout(self.embedding(ids))

    def run_layers(self, x: torch.Tensor, lengths: torch.Tensor, clamp: Clamp | None = None) -> list[torch.Tensor]:
        """(B, T, E) right-padded inputs → every layer's hidden states, bottom layer first, (B, T, D*H) each: for a
        bidirectional model the forward direction's H units, then the backward direction's."""
        outputs = []
        for k in range(self.config.num_layers):
            if k:
                x = self.layer_dropout(x)

            def held(reverse: bool) -> Clamp | None:
                return clamp if clamp is not None and (clamp.layer, clamp.reverse) == (k, reverse) else None

            directions = [self.run_direction(k, False, x, held(False))]
            if self.config.bidirectional:
                backward = self.run_direction(k, True, reverse_within(x, lengths), held(True))
                directions.append(reverse_within(backward, lengths))
            x = torch.cat(directions, dim=-1)  # (B, T, D*H)
            outputs.append(x)
        return outputs

    def readout(self, top: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The top layer's states (B, T, D*H) → the features the head reads, (B, F): see READOUTS."""
        B, T, DH = top.shape
        lengths = lengths.to(top.device)
        last = top[torch.arange(B, device=top.device), lengths - 1]  # (B, D*H) after the last real token
        if self.config.bidirectional:  # the backward direction has read the whole review when it reaches token 0
            H = self.config.hidden_size
            last = torch.cat([last[:, :H], top[:, 0, H:]], dim=-1)
        if self.config.readout == "last":
            return last
        real = (torch.arange(T, device=top.device)[None, :] < lengths[:, None])[..., None]  # (B, T, 1)
        largest = top.masked_fill(~real, float("-inf")).amax(dim=1)  # (B, D*H)
        average = (top * real).sum(dim=1) / lengths[:, None]  # (B, D*H)
        return torch.cat([last, largest, average], dim=-1)  # (B, 3*D*H)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """(B, F) → (B,) logits: P(positive) = sigmoid(logit)."""
        return self.head(self.dropout(features)).squeeze(-1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, clamp: Clamp | None = None) -> torch.Tensor:
        """ids (B, T) right-padded with _PAD, lengths (B,) → logits (B,); the linear layer runs once a review."""
        return self.classify(self.readout(self.run_layers(self.embed(ids), lengths, clamp)[-1], lengths))

    # ------------------------------------------------------------ the language model of pre-training

    @property
    def lm_outputs(self) -> int:
        """How many tokens, the most frequent first, the language model predicts."""
        return min(LM_OUTPUTS, self.config.vocab_size)

    def next_token_logits(self, states: torch.Tensor, projection: nn.Linear) -> torch.Tensor:
        """(..., H) forward states → (..., V') logits of the next token among the first `lm_outputs`: the projection
        to the embedding size, then the embedding itself as the output layer (tied weights, Press & Wolf 2017)."""
        return projection(states) @ self.embedding.weight[: self.lm_outputs].T

    # ------------------------------------------------------------ what the inspection reads

    def layer_parameters(self, layer: int, reverse: bool = False) -> dict[str, torch.Tensor]:
        """One layer's weights in one direction, named as a one-layer module names them: weight_ih_l0 (kH, in),
        weight_hh_l0 (kH, H), bias_ih_l0 and bias_hh_l0 (kH,), with k gates stacked (LSTM i, f, g, o; GRU r, z, n)."""
        suffix = f"_l{layer}" + ("_reverse" if reverse else "")
        return {f"{name}_l0": getattr(self.rnn, name + suffix) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}

    def start_state(self, layer: int, reverse: bool, batch: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None:
        """What one layer and direction starts from, (1, B, H) (h, or (h, c) for an LSTM): None for zeros, unless
        the start state is learned."""
        if not self.config.learned_state:
            return None
        row = layer * self.config.directions + int(reverse)  # nn.LSTM's order of (h0, c0) rows
        h = self.initial_h[row : row + 1].expand(-1, batch, -1).contiguous()
        return (h, self.initial_c[row : row + 1].expand(-1, batch, -1).contiguous()) if self.initial_c is not None else h

    def run_direction(self, layer: int, reverse: bool, x: torch.Tensor, clamp: Clamp | None = None) -> torch.Tensor:
        """One layer and direction over inputs already in its reading order: (B, T, in) → (B, T, H). With a clamp,
        the same module reads one step at a time and the held units are set after each step."""
        module = self.layer_modules[layer][int(reverse)]
        state = self.start_state(layer, reverse, x.size(0))
        if clamp is None:
            return module(x, state)[0]
        steps = []
        for t in range(x.size(1)):
            _, state = module(x[:, t : t + 1], state)  # state (1, B, H), or (h, c) for an LSTM
            h = clamp.apply((state[0] if isinstance(state, tuple) else state)[0])  # (B, H)
            state = (h[None], state[1]) if isinstance(state, tuple) else h[None]
            steps.append(h)
        return torch.stack(steps, dim=1)  # (B, T, H)

    def _one_layer(self, layer: int, reverse: bool) -> nn.RNNBase:
        inputs = self.config.embedding_dim if layer == 0 else self.config.hidden_size * self.config.directions
        module = CELLS[self.config.cell](inputs, self.config.hidden_size, 1, batch_first=True, device="meta")
        for name, weight in self.layer_parameters(layer, reverse).items():
            setattr(module, name, weight)
        return module

    def prefix_readout(self, states: torch.Tensor, last: torch.Tensor | None = None) -> torch.Tensor:
        """For one review of a unidirectional model, its top layer's states (T, H) → (T, F): the features the head
        would read had the review ended after each token. With `last` (T, H), prefix t ends in last[t] instead of
        states[t]: the same history, another final state (a token read differently)."""
        if self.config.bidirectional:
            raise ValueError("a bidirectional model reads every token from both ends: re-score each prefix instead")
        last = states if last is None else last
        if self.config.readout == "last":
            return last
        before = torch.cat([torch.full_like(states[:1], float("-inf")), states[:-1].cummax(dim=0).values])  # (T, H)
        total = torch.cat([torch.zeros_like(states[:1]), states[:-1].cumsum(dim=0)]) + last
        count = torch.arange(1, len(states) + 1, device=states.device)[:, None]
        return torch.cat([last, torch.maximum(before, last), total / count], dim=-1)  # (T, 3H)

    def unit_contributions(self, features: torch.Tensor) -> torch.Tensor:
        """(F,) features of one review → (D*H,) each top-layer unit's share of the logit (its weights times its
        features, summed over the readout's parts); their sum plus the head's bias is the logit."""
        parts = features.view(-1, self.config.hidden_size * self.config.directions)  # (parts, D*H)
        return (self.head.weight.view_as(parts) * parts).sum(dim=0)


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
