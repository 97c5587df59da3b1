"""Anonymized usage analytics: visitor hashes, usage events, and k-suppressed aggregates.

Three layers keep analytics from becoming a record of people:

1. Events carry coarse fields only (``make_event``: the day, a latency bucket;
   ``store.usage.check_event`` enforces the shape) and a visitor hash: HMAC-SHA256 of a user
   or client id under a random salt that exists only in this process's memory and changes
   every UTC day, the way privacy-first web analytics count uniques. The same person on two
   days gives two unrelated hashes, and after the salt is gone nobody (us included) can
   recompute a hash from an id.
2. Every published cell counts at least k distinct visitors. Because hashes rotate daily, the
   distinct visitors of a multi-day cell are unknowable; its ``visitors`` is the largest daily
   count, a lower bound on the people behind it, and that is what k is checked against.
3. Secondary suppression: tables publish totals, so a lone hidden cell could be recovered by
   subtraction. ``suppress`` hides more cells until no hidden value is fixed by the published
   ones (see its docstring).
4. Only whole UTC days that are over are published, each day suppressed on its own, and a
   window's totals add up only what its days published (``_grid``): every published number is
   the same in every window holding its day, so subtracting two overlapping windows (1 h from
   2 h) reveals nothing the days do not show (docs/security.md, known limits).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import PermissionDenied, ValidationError
from .store.usage import FRONT_DOORS, MODEL, RESOLUTION_CLASSES, check_event
from .store.values import as_utc, utcnow

if TYPE_CHECKING:
    from .service import Studio

TOTAL = "(all)"  # the label of a total row or column; no style, model or day looks like it
MIN_K = 5
MIX_DIMENSIONS = ("style", "model", "resolution_class", "front_door")
LOCAL_MODEL = "local"  # what a model loaded from a folder is counted as (paths name people)
Since = str | date | datetime  # "30d", "12h", "2w", an ISO date, or a date/datetime


def _utc(now: datetime | None) -> datetime:
    return utcnow() if now is None else as_utc(now, "now")


class VisitorHasher:
    """Daily-rotating, memory-only salts for counting unique visitors.

    A day's salt is made on first use and forgotten at the first use two days later, so it
    lives at most ~48 hours; yesterday's is kept so that an event that began before midnight
    still gets a consistent hash. Salts cannot be pickled, logged or persisted.
    """

    DIGEST_HEX = 16  # 64 bits: collisions are negligible at any plausible daily traffic

    def __init__(self) -> None:
        self._salts: dict[date, bytes] = {}
        self._lock = threading.Lock()

    def visitor_hash(self, visitor_id: str, now: datetime | None = None) -> str:
        if not isinstance(visitor_id, str) or not visitor_id:
            raise ValidationError("visitor_id: expected a user or client id.")
        day = _utc(now).date()
        with self._lock:
            latest = max([day, *self._salts])
            if day < latest - timedelta(days=1):
                raise ValidationError("visitor_hash: that day's salt is already forgotten.")
            for old in [d for d in self._salts if d < latest - timedelta(days=1)]:
                del self._salts[old]
            salt = self._salts.setdefault(day, secrets.token_bytes(32))
        digest = hmac.new(salt, visitor_id.encode(), hashlib.sha256).hexdigest()
        return digest[: self.DIGEST_HEX]

    def __reduce__(self):
        raise TypeError("VisitorHasher salts never leave memory")


def coarse_model(model: str) -> str:
    """A preset name or Hub repo id as is; anything else (a local folder path) as 'local'."""
    return model if isinstance(model, str) and re.fullmatch(MODEL, model) else LOCAL_MODEL


# What an event keeps of a latency: the upper bound of its bucket, in ms. A duration to the
# millisecond would join an event to its generation row (``generations.duration_ms``).
LATENCY_BUCKETS_MS = (250, 500, 1000, 2000, 4000, 8000, 15000, 30000, 60000, 120000, 300000)


def _finite(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value) and value >= 0


def latency_bucket(latency_ms: float) -> float:
    """The bucket ``latency_ms`` falls in, as its upper bound (the last bucket is open)."""
    return float(next((b for b in LATENCY_BUCKETS_MS if latency_ms <= b), LATENCY_BUCKETS_MS[-1]))


def make_event(
    *,
    visitor_hash: str,
    front_door: str,
    model: str,
    steps: int,
    latency_ms: float,
    styles: Iterable[str] = (),
    used_character: bool = False,
    used_style_ref: bool = False,
    resolution_class: str = "native",
    num_images: int = 1,
    status: str = "ok",
    now: datetime | None = None,
) -> dict[str, Any]:
    """One usage event from coarse facts about a generation.

    ``styles`` are preset names (``[a-z0-9-]``); a user's own saved style must be passed as
    ``"custom"``, never by its name. ``status`` is ``"ok"`` or the error's class name. Raises
    ValidationError if any field could carry free text.

    Time and latency are coarse on purpose: the UTC day (midnight, in the ``hour_bucket``
    column the files have always had) and the latency's bucket (``latency_bucket``). With
    the hour and the millisecond, an event joined its ``generations`` row (same hour, duration
    within a few ms) and so its user and prompt (issue 17, tests/test_security.py).
    """
    day = _utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return check_event(
        {
            "hour_bucket": day,
            "front_door": front_door,
            "model": coarse_model(model),
            "styles": list(dict.fromkeys(styles)),
            "used_character": used_character,
            "used_style_ref": used_style_ref,
            "resolution_class": resolution_class,
            "num_images": num_images,
            "steps": steps,
            "status": status,
            "latency_ms": latency_bucket(latency_ms) if _finite(latency_ms) else latency_ms,
            "visitor_hash": visitor_hash,
        }
    )


# -- secondary suppression ----------------------------------------------------------------------


def suppress(events: np.ndarray, visitors: np.ndarray, k: int) -> np.ndarray:
    """Which cells of a table with totals to hide, so that no hidden value can be derived.

    ``events`` and ``visitors`` are (R+1) x (C+1) arrays whose last row and column are the
    totals (events add up; visitors are each cell's own count). A cell with 0 events does not
    exist and is published as an implicit zero.

    Primary: every existing cell (totals included) with fewer than ``k`` visitors is hidden.
    Secondary: negate the totals and every row and column of the table sums to zero; a hidden
    cell is then fixed by the published ones exactly when it is a bridge of the bipartite graph
    (rows, columns; one edge per hidden cell), i.e. on no cycle. While a bridge remains, hide
    the cheapest rectangle of existing cells through it (fewest events newly hidden), which
    puts it on a cycle. Rectangles never break other cycles, so each round removes a bridge.
    One consequence: a row or column never has exactly one hidden cell.
    """
    exists = events > 0
    hidden = exists & (visitors < k)
    while (bridge := _first_bridge(hidden)) is not None:
        hidden[_cheapest_rectangle(bridge, hidden, exists, events)] = True
    return hidden


def _first_bridge(hidden: np.ndarray) -> tuple[int, int] | None:
    """A hidden cell on no cycle of the row/column graph (iterative Tarjan), or None."""
    rows, cols = hidden.shape
    adjacency: list[list[tuple[int, tuple[int, int]]]] = [[] for _ in range(rows + cols)]
    for r, c in zip(*np.nonzero(hidden), strict=True):
        cell = (int(r), int(c))
        adjacency[r].append((rows + c, cell))
        adjacency[rows + c].append((r, cell))
    order = [-1] * (rows + cols)
    low = [0] * (rows + cols)
    counter = 0
    for root in range(rows + cols):
        if order[root] != -1 or not adjacency[root]:
            continue
        order[root] = low[root] = counter
        counter += 1
        stack = [(root, None, iter(adjacency[root]))]
        while stack:
            node, via, edges = stack[-1]
            for neighbour, cell in edges:
                if cell == via:
                    continue
                if order[neighbour] == -1:
                    order[neighbour] = low[neighbour] = counter
                    counter += 1
                    stack.append((neighbour, cell, iter(adjacency[neighbour])))
                    break
                low[node] = min(low[node], order[neighbour])
            else:
                stack.pop()
                if stack:
                    parent = stack[-1][0]
                    low[parent] = min(low[parent], low[node])
                    if low[node] > order[parent]:
                        return via
    return None


def _cheapest_rectangle(
    corner: tuple[int, int], hidden: np.ndarray, exists: np.ndarray, events: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cells (i, j'), (i', j), (i', j') completing the cheapest rectangle with ``corner``."""
    i, j = corner
    cost = np.where(hidden, 0.0, np.where(exists, events.astype(float), np.inf))
    total = cost + cost[i, :][None, :] + cost[:, j][:, None]
    total[i, :] = np.inf
    total[:, j] = np.inf
    # The totals row and column always complete a rectangle, so a finite minimum exists.
    i2, j2 = np.unravel_index(np.argmin(total), total.shape)
    return np.array([i, i2, i2]), np.array([j2, j, j2])


# -- aggregates ---------------------------------------------------------------------------------


def parse_since(since: Since, now: datetime | None = None) -> datetime:
    """The start of a window, always a UTC midnight: '30d' or '2w' (the whole days up to
    yesterday), '12h' (widened to the whole days that cover it: 1 to 24 hours is yesterday),
    an ISO date, or a date/datetime (its day).

    Windows are whole days because published numbers must not depend on where a window
    starts: a window of 1 h and one of 2 h differ by one hour's events, which may be one
    person's (issue 17, tests/test_security.py). See ``published_days``."""
    now = _utc(now)
    if isinstance(since, datetime):
        return datetime.combine(_utc(since).date(), time())
    if isinstance(since, date):
        return datetime.combine(since, time())
    match = re.fullmatch(r"\s*(\d{1,5})\s*([hdw])\s*", str(since))
    if match:
        count, unit = int(match[1]), match[2]
        days = -(-count // 24) if unit == "h" else count * (7 if unit == "w" else 1)
        return datetime.combine(now.date() - timedelta(days=max(days, 1)), time())
    try:
        return datetime.combine(date.fromisoformat(str(since).strip()), time())
    except ValueError:
        raise ValidationError(
            f"since: expected a window such as 12h, 30d or 2w, or a date such as 2026-11-01; "
            f"got {since!r}."
        ) from None


def published_days(frame: pd.DataFrame, now: datetime | None = None) -> pd.DataFrame:
    """The rows of whole days that are over (``day`` before today, UTC): today's numbers
    still change, and the difference of two looks at them is what came in between."""
    return frame[frame["day"] < _utc(now).date().isoformat()].reset_index(drop=True)


def _k(store, k: int | None) -> int:
    k = store.settings.analytics_k if k is None else k
    if type(k) is not int or k < MIN_K:
        raise ValidationError(f"k: expected a whole number of at least {MIN_K}, got {k!r}.")
    return k


def _grid(store, dimension: str, since, k: int | None) -> pd.DataFrame:
    """Day x value table with totals, suppressed; long format with TOTAL labels.

    Each day is suppressed on its own (its cells and its total, ``suppress`` on that one
    day's table), and the window's ``(all)`` row adds up only what the days published, so
    every number shown is the same in every window that holds its day: overlapping windows
    can be subtracted without revealing a hidden cell.
    """
    k = _k(store, k)
    counts = published_days(store.usage_counts(dimension, parse_since(since)))
    columns = ["day", dimension, "events", "visitors", "suppressed"]
    types = {"events": "Int64", "visitors": "Int64", "suppressed": bool}
    if counts.empty:  # typed, so that filtering on "suppressed" works on it too
        return pd.DataFrame(columns=columns).astype(types)
    values = sorted(counts.loc[~counts["total"], "value"].unique())
    window_events = np.zeros(len(values) + 1, dtype=np.int64)
    window_visitors = np.zeros(len(values) + 1, dtype=np.int64)
    seen = np.zeros(len(values) + 1, dtype=bool)
    records = []
    for day, rows in counts.groupby("day", sort=True):
        events = np.zeros((2, len(values) + 1), dtype=np.int64)
        visitors = np.zeros_like(events)
        for row in rows.itertuples():
            at = -1 if row.total else values.index(row.value)
            events[:, at], visitors[:, at] = row.events, row.visitors
        hidden = suppress(events, visitors, k)[0]  # one day, its totals row itself
        exists = events[0] > 0
        seen |= exists
        shown = exists & ~hidden
        window_events[shown] += events[0][shown]
        window_visitors[shown] = np.maximum(window_visitors[shown], visitors[0][shown])
        for at in np.nonzero(exists)[0]:
            published = not hidden[at]
            records.append(
                (
                    day,
                    [*values, TOTAL][at],
                    int(events[0, at]) if published else None,
                    int(visitors[0, at]) if published else None,
                    not published,
                )
            )
    for at in np.nonzero(seen)[0]:  # visitors: the best day, a lower bound on people
        published = window_visitors[at] >= k
        records.append(
            (
                TOTAL,
                [*values, TOTAL][at],
                int(window_events[at]) if published else None,
                int(window_visitors[at]) if published else None,
                not published,
            )
        )
    return pd.DataFrame.from_records(records, columns=columns).astype(types)


def style_trends(store, since: Since = "30d", k: int | None = None) -> pd.DataFrame:
    """Style uses per day: ``day, style, events, visitors, suppressed``, with ``(all)`` totals.

    A generation with two styles counts once for each; one without counts as ``(none)``.
    """
    return _grid(store, "style", since, k)


def mix(store, dimension: str, since: Since = "30d", k: int | None = None) -> pd.DataFrame:
    """Share of each style, model, resolution class or front door over the whole window.

    The ``(all)`` row of the same day x value table as ``style_trends`` (so the two agree on
    what is hidden): ``<dimension>, events, visitors, share, suppressed``.
    """
    if dimension not in MIX_DIMENSIONS:
        raise ValidationError(f"dimension: expected one of {', '.join(MIX_DIMENSIONS)}.")
    grid = _grid(store, dimension, since, k)
    table = grid[grid["day"] == TOTAL].drop(columns="day").reset_index(drop=True)
    grand = table.loc[table[dimension] == TOTAL, "events"]
    whole = grand.iloc[0] if len(grand) else pd.NA
    table.insert(3, "share", (table["events"] / whole).astype("Float64"))
    return table


def error_rates(store, since: Since = "30d", k: int | None = None) -> pd.DataFrame:
    """Per day, each status (``ok`` or an error class) with its share of the day's events."""
    grid = _grid(store, "status", since, k)
    day_totals = grid[grid["status"] == TOTAL].set_index("day")["events"]
    rate = grid["events"] / grid["day"].map(day_totals).astype("Int64")
    grid.insert(4, "rate", rate.astype("Float64"))
    return grid


def latency(store, since: Since = "30d", k: int | None = None) -> pd.DataFrame:
    """p50 and p95 latency (ms) of successful generations per day and model.

    No counts: they would be a second copy of the model table's cells, published without its
    secondary suppression, and could undo it.
    """
    k = _k(store, k)
    frame = published_days(store.usage_latency(parse_since(since)))
    frame["suppressed"] = frame["visitors"] < k
    frame = frame[["day", "model", "p50_ms", "p95_ms", "suppressed"]]
    frame = frame.astype({"p50_ms": "Float64", "p95_ms": "Float64"}).round(1)
    frame.loc[frame["suppressed"], ["p50_ms", "p95_ms"]] = pd.NA
    return frame


def daily_uniques(store, since: Since = "30d", k: int | None = None) -> pd.DataFrame:
    """Distinct visitors per day (each day's hash salt is new, so days cannot be linked)."""
    k = _k(store, k)
    counts = published_days(store.usage_counts("front_door", parse_since(since)))
    frame = counts[counts["total"]][["day", "visitors"]].reset_index(drop=True)
    frame["suppressed"] = frame["visitors"] < k
    frame = frame.astype({"visitors": "Int64"})
    frame.loc[frame["suppressed"], "visitors"] = pd.NA
    return frame


def report(store, since: Since = "30d", k: int | None = None) -> dict[str, pd.DataFrame]:
    """Every aggregate by name, as the CLI and the admin dashboard show them."""
    tables = {"style_trends": style_trends(store, since, k)}
    for dimension in MIX_DIMENSIONS:
        tables[f"mix_{dimension}"] = mix(store, dimension, since, k)
    tables["latency"] = latency(store, since, k)
    tables["error_rates"] = error_rates(store, since, k)
    tables["daily_uniques"] = daily_uniques(store, since, k)
    return tables


def snapshot(store, out_dir: str | Path, now: datetime | None = None) -> Path:
    """Write the anonymous usage events (only them) to ``out_dir`` as zstd Parquet."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = _utc(now).strftime("%Y%m%dT%H%M%SZ")
    return store.export_usage_events(out / f"usage-events-{stamp}.parquet")


class Analytics:
    """``studio.analytics``: the reports and snapshots, for admins only, at every door."""

    def __init__(self, studio: Studio):
        self.studio = studio

    def _admitted(self, user_id: str):
        if not self.studio.settings.data_dir.is_dir():
            raise ValidationError(f"No GemPix data in {self.studio.settings.data_dir} yet.")
        if not self.studio.privacy.is_admin(user_id):
            raise PermissionDenied("Analytics are for administrators of this GemPix.")
        return self.studio.store

    def report(
        self, user_id: str, since: Since = "30d"
    ) -> tuple[datetime, dict[str, pd.DataFrame]]:
        """The window's start and every aggregate (``report``), k from the settings."""
        start = parse_since(since)
        store = self._admitted(user_id)
        store.flush()
        return start, report(store, start)

    def snapshot(self, user_id: str, out_dir: str | Path) -> Path:
        return snapshot(self._admitted(user_id), out_dir)


__all__ = [
    "FRONT_DOORS",
    "Analytics",
    "RESOLUTION_CLASSES",
    "TOTAL",
    "VisitorHasher",
    "daily_uniques",
    "error_rates",
    "latency",
    "make_event",
    "mix",
    "parse_since",
    "report",
    "snapshot",
    "style_trends",
    "suppress",
]
