"""The API's routes, one module per noun; ``ROUTERS`` in the order the docs list them."""

from __future__ import annotations

from fastapi.routing import APIRoute

from . import admin, characters, edit, generate, images, me, meta, styles, verify

ROUTERS = [
    meta.router,
    generate.router,
    edit.router,
    images.router,
    verify.router,
    styles.router,
    characters.router,
    me.router,
    admin.router,
]


def allowed_methods(path: str) -> list[str]:
    """The methods the API's routes accept at ``path`` (empty: no route there), for 405's
    ``Allow``."""
    return sorted(
        {
            method
            for router in ROUTERS
            for route in router.routes
            if isinstance(route, APIRoute) and route.path_regex.match(path)
            for method in route.methods
        }
    )
