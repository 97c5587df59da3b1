"""The API's routes, one module per noun; ``ROUTERS`` in the order the docs list them."""

from __future__ import annotations

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
