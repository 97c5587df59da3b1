"""Small helpers for the values the store keeps: UTC times, ids, checked text, result rows.

Times are stored as naive UTC (a ``TIMESTAMP`` column; a time zone would make results depend on
the session). ``Clock`` hands out strictly increasing times, so "newest first" and a consent
ledger's order are well defined even for records made in the same microsecond.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import ValidationError


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def as_utc(value: datetime | str, field: str) -> datetime:
    """A naive UTC datetime from an aware one (converted), a naive one (taken as UTC) or
    ISO 8601 text such as the ``created_at`` in image metadata."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(f"{field}: expected an ISO 8601 date and time.") from None
    if not isinstance(value, datetime):
        raise ValidationError(f"{field}: expected a datetime, got {type(value).__name__}.")
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


class Clock:
    """Strictly increasing naive-UTC times from ``source`` (replaceable in tests)."""

    def __init__(self, source: Callable[[], datetime] = utcnow):
        self.source = source
        self._last = datetime.min
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            now = max(self.source(), self._last + timedelta(microseconds=1))
            self._last = now
            return now


def new_id() -> str:
    return uuid.uuid4().hex


def check_text(value: Any, field: str, pattern: str, example: str) -> str:
    """``value`` if it is a string matching ``pattern`` in full, else a ValidationError."""
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise ValidationError(f"{field}: expected {example} (pattern {pattern}).")
    return value


def check_limit(limit: Any, field: str = "limit", high: int = 1000) -> int:
    if type(limit) is not int or not 1 <= limit <= high:
        raise ValidationError(f"{field}: expected a whole number from 1 to {high}.")
    return limit


def fetch_dicts(cursor) -> list[dict[str, Any]]:
    """The pending result of a DB-API cursor as dicts (values already typed by the driver)."""
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
