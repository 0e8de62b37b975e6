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
from dataclasses import dataclass, field, replace
from pathlib import Path

from .checkpoint import CheckpointError
from .data import DataError
from .model import ConfigError, ModelConfig
from .trainer import Evaluated, Finished, Preparing, Step, TrainConfig, train


class RunInProgress(RuntimeError):
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
        "step": [], "train_loss": [], "val_step": [], "val_loss": [], "val_accuracy": []})
    finished: Finished | None = None

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
        if not Path(data).is_file():
            raise DataError(f"{Path(data).name}: no such file")
        with self._changed:
            if self._state.active:
                raise RunInProgress(self.busy_message())
            self._stop.clear()
            self._state = RunState(status="preparing", message="Preparing the data …", started=time.time(),
                                   owner=owner, data_name=Path(data).name, version=self._state.version + 1)
            self._thread = threading.Thread(target=self._run, args=(config, model_config, data, out, max_seconds),
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

    def _run(self, config: TrainConfig, model_config: ModelConfig, data, out, max_seconds: float | None) -> None:
        state = self._state
        try:
            for event in train(config, model_config, data, out, self._stop):
                if max_seconds and time.time() - state.started > max_seconds and not self._stop.is_set():
                    self._stop.set()  # the public demo's time cap: stop like the Stop button does
                if isinstance(event, Preparing):
                    self._update(message=event.message)
                elif isinstance(event, Step):
                    with self._changed:
                        state.history["step"].append(event.step)
                        state.history["train_loss"].append(event.train_loss)
                    self._update(status="running", step=event)
                elif isinstance(event, Evaluated):
                    with self._changed:
                        state.history["val_step"].append(event.step)
                        state.history["val_loss"].append(event.val_loss)
                        state.history["val_accuracy"].append(event.val_accuracy)
                    self._update()
                elif isinstance(event, Finished):
                    status = "stopped" if event.stopped else "finished"
                    self._update(status=status, finished=event,
                                 message=f"Run {status} after {event.steps:,} steps in {event.seconds:.0f} s.")
        except (DataError, ConfigError, CheckpointError, OSError) as e:
            self._update(status="failed", message=f"Training failed: {e}")
        except Exception as e:  # never let a run die silently: say what happened, log the details
            traceback.print_exc()
            self._update(status="failed", message=f"Training failed unexpectedly: {type(e).__name__}: {e}")


@dataclass(frozen=True)
class PublicLimits:
    """Caps for a public demo (a Space or a share link), where anyone may press Start."""

    max_reviews: int = 5000
    max_epochs: int = 5
    max_width: int = 256  # embedding and hidden size
    max_layers: int = 2
    max_seconds: float = 300.0

    def apply(self, config: TrainConfig, model_config: ModelConfig) -> tuple[TrainConfig, ModelConfig, str]:
        """The configs with every value over a cap lowered to it, and a note saying what changed."""
        train_caps = {"limit": self.max_reviews, "epochs": self.max_epochs}
        model_caps = {"embedding_dim": self.max_width, "hidden_size": self.max_width, "num_layers": self.max_layers}
        new_train = {k: v for k, v in train_caps.items() if getattr(config, k) > v or (k == "limit" and not config.limit)}
        new_model = {k: v for k, v in model_caps.items() if getattr(model_config, k) > v}
        notes = [f"{k} {v:,}" for k, v in {**new_train, **new_model}.items()]
        note = f"Public demo limits applied: {', '.join(notes)}; runs stop after {self.max_seconds:.0f} s." if notes else ""
        return replace(config, **new_train), replace(model_config, **new_model), note
