"""The boundary every handler goes through: refusals become sentences, and the values every tab reads are checked
here before any work is done."""
from __future__ import annotations

import functools
import html
import inspect

import gradio as gr

from ..checkpoint import resolve_checkpoint
from ..config import ConfigError
from ..errors import USER_ERRORS
from ..predictor import Predictor
from . import state

MAX_REVIEW_CHARS = 2_000_000


def endpoint(handler):
    """Every event handler goes through here. A refusal (a bad value, a file or checkpoint we cannot use) reaches the
    person or API client as its sentence and the log as one line; anything unexpected is logged with its traceback
    and answered with a sentence too."""

    def refusal(error: Exception) -> gr.Error:
        if isinstance(error, USER_ERRORS):
            message = str(error)
            state.log.info("refused %s: %s", handler.__name__, message)
        else:
            state.log.exception("%s failed", handler.__name__)
            message = (f"Something went wrong on the server while answering {handler.__name__} "
                       f"({type(error).__name__}); it is in the server's log. Try another input.")
        return gr.Error(html.escape(message, quote=False), print_exception=False)  # the modal renders HTML

    if inspect.isgeneratorfunction(handler):
        @functools.wraps(handler)
        def streaming(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except Exception as error:
                raise refusal(error) from None
        return streaming

    @functools.wraps(handler)
    def answering(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except Exception as error:
            raise refusal(error) from None
    return answering


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


def cached_predictor(checkpoint: object) -> Predictor:
    return state.predictors.get(resolve_checkpoint(checkpoint))
