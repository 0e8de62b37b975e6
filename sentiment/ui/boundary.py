"""The boundary every handler goes through: refusals become sentences, and the values every tab reads are checked
here before any work is done."""
from __future__ import annotations

import functools
import html
import inspect
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ..config import USER_ERRORS, ConfigError
from ..contract import REQUIRED, Param, Text, is_empty
from ..data.files import DataError, check_review_file
from ..model.checkpoint import list_checkpoints
from ..settings import Settings
from .jobs import log
from .lab import Lab

UPLOAD_TYPES = (".txt", ".bz2", ".gz", ".csv", ".tsv")  # review files


def endpoint(**contract: Param):
    """Every event handler goes through here, with its contract: each input's declaration (sentiment/contract.py),
    checked in order before the handler runs, which then reads the values checked. A refusal (a bad value, a file or
    checkpoint we cannot use) reaches the person or API client as its sentence and the log as one line; anything
    unexpected is logged with its traceback and answered with a sentence too. A handler whose first parameter is `lab`
    is handed the Lab (`serve` binds it for Gradio; a test or script passes it first). A handler with an input its
    contract does not declare is a mistake found at import."""

    def decorate(handler):
        signature = inspect.signature(handler)
        takes_lab = next(iter(signature.parameters), None) == "lab"
        declared = _input_signature(handler, signature, contract)

        def checked(lab: Lab | None, request: gr.Request | None, args: tuple, kwargs: dict) -> dict:
            try:
                bound = declared.bind(*args, **kwargs)
                bound.apply_defaults()
            except TypeError:
                labels = ", ".join(p.label for p in contract.values())
                raise _refusal(lab, handler.__name__, ConfigError(
                    f"{handler.__name__} takes {len(contract)} inputs ({labels}); got {len(args)}"), request) from None
            values = dict(bound.arguments)
            for name, param in contract.items():
                try:
                    value = values[name]
                    values[name] = param.check_with(value, lab.settings) if isinstance(param, Upload) else (
                        param.check(value))
                except USER_ERRORS as error:
                    raise _refusal(lab, handler.__name__, error, request) from None
            return {"lab": lab, **values} if takes_lab else values

        if inspect.isgeneratorfunction(handler):
            def call(lab: Lab | None, request: gr.Request | None, args: tuple, kwargs: dict):
                values = checked(lab, request, args, kwargs)
                try:
                    yield from handler(**values)
                except Exception as error:
                    raise _refusal(lab, handler.__name__, error, request) from None
        else:
            def call(lab: Lab | None, request: gr.Request | None, args: tuple, kwargs: dict):
                values = checked(lab, request, args, kwargs)
                try:
                    return handler(**values)
                except Exception as error:
                    raise _refusal(lab, handler.__name__, error, request) from None

        @functools.wraps(handler)
        def direct(*args, **kwargs):
            """The handler as a test or a script calls it: the Lab first when it takes one."""
            lab, args = (args[0], args[1:]) if takes_lab else (None, args)
            return call(lab, None, args, kwargs)

        direct.call, direct.contract, direct.takes_lab = call, contract, takes_lab
        direct.inputs = list(declared.parameters.values())
        return direct

    return decorate


def _input_signature(handler, signature: inspect.Signature, contract: dict[str, Param]) -> inspect.Signature:
    """The inputs a client sends, by name, in the contract's order: the handler's own parameters (but the Lab), and
    for a handler that takes `**values`, the contract's other inputs as keywords of it. A gr.Progress parameter stays
    (Gradio fills it in)."""
    own = [p for name, p in signature.parameters.items() if name != "lab" and p.kind is not p.VAR_KEYWORD]
    named = [p for p in own if not isinstance(p.default, gr.Progress)]
    rest = list(contract)[len(named):] if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()) else []
    if [p.name for p in named] + rest != list(contract):
        raise TypeError(f"{handler.__name__}: its contract declares {list(contract)}; its inputs are "
                        f"{[p.name for p in named]}")
    keyword = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in rest]
    return signature.replace(parameters=[*named, *keyword, *(p for p in own if p not in named)])


