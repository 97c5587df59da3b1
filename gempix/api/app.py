"""``create_app``: the HTTP API as a FastAPI app, routes under ``/api/v1``.

The server (``gempix.server``) mounts the web app at ``/`` on this same app, so the API and the
web app share one process, one port and one ``Studio``. The app itself holds no logic: routes
translate to the ``Studio`` and its services (docs/architecture.md) and errors are rendered
by ``errors.install``.
"""

from __future__ import annotations

import contextlib

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import Route

from .. import __version__
from ..errors import GemPixError, NotFoundError
from ..service import Studio
from . import context as keys_of
from . import errors
from .config import ApiConfig
from .context import API_PREFIX, ApiContext
from .errors import MethodNotAllowed
from .middleware import ApiMiddleware
from .routes import ROUTERS, allowed_methods
from .routes.common import DESCRIBED
from .schemas import serve_limits

DESCRIPTION = (
    "The GemPix HTTP API: generate images, manage your gallery and characters, and use your "
    "privacy rights. Send your API key as 'Authorization: Bearer gpx_...'. Every error is "
    '{"ok": false, "error": ..., "status": ...}.'
)


def create_app(studio: Studio, config: ApiConfig | None = None) -> FastAPI:
    """The API app for ``studio``; ``config``: limits (default: from ``studio.settings``)."""
    config = config or ApiConfig.from_settings(studio.settings)
    ctx = ApiContext.create(studio, config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            yield
        finally:
            ctx.gpu.shutdown()

    app = FastAPI(
        title="GemPix API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        generate_unique_id_function=lambda route: route.name,  # operationId: the function's
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.gempix = ctx
    errors.install(app)
    app.add_middleware(ApiMiddleware, ctx=ctx)
    for router in ROUTERS:
        app.include_router(router)
    _add_catch_all(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _add_catch_all(app: FastAPI) -> None:
    """Unknown paths under /api/v1 get the API's 404 (or 405), not the web app's page."""
    for path in (API_PREFIX, API_PREFIX + "/{rest:path}"):
        app.router.routes.append(Route(path, _Unmatched(), include_in_schema=False))


class _Unmatched:
    """Any method (TRACE, CONNECT, made-up ones) on a path where no API route takes it: 405 or
    404 in the one error shape. An ASGI app, not a function, so that Starlette adds no method
    list of its own."""

    async def __call__(self, scope, receive, send) -> None:
        scope[keys_of.ROUTE] = f"{API_PREFIX}/{{unmatched}}"
        raise not_matched(scope["path"])


def not_matched(path: str) -> GemPixError:
    """405 with ``Allow`` when a route exists at ``path`` for other methods, else 404."""
    allowed = allowed_methods(path)
    if allowed:
        error = MethodNotAllowed("This route does not accept that method.")
        error.headers = {"Allow": ", ".join(allowed)}
        return error
    return NotFoundError("No such route. The routes are listed at /api/v1/docs.")


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema, with every error documented as it is answered: request-schema errors
    as 400 in the one error shape (FastAPI would document 422), 500 on every route, 413 on
    every route with a body; and this server's
    own limits (``schemas.serve_limits``)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if operation.get("parameters") or operation.get("requestBody"):
                responses.setdefault("400", _documented(400))
            if operation.get("requestBody"):
                responses.setdefault("413", _documented(413))
            responses.setdefault("500", _documented(500))
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for body in ("GenerateBody", "EditBody"):
        serve_limits(components[body]["properties"], app.state.gempix.config.max_images)
    app.openapi_schema = schema
    return schema


def _documented(status: int) -> dict:
    return {
        "description": DESCRIBED[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    }
