"""The HTTP API: FastAPI routes under ``/api/v1``, API keys, roles, rate limits, request log.

``create_app(studio, config)`` builds it; ``gempix.server`` serves it together with the web
app. See ``docs/api.md`` for every route.
"""

from __future__ import annotations

from .app import create_app
from .config import ApiConfig
from .context import API_PREFIX, ApiContext

__all__ = ["API_PREFIX", "ApiConfig", "ApiContext", "create_app"]
