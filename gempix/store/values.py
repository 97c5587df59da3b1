"""Small conversions between Python values and the store's columns.

Times are stored as naive UTC ``TIMESTAMP`` (DuckDB's ``TIMESTAMPTZ`` would make results depend
on the session time zone). ``Clock`` hands out strictly increasing times, so "newest first" and
a consent ledger's order are well defined even for records made in the same microsecond.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb

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


def sql_string(value: str) -> str:
    """A SQL string literal, for the statements that take no parameters (ATTACH, COPY)."""
    return "'" + value.replace("'", "''") + "'"


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


def fetch_dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The pending result as dicts, JSON columns parsed back into Python values."""
    columns = [(d[0], str(d[1]) == "JSON") for d in cursor.description]
    return [
        {
            name: json.loads(value) if is_json and value is not None else value
            for (name, is_json), value in zip(columns, row, strict=True)
        }
        for row in cursor.fetchall()
    ]
