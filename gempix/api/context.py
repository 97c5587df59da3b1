"""What every route of one API app shares: the studio, its limits, the GPU queue."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

from fastapi import Request

from ..errors import GemPixError
from ..keys import KeyInfo
from ..privacy.identity import server_secret
from ..service import Studio
from .config import ApiConfig
from .gpu import GpuQueue
from .ratelimit import RateLimits, client_id

log = logging.getLogger("gempix.api")

API_PREFIX = "/api/v1"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")  # what the log records
TOUCH_EVERY_S = 60.0  # a key's last_used_at is written at most once a minute

# Keys of the ASGI scope where a request's facts are left for the request log.
KEY = "gempix.key"  # the verified KeyInfo
CLAIMED_PREFIX = "gempix.claimed_prefix"  # a real key's prefix sent with a wrong secret
ROUTE = "gempix.route"  # a route template set by hand (the catch-all)
RATE_HEADERS = "gempix.rate_headers"  # X-RateLimit-* for the response
ANONYMOUS_LOG = "gempix.anonymous_log"  # log without key or user (the caller was just erased)


@dataclasses.dataclass
class ApiContext:
    studio: Studio
    config: ApiConfig
    limits: RateLimits
    gpu: GpuQueue
    _touched: dict[str, float] = dataclasses.field(default_factory=dict)
    _erased: set[str] = dataclasses.field(default_factory=set)  # pseudonyms, memory only
    _touch_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @classmethod
    def create(cls, studio: Studio, config: ApiConfig) -> ApiContext:
        return cls(
            studio=studio,
            config=config,
            limits=RateLimits(config, secret=server_secret(studio.settings)),
            gpu=GpuQueue(config.max_queue, workers=config.max_batch),
        )

    def touch(self, prefix: str) -> None:
        """Note that the key was used (a store write, so at most once a minute per key)."""
        now = time.monotonic()
        with self._touch_lock:
            if now - self._touched.get(prefix, -TOUCH_EVERY_S) < TOUCH_EVERY_S:
                return
            self._touched[prefix] = now
        try:
            self.studio.keys.touch(prefix)
        except GemPixError as error:
            log.warning("could not note the use of an API key: %s", type(error).__name__)

    def forget(self, user_id: str) -> None:
        """From now on log this user's requests (in flight, or late) without key or id."""
        self._erased.add(client_id("erased:" + user_id))

    def record(
        self,
        route: str,
        method: str,
        status: int,
        latency_ms: float,
        *,
        key: KeyInfo | None = None,
        key_prefix: str | None = None,
        error_class: str | None = None,
    ) -> None:
        """One ``api_requests`` row (buffered): never a body, a raw path, a secret or an IP."""
        if key is not None and client_id("erased:" + key.user_id) in self._erased:
            key = key_prefix = None
        try:
            self.studio.keys.log_request(
                route,
                method,
                status,
                latency_ms,
                key_prefix=key.prefix if key else key_prefix,
                user_id=key.user_id if key else None,
                error_class=error_class if status >= 400 else None,
            )
        except GemPixError as error:
            log.warning("API request not logged: %s", type(error).__name__)


async def context(request: Request) -> ApiContext:
    """The app's ApiContext (a FastAPI dependency; async: no thread-pool hop for a lookup)."""
    return request.app.state.gempix
