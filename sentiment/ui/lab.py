"""The Lab: what every tab shares, made once by `app.main` (tests make their own) and handed to each `create_tab(lab)`:
the deployment settings, the device, one cache of loaded checkpoints and what is computed from them, one job runner
for every long job, and each browser session's last refusal."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from ..explain.review import Explanation, explain
from ..model.network import describe_device, pick_device
from ..model.predictor import Predictor, load_predictor
from ..settings import Settings
from ..units.atlas import Progress, UnitAtlas, atlas_corpus, build_atlas, silent
from .jobs import JobRunner

T = TypeVar("T")


class Kept(Generic[T]):
    """The last `size` results of one computation, by key, safe to share between request threads. With
    `one_at_a_time`, one result is computed at a time and a request for a result being computed waits for it, so that
    memory stays bounded however many requests come."""

    def __init__(self, size: int, one_at_a_time: bool = False) -> None:
        self._size, self._items = size, OrderedDict()
        self._lock = threading.Lock()
        self._computing = threading.Lock() if one_at_a_time else None

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        if (kept := self._kept(key)) is not None:
            return kept
        if self._computing is None:
            return self._keep(key, compute())
        with self._computing:
            if (kept := self._kept(key)) is not None:  # computed while this request waited
                return kept
            return self._keep(key, compute())

    def _kept(self, key: Hashable) -> T | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def _keep(self, key: Hashable, value: T) -> T:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


def file_state(path: Path) -> tuple[str, int]:
    """A file as a cache key: its path and when it last changed, so that a retrained file is read again."""
    return str(path), path.stat().st_mtime_ns


class Checkpoints:
    """Loaded checkpoints and what is computed from them: predictors, explanations of reviews, unit atlases. Each is
    keyed by the checkpoint file's state."""

    def __init__(self, device: str = "auto") -> None:
        self.device = device
        # One load at a time: requests for a checkpoint being loaded wait for it rather than load it again.
        self._predictors: Kept[Predictor] = Kept(4, one_at_a_time=True)
        # A prediction, its cell step and its reading ask for the same explanation in a row.
        self._explanations: Kept[Explanation] = Kept(8)
        # Each atlas keeps its corpus's hidden states: few at a time, built one at a time.
        self._atlases: Kept[UnitAtlas] = Kept(2, one_at_a_time=True)

    def predictor(self, path: Path) -> Predictor:
        return self._predictors.get(file_state(path), lambda: load_predictor(path, self.device))

    def explained(self, path: Path, review: str, layer: str = "", units: int = 12, attribution: str = "when read"
                  ) -> tuple[Predictor, Explanation]:
        """The checkpoint and its explanation of the review (values as the contracts checked them)."""
        predictor = self.predictor(path)
        key = (file_state(path), review, layer, units, attribution)
        return predictor, self._explanations.get(key, lambda: explain(predictor, review, layer or None, units,
                                                                        attribution))

    def atlas(self, path: Path, layer: int, direction: str, data: Path | None = None, progress: Progress = silent
              ) -> tuple[Predictor, UnitAtlas]:
        """The checkpoint and the atlas of one of its layers over its own test split, or over the reviews of `data`."""
        predictor = self.predictor(path)
        key = (file_state(path), layer, direction, None if data is None else file_state(data))
        return predictor, self._atlases.get(key, lambda: build_atlas(predictor, layer, direction,
                                                                     *atlas_corpus(predictor, data), progress=progress))


class Refusals:
    """The last refusal each browser session got, and how many came in a row, so that the page can show them in a
    status line beside the action (a toast alone is easy to miss, and Gradio stops showing them after a few in a
    row). Bounded: the oldest sessions are forgotten first."""

    def __init__(self, sessions: int = 1000) -> None:
        self._last: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._sessions, self._lock = sessions, threading.Lock()

    def remember(self, session: str, message: str) -> None:
        with self._lock:
            self._last[session] = (message, self._last.get(session, ("", 0))[1] + 1)
            self._last.move_to_end(session)
            while len(self._last) > self._sessions:
                self._last.popitem(last=False)

    def forget(self, session: str) -> None:
        with self._lock:
            self._last.pop(session, None)

    def last(self, session: str) -> tuple[str, int]:
        """(the last refusal's sentence, refusals in a row since the last success)."""
        with self._lock:
            return self._last.get(session, ("", 0))


@dataclass
class Lab:
    settings: Settings = field(default_factory=Settings)
    # Whether the endpoints that start work (training, searches, the memory experiment) are listed on the API page.
    # They answer scripts either way; when the app also serves MCP they stay unlisted, so that no LLM client is
    # offered them.
    list_jobs: bool = True
    checkpoints: Checkpoints = field(default_factory=Checkpoints)
    jobs: JobRunner = field(default_factory=JobRunner)
    refusals: Refusals = field(default_factory=Refusals)

    @property
    def device(self) -> str:
        return describe_device(pick_device(self.checkpoints.device))

    @property
    def job_visibility(self) -> str:
        """The api_visibility of an endpoint that starts work."""
        return "public" if self.list_jobs else "undocumented"