def serve(lab: Lab, handler):
    """An @endpoint handler as Gradio calls it: the Lab bound, and the request first, so that the page can show the
    session's last refusal in a status line (`show_refusal`). Its signature names the inputs, as the API page shows
    them, and its docstring describes them."""
    if inspect.isgeneratorfunction(handler.__wrapped__):
        def served(request: gr.Request, *args, **kwargs):
            yield from handler.call(lab, request, args, kwargs)
    else:
        def served(request: gr.Request, *args, **kwargs):
            return handler.call(lab, request, args, kwargs)
    served.__name__, served.__doc__ = handler.__name__, handler.__doc__
    request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request)
    served.__signature__ = inspect.Signature([request, *handler.inputs])
    served.__annotations__ = {**{p.name: p.annotation for p in handler.inputs}, "request": gr.Request}
    return served


def _refusal(lab: Lab | None, handler: str, error: Exception, request: gr.Request | None) -> gr.Error:
    """The error Gradio shows for `error`: its own sentence when it is a refusal, else a sentence that points at the
    log, where its traceback goes."""
    if isinstance(error, USER_ERRORS):
        message = str(error)
        log.info("refused %s: %s", handler, message)
    else:
        log.exception("%s failed", handler)
        message = (f"Something went wrong on the server while answering {handler} ({type(error).__name__}); it is in "
                   "the server's log. Try another input.")
    if lab is not None and request is not None and request.session_hash:
        lab.refusals.remember(request.session_hash, message)
    return gr.Error(html.escape(message, quote=False), print_exception=False)  # the modal renders HTML


def status_line(lab: Lab, *events, status: gr.Markdown, clear: bool = True) -> None:
    """Show each event's refusal in `status` (and, with `clear`, empty it when the event succeeds)."""

    def show_refusal(request: gr.Request) -> str:
        """The status line after a refused event: the sentence this session was last refused with."""
        message, count = lab.refusals.last(request.session_hash) if request else ("", 0)
        return f"⚠ {message}" + (f" *({count} refusals in a row)*" if count > 1 else "") if message else ""

    def clear_refusals(request: gr.Request) -> str:
        """The status line after an event that succeeded: empty, and the count of refusals in a row starts again."""
        if request and request.session_hash:
            lab.refusals.forget(request.session_hash)
        return ""

    for event in events:
        event.failure(show_refusal, None, status, api_visibility="private")
        if clear:
            event.success(clear_refusals, None, status, api_visibility="private")


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

    def check_with(self, value: object, settings: Settings) -> Path | None:
        """The file's path, as this server's settings allow uploads (an Upload is checked with them, not `check`)."""
        if is_empty(value):
            if self.empty is REQUIRED:
                raise DataError(self.when_empty(settings))
            return self.empty
        if not settings.allow_uploads:  # said first: no file would do
            raise DataError(self.when_empty(settings))
        path = self.parse(value)
        if path.stat().st_size > settings.max_upload_mb * 1024 * 1024:
            raise DataError(f"{path.name}: larger than the {settings.max_upload_mb} MB upload limit")
        if self.reviews:
            check_review_file(path)
        return path

    def check(self, value: object) -> Path | None:
        raise TypeError("an upload is checked against the server's settings: check_with(value, settings)")

    def parse(self, value: object) -> Path:
        raw = value.get("path") if isinstance(value, dict) else value
        if not isinstance(raw, str) or not raw:
            raise DataError(self.when_empty(Settings()))
        path = Path(raw).resolve()
        if Path(gr.utils.get_upload_folder()).resolve() not in path.parents or not path.is_file():
            raise DataError(f"{path.name}: not a file uploaded to this app; upload it with the page's file box.")
        if not any(path.name.lower().endswith(s) for s in self.types):
            raise DataError(f"{path.name}: expected one of {', '.join(self.types)}")
        return path

    def expects(self) -> str:
        return (f"a file uploaded to this app ({', '.join(self.types)}; gradio_client's handle_file sends one)"
                + (": fastText lines, or CSV/TSV with a header" if self.reviews else ""))

    def when_empty(self, settings: Settings) -> str:
        """What a person is told when this file is needed and missing (or sent where uploads are off)."""
        if not settings.allow_uploads:
            return (f"Uploads are off on this server (the Train tab's notice says why), so no {self.label} file can "
                    "be used; the bundled reviews can.")
        return f"Choose a {self.label} file to upload first: {self.expects()}."
