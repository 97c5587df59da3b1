"""Each user's generation budget, whichever door and whichever of their keys they use.

The HTTP API limits generations per key (``api/ratelimit.py``), but a user can hold several
keys and use the web app and MCP besides, so a per-key limit alone multiplies with their keys.
This budget counts a user's generations (``GEMPIX_RATE_USER_GENERATE``, a moving window) in
the core, in ``Studio.admit``, so every door spends from the same one; the local operator
(the CLI or a notebook on their own installation) is not counted. Counters live in this
process's memory under the user id (already a keyed hash), so nothing of them is stored.
"""

from __future__ import annotations

import math
import threading
import time

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from .errors import BudgetExceeded
from .privacy.identity import LOCAL_USER

OFF = "off"


class GenerationBudget:
    """``spend(user_id)`` once per generation request; BudgetExceeded (429) when spent."""

    def __init__(self, rate: str):
        self.item = None if rate in ("", OFF) else parse(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._lock = threading.Lock()

    def spend(self, user_id: str) -> None:
        if self.item is None or user_id == LOCAL_USER:
            return
        with self._lock:
            if self._limiter.hit(self.item, "user-generate", user_id):
                return
            reset = self._limiter.get_window_stats(self.item, "user-generate", user_id).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        raise BudgetExceeded(
            f"Generation budget reached: {self.item.amount} per user per "
            f"{self.item.GRANULARITY.name} across all your keys and the web app; retry in "
            f"{wait} s.",
            wait,
        )
