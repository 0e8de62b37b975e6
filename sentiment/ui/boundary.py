"""The boundary every handler goes through: refusals become sentences, and the values every tab reads are checked
here before any work is done."""
from __future__ import annotations

import functools
import html
import inspect
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ..config import USER_ERRORS, ConfigError
from ..contract import Param, Text, is_empty
from ..data.files import DataError, check_review_file
from ..model.checkpoint import list_checkpoints
from . import state

UPLOAD_TYPES = (".txt", ".bz2", ".gz", ".csv", ".tsv")  # review files


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


refusals = Refusals()


def endpoint(**contract: Param):
    """Every event handler goes through here, with its contract: each input's declaration (sentiment/contract.py),
    checked in order before the handler runs, which then reads the values checked. A refusal (a bad value, a file or
    checkpoint we cannot use) reaches the person or API client as its sentence and the log as one line; anything
    unexpected is logged with its traceback and answered with a sentence too. Gradio hands the wrapper the request
    first (its signature asks for one), so that the page can show the session's last refusal in a status line
    (`show_refusal`); a direct call passes none. A handler with an input its contract does not declare is a mistake
    found at import."""

    def decorate(handler):
        signature = inspect.signature(handler)
        inputs = [name for name, p in signature.parameters.items() if not isinstance(p.default, gr.Progress)]
        if inputs != list(contract):
            raise TypeError(f"{handler.__name__}: its contract declares {list(contract)}; its inputs are {inputs}")

        def checked(args: tuple, kwargs: dict) -> tuple[gr.Request | None, inspect.BoundArguments]:
            request, args = (args[0], args[1:]) if args and isinstance(args[0], gr.Request) else (None, args)
            try:
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
            except TypeError:
                raise _refusal(handler.__name__, ConfigError(
                    f"{handler.__name__} takes {len(inputs)} inputs ({', '.join(p.label for p in contract.values())}); "
                    f"got {len(args)}"), request) from None
            for name, param in contract.items():
                try:
                    bound.arguments[name] = param.check(bound.arguments[name])
                except USER_ERRORS as error:
                    raise _refusal(handler.__name__, error, request) from None
            return request, bound

        if inspect.isgeneratorfunction(handler):
            @functools.wraps(handler)
            def wrapped(*args, **kwargs):
                request, bound = checked(args, kwargs)
                try:
                    yield from handler(*bound.args, **bound.kwargs)
                except Exception as error:
                    raise _refusal(handler.__name__, error, request) from None
        else:
            @functools.wraps(handler)
            def wrapped(*args, **kwargs):
                request, bound = checked(args, kwargs)
                try:
                    return handler(*bound.args, **bound.kwargs)
                except Exception as error:
                    raise _refusal(handler.__name__, error, request) from None

        request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request)
        wrapped.__signature__ = signature.replace(parameters=[request, *signature.parameters.values()])
        wrapped.__annotations__ = {**handler.__annotations__, "request": gr.Request}
        wrapped.contract = contract
        return wrapped

    return decorate


def _refusal(handler: str, error: Exception, request: gr.Request | None) -> gr.Error:
    """The error Gradio shows for `error`: its own sentence when it is a refusal, else a sentence that points at the
    log, where its traceback goes."""
    if isinstance(error, USER_ERRORS):
        message = str(error)
        state.log.info("refused %s: %s", handler, message)
    else:
        state.log.exception("%s failed", handler)
        message = (f"Something went wrong on the server while answering {handler} ({type(error).__name__}); it is in "
                   "the server's log. Try another input.")
    if request is not None and request.session_hash:
        refusals.remember(request.session_hash, message)
    return gr.Error(html.escape(message, quote=False), print_exception=False)  # the modal renders HTML


def show_refusal(request: gr.Request) -> str:
    """The status line after a refused event: the sentence this session was last refused with."""
    message, count = refusals.last(request.session_hash) if request else ("", 0)
    return f"⚠ {message}" + (f" *({count} refusals in a row)*" if count > 1 else "") if message else ""


def clear_refusals(request: gr.Request) -> str:
    """The status line after an event that succeeded: empty, and the count of refusals in a row starts again."""
    if request and request.session_hash:
        refusals.forget(request.session_hash)
    return ""


@endpoint(current=Text("current checkpoint", empty="", most=200))
def available_checkpoints(current: str) -> gr.Dropdown:
    """The checkpoint files the other tools accept, the shipped default first, then the newest.

    Args:
        current: the checkpoint chosen now; it stays chosen while it exists.
    """
    choices = list_checkpoints()
    return gr.Dropdown(choices=choices, value=current if current in choices else (choices[0] if choices else None))


@dataclass(frozen=True)
class Upload(Param):
    """A file this app received through an upload (the event's raw FileData), of one of `types`; with `reviews`, a
    review file whose format is checked from its bytes. Any other path is refused: it would let a client read files of
    the server. Its path."""

    types: tuple[str, ...] = UPLOAD_TYPES
    reviews: bool = True

    def check(self, value: object) -> Path | None:
        if not is_empty(value) and not state.SETTINGS.allow_uploads:  # said first: no file would do
            raise DataError(self.when_empty())
        return super().check(value)

    def parse(self, value: object) -> Path:
        raw = value.get("path") if isinstance(value, dict) else value
        if not isinstance(raw, str) or not raw:
            raise DataError(self.when_empty())
        path = Path(raw).resolve()
        if Path(gr.utils.get_upload_folder()).resolve() not in path.parents or not path.is_file():
            raise DataError(f"{path.name}: not a file uploaded to this app; upload it with the page's file box.")
        if not any(path.name.lower().endswith(s) for s in self.types):
            raise DataError(f"{path.name}: expected one of {', '.join(self.types)}")
        if path.stat().st_size > state.SETTINGS.max_upload_mb * 1024 * 1024:
            raise DataError(f"{path.name}: larger than the {state.SETTINGS.max_upload_mb} MB upload limit")
        if self.reviews:
            check_review_file(path)
        return path

    def expects(self) -> str:
        return (f"a file uploaded to this app ({', '.join(self.types)}; gradio_client's handle_file sends one)"
                + (": fastText lines, or CSV/TSV with a header" if self.reviews else ""))

    def when_empty(self) -> str:
        """What a person is told when this file is needed and missing (or sent where uploads are off)."""
        if not state.SETTINGS.allow_uploads:
            return (f"Uploads are off on this server (the Train tab's notice says why), so no {self.label} file can "
                    "be used; the bundled reviews can.")
        return f"Choose a {self.label} file to upload first: {self.expects()}."


def status_line(*events, status: gr.Markdown, clear: bool = True) -> None:
    """Show each event's refusal in `status` (and, with `clear`, empty it when the event succeeds)."""
    for event in events:
        event.failure(show_refusal, None, status, api_visibility="private")
        if clear:
            event.success(clear_refusals, None, status, api_visibility="private")
