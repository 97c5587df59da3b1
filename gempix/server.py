"""One process, one port: the HTTP API at ``/api/v1``, the web app at ``/``, MCP at ``/mcp``.

``build_server`` makes the FastAPI app (``gempix.api.create_app``) and mounts the Gradio web
app on it with ``gr.mount_gradio_app`` (its queue starts with the app; run history off, no
error details, no Gradio analytics), and, with ``mcp=True``, GemPix's MCP server
(``gempix/api/mcp``).
``serve`` runs it with uvicorn, over HTTPS when given a certificate and key. ``start_server``
runs any app in a background thread on a free port, for tests, benchmarks and notebooks.

Anonymous web use is rate limited per client too: POSTs that start Gradio events count
against ``rate_web`` under a per-process pseudonym of the client address (memory only).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path

import gradio as gr
import uvicorn
from fastapi import FastAPI
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .api import ApiConfig, create_app
from .api.context import API_PREFIX, ApiContext
from .api.errors import RateLimited, error_body
from .api.mcp import MCP_PATH, mount_mcp
from .api.ratelimit import client_id
from .errors import SettingsError
from .service import Studio
from .settings import Settings
from .ui.app import build_app, launch_options, running_on_space

log = logging.getLogger("gempix.server")

# Gradio routes that start work; page loads, files and static assets are not counted.
WEB_EVENT_PATHS = ("/gradio_api/queue/join", "/gradio_api/call/", "/gradio_api/run/")


class WebRateLimit:
    """Per-client limit on starting web app events (the web app has no API key to count)."""

    def __init__(self, app: ASGIApp, ctx: ApiContext):
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("method") == "POST"
            and scope.get("path", "").startswith(WEB_EVENT_PATHS)
        ):
            client = scope.get("client")
            try:
                self.ctx.limits.check("web", client_id(client[0] if client else None))
            except RateLimited as error:
                response = JSONResponse(
                    error_body(error.message, 429), status_code=429, headers=error.headers
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_server(
    studio: Studio,
    *,
    config: ApiConfig | None = None,
    mcp: bool = False,
    ui: bool = True,
    blocks: gr.Blocks | None = None,
) -> FastAPI:
    """The whole app for ``studio``: API, web app (``blocks``, default ``ui.app.build_app``),
    and with ``mcp`` the MCP server. ``ui=False`` serves the API alone."""
    app = create_app(studio, config)
    ctx: ApiContext = app.state.gempix
    if ctx.config.limited("web"):
        app.add_middleware(WebRateLimit, ctx=ctx)
    settings = studio.settings
    if mcp:
        mount_mcp(app, ctx)
    if ui:
        if blocks is None:
            blocks = build_app(studio, on_space=running_on_space())
        gr.mount_gradio_app(
            app,
            blocks,
            path="/",
            server_name=settings.host,
            server_port=settings.port,
            **launch_options(),
        )
    return app


def _check_tls(ssl_certfile: str | None, ssl_keyfile: str | None) -> None:
    if bool(ssl_certfile) != bool(ssl_keyfile):
        raise SettingsError("HTTPS needs both --ssl-certfile and --ssl-keyfile.")
    for path in (ssl_certfile, ssl_keyfile):
        if path and not Path(path).is_file():
            raise SettingsError(f"No such file: {path}")


def serve(
    settings: Settings,
    *,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    mcp: bool = False,
    config: ApiConfig | None = None,
    log_level: str = "info",
) -> None:
    """Serve GemPix on ``settings.host:settings.port`` until interrupted (Ctrl+C)."""
    _check_tls(ssl_certfile, ssl_keyfile)
    studio = Studio(settings)
    try:
        app = build_server(studio, config=config, mcp=mcp)
        if settings.warmup:
            print("Warming up the model before serving...", flush=True)
            print(f"Warm-up done in {studio.models.warm_up():.1f} s.", flush=True)
        scheme = "https" if ssl_certfile else "http"
        base = f"{scheme}://{settings.host}:{settings.port}"
        print(f"GemPix web app: {base}/   API: {base}{API_PREFIX}/docs", flush=True)
        if mcp:
            print(f"MCP server (streamable HTTP): {base}{MCP_PATH}/", flush=True)
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            log_level=log_level,
            timeout_graceful_shutdown=10,
        )
    finally:
        studio.close()


@dataclasses.dataclass
class RunningServer:
    """A server started by ``start_server``; ``stop()`` (or leave the ``with`` block)."""

    server: uvicorn.Server
    thread: threading.Thread
    url: str

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, timeout: float = 15.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start_server(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    timeout: float = 60.0,
) -> RunningServer:
    """Run ``app`` with uvicorn in a daemon thread; ``port=0`` picks a free port. Returns once
    the server listens (bounded by ``timeout`` seconds), with its URL."""
    _check_tls(ssl_certfile, ssl_keyfile)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        log_level="warning",
        timeout_graceful_shutdown=1,  # open event streams (a client's heartbeat) end at once
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gempix-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:  # bounded: the thread dies or the deadline passes
        if not thread.is_alive():
            raise RuntimeError("The server stopped while starting; see the log above.")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"The server did not start within {timeout} s.")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if ssl_certfile else "http"
    return RunningServer(server, thread, f"{scheme}://{host}:{bound}")
