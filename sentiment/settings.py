"""Deployment settings in one place: who may train and upload, and the limits of a public demo.

A public demo (a Hugging Face Space, or a share link) lets anyone press Start, so every training setting that drives
memory or time is capped there, and a run stops at a wall-clock limit wherever it is.

    SENTIMENT_PUBLIC=0/1            public mode (default: on when SPACE_ID is set or with --share, else off)
    SENTIMENT_ALLOW_TRAINING=0/1    the Train tab's Start (default: on)
    SENTIMENT_ALLOW_UPLOADS=0/1     uploading training files (default: on, off in public mode)
    SENTIMENT_MAX_UPLOAD_MB=N       largest upload, in MB (default 100)
    SENTIMENT_MAX_RUN_SECONDS=N     wall clock of one training run in public mode (default 300)
    SENTIMENT_AUTH=user:password    basic auth
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .config import ConfigError, check_range
from .model import ModelConfig
from .trainer import TrainConfig

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class PublicLimits:
    """Caps for a public demo: each keeps one run's memory and time small on a free 2-vCPU, 16 GB Space."""

    max_reviews: int = 5000
    max_epochs: int = 5
    max_pretrain_epochs: int = 1
    max_sentences: int = 2  # sentences drawn per review each epoch: each one adds a review's worth of examples
    max_width: int = 256  # embedding and hidden size
    max_layers: int = 2
    max_batch_size: int = 256
    max_tokens: int = 400  # tokens read per review
    bidirectional: bool = False  # allowed or not
    max_seconds: float = 300.0  # wall clock of a whole run, data preparation included

    def apply(self, config: TrainConfig, model_config: ModelConfig) -> tuple[TrainConfig, ModelConfig, str]:
        """The configs with every value over a cap lowered to it, and a sentence saying what changed."""
        train_caps = {"limit": self.max_reviews, "epochs": self.max_epochs, "batch_size": self.max_batch_size,
                      "max_len": self.max_tokens, "pretrain_epochs": self.max_pretrain_epochs,
                      "sentences": self.max_sentences}
        model_caps = {"embedding_dim": self.max_width, "hidden_size": self.max_width, "num_layers": self.max_layers}
        new_train = {k: v for k, v in train_caps.items() if getattr(config, k) > v or (k == "limit" and not config.limit)}
        new_model = {k: v for k, v in model_caps.items() if getattr(model_config, k) > v}
        if model_config.bidirectional and not self.bidirectional:
            new_model["bidirectional"] = False
        changes = [f"{k} {v:,}" if not isinstance(v, bool) else f"{k} off" for k, v in {**new_train, **new_model}.items()]
        note = (f"Public demo limits applied: {', '.join(changes)}. " if changes else "") + (
            f"A public run stops after {self.max_seconds:.0f} s.")
        return replace(config, **new_train), replace(model_config, **new_model), note


@dataclass(frozen=True)
class Settings:
    public: bool = False
    allow_training: bool = True
    allow_uploads: bool = True
    max_upload_mb: int = 100
    limits: PublicLimits = field(default_factory=PublicLimits)  # applied in public mode only

    @property
    def run_limits(self) -> PublicLimits | None:
        return self.limits if self.public else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, share: bool = False) -> Settings:
        """The settings the environment asks for; a value that is not one a ConfigError names."""
        public = _flag(environ, "SENTIMENT_PUBLIC", bool(environ.get("SPACE_ID")) or share)
        max_seconds = _whole_number(environ, "SENTIMENT_MAX_RUN_SECONDS", int(PublicLimits.max_seconds), 10, 86_400)
        return cls(public=public, allow_training=_flag(environ, "SENTIMENT_ALLOW_TRAINING", True),
                   allow_uploads=_flag(environ, "SENTIMENT_ALLOW_UPLOADS", not public),
                   max_upload_mb=_whole_number(environ, "SENTIMENT_MAX_UPLOAD_MB", 100, 1, 2000),
                   limits=PublicLimits(max_seconds=float(max_seconds)))


def _whole_number(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name, str(default)).strip()
    try:
        value = float(raw)
    except ValueError:
        value = raw
    check_range(name, value, low, high)
    return int(value)


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in _TRUE + _FALSE:
        raise ConfigError(f"{name} must be 1 or 0 (or true/false, yes/no, on/off); got {value[:20]!r}")
    return value in _TRUE
