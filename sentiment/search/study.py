"""Hyper-parameter search with Optuna, the tutorial's next step: each trial is a normal training run of a preset with
sampled settings, reporting its validation loss after every epoch so that a pruner stops a bad trial early; the best
trial's checkpoint is kept like any other.

    python -m sentiment.search --trials 20 --timeout 3600 --storage journal:search.journal --study lab

The study lives in Optuna's storage, so any number of workers join it with the same --storage and --study: a journal
file on one machine (workers in parallel on its cores), PostgreSQL or MySQL across machines
(`--storage postgresql://user:password@host/db`, with its driver installed). Without --storage the study lives in
this process only."""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import optuna

from ..config import ConfigError, check_settings, setting
from ..model.checkpoint import CHECKPOINT_DIR
from ..train.events import Evaluated, Finished
from ..train.loop import train
from ..train.presets import PRESETS

PRUNERS = ("median", "halving")


# The settings that matter, and where the search looks for them.
SPACE = {
    "lr": ("log-uniform", 1e-4, 1e-2),
    "hidden_size": ("choice", (64, 128, 192, 256)),
    "num_layers": ("integer", 1, 2),
    "dropout": ("uniform", 0.0, 0.6),
    "batch_size": ("choice", (32, 64, 128)),
    "cell": ("choice", ("lstm", "gru")),
}


_RDB_SCHEMES = ("sqlite:///", "postgresql://", "postgresql+", "mysql://", "mysql+")


optuna.logging.set_verbosity(optuna.logging.WARNING)  # the search says what each trial did itself


@dataclass
class SearchSettings:
    """One worker's search, each field declared once (sentiment/config.py): the flags of `python -m sentiment.search`
    and the inputs of the Search section read these, with a public demo's caps."""

    trials: int = setting(10, "trials", "training runs this worker tries (the study may hold more, from other "
                          "workers); 0: only say how the study stands", low=0, high=10_000, public=4)
    timeout: float = setting(0.0, "timeout", "seconds after which this worker starts no new trial; 0 = none", low=0,
                             high=30 * 86_400, public=300, unlimited_at=0)
    study: str = setting("lstm-lab", "study", "the study's name, 1 to 100 characters: workers with the same one share "
                         "it")
    storage: str = setting("", "storage", "journal:FILE, sqlite:///FILE, postgresql://… or mysql://… (none: this "
                           "process only)")
    preset: str = setting("quick", "preset", "what each trial starts from", choices=tuple(sorted(PRESETS)))
    data: str = setting("", "data", "a bundled data set or a review file (none: the preset's)")
    limit: int = setting(0, "row limit", "reviews each trial reads; 0 = the preset's", low=0, high=1_000_000_000,
                         public=2000, unlimited_at=0)
    max_epochs: int = setting(3, "max epochs", "each trial trains 1 to this many epochs", low=1, high=100, public=2)
    pruner: str = setting("median", "pruner", "what stops a bad trial after an epoch: median, or successive halving",
                          choices=PRUNERS)
    seed: int = setting(0, "seed", "each trial's training seed", low=0, high=2**31 - 1)
    sampler_seed: int | None = setting(None, "sampler seed", "the sampler's seed, to repeat a one-worker search "
                                       "(none: each worker draws its own, so that workers started together differ)",
                                       low=0, high=2**31 - 1)

    def validate(self) -> SearchSettings:
        check_settings(self)
        if not isinstance(self.study, str) or not self.study.strip() or len(self.study) > 100:
            raise ConfigError("study must be a name of 1 to 100 characters")
        storage(self.storage)  # refused here, before any training, when it is not one
        return self


def storage(url: str) -> optuna.storages.BaseStorage | None:
    """The Optuna storage a --storage value names; None keeps the study in this process."""
    if not isinstance(url, str):
        raise ConfigError(f"storage must be text; got {type(url).__name__}")
    if not url:
        return None
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        if not path.name or path.is_dir():
            raise ConfigError(f"storage {url!r}: journal: needs a file name, like journal:search.journal")
        if not path.parent.is_dir():
            raise ConfigError(f"storage {url!r}: the folder {path.parent} does not exist")
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    if url.startswith(_RDB_SCHEMES):
        try:
            return optuna.storages.RDBStorage(url)
        except ImportError as e:
            raise ConfigError(f"storage {_without_password(url)}: its database driver is not installed "
                              f"({e.name or e})") from None
        except Exception as e:  # a database that cannot be reached, or a URL it cannot read
            raise ConfigError(f"storage {_without_password(url)}: cannot open it ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:160]})") from None
    raise ConfigError(f"storage must be journal:FILE, sqlite:///FILE, postgresql://… or mysql://…; got "
                      f"{_without_password(url)[:60]!r}")


def _without_password(url: str) -> str:
    """A database URL as it may be shown: user:password@ becomes user:***@."""
    scheme, sep, rest = url.partition("://")
    address, slash, path = rest.partition("/")
    credentials, at, host = address.rpartition("@")  # the last @ ends them: a password may hold one
    if sep and at and ":" in credentials:
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}{slash}{path}"
    return url


