"""Anonymous usage events: the strict shape they must have, recording, and the queries.

An event holds coarse, enumerable values only, checked here before it is buffered (a bad row
would otherwise fail a whole file at flush time): an hour, a front door, a model name, style
slugs, two flags, a resolution class, two small numbers, a status, a latency and a visitor hash
whose salt rotates daily (``gempix.analytics.VisitorHasher``). Nothing in it can hold a prompt,
a user id or an address. The events are kept as Parquet files (``eventlog.py``) and the queries
run in DuckDB; they return raw counts per day, and ``gempix.analytics`` applies k-anonymity
before anything is shown.
"""

from __future__ import annotations

import math
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import StoreError, ValidationError
from .core import StoreBase
from .eventlog import sql_string

FRONT_DOORS = ("ui", "api", "cli", "notebook")
RESOLUTION_CLASSES = ("native", "2k", "4k")
STYLE = r"[a-z0-9][a-z0-9-]{0,39}"
MODEL = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?"
ERROR_CLASS = r"[A-Z][A-Za-z0-9_]{0,63}"
VISITOR_HASH = r"[0-9a-f]{16}"
NO_STYLE = "(none)"  # the style value of events without a style; no slug can look like it

# Dimension name -> the SQL expression that yields its value per event (a fixed allow-list).
DIMENSIONS = {
    "style": f"unnest(CASE WHEN len(styles) > 0 THEN styles ELSE ['{NO_STYLE}'] END)",
    "model": "model",
    "resolution_class": "resolution_class",
    "front_door": "front_door",
    "status": "status",
}


def _fail(field: str, rule: str) -> ValidationError:
    return ValidationError(f"usage event {field}: expected {rule}.")


