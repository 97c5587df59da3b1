"""The MCP transport: one low-level ``mcp`` Server, stateless over streamable HTTP at ``/mcp``.

Built on the official SDK rather than Gradio's MCP server so that the tools' schemas are the
one request model's (``gempix/params.py``), results carry the image itself as MCP image
content, and ``serverInfo`` names GemPix and its version.

A tool call runs like an API request: the API key comes as a header of the MCP connection
(``Authorization: Bearer gpx_...``); a missing or bad key is counted against the client's
anonymous budget (``auth.anonymous``, as the HTTP API does) before it is refused, so guessing
keys over MCP costs as much as over HTTP; a good key is counted against its request budget
and, for a tool that generates, its generation budget. Each call leaves one request-log row
(route ``/mcp/<tool>``). Work runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import anyio
from fastapi import FastAPI
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.routing import Route

from ... import __version__
from ...errors import GemPixError, NotFoundError
from ...keys import InvalidKeyError, KeyInfo
from ..auth import anonymous
from ..context import ApiContext
from ..errors import INTERNAL_ERROR
from .tools import TOOLS, Call

log = logging.getLogger("gempix.api")

MCP_PATH = "/mcp"
# The endpoint, with and without the slash, and the address GemPix's MCP had while it was
# Gradio's (kept so that existing client configurations keep working).
MCP_PATHS = (MCP_PATH, MCP_PATH + "/", MCP_PATH + "/gradio_api/mcp", MCP_PATH + "/gradio_api/mcp/")
INSTRUCTIONS = (
    "GemPix makes images from text. Send your GemPix API key as the HTTP header "
    "'Authorization: Bearer gpx_...' of this connection. generate_image saves its images to "
    "your gallery and returns them (image content) with their URLs; list_images pages through "
    "your gallery; verify_image reports the provenance marks an image carries."
)


def build_mcp(ctx: ApiContext) -> Server:
    """The MCP server of ``ctx``'s studio: GemPix's tools, answered in a worker thread."""
    server: Server = Server("GemPix", version=__version__, instructions=INSTRUCTIONS)

    @server.list_tools()
    async def list_tools() -> list[types.Tool]:
        return [tool.definition(ctx.config) for tool in TOOLS.values()]

    # Arguments are checked by the tools' own models (GemPix's words, never echoing a prompt),
    # after the key: the SDK's JSON-schema check would quote the client's values.
    @server.call_tool(validate_input=False)
    async def call_tool(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        http = server.request_context.request
        return await anyio.to_thread.run_sync(run_call, ctx, name, arguments or {}, http)

    return server


def authenticate(ctx: ApiContext, http: Request | None) -> KeyInfo:
    """The connection's key (InvalidKeyError after counting the client as anonymous)."""
    header = http.headers.get("authorization") if http is not None else None
    try:
        return ctx.studio.keys.verify(header)
    except InvalidKeyError:
        if http is not None:
            anonymous(http, ctx)  # RateLimited once the client's anonymous budget is spent
        raise


def base_url(http: Request | None) -> str:
    """Where this server is reached, as the client reached it (for absolute image URLs)."""
    return str(http.base_url).rstrip("/") if http is not None else ""


def run_call(
    ctx: ApiContext, name: str, arguments: dict[str, Any], http: Request | None
) -> types.CallToolResult:
    """One tool call: key, budgets, the tool, and one request-log row, whatever happens."""
    started = time.perf_counter()
    tool = TOOLS.get(name)
    key: KeyInfo | None = None
    status, error_class = 200, None
    try:
        key = authenticate(ctx, http)
        ctx.limits.check("requests", key.prefix)
        ctx.touch(key.prefix)
        if tool is None:
            raise NotFoundError(f"No such tool; the tools are {', '.join(TOOLS)}.")
        if tool.budget:
            ctx.limits.check(tool.budget, key.prefix)
        content, structured = tool(Call(ctx, key, base_url(http)), arguments)
        return types.CallToolResult(content=content, structuredContent=structured)
    except GemPixError as error:
        status, error_class = int(getattr(error, "status", 400)), type(error).__name__
        if status == 500:
            log.error("%s in the MCP tool: %s", error_class, error.message)
        return _error(error.message if status != 500 else INTERNAL_ERROR)
    except Exception as error:  # noqa: BLE001 - the tool answers a generic message
        status, error_class = 500, "InternalError"
        log.error("unexpected %s in the MCP tool", type(error).__name__, exc_info=True)
        return _error(INTERNAL_ERROR)
    finally:
        ctx.record(
            f"{MCP_PATH}/{name if tool else '{unknown}'}",
            "POST",
            status,
            (time.perf_counter() - started) * 1000,
            key=key,
            error_class=error_class,
        )


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], isError=True
    )


def mount_mcp(app: FastAPI, ctx: ApiContext) -> None:
    """Serve the MCP endpoint on ``app`` at ``MCP_PATHS``; its session manager runs for the
    app's lifetime (wrapped around the app's own lifespan)."""
    manager = StreamableHTTPSessionManager(app=build_mcp(ctx), stateless=True)
    for path in MCP_PATHS:
        app.router.routes.append(Route(path, endpoint=_Endpoint(manager), include_in_schema=False))
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application):
        async with manager.run(), inner(application) as state:
            yield state

    app.router.lifespan_context = lifespan


class _Endpoint:
    """An ASGI app (not a function), so Starlette's ``Route`` hands it scope, receive and send
    untouched."""

    def __init__(self, manager: StreamableHTTPSessionManager):
        self.manager = manager

    async def __call__(self, scope, receive, send) -> None:
        await self.manager.handle_request(scope, receive, send)
