"""One training run at a time, in a background thread, that any number of watchers can follow.

The app's Train tab starts a run here and then only *watches* it: closing or refreshing the page ends the
watching, never the run, and a later page load picks the stream up again. A second start while a run is
alive is refused with `RunInProgress` instead of being queued.
"""
from __future__ import annotations

import copy
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError, UserError
from ..data.files import DataError
from ..data.sets import data_files, data_name
from ..model.checkpoint import CheckpointError
from ..model.network import ModelConfig
from ..train.config import TrainConfig
from ..train.events import Evaluated, Finished, Preparing, Step
from ..train.loop import train


class RunInProgress(UserError, RuntimeError):
    """A training run is already going in this process."""


@dataclass
class RunState:
    """What a watcher sees; `version` grows with every event so watchers can wait for news."""

    status: str = "idle"  # idle, preparing, running, finished, stopped, failed
    message: str = "No training run yet."
    version: int = 0
    started: float = 0.0
    owner: str | None = None
    data_name: str = ""
    step: Step | None = None
    history: dict[str, list] = field(default_factory=lambda: {
        "pretrain_step": [], "pretrain_loss": [], "step": [], "train_loss": [], "val_step": [], "val_loss": [],
        "val_accuracy": []})
    finished: Finished | None = None
    prepared: str = ""  # what the run read (reviews, classes, format and encoding, split, vocabulary, vectors)

    @property
    def active(self) -> bool:
        return self.status in ("preparing", "running")


class TrainingRunner:
    def __init__(self) -> None:
        self._state = RunState()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, config: TrainConfig, model_config: ModelConfig, data: str | Path, out: str | Path,
              owner: str | None = None, max_seconds: float | None = None) -> None:
        """Check the settings, then train in the background. Raises RunInProgress, ConfigError or DataError."""
        config.validate()
        ModelConfig(**{**model_config.__dict__, "vocab_size": 2}).validate()
        for path in data_files(data):
            if not path.is_file():
                raise DataError(f"{path.name}: no such file")
        with self._changed:
            if self._state.active:
                raise RunInProgress(self.busy_message())
            self._stop = threading.Event()  # one per run: a late timer of an earlier run cannot stop this one
            self._state = RunState(status="preparing", message="Preparing the data …", started=time.time(),
                                   owner=owner, data_name=data_name(data), version=self._state.version + 1)
            # The public demo's limit: stop like the Stop button, wherever the run is (preparing data included).
            deadline = threading.Timer(max_seconds, self._stop.set) if max_seconds else None
            self._thread = threading.Thread(target=self._run, args=(config, model_config, data, out, self._stop, deadline),
                                            name="training-run", daemon=True)
            self._thread.start()

    def busy_message(self) -> str:
        state = self._state
        minutes = (time.time() - state.started) / 60
        where = f"step {state.step.step:,} of {state.step.total_steps:,}" if state.step else "preparing data"
        return (f"A training run is already in progress ({where}, started {minutes:.0f} min ago). "
                "Only one run at a time fits this machine: watch it here, or start yours when it ends.")

    def stop(self, owner: str | None = None) -> str:
        """Ask the run to stop after its current batch; only its owner may (the one who started it)."""
        with self._changed:
            if not self._state.active:
                return "No training run is in progress."
            if owner != self._state.owner:
                return "This run was started from another browser; only that browser can stop it."
            self._stop.set()
            return "Stopping after the current batch; the best checkpoint so far will be kept and tested."

    def snapshot(self) -> RunState:
        with self._changed:
            return copy.deepcopy(self._state)

    def wait_for_change(self, version: int, timeout: float) -> RunState:
        """The state once its version differs from `version`, or after `timeout` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self._state.version != version, timeout=timeout)
            return copy.deepcopy(self._state)

    def join(self, timeout: float | None = None) -> None:
        if self._thread:
            self._thread.join(timeout)

    def _update(self, **changes) -> None:
        with self._changed:
            for key, value in changes.items():
                setattr(self._state, key, value)
            self._state.version += 1
            self._changed.notify_all()

    def _run(self, config: TrainConfig, model_config: ModelConfig, data, out, stop: threading.Event,
             deadline: threading.Timer | None) -> None:
        state = self._state
        if deadline:
            deadline.daemon = True
            deadline.start()
        try:
            for event in train(config, model_config, data, out, stop):
                if isinstance(event, Preparing):
                    self._update(message=event.message, prepared=event.message)
                elif isinstance(event, Step):
                    prefix = "pretrain_" if event.phase == "pretrain" else ""
                    with self._changed:
                        state.history[f"{prefix}step"].append(event.step)
                        state.history[f"{prefix or 'train_'}loss"].append(event.train_loss)
                    self._update(status="running", step=event)
                elif isinstance(event, Evaluated):
                    with self._changed:
                        state.history["val_step"].append(event.step)
                        state.history["val_loss"].append(event.val_loss)
                        state.history["val_accuracy"].append(event.val_accuracy)
                    self._update()
                elif isinstance(event, Finished):
                    status = "stopped" if event.stopped else "finished"
                    message = (f"Run {status} after {event.steps:,} steps in {event.seconds:.0f} s." if event.checkpoint
                               else f"Run {event.reason}.")
                    self._update(status=status, finished=event, message=message)
        except (DataError, ConfigError, CheckpointError, OSError) as e:
            self._update(status="failed", message=f"Training failed: {e}")
        except Exception as e:  # never let a run die silently: say what happened, log the details
            traceback.print_exc()
            self._update(status="failed", message=f"Training failed unexpectedly: {type(e).__name__}: {e}")
        finally:
            if deadline:
                deadline.cancel()
