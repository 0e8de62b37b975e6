"""One long job at a time (a training run, a search, the memory experiment), in a background thread that any number
of watchers follow.

A tab starts a job here and then only *watches* it: closing or refreshing the page ends the watching, never the job,
and a later page load picks the stream up again. A second start while a job is alive is refused with `RunInProgress`
instead of being queued, whatever its kind: one job fills these machines. Only the browser that started a job may stop
it (a job started without an owner, by an API client, may be stopped by any caller).
"""
from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..config import USER_ERRORS, UserError

log = logging.getLogger("lstm_sentiment_lab")
# How each kind of job is named in a sentence.
KINDS = MappingProxyType({"training": "training run", "search": "search", "memory": "memory experiment"})


class RunInProgress(UserError, RuntimeError):
    """A job is already going in this process, or the caller may not stop it."""


@dataclass
class JobState:
    """What a watcher sees of the latest job of one kind; `version` grows with every event so watchers can wait for
    news. `progress` is the job's own record (a training run's curves, a search's trials), which its `record` function
    updates with every event."""

    kind: str = ""
    status: str = "idle"  # idle, preparing, running, finished, stopped, failed
    message: str = ""
    version: int = 0
    started: float = 0.0
    owner: str | None = None
    progress: Any = None

    @property
    def active(self) -> bool:
        return self.status in ("preparing", "running")


# How a job's event changes its state (under the runner's lock).
Record = Callable[[JobState, Any], None]


class JobRunner:
    def __init__(self) -> None:
        self._latest: dict[str, JobState] = {}  # by kind: a page of one tab still shows that tab's last job
        self._current = JobState()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, kind: str, work: Callable[[threading.Event], Iterable], record: Record, progress: Any = None,
              owner: str | None = None, max_seconds: float | None = None, message: str = "Starting …") -> None:
        """Run `work(stop)` in the background, each event it yields going to `record`. Raises RunInProgress while
        another job of any kind is alive; `max_seconds` stops the job like the Stop button, wherever it is."""
        with self._changed:
            if self._current.active:
                raise RunInProgress(self.busy_message())
            self._stop = threading.Event()  # one per job: a late timer of an earlier job cannot stop this one
            self._current = JobState(kind=kind, status="preparing", message=message,
                                     version=self._current.version + 1, started=time.time(), owner=owner,
                                     progress=progress)
            self._latest[kind] = self._current
            deadline = threading.Timer(max_seconds, self._stop.set) if max_seconds else None
            self._thread = threading.Thread(target=self._run, args=(self._current, work, record, self._stop, deadline),
                                            name=f"{kind}-job", daemon=True)
            self._thread.start()

    def busy_message(self) -> str:
        job = self._current
        minutes = (time.time() - job.started) / 60
        return (f"A {KINDS[job.kind]} is already in progress ({job.message.rstrip(' .…')}, started {minutes:.0f} min "
                "ago). Only one job at a time fits this machine: watch it, or start yours when it ends.")

    def stop(self, owner: str | None, kind: str) -> str:
        """Ask the job of `kind` to stop after its current step; only its owner may (the one who started it)."""
        with self._changed:
            job = self._current
            if not (job.active and job.kind == kind):
                return f"No {KINDS[kind]} is in progress."
            if job.owner and owner != job.owner:
                raise RunInProgress(f"This {KINDS[kind]} was started in another browser; only that one can stop it.")
            self._stop.set()
            return f"**Stopping** the {KINDS[kind]} after the current step …"

    def stop_any(self) -> None:
        """Stop whatever runs (the server is closing)."""
        self._stop.set()

    def snapshot(self, kind: str) -> JobState:
        """The latest job of `kind` (an idle state when there was none)."""
        with self._changed:
            return copy.deepcopy(self._latest.get(kind, JobState(kind=kind)))

    def follow(self, kind: str, view: Callable[[JobState], Any], every: float = 0.5) -> Iterator:
        """`view` of the latest job of `kind`, then again at each change until it ends, at most one view each `every`
        seconds (a chart stays smooth and the page light)."""
        job = self.snapshot(kind)
        yield view(job)
        while job.active:
            with self._changed:
                changed = self._changed.wait_for(lambda: self._latest[kind].version != job.version, timeout=2.0)
            if changed:  # copied only when there is news: a search's record holds figures
                job = self.snapshot(kind)
                yield view(job)
                time.sleep(every)

    def join(self, timeout: float | None = None) -> None:
        if self._thread:
            self._thread.join(timeout)

    def _run(self, job: JobState, work: Callable[[threading.Event], Iterable], record: Record,
             stop: threading.Event, deadline: threading.Timer | None) -> None:
        if deadline:
            deadline.daemon = True
            deadline.start()
        try:
            for event in work(stop):
                self._update(job, lambda: record(job, event))
            if job.active:  # a job whose record did not end it
                self._update(job, lambda: setattr(job, "status", "stopped" if stop.is_set() else "finished"))
        except USER_ERRORS as refused:
            self._fail(job, str(refused))
        except Exception as error:  # never let a job die silently: say what happened, log the details
            log.exception("%s failed", job.kind)
            self._fail(job, f"unexpectedly: {type(error).__name__}: {error}")
        finally:
            if deadline:
                deadline.cancel()

    def _fail(self, job: JobState, why: str) -> None:
        def failed() -> None:
            job.status, job.message = "failed", f"The {KINDS[job.kind]} failed: {why}"
        self._update(job, failed)

    def _update(self, job: JobState, change: Callable[[], None]) -> None:
        with self._changed:
            change()
            job.version += 1
            self._changed.notify_all()