def check_event(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` unchanged if every field has its coarse, enumerable form; else ValidationError."""
    checks = {
        "hour_bucket": lambda v: (
            isinstance(v, datetime)
            and v.tzinfo is None
            and (v.minute, v.second, v.microsecond) == (0, 0, 0)
        ),
        "front_door": lambda v: v in FRONT_DOORS,
        "model": lambda v: isinstance(v, str) and re.fullmatch(MODEL, v),
        "styles": lambda v: (
            isinstance(v, list)
            and len(v) <= 8
            and all(isinstance(s, str) and re.fullmatch(STYLE, s) for s in v)
        ),
        "used_character": lambda v: isinstance(v, bool),
        "used_style_ref": lambda v: isinstance(v, bool),
        "resolution_class": lambda v: v in RESOLUTION_CLASSES,
        "num_images": lambda v: type(v) is int and 1 <= v <= 64,
        "steps": lambda v: type(v) is int and 0 <= v <= 1000,
        "status": lambda v: v == "ok" or (isinstance(v, str) and re.fullmatch(ERROR_CLASS, v)),
        "latency_ms": lambda v: type(v) in (int, float) and math.isfinite(v) and v >= 0,
        "visitor_hash": lambda v: isinstance(v, str) and re.fullmatch(VISITOR_HASH, v),
    }
    rules = {
        "hour_bucket": "a naive UTC datetime on the hour",
        "front_door": f"one of {', '.join(FRONT_DOORS)}",
        "model": "a model name or repo id",
        "styles": f"at most 8 style names matching {STYLE}",
        "used_character": "true or false",
        "used_style_ref": "true or false",
        "resolution_class": f"one of {', '.join(RESOLUTION_CLASSES)}",
        "num_images": "a whole number from 1 to 64",
        "steps": "a whole number from 0 to 1000",
        "status": "'ok' or an exception class name",
        "latency_ms": "a number of milliseconds >= 0",
        "visitor_hash": "16 hex digits from VisitorHasher",
    }
    if not isinstance(event, dict) or set(event) != set(checks):
        raise ValidationError(f"usage event: expected exactly the fields {', '.join(checks)}.")
    for field, ok in checks.items():
        if not ok(event[field]):
            raise _fail(field, rules[field])
    return event


class UsageMixin(StoreBase):
    def record_event(self, event: dict[str, Any], user_id: str | None = None) -> bool:
        """Buffer one usage event; return False if it was dropped.

        ``user_id`` is only used to drop the event when that user objected to analytics, asked
        for restriction, is being erased or is gone (erased, by any process); it is never
        stored.
        """
        if self._closed:
            raise StoreError(f"The store for {self.path} is closed.")
        if user_id is not None and not self._counts_in_analytics(user_id):
            return False
        event = check_event(dict(event))
        self.usage.append({**event, "latency_ms": float(event["latency_ms"])})
        return True

    def _counts_in_analytics(self, user_id: str) -> bool:
        with self._read("check the user") as connection:
            row = connection.execute(
                "SELECT analytics_objection OR restricted OR locked FROM users WHERE user_id = ?",
                [user_id],
            ).fetchone()
        return row is not None and not row[0]

    def usage_counts(self, dimension: str, since: datetime) -> pd.DataFrame:
        """Events and distinct visitor hashes per (day, value), plus each day's total.

        Columns: ``day`` (ISO date text), ``value`` (None on a day's total row), ``events``,
        ``visitors``, ``total`` (bool). For ``style`` an event counts once per style it used,
        or once as ``(none)``, so a day's total is the sum of its cells.
        """
        if dimension not in DIMENSIONS:
            raise ValidationError(f"dimension: expected one of {', '.join(DIMENSIONS)}.")
        self.flush()
        with self.usage.reading(since) as cursor:
            return cursor.execute(
                f"""
                WITH ev AS (
                    SELECT strftime(hour_bucket, '%Y-%m-%d') AS day,
                           {DIMENSIONS[dimension]} AS value,
                           visitor_hash
                    FROM usage_events WHERE hour_bucket >= ?
                )
                SELECT day, value, count(*) AS events,
                       count(DISTINCT visitor_hash) AS visitors, grouping(value) = 1 AS total
                FROM ev GROUP BY GROUPING SETS ((day, value), (day))
                ORDER BY day, total, value
                """,
                [since],
            ).df()

    def usage_latency(self, since: datetime) -> pd.DataFrame:
        """p50/p95 latency of successful events per day and model, with their counts."""
        self.flush()
        with self.usage.reading(since) as cursor:
            return cursor.execute(
                """
                SELECT strftime(hour_bucket, '%Y-%m-%d') AS day, model, count(*) AS events,
                       count(DISTINCT visitor_hash) AS visitors,
                       quantile_cont(latency_ms, 0.5) AS p50_ms,
                       quantile_cont(latency_ms, 0.95) AS p95_ms
                FROM usage_events WHERE status = 'ok' AND hour_bucket >= ?
                GROUP BY ALL ORDER BY day, model
                """,
                [since],
            ).df()

    def usage_events(self, since: datetime | None = None) -> pd.DataFrame:
        """The raw events (of the hours from ``since`` on), oldest first: anonymous, but not
        k-suppressed, so for the operator and tests, like a snapshot."""
        self.flush()
        with self.usage.reading(since) as cursor:
            if since is None:
                return cursor.execute("SELECT * FROM usage_events ORDER BY hour_bucket").df()
            return cursor.execute(
                "SELECT * FROM usage_events WHERE hour_bucket >= ? ORDER BY hour_bucket", [since]
            ).df()

    def export_usage_events(self, path: Path) -> Path:
        """Write the usage events (and nothing else) to a zstd Parquet file at ``path``."""
        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        self.flush()
        with self.usage.reading() as cursor:
            cursor.execute(
                "COPY (SELECT * FROM usage_events ORDER BY hour_bucket) "
                f"TO {sql_string(str(partial))} (FORMAT parquet, COMPRESSION zstd)"
            )
        os.replace(partial, path)
        return path
