"""Public-demo switches: the caps a Space or share link applies, and the settings read from the environment."""
from dataclasses import replace

from app import Settings
from sentiment.model import ModelConfig
from sentiment.runner import PublicLimits
from sentiment.trainer import TrainConfig


def test_public_limits_lower_only_what_is_over_a_cap_and_say_so():
    limits = PublicLimits()
    config, model, note = limits.apply(TrainConfig(epochs=50, limit=0), ModelConfig(hidden_size=512, num_layers=1))
    assert config.limit == limits.max_reviews and config.epochs == limits.max_epochs
    assert model.hidden_size == limits.max_width and model.num_layers == 1
    assert "hidden_size 256" in note and "epochs 5" in note and f"{limits.max_seconds:.0f} s" in note
    small = (replace(TrainConfig(), epochs=2, limit=1000), ModelConfig(embedding_dim=64, hidden_size=64, num_layers=1))
    assert limits.apply(*small) == (*small, "")


def test_settings_from_the_environment(monkeypatch):
    for name in ("SENTIMENT_PUBLIC", "SENTIMENT_ALLOW_TRAINING", "SENTIMENT_ALLOW_UPLOADS", "SENTIMENT_MAX_UPLOAD_MB"):
        monkeypatch.delenv(name, raising=False)
    assert Settings.from_env() == Settings(public=False, allow_training=True, allow_uploads=True, max_upload_mb=100)
    monkeypatch.setenv("SENTIMENT_PUBLIC", "1")
    assert Settings.from_env().allow_uploads is False  # public demos take no uploads unless asked to
    monkeypatch.setenv("SENTIMENT_ALLOW_UPLOADS", "yes")
    monkeypatch.setenv("SENTIMENT_ALLOW_TRAINING", "0")
    monkeypatch.setenv("SENTIMENT_MAX_UPLOAD_MB", "5")
    assert Settings.from_env() == Settings(public=True, allow_training=False, allow_uploads=True, max_upload_mb=5)
