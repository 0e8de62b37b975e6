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

from .config import ConfigError, Number, declared, over_public_cap
from .model.network import ModelConfig
from .train.config import TrainConfig

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
# The environment's numbers, each declared once: a refusal names the variable.
MAX_UPLOAD_MB = Number("SENTIMENT_MAX_UPLOAD_MB", 1, 2000, integer=True)
MAX_RUN_SECONDS = Number("SENTIMENT_MAX_RUN_SECONDS", 10, 86_400, integer=True)


@dataclass(frozen=True)
class PublicLimits:
    """A public demo's run: every hyper-parameter over the cap its config field declares (`setting(public=...)`) is
    lowered to it, and the run stops at a wall clock."""

    max_seconds: float = 300.0  # wall clock of a whole run, data preparation included

    def apply(self, config: TrainConfig, model_config: ModelConfig) -> tuple[TrainConfig, ModelConfig, str]:
        """The configs with every value over a cap lowered to it, and a sentence saying what changed."""
        capped = [{name: spec.public for name, _, spec in declared(type(part))
                   if over_public_cap(getattr(part, name), spec)} for part in (config, model_config)]
        changes = [f"{k} off" if isinstance(v, bool) else f"{k} {v:,}" for part in capped for k, v in part.items()]
        note = (f"Public demo limits applied: {', '.join(changes)}. " if changes else "") + (
            f"A public run stops after {self.max_seconds:.0f} s.")
        return replace(config, **capped[0]), replace(model_config, **capped[1]), note


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

    def restrictions(self) -> list[str]:
        """What this server turns off or caps, each a sentence that says why; empty when nothing is."""
        said = []
        if not self.allow_training:
            said.append("Training is off on this server: its owner turned it off (SENTIMENT_ALLOW_TRAINING=0).")
        if not self.allow_uploads:
            said.append("Uploads are off: " + ("a public demo takes no files from strangers, so training reads the "
                        "bundled reviews only" if self.public else "this server's owner turned them off "
                        "(SENTIMENT_ALLOW_UPLOADS=0)") + ". The server refuses any upload before reading it.")
        if self.public and self.allow_training:
            caps = [f"{spec.label} {'off' if spec.public is False else f'at most {spec.public:,}'}"
                    for part in (TrainConfig, ModelConfig) for _, _, spec in declared(part)
                    if spec.public is not None]
            said.append(f"Training runs are capped, so that one visitor's run leaves the shared machine usable: "
                        f"{', '.join(caps)}, and {self.limits.max_seconds:.0f} s of wall clock.")
        return said

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, share: bool = False) -> Settings:
        """The settings the environment asks for; a value that is not one a ConfigError names."""
        public = _flag(environ, "SENTIMENT_PUBLIC", bool(environ.get("SPACE_ID")) or share)
        max_seconds = MAX_RUN_SECONDS.check(environ.get(MAX_RUN_SECONDS.label, PublicLimits.max_seconds))
        return cls(public=public, allow_training=_flag(environ, "SENTIMENT_ALLOW_TRAINING", True),
                   allow_uploads=_flag(environ, "SENTIMENT_ALLOW_UPLOADS", not public),
                   max_upload_mb=MAX_UPLOAD_MB.check(environ.get(MAX_UPLOAD_MB.label, cls.max_upload_mb)),
                   limits=PublicLimits(max_seconds=float(max_seconds)))


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in _TRUE + _FALSE:
        raise ConfigError(f"{name} must be 1 or 0 (or true/false, yes/no, on/off); got {value[:20]!r}")
    return value in _TRUE
