"""``create_app``: the HTTP API as a FastAPI app, routes under ``/api/v1``.

The server (``gempix.server``) mounts the web app at ``/`` on this same app, so the API and the
web app share one process, one port and one ``Studio``. The app itself holds no logic: routes
translate to the ``Studio`` and its services (docs/architecture.md) and errors are rendered
by ``errors.install``.
"""

from __future__ import annotations

import contextlib

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from .. import __version__
from ..errors import NotFoundError
from ..service import Studio
from . import context as keys_of
from . import errors
from .config import ApiConfig
from .context import API_PREFIX, METHODS, ApiContext
from .errors import MethodNotAllowed
from .middleware import ApiMiddleware
from .routes import ROUTERS

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

    def unmatched(request: Request, rest: str = ""):
        request.scope[keys_of.ROUTE] = f"{API_PREFIX}/{{unmatched}}"
        allowed = sorted(
            {
                method
                for router in ROUTERS
                for route in router.routes
                if isinstance(route, APIRoute) and route.path_regex.match(request.url.path)
                for method in route.methods
            }
        )
        if allowed:
            error = MethodNotAllowed("This route does not accept that method.")
            error.headers = {"Allow": ", ".join(allowed)}
            raise error
        raise NotFoundError("No such route. The routes are listed at /api/v1/docs.")

    for path in (API_PREFIX, API_PREFIX + "/{rest:path}"):
        app.add_api_route(path, unmatched, methods=list(METHODS), include_in_schema=False)


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema, with request-schema errors documented as they are answered: 400 in
    the one error shape (FastAPI would document 422)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses", {})
            validation = responses.pop("422", None)
            if validation is not None and "400" not in responses:
                responses["400"] = {
                    "description": "Invalid request: the message names the field and the rule.",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}
                    },
                }
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    app.openapi_schema = schema
    return schema
