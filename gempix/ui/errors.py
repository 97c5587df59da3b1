"""Errors at the web door: what a person sees when something goes wrong.

Every handler is wrapped by ``guarded``: a ``GemPixError`` becomes ``gr.Error`` with its own
message (written for the person who caused it), anything else becomes one generic sentence and
a log line on the server. A stack trace, a path or a prompt never reaches the page.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from ..errors import GemPixError

log = logging.getLogger("gempix.ui")

GENERIC_ERROR = (
    "Something went wrong on our side and nothing was changed. Please try again; if it keeps "
    "happening, tell the person who runs this GemPix."
)


class Cancelled(Exception):
    """Raised inside a running generation when its user pressed Cancel."""


def user_error(message: str) -> gr.Error:
    return gr.Error(message, print_exception=False)


@contextlib.contextmanager
def _translated(fn: Callable[..., Any]) -> Iterator[None]:
    try:
        yield
    except gr.Error:
        raise
    except GemPixError as error:
        raise user_error(error.message) from None
    except Cancelled:
        raise user_error("Cancelled. Nothing was saved.") from None
    except Exception:
        log.exception("web handler %s failed", getattr(fn, "__name__", "?"))
        raise user_error(GENERIC_ERROR) from None


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with errors translated for the page; the signature is kept for Gradio. A
    generator stays a generator (Gradio streams only from generator functions)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with _translated(fn):
                yield from fn(*args, **kwargs)

        return stream

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _translated(fn):
            return fn(*args, **kwargs)

    return wrapper