def sample(trial: optuna.Trial, max_epochs: int) -> dict:
    """One trial's settings from SPACE, and its number of epochs."""
    chosen = {}
    for name, (kind, *bounds) in SPACE.items():
        if kind == "log-uniform":
            chosen[name] = trial.suggest_float(name, *bounds, log=True)
        elif kind == "uniform":
            chosen[name] = trial.suggest_float(name, *bounds)
        elif kind == "integer":
            chosen[name] = trial.suggest_int(name, *bounds)
        else:
            chosen[name] = trial.suggest_categorical(name, bounds[0])
    chosen["epochs"] = trial.suggest_int("epochs", 1, max_epochs)
    return chosen


@dataclass(frozen=True)
class TrialDone:
    """What a finished (or pruned) trial reports to whoever runs the search."""

    number: int
    params: dict
    state: str  # "complete", "pruned" or "failed"
    val_loss: float | None
    val_accuracy: float | None
    epochs: int
    seconds: float
    best_number: int | None
    best_loss: float | None


class Search:
    """A study and how to run trials in it; `run` yields a TrialDone per trial, and never prints."""

    def __init__(self, settings: SearchSettings, workdir: Path = CHECKPOINT_DIR / "search") -> None:
        self.settings = settings.validate()
        pruner = (optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0) if settings.pruner == "median"
                  else optuna.pruners.SuccessiveHalvingPruner())
        try:
            self.study = optuna.create_study(study_name=settings.study, storage=storage(settings.storage),
                                             direction="minimize", pruner=pruner, load_if_exists=True)
        except ValueError as e:
            raise ConfigError(f"study {settings.study!r} cannot be joined: {e}") from None
        if self.study.directions != [optuna.study.StudyDirection.MINIMIZE]:
            raise ConfigError(f"study {settings.study!r} in this storage maximises its objective (or has several); a "
                              "search minimises the validation loss: choose another --study")
        self.study.sampler = optuna.samplers.TPESampler(seed=settings.sampler_seed)
        self.workdir = workdir / settings.study
        self.workdir.mkdir(parents=True, exist_ok=True)

    def run(self, stop: threading.Event | None = None) -> Iterator[TrialDone]:
        """Run this worker's trials (until `trials`, `timeout` or `stop`), one TrialDone after each."""
        stop = stop or threading.Event()
        started = time.monotonic()
        for _ in range(self.settings.trials):
            if stop.is_set() or (self.settings.timeout and time.monotonic() - started > self.settings.timeout):
                return
            trial = self.study.ask()
            yield self._run_trial(trial, stop)

    def _run_trial(self, trial: optuna.Trial, stop: threading.Event) -> TrialDone:
        preset, tick = PRESETS[self.settings.preset], time.monotonic()
        try:
            params = sample(trial, self.settings.max_epochs)
        except ValueError:  # the study's earlier trials drew these names from other ranges or kinds
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise ConfigError(f"study {self.settings.study!r} holds trials of another search (its parameters are "
                              "drawn otherwise): choose another --study") from None
        model_params = {k: params[k] for k in ("hidden_size", "num_layers", "dropout", "cell")}
        config = replace(preset.train, lr=params["lr"], batch_size=params["batch_size"], epochs=params["epochs"],
                         eval_every=0, patience=0, refit=False, seed=self.settings.seed,
                         limit=self.settings.limit or preset.train.limit)
        out = self.workdir / f"trial-{trial.number}.pt"
        losses, accuracies, state = [], [], optuna.trial.TrialState.COMPLETE
        try:
            for event in train(config, replace(preset.model, **model_params), self.settings.data or preset.data, out,
                               stop):
                if isinstance(event, Evaluated):
                    losses.append(event.val_loss)
                    accuracies.append(event.val_accuracy)
                    trial.report(event.val_loss, event.epoch)
                    if trial.should_prune():
                        state = optuna.trial.TrialState.PRUNED
                        break
                elif isinstance(event, Finished) and event.stopped and not losses:
                    state = optuna.trial.TrialState.FAIL
        except Exception:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        if state == optuna.trial.TrialState.COMPLETE and not losses:
            state = optuna.trial.TrialState.FAIL
        elif state == optuna.trial.TrialState.COMPLETE and stop.is_set():  # cut short: not the epochs it drew
            state = optuna.trial.TrialState.PRUNED
        best = min(losses) if losses else None
        if state == optuna.trial.TrialState.COMPLETE:
            trial.set_user_attr("checkpoint", str(out.resolve()))
            trial.set_user_attr("val_accuracy", accuracies[losses.index(best)])
            self.study.tell(trial, best)
        else:
            self.study.tell(trial, state=state)
            out.unlink(missing_ok=True)
        best_trial = self.best_trial()
        return TrialDone(number=trial.number, params=params, state=state.name.lower(), val_loss=best,
                         val_accuracy=accuracies[losses.index(best)] if losses else None, epochs=len(losses),
                         seconds=time.monotonic() - tick, best_number=best_trial.number if best_trial else None,
                         best_loss=best_trial.value if best_trial else None)

    def best_trial(self) -> optuna.trial.FrozenTrial | None:
        try:
            return self.study.best_trial
        except ValueError:  # no trial has completed yet
            return None

    def keep_best(self, out: Path) -> Path | None:
        """Copy the best trial's checkpoint to `out` (when this machine has it); the path, or None."""
        best = self.best_trial()
        source = Path(best.user_attrs.get("checkpoint", "")) if best else None
        if not source or not source.is_file():
            return None
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")  # one per worker
        os.close(fd)
        try:
            shutil.copyfile(source, partial)
            os.replace(partial, out)  # atomic: a reader sees the old checkpoint or the new one
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
        return out
