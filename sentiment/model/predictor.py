"""A checkpoint loaded to score raw review texts, encoding them exactly as in training; and a cache of them."""
from __future__ import annotations

from pathlib import Path

import torch

from ..data.corpus import EncodedReviews, encode_texts
from .checkpoint import DEFAULT_CHECKPOINT, Checkpoint, CheckpointError, load_checkpoint
from .network import pick_device
from .scoring import score


class Predictor:
    """A loaded checkpoint ready to score raw review texts, encoding them exactly as in training."""

    def __init__(self, checkpoint: Checkpoint, device: torch.device | str = "auto", name: str = ""):
        self.checkpoint = checkpoint
        self.name = name
        self.vocab = checkpoint.vocab
        self.max_len = checkpoint.max_len
        self.device = pick_device(str(device))
        try:
            self.model = checkpoint.build_model(self.device)
        except RuntimeError as e:
            raise CheckpointError(f"{name or 'checkpoint'}: weights do not fit its model configuration ({str(e)[:200]})") from None

    def encode(self, texts: list[str]) -> EncodedReviews:
        return encode_texts(texts, self.vocab, self.max_len)

    def predict_encoded(self, reviews: EncodedReviews) -> torch.Tensor:
        """Probabilities (N,) that each review is positive."""
        return torch.sigmoid(score(self.model, reviews))

    def predict(self, texts: list[str] | str) -> list[float]:
        """Probability that each text is a positive review."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            return []
        return self.predict_encoded(self.encode(texts)).tolist()


def load_predictor(path: str | Path = DEFAULT_CHECKPOINT, device: torch.device | str = "auto") -> Predictor:
    return Predictor(load_checkpoint(path), device, name=Path(path).name)
