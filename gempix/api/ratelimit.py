"""Per-key rate limits with the ``limits`` library (moving window).

Three budgets: every request of a key, the generations of a key, and the requests that carry
no valid key, counted per client address (and a fourth for the web app's events, see
``gempix.server``). A budget whose rate is ``off`` is not counted at all. Client addresses are
never stored as such: they are keyed with a random salt that exists only in this process's
memory (``client_id``), and with the default in-memory storage nothing of them outlives the
process. With ``redis_url`` the counters are shared by several front processes, so a client
must have the same pseudonym in each: ``RateLimits.client_id`` then keys the address with a
salt derived from the server secret the fronts share and the UTC day, so it still rotates
daily (a client's budget starts afresh at midnight UTC).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import threading
import time

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from .config import ApiConfig
from .errors import RateLimited, retry_after

_SALT = secrets.token_bytes(32)  # per process, never written anywhere


def client_id(address: str | None) -> str:
    """A per-process pseudonym of a client address, for counting it (never the address)."""
    return hmac.new(_SALT, (address or "unknown").encode(), hashlib.sha256).hexdigest()[:24]


@dataclasses.dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # Unix time when the window next has room

    def headers(self, now: float | None = None) -> dict[str, str]:
        now = time.time() if now is None else now
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(int(self.reset_at)),
        }
        if not self.allowed:
            headers["Retry-After"] = retry_after(self.reset_at, now)
        return headers


class RateLimits:
    """The budgets of one app; ``check`` raises RateLimited with the headers.

    ``secret``: the server secret, which fronts sharing a Redis must share too (their
    clients' pseudonyms must agree); unused with the in-memory storage.
    """

    def __init__(self, config: ApiConfig, secret: bytes | None = None):
        self._secret = secret if config.redis_url else None
        storage = storage_from_string(config.redis_url or "memory://")
        self._limiter = MovingWindowRateLimiter(storage)
        self.items: dict[str, RateLimitItem] = {
            budget: parse(getattr(config, f"rate_{budget}"))
            for budget in ("requests", "generate", "anonymous", "web")
            if config.limited(budget)
        }
        self._lock = threading.Lock()  # hit + stats as one step, so the numbers agree

    def client_id(self, address: str | None) -> str:
        """The pseudonym a client address is counted under: this process's (``client_id``),
        or, with Redis, one every front sharing the server secret computes alike today."""
        if self._secret is None:
            return client_id(address)
        day = time.strftime("%Y-%m-%d", time.gmtime())
        salt = hmac.new(self._secret, f"ratelimit:{day}".encode(), hashlib.sha256).digest()
        return hmac.new(salt, (address or "unknown").encode(), hashlib.sha256).hexdigest()[:24]

    def hit(self, budget: str, identity: str) -> Decision:
        item = self.items[budget]
        with self._lock:
            allowed = self._limiter.hit(item, budget, identity)
            stats = self._limiter.get_window_stats(item, budget, identity)
        return Decision(allowed, item.amount, max(0, stats.remaining), stats.reset_time)

    def check(self, budget: str, identity: str) -> Decision | None:
        """Count one request against ``budget``; RateLimited (429) when it is spent; None
        when the budget is off."""
        if budget not in self.items:
            return None
        decision = self.hit(budget, identity)
        if not decision.allowed:
            item = self.items[budget]
            raise RateLimited(
                f"Rate limit reached: {item.amount} per {_window(item)} "
                f"({'generations' if budget == 'generate' else 'requests'}). "
                "Retry after the number of seconds in the Retry-After header.",
                decision.headers(),
            )
        return decision


def _window(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"
