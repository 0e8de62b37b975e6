"""What every tab shares, made once: the deployment settings, the device, the training runner and the loaded
checkpoints. Tabs read them as `state.SETTINGS` and so on, at call time: `app.main` replaces SETTINGS with what the
environment and the command line say before the page is built."""
from __future__ import annotations

import logging
import threading

from ..model.network import describe_device, pick_device
from ..model.predictor import PredictorCache
from ..settings import Settings
from .jobs import TrainingRunner

log = logging.getLogger("lstm_sentiment_lab")
SETTINGS = Settings()
DEVICE = describe_device(pick_device("auto"))
runner = TrainingRunner()
predictors = PredictorCache()
starting = threading.Lock()  # held while a training run or a search checks that none is going and starts
# Whether the endpoints that start work (training, searches, the memory experiment) are listed on the API page. They
# answer scripts either way; when the app also serves MCP they stay unlisted, so that no LLM client is offered them.
LIST_RUNS = True


def run_visibility() -> str:
    """The api_visibility of an endpoint that starts work."""
    return "public" if LIST_RUNS else "undocumented"
