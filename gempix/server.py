"""One process, one port: the HTTP API at ``/api/v1``, the web app at ``/``, MCP at ``/mcp``.

``build_server`` makes the FastAPI app (``gempix.api.create_app``) and mounts the Gradio web
app on it with ``gr.mount_gradio_app`` (its queue starts with the app; run history off, no
error details, no Gradio analytics), and, with ``mcp=True``, GemPix's MCP server
(``gempix/api/mcp``).
``serve`` runs it with uvicorn, over HTTPS when given a certificate and key. ``start_server``
runs any app in a background thread on a free port, for tests, benchmarks and notebooks.

Anonymous web use is rate limited per client too: POSTs that start Gradio events count
against ``rate_web`` under a per-process pseudonym of the client address (memory only).
Mounted Blocks are marked launched (``_mount``), so Gradio accepts file inputs only from its
upload folder, as it does for ``launch()``; the queue is the only way to run a function
(``api_open=False`` in ``ui.app.build_app``). The client address is the socket's unless the
peer is one of ``GEMPIX_TRUSTED_PROXIES``; there is no access log unless
``GEMPIX_ACCESS_LOG`` asks for one; ``serve`` runs under umask 077 with Gradio's cache in
``GEMPIX_CACHE_DIR`` (docs/security.md).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr
import uvicorn
from fastapi import FastAPI
from gradio.utils import get_upload_folder
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .api import ApiConfig, create_app
from .api.context import API_PREFIX, ApiContext
from .api.errors import RateLimited, error_body
from .api.mcp import MCP_PATH, mount_mcp
from .errors import SettingsError
from .filemodes import private_dir, private_process
from .service import Studio
from .settings import Settings
from .ui.app import build_app, launch_options, running_on_space

log = logging.getLogger("gempix.server")

# Gradio routes that start work; page loads, files and static assets are not counted.
# ``/api/`` and ``/run/`` are closed to queued functions (api_open=False) but still counted.
WEB_EVENT_PATHS = (
    "/gradio_api/queue/join",
    "/gradio_api/call/",
    "/gradio_api/run/",
    "/gradio_api/api/",
)


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
                limits = self.ctx.limits
                limits.check("web", limits.client_id(client[0] if client else None))
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
    private_dir(get_upload_folder())  # Gradio's cache: uploads, served copies, exports
    if mcp:
        mount_mcp(app, ctx)
    if ui:
        if blocks is None:
            blocks = build_app(studio, on_space=running_on_space())
        _mount(
            app,
            blocks,
            path="/",
            server_name=settings.host,
            server_port=settings.port,
            **launch_options(),
        )
    return app


def _mount(app: FastAPI, blocks: gr.Blocks, **options: Any) -> None:
    """``gr.mount_gradio_app``, then mark ``blocks`` launched: Gradio checks that a file input
    is one of this app's uploads (``processing_utils._check_allowed``) only for launched
    Blocks, so a mounted app would otherwise read any path a caller names, another user's
    images included (tests/test_security.py)."""
    gr.mount_gradio_app(app, blocks, **options)
    blocks.has_launched = True


def uvicorn_options(trusted_proxies: str = "", access_log: bool = False) -> dict[str, Any]:
    """How uvicorn sees clients: ``X-Forwarded-For`` only from ``trusted_proxies`` (uvicorn
    would otherwise believe any local peer, so a client behind no proxy could name a new
    address per request and escape every per-client limit), and no access log unless asked
    (it would keep addresses next to raw paths holding image ids)."""
    proxies = ",".join(part.strip() for part in trusted_proxies.split(",") if part.strip())
    return {
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
        "access_log": access_log,
    }


def private_serving(settings: Settings) -> None:
    """Before a server writes anything: umask 077 for this process, and Gradio's cache in the
    private ``settings.cache_dir`` (Gradio reads ``GRADIO_TEMP_DIR`` when it builds the app
    and at each request; its default, /tmp/gradio, is shared and world-readable)."""
    private_process()
    os.environ["GRADIO_TEMP_DIR"] = str(private_dir(settings.cache_dir))


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
    private_serving(settings)
    studio = Studio(settings)
    try:
        studio.provenance.check()  # a bad GEMPIX_C2PA_CERT/KEY stops here, not at an image
        app = build_server(studio, config=config, mcp=mcp)
        if settings.workers:  # connect (and deploy) before serving; the replicas load
            print(f"Connecting to the workers ({settings.workers})...", flush=True)
            print(f"Workers ready, serving {studio.model().name}.", flush=True)
        elif settings.warmup:
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
            **uvicorn_options(settings.trusted_proxies, settings.access_log),
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
    trusted_proxies: str = "",
    access_log: bool = False,
    log_level: str = "warning",
) -> RunningServer:
    """Run ``app`` with uvicorn in a daemon thread; ``port=0`` picks a free port. Returns once
    the server listens (bounded by ``timeout`` seconds), with its URL. Clients are seen as
    ``serve`` sees them (``uvicorn_options``)."""
    _check_tls(ssl_certfile, ssl_keyfile)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        log_level=log_level,
        timeout_graceful_shutdown=1,  # open event streams (a client's heartbeat) end at once
        **uvicorn_options(trusted_proxies, access_log),
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
