"""The request log and the body limit, as one pure ASGI middleware around ``/api/v1``.

Every request under the prefix leaves exactly one ``api_requests`` row: the route *template*
(``/api/v1/images/{image_id}``, never the requested path), method, status, latency, the key's
prefix and user, and the error class. Bodies, query strings, headers and client addresses are
never looked at for the log. Bodies over ``max_body_bytes`` are refused with 413: at once when
``Content-Length`` says so, else as soon as the streamed bytes pass the limit.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import context as keys_of
from .context import API_PREFIX, METHODS, ApiContext
from .errors import ERROR_CLASS_KEY, error_body

STATIC_PATHS = frozenset({f"{API_PREFIX}/openapi.json"})


def _too_large(limit: int) -> str:
    return f"The request body is larger than this server accepts ({limit:,} bytes)."


def route_template(scope: Scope) -> str:
    """The matched route's template; ``/api/v1/{unmatched}`` when none matched."""
    if scope.get(keys_of.ROUTE):
        return scope[keys_of.ROUTE]
    if scope.get("path") in STATIC_PATHS:  # FastAPI serves these without setting a route
        return scope["path"]
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str) and path.startswith(API_PREFIX):
        return path
    if isinstance(path, str) and path.startswith("/") and route is not None:
        return API_PREFIX + path  # a router included with the prefix given at inclusion
    return f"{API_PREFIX}/{{unmatched}}"


class ApiMiddleware:
    def __init__(self, app: ASGIApp, ctx: ApiContext):
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        outcome: dict[str, Any] = {"status": 500}
        limit = self.ctx.config.max_body_bytes
        try:
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                scope[ERROR_CLASS_KEY] = "PayloadTooLarge"
                outcome["status"] = 413
                response = JSONResponse(error_body(_too_large(limit), 413), status_code=413)
                await response(scope, receive, send)
                return
            await self.app(scope, _limited(receive, limit), _recording(scope, send, outcome))
        except Exception:
            if not outcome.get("started"):
                scope.setdefault(ERROR_CLASS_KEY, "InternalError")
                outcome["status"] = 500
            raise
        finally:
            self._log(scope, outcome["status"], (time.perf_counter() - started) * 1000)

    def _log(self, scope: Scope, status: int, latency_ms: float) -> None:
        method = scope.get("method", "")
        if method not in METHODS:  # the log's schema knows the standard methods only
            return
        anonymous = scope.get(keys_of.ANONYMOUS_LOG, False)
        self.ctx.record(
            route_template(scope),
            method,
            status,
            latency_ms,
            key=None if anonymous else scope.get(keys_of.KEY),
            key_prefix=None if anonymous else scope.get(keys_of.CLAIMED_PREFIX),
            error_class=scope.get(ERROR_CLASS_KEY),
        )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _limited(receive: Receive, limit: int) -> Receive:
    received = 0

    async def limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, detail=_too_large(limit))
        return message

    return limited


def _recording(scope: Scope, send: Send, outcome: dict[str, Any]) -> Send:
    async def recording(message: Message) -> None:
        if message["type"] == "http.response.start":
            outcome["status"] = message["status"]
            outcome["started"] = True
            extra = scope.get(keys_of.RATE_HEADERS)
            if extra:
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in extra.items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), str(value).encode()))
                message = {**message, "headers": headers}
        await send(message)

    return recording
