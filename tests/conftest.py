"""Shared fixtures: a private token cache and one small model trained once on real bundled reviews."""
from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pytest

# Tests never touch the user's cache: set before any sentiment module reads it.
os.environ.setdefault("SENTIMENT_CACHE_DIR", tempfile.mkdtemp(prefix="sentiment-test-cache-"))

from sentiment.model.network import ModelConfig
from sentiment.train.config import TrainConfig
from sentiment.train.events import Finished
from sentiment.train.loop import train

SMALL_TRAIN = TrainConfig(lr=0.005, batch_size=32, epochs=4, eval_every=0, limit=6000, seed=0)
SMALL_MODEL = ModelConfig(embedding_dim=48, hidden_size=48, num_layers=1, dropout=0.2)


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> tuple[Path, Finished, list]:
    """(checkpoint path, Finished event, all events) of a short run on 6,000 bundled reviews."""
    out = tmp_path_factory.mktemp("trained") / "small.pt"
    events = list(train(SMALL_TRAIN, SMALL_MODEL, out=out))
    return out, events[-1], events


@pytest.fixture(scope="session")
def predictor(trained):
    from sentiment.model.predictor import load_predictor

    return load_predictor(trained[0], device="cpu")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    return _free_port()


@pytest.fixture(scope="session")
def lab():
    """The Lab the served app shares: its settings, checkpoints and job runner."""
    from sentiment.ui.lab import Lab

    return Lab()


@pytest.fixture(scope="session")
def app_url(lab):
    """The app served in-process on a free local port, as `python app.py` serves it."""
    import app

    demo = app.build_demo(lab).queue(default_concurrency_limit=4)
    port = _free_port()
    demo.launch(prevent_thread_lock=True, server_port=port, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    lab.jobs.stop_any()
    lab.jobs.join(60)
    demo.close()
