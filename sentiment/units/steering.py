"""Steer a unit: hold it while the classifier reads, or while the language model writes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import ConfigError
from ..data.preprocessing import PAD_ID, UNK_ID, encode_review
from ..explain.gates import prefix_probabilities, trace_gates
from ..model.checkpoint import language_model_path
from ..model.network import Clamp, evaluating
from ..model.predictor import Predictor
from .atlas import check_unit


@dataclass
class Steering:
    tokens: list[str]
    unit: int
    value: float | None  # None: no clamp
    probability: float  # the model as it is (equal to the Predict tab's)
    trajectory: np.ndarray  # (T,) P(positive) after each token
    unit_values: np.ndarray  # (T,) the unit's own h, free
    clamped_probability: float
    clamped_trajectory: np.ndarray  # (T,); equal to `trajectory` with no clamp


@torch.inference_mode()
def steer(predictor: Predictor, layer: int, direction: str, review: str, unit: object, value: float | None
          ) -> Steering:
    """Read the review with the unit's h held at `value` at every step (None: free), beside the free reading."""
    model, H = predictor.model, predictor.model.config.hidden_size
    unit = check_unit(unit, H)
    tokens, ids = encode_review(review, predictor.vocab, predictor.max_len)
    if not ids:
        raise ConfigError("Nothing to read in this review: it has no words, only spaces or control characters.")
    trace = trace_gates(model, ids, tokens)
    free = trace.layer(layer, direction).hidden_state[:, unit]
    if value is None:
        return Steering(tokens=tokens, unit=unit, value=None, probability=trace.probability,
                        trajectory=trace.trajectory, unit_values=free, clamped_probability=trace.probability,
                        clamped_trajectory=trace.trajectory)
    values = torch.full((H,), float("nan"))
    values[unit] = value
    clamp = Clamp(layer, direction == "backward", values)
    ids_t = torch.as_tensor(ids, device=model.device)
    with evaluating(model):
        if model.config.bidirectional:
            trajectory = prefix_probabilities(model, ids_t, clamp)
        else:
            top = model.run_layers(model.embed(ids_t[None]), torch.tensor([len(ids)]), clamp)[-1][0]  # (T, H)
            trajectory = torch.sigmoid(model.classify(model.prefix_readout(top))).float().cpu().numpy()
    return Steering(tokens=tokens, unit=unit, value=float(value), probability=trace.probability,
                    trajectory=trace.trajectory, unit_values=free, clamped_probability=float(trajectory[-1]),
                    clamped_trajectory=trajectory)


MAX_GENERATED = 60  # tokens a generation may add


@dataclass
class Generated:
    prompt: list[str]
    value: float  # the unit was held at +value, then at -value
    free: list[str]  # the model as it is
    high: list[str]
    low: list[str]


@torch.inference_mode()
def sample_tokens(predictor: Predictor, ids: list[int], count: int, seed: int, clamp: Clamp | None = None
                  ) -> list[int]:
    """`count` token ids drawn one at a time from the language model after `ids`: the model's own layers (with the
    clamp), its forward top-layer state, the pre-training's projection and the tied embedding. _PAD and _UNK are
    never drawn; the same seed draws the same text."""
    model, H = predictor.model, predictor.model.config.hidden_size
    projection = predictor.checkpoint.projection(model.device)
    generator = torch.Generator().manual_seed(seed)
    ids = list(ids)
    with evaluating(model):
        for _ in range(count):
            x = torch.as_tensor(ids, device=model.device)[None]
            top = model.run_layers(model.embed(x), torch.tensor([len(ids)]), clamp)[-1][0, -1, :H]  # (H,) forward
            logits = model.next_token_logits(top, projection).float().cpu()  # (V',)
            logits[[PAD_ID, UNK_ID]] = float("-inf")
            ids.append(int(torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)))
    return ids[len(ids) - count :]


def language_model_file(checkpoint: Path) -> Path:
    """The language model kept beside a checkpoint (`language_model_path`); a sentence when there is none."""
    path = language_model_path(checkpoint)
    if not path.is_file():
        raise ConfigError(f"{checkpoint.name} has no language model kept beside it ({path.parent.name}/{path.name}): "
                          "train it with language-model pre-training and 'keep the language model' "
                          "(--keep-language-model) to generate text")
    return path


def generate(language_model: Predictor, layer: int, direction: str, prompt: str, unit: object, value: float,
             count: int = 30, seed: int = 0) -> Generated:
    """Text after the prompt three ways, with one seed: free, with the unit's h held at +|value| and at -|value|
    (Radford et al. 2017 steered their sentiment unit so)."""
    H = language_model.model.config.hidden_size
    if language_model.checkpoint.projection() is None:
        raise ConfigError(f"{language_model.name or 'this file'} is a classifier's checkpoint, not a language model")
    if direction == "backward":
        raise ConfigError("the language model reads forwards: choose a forward layer to steer what it writes")
    unit = check_unit(unit, H)
    if count >= language_model.max_len:
        raise ConfigError(f"this model reads at most {language_model.max_len} tokens: generate fewer than that")
    tokens, ids = encode_review(prompt, language_model.vocab, language_model.max_len - count)
    if not ids:
        raise ConfigError("The prompt is empty: type the start of a review, e.g. 'This blender is'.")
    vocab = language_model.vocab.itos

    def text(clamp: Clamp | None) -> list[str]:
        return [vocab[i] for i in sample_tokens(language_model, ids, count, seed, clamp)]

    def held(at: float) -> Clamp:
        values = torch.full((H,), float("nan"))
        values[unit] = at
        return Clamp(layer, False, values)

    return Generated(prompt=tokens, value=abs(value), free=text(None), high=text(held(abs(value))),
                     low=text(held(-abs(value))))
