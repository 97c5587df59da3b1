"""Small conversions between Python values and the store's columns.

Times are stored as naive UTC ``TIMESTAMP`` (DuckDB's ``TIMESTAMPTZ`` would make results depend
on the session time zone). ``Clock`` hands out strictly increasing times, so "newest first" and
a consent ledger's order are well defined even for records made in the same microsecond.
"""

from __future__ import annotations

import json
import numbers
import re
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb
import pyarrow as pa

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


def _text(value: Any) -> str | None:
    """Text DuckDB can store: a str that is valid UTF-8 (no lone surrogates)."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return None
        return value
    return None


def _json_text(value: Any) -> str | None:
    """JSON text as given, or Python data dumped to it."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return None
        return _text(value)
    try:
        return _text(json.dumps(value, sort_keys=True))
    except (TypeError, ValueError):
        return None


def _whole(bits: int) -> Callable[[Any], int | None]:
    def check(value: Any) -> int | None:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            if -(2**bits) <= value < 2**bits:
                return int(value)
        return None

    return check


def _real(value: Any) -> float | None:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return None


def _timestamp(value: Any) -> datetime | None:
    try:
        return as_utc(value, "")
    except ValidationError:
        return None


def _texts(value: Any) -> list[str] | None:
    if isinstance(value, (list, tuple)):
        texts = [_text(item) for item in value]
        if None not in texts:
            return texts
    return None


# A DuckDB column type -> (its Arrow type, a check that returns the value in the Python form
# that type stores, or None when the value does not fit, and what the check expects).
COLUMN_TYPES: dict[str, tuple[pa.DataType, Callable[[Any], Any], str]] = {
    "VARCHAR": (pa.string(), _text, "text"),
    "JSON": (pa.string(), _json_text, "JSON-compatible data"),
    "BIGINT": (pa.int64(), _whole(63), "a whole number"),
    "INTEGER": (pa.int32(), _whole(31), "a whole number below 2**31"),
    "DOUBLE": (pa.float64(), _real, "a number"),
    "TIMESTAMP": (pa.timestamp("us"), _timestamp, "a datetime or ISO 8601 text"),
    "BOOLEAN": (pa.bool_(), lambda v: v if isinstance(v, bool) else None, "true or false"),
    "VARCHAR[]": (pa.list_(pa.string()), _texts, "a list of texts"),
}


def column_value(table: str, column: str, kind: str, nullable: bool, value: Any) -> Any:
    """``value`` as a ``kind`` column of ``table`` stores it, checked the way DuckDB would
    check it on insert; a ValidationError (that never echoes the value) if it does not fit.

    Records that are acknowledged before DuckDB sees them (the journal) are checked here.
    """
    if value is None:
        if nullable:
            return None
        raise ValidationError(f"{table}.{column}: a value is required.")
    _, check, expected = COLUMN_TYPES[kind]
    checked = check(value)
    if checked is None:
        raise ValidationError(f"{table}.{column}: expected {expected}.")
    return checked


def arrow_schema(columns: dict[str, tuple[str, bool]]) -> pa.Schema:
    """The Arrow schema of rows with these ``{column: (DuckDB type, nullable)}``."""
    return pa.schema([(name, COLUMN_TYPES[kind][0]) for name, (kind, _) in columns.items()])


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
