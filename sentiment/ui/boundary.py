"""The boundary every handler goes through: refusals become sentences, and the values every tab reads are checked
here before any work is done."""
from __future__ import annotations

import functools
import html
import inspect
import threading
from collections import OrderedDict
from pathlib import Path

import gradio as gr

from ..checkpoint import list_checkpoints, resolve_checkpoint
from ..config import ConfigError
from ..data import DataError, check_review_file
from ..errors import USER_ERRORS
from ..predictor import Predictor
from . import state

MAX_REVIEW_CHARS = 2_000_000
UPLOAD_TYPES = [".txt", ".bz2", ".gz", ".csv", ".tsv"]  # review files


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


def endpoint(handler):
    """Every event handler goes through here. A refusal (a bad value, a file or checkpoint we cannot use) reaches the
    person or API client as its sentence and the log as one line; anything unexpected is logged with its traceback
    and answered with a sentence too. Gradio hands the wrapper the request first (its signature asks for one), so
    that the page can show the session's last refusal in a status line (`show_refusal`); a direct call passes none."""

    def refusal(error: Exception, request: gr.Request | None) -> gr.Error:
        if isinstance(error, USER_ERRORS):
            message = str(error)
            state.log.info("refused %s: %s", handler.__name__, message)
        else:
            state.log.exception("%s failed", handler.__name__)
            message = (f"Something went wrong on the server while answering {handler.__name__} "
                       f"({type(error).__name__}); it is in the server's log. Try another input.")
        if request is not None and request.session_hash:
            refusals.remember(request.session_hash, message)
        return gr.Error(html.escape(message, quote=False), print_exception=False)  # the modal renders HTML

    def split(args: tuple) -> tuple[gr.Request | None, tuple]:
        return (args[0], args[1:]) if args and isinstance(args[0], gr.Request) else (None, args)

    if inspect.isgeneratorfunction(handler):
        @functools.wraps(handler)
        def wrapped(*args, **kwargs):
            request, args = split(args)
            try:
                yield from handler(*args, **kwargs)
            except Exception as error:
                raise refusal(error, request) from None
    else:
        @functools.wraps(handler)
        def wrapped(*args, **kwargs):
            request, args = split(args)
            try:
                return handler(*args, **kwargs)
            except Exception as error:
                raise refusal(error, request) from None

    signature = inspect.signature(handler)
    request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request)
    wrapped.__signature__ = signature.replace(parameters=[request, *signature.parameters.values()])
    wrapped.__annotations__ = {**handler.__annotations__, "request": gr.Request}
    return wrapped


def show_refusal(request: gr.Request) -> str:
    """The status line after a refused event: the sentence this session was last refused with."""
    message, count = refusals.last(request.session_hash) if request else ("", 0)
    return f"⚠ {message}" + (f" *({count} refusals in a row)*" if count > 1 else "") if message else ""


def clear_refusals(request: gr.Request) -> str:
    """The status line after an event that succeeded: empty, and the count of refusals in a row starts again."""
    if request and request.session_hash:
        refusals.forget(request.session_hash)
    return ""


def review_text(review: object) -> str:
    """A review as the model may read it; an empty, non-text or oversized one is refused."""
    if not isinstance(review, str):
        raise ConfigError(f"The review must be text; got {type(review).__name__}.")
    if not review.strip():
        raise ConfigError("The review is empty: type or paste a customer review first.")
    if len(review) > MAX_REVIEW_CHARS:
        raise ConfigError(f"The review is {len(review):,} characters; the limit is {MAX_REVIEW_CHARS:,}.")
    # A lone surrogate (JSON allows one) cannot be encoded in any reply: it becomes U+FFFD.
    return review.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def switch(value: object, name: str) -> bool:
    """A switch's value from a checkbox or an API call: true or false, and nothing read by its truthiness."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false; got {str(value)[:40]!r}")
    return value


def available_checkpoints(current: str) -> gr.Dropdown:
    """The checkpoint files the other tools accept, the shipped default first, then the newest.

    Args:
        current: the checkpoint chosen now; it stays chosen while it exists.
    """
    choices = list_checkpoints()
    return gr.Dropdown(choices=choices, value=current if current in choices else (choices[0] if choices else None))


def uploaded_file(upload: object, what: str, types: list[str], missing: str) -> Path:
    """A file this app received through an upload (the event's raw FileData). Any other path is refused: it would let
    a client read files of the server."""
    if not state.SETTINGS.allow_uploads:
        raise DataError(f"Uploads are off on this server (the Train tab's notice says why), so no "
                        f"{what} file can be used; the bundled reviews can.")
    raw = upload.get("path") if isinstance(upload, dict) else upload
    if not isinstance(raw, str) or not raw:
        raise DataError(missing)
    path = Path(raw).resolve()
    if Path(gr.utils.get_upload_folder()).resolve() not in path.parents or not path.is_file():
        raise DataError(f"{path.name}: not a file uploaded to this app; upload it with the page's file box.")
    if not any(path.name.lower().endswith(s) for s in types):
        raise DataError(f"{path.name}: expected one of {', '.join(types)}")
    if path.stat().st_size > state.SETTINGS.max_upload_mb * 1024 * 1024:
        raise DataError(f"{path.name}: larger than the {state.SETTINGS.max_upload_mb} MB upload limit")
    return path


def review_file(upload: object, what: str) -> Path:
    """An uploaded review file, its format checked from its bytes before any work starts."""
    path = uploaded_file(upload, what, UPLOAD_TYPES,
                         "Choose a file to upload first (fastText .txt/.bz2/.gz, or CSV/TSV with a header).")
    check_review_file(path)
    return path


def cached_predictor(checkpoint: object) -> Predictor:
    return state.predictors.get(resolve_checkpoint(checkpoint))


def status_line(*events, status: gr.Markdown, clear: bool = True) -> None:
    """Show each event's refusal in `status` (and, with `clear`, empty it when the event succeeds)."""
    for event in events:
        event.failure(show_refusal, None, status, api_visibility="private")
        if clear:
            event.success(clear_refusals, None, status, api_visibility="private")
