"""Every API error in one JSON shape, rendered by one set of handlers.

``{"ok": false, "error": <message>, "status": <HTTP status>}``, whatever failed: a GemPixError
from the service (its message and status), a request that does not match the schema (400, in
the words of every door: ``gempix.params.describe``, never echoing a prompt or an unknown
field's name), an unknown route (404) or method (405),
or an unexpected exception (500 with a generic message; the details go to the server log
only). ``tests/test_api_errors.py`` drives one error of each class through the API.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import GemPixError, ValidationError
from ..params import describe

log = logging.getLogger("gempix.api")

INTERNAL_ERROR = "Internal error: the request was not completed. The server log has details."
ERROR_CLASS_KEY = "gempix.error_class"  # where handlers leave the class name for the request log


class PayloadTooLarge(ValidationError):
    """The body, or an image in it, is larger than this server accepts."""

    status = 413


class NotAcceptable(ValidationError):
    """The response type the client asks for cannot be given (several images as one PNG)."""

    status = 406


class MethodNotAllowed(GemPixError):
    status = 405


class RateLimited(GemPixError):
    """Too many requests for this key (or client) in the window; retry after ``retry_after``."""

    status = 429

    def __init__(self, message: str, headers: dict[str, str]):
        super().__init__(message)
        self.headers = headers


class Busy(GemPixError):
    """The generation queue is full; try again shortly."""

    status = 503


class GenerationTimeout(GemPixError):
    """The generation did not finish within the server's time limit."""

    status = 504


class ClientGone(GemPixError):
    """The client disconnected; its queued or running generation was cancelled."""

    status = 499  # nginx's "client closed request": the client never sees it; the log does


def error_body(message: str, status: int) -> dict[str, Any]:
    """The one error shape."""
    return {"ok": False, "error": message, "status": status}


def error_response(
    request: Request | None, error_class: str, message: str, status: int, headers=None
) -> JSONResponse:
    if request is not None:
        request.scope[ERROR_CLASS_KEY] = error_class
    return JSONResponse(error_body(message, status), status_code=status, headers=headers)


def _gempix_error(request: Request, error: GemPixError) -> JSONResponse:
    status = int(getattr(error, "status", 400))
    headers = dict(getattr(error, "headers", None) or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="gempix"')
    message = error.message
    if status == 500:  # store failures name files and database internals: not for clients
        log.error("%s: %s", type(error).__name__, error.message)
        message = INTERNAL_ERROR
    return error_response(request, type(error).__name__, message, status, headers or None)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,39}")


def _field(part: Any) -> str:
    """A location part as it may be shown: an index, or a plain field name (else "?")."""
    if isinstance(part, int):
        return str(part)
    return str(part) if _NAME.fullmatch(str(part)) else "?"


def describe_validation(errors: list[dict[str, Any]]) -> str:
    """Field and rule of each schema error (at most 3), as every door words them."""
    shown = []
    for item in errors:
        location = [_field(p) for p in item.get("loc", ()) if p not in ("body", "query", "path")]
        kind = item.get("type", "")
        if kind == "json_invalid":
            return "body: not valid JSON."
        if kind == "extra_forbidden":  # the name is the client's text: not echoed
            parent = ".".join(location[:-1]) or "body"
            item = {
                "type": "value_error",
                "ctx": {"error": f"{parent}: unknown field (the schema is at /api/v1/docs)."},
            }
        shown.append({**item, "loc": tuple(location) or ("body",)})
    return describe(shown)


def _request_validation(request: Request, error: RequestValidationError) -> JSONResponse:
    return error_response(request, "ValidationError", describe_validation(error.errors()), 400)


def _http_exception(request: Request, error: StarletteHTTPException) -> JSONResponse:
    names = {404: "NotFoundError", 405: "MethodNotAllowed", 413: "PayloadTooLarge"}
    messages = {
        404: "No such route. The routes are listed at /api/v1/docs.",
        405: "This route does not accept that method.",
    }
    status = error.status_code
    message = messages.get(status) or (
        str(error.detail) if isinstance(error.detail, str) else "Request failed."
    )
    name = names.get(status, "HTTPError")
    return error_response(request, name, message, status, getattr(error, "headers", None))


def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.error(
        "unexpected %s in %s %s",
        type(error).__name__,
        request.method,
        request.scope.get("route").path if request.scope.get("route") else "?",
        exc_info=(type(error), error, error.__traceback__),
    )
    return error_response(request, "InternalError", INTERNAL_ERROR, 500)


def install(app: FastAPI) -> None:
    """Register the handlers: service errors, schema errors, HTTP errors, everything else."""
    app.add_exception_handler(GemPixError, _gempix_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, _unexpected)


def retry_after(reset_at: float, now: float) -> str:
    """Whole seconds until ``reset_at`` (at least 1), for ``Retry-After``."""
    return str(max(1, math.ceil(reset_at - now)))
