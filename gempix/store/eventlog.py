"""The anonymous usage events: Parquet files that every process appends and DuckDB reads.

A DuckDB database file takes one read-write process and then no other, not even a reader; but
events come from every process that generates (the app, the CLI, a notebook) and
``gempix analytics`` reads them while the app runs. So the events live in Parquet files under
``data_dir/usage/``, and every reader queries them with its own in-memory DuckDB:

    usage/day=2026-12-03/L0-20261203T101502-<uuid>.parquet   one flush of one process
    usage/day=2026-12-03/L1-<uuid>.parquet                   16 L0 files merged
    usage/day=2026-11-30/L9-<uuid>.parquet                   a finished day, in one file

**Writing.** ``append`` buffers an event in memory; ``flush`` (the store's flusher every
second, and this process before each of its queries) writes the buffer as one file per day.
A file is complete before it appears (written as ``.partial``, synced, renamed), so a crash
loses at most the last second of events and never shows half a file.

**Merging** keeps the files few: 16 files of one level in a day merge into one of the next
level, and a finished day (before yesterday) into one file. A merge writes its result as
``.merging`` with its sources' names in the Parquet metadata, syncs it, removes the sources and
renames it. After a crash halfway the next merge finishes that from the names, or drops a
result that was never complete (its sources are all still there).

**Locking.** Queries hold a shared ``flock`` on ``usage/.lock``; merges and erasures hold it
exclusively, so a query never sees an event twice or misses a file. Writing new files needs no
lock. A merge that finds the lock taken waits for the next flush.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import StoreError
from .values import utcnow

USAGE_DIR = "usage"
EVENT_SCHEMA = pa.schema(
    [
        ("hour_bucket", pa.timestamp("us")),
        ("front_door", pa.string()),
        ("model", pa.string()),
        ("styles", pa.list_(pa.string())),
        ("used_character", pa.bool_()),
        ("used_style_ref", pa.bool_()),
        ("resolution_class", pa.string()),
        ("num_images", pa.int32()),
        ("steps", pa.int32()),
        ("status", pa.string()),
        ("latency_ms", pa.float64()),
        ("visitor_hash", pa.string()),
    ]
)
MERGE_AT = 16  # files of one level in one day that merge into one file of the next level
FINAL_LEVEL = 9  # the level of a finished day's single file
SOURCES = b"gempix.sources"  # Parquet metadata key: the files a merged file replaces
LOCK_WAIT_S = 60.0
STALE_PARTIAL_S = 3600.0  # a .partial older than this was left by a crash


def sync(path: Path) -> None:
    """fsync a file or a folder (after a rename, the folder holds the new name)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _level(path: Path) -> int:
    return int(path.name[1]) if path.name[:1] == "L" and path.name[1:2].isdigit() else 0


def _day_of(folder: Path) -> date | None:
    try:
        return date.fromisoformat(folder.name.removeprefix("day="))
    except ValueError:
        return None


def sql_string(value: str) -> str:
    """A SQL string literal, for DuckDB statements that take no parameter there (COPY TO)."""
    return "'" + value.replace("'", "''") + "'"


class EventLog:
    """The usage events of one data directory; see the module docstring."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._buffer: list[dict[str, Any]] = []
        self._buffer_lock = threading.Lock()
        self._duckdb: duckdb.DuckDBPyConnection | None = None
        self._duckdb_lock = threading.Lock()

    # -- writing ------------------------------------------------------------------------------

    def append(self, event: dict[str, Any]) -> None:
        with self._buffer_lock:
            self._buffer.append(event)

    def flush(self) -> set[date]:
        """Write the buffered events, one new file per day; return the days written."""
        with self._buffer_lock:
            rows, self._buffer = self._buffer, []
        by_day: dict[date, list[dict[str, Any]]] = {}
        for row in rows:
            by_day.setdefault(row["hour_bucket"].date(), []).append(row)
        stamp = utcnow().strftime("%Y%m%dT%H%M%S")
        for day, events in by_day.items():
            name = f"L0-{stamp}-{uuid.uuid4().hex}.parquet"
            self._publish(self._day_dir(day) / name, pa.Table.from_pylist(events, EVENT_SCHEMA))
        return set(by_day)

    def _day_dir(self, day: date) -> Path:
        return self.folder / f"day={day.isoformat()}"

    def _publish(self, path: Path, table: pa.Table, suffix: str = ".partial") -> Path:
        """Write ``table`` to ``path`` + ``suffix``, sync it, and (for ``.partial``) rename it
        into place; nothing half-written ever carries the final name."""
        unfinished = path.with_name(path.name + suffix)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, unfinished, compression="zstd")
            sync(unfinished)
            if suffix == ".partial":
                os.replace(unfinished, path)
        except OSError as error:
            unfinished.unlink(missing_ok=True)
            raise StoreError(
                f"Could not write usage events to {path.parent}: {error.strerror or error}."
            ) from None
        return unfinished

    # -- locking ------------------------------------------------------------------------------

    def _try_lock(self, mode: int) -> int | None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    @contextlib.contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        """Hold the lock in ``mode``, waiting at most LOCK_WAIT_S for a merge or erasure."""
        deadline = time.monotonic() + LOCK_WAIT_S
        pause = threading.Event()
        while (fd := self._try_lock(mode)) is None:
            if time.monotonic() > deadline:
                raise StoreError(f"The usage events in {self.folder} stayed locked; try again.")
            pause.wait(0.01)
        try:
            yield
        finally:
            os.close(fd)  # releases the lock

    # -- reading ------------------------------------------------------------------------------

    def files(self, since: datetime | None = None) -> list[Path]:
        """The event files, of the days from ``since`` on (all when None)."""
        if not self.folder.is_dir():
            return []
        first = since.date() if since is not None else date.min
        days = [d for d in self.folder.iterdir() if (day := _day_of(d)) and day >= first]
        return sorted(path for folder in days for path in folder.glob("*.parquet"))

    @contextlib.contextmanager
    def reading(self, since: datetime | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A DuckDB cursor on which ``usage_events`` holds the events (of the days from
        ``since`` on; filter by ``hour_bucket`` for the exact time)."""
        with self._locked(fcntl.LOCK_SH):
            with self._duckdb_lock:
                if self._duckdb is None:
                    self._duckdb = duckdb.connect(":memory:")
                cursor = self._duckdb.cursor()
            try:
                files = [str(path) for path in self.files(since)]
                events = (
                    cursor.read_parquet(files, hive_partitioning=False, union_by_name=True)
                    if files
                    else EVENT_SCHEMA.empty_table()
                )
                cursor.register("usage_events", events)
                yield cursor
            finally:
                cursor.close()

    def count(self) -> int:
        with self.reading() as cursor:
            return cursor.execute("SELECT count(*) FROM usage_events").fetchone()[0]

    # -- merging ------------------------------------------------------------------------------

    def compact(self, days: Iterable[date] | None = None, today: date | None = None) -> int:
        """Merge full levels and finished days (of ``days``, or all); return files merged.

        Does nothing when another process or thread holds the lock: the next flush retries.
        """
        fd = self._try_lock(fcntl.LOCK_EX)
        if fd is None:
            return 0
        try:
            today = today or utcnow().date()
            folders = (
                [self._day_dir(day) for day in days]
                if days is not None
                else [d for d in self.folder.iterdir() if _day_of(d)]
            )
            return sum(self._compact_day(folder, today) for folder in folders if folder.is_dir())
        finally:
            os.close(fd)

    def _compact_day(self, folder: Path, today: date) -> int:
        self._recover(folder)
        files = sorted(folder.glob("*.parquet"))
        if _day_of(folder) < today - timedelta(days=1):
            return self._merge(folder, files, FINAL_LEVEL) if len(files) > 1 else 0
        merged = 0
        for level in range(FINAL_LEVEL):
            same = [path for path in files if _level(path) == level]
            if len(same) >= MERGE_AT:
                merged += self._merge(folder, same, level + 1)
                files = sorted(folder.glob("*.parquet"))
        return merged

    def _merge(self, folder: Path, sources: list[Path], level: int) -> int:
        target = folder / f"L{level}-{uuid.uuid4().hex}.parquet"
        table = pa.concat_tables(pq.read_table(path).cast(EVENT_SCHEMA) for path in sources)
        names = json.dumps([path.name for path in sources]).encode()
        merging = self._publish(target, table.replace_schema_metadata({SOURCES: names}), ".merging")
        self._finish_merge(merging, [path.name for path in sources])
        return len(sources)

    @staticmethod
    def _finish_merge(merging: Path, sources: list[str]) -> None:
        for name in sources:
            (merging.parent / name).unlink(missing_ok=True)
        os.replace(merging, merging.with_suffix(""))
        sync(merging.parent)

    def _recover(self, folder: Path) -> None:
        """Finish a merge a crash interrupted, or drop its incomplete result; remove stale
        ``.partial`` files. The caller holds the lock exclusively."""
        for merging in folder.glob("*.merging"):
            try:
                sources = json.loads(pq.read_schema(merging).metadata[SOURCES])
            except Exception:  # cut short before its sync: every source is still in place
                merging.unlink()
                continue
            self._finish_merge(merging, sources)
        for partial in folder.glob("*.partial"):
            if time.time() - partial.stat().st_mtime > STALE_PARTIAL_S:
                partial.unlink(missing_ok=True)

    # -- erasure and import -------------------------------------------------------------------

    def delete_visitors(self, visitor_hashes: set[str]) -> int:
        """Rewrite every file holding events of ``visitor_hashes`` without them; return how
        many events went. Flushes first, so this process's buffer is included."""
        self.flush()
        if not visitor_hashes:
            return 0
        wanted = pa.array(sorted(visitor_hashes))
        deleted = 0
        with self._locked(fcntl.LOCK_EX):
            for path in self.files():
                hashes = pq.read_table(path, columns=["visitor_hash"]).column(0)
                matches = pc.sum(pc.is_in(hashes, value_set=wanted)).as_py() or 0
                if not matches:
                    continue
                table = pq.read_table(path)
                kept = table.filter(pc.invert(pc.is_in(table.column("visitor_hash"), wanted)))
                if kept.num_rows:
                    self._publish(path, kept)
                else:
                    path.unlink()
                deleted += matches
        return deleted

    def write_imported(self, table: pa.Table, name: str) -> list[Path]:
        """Write imported events as one file per day named after ``name`` (replacing an
        earlier attempt's, so an import can run again); return the files."""
        table = table.cast(EVENT_SCHEMA)
        days = pc.cast(table.column("hour_bucket"), pa.date32())
        written = []
        with self._locked(fcntl.LOCK_EX):
            for day in pc.unique(days).to_pylist():
                path = self._day_dir(day) / f"L{FINAL_LEVEL}-{name}.parquet"
                self._publish(path, table.filter(pc.equal(days, day)))
                written.append(path)
        return written

    def remove_named(self, name: str) -> None:
        """Remove the files ``write_imported`` wrote under ``name`` (an import that failed)."""
        with self._locked(fcntl.LOCK_EX):
            for path in self.folder.glob(f"day=*/L{FINAL_LEVEL}-{name}.parquet"):
                path.unlink()

    def close(self) -> None:
        with self._duckdb_lock:
            if self._duckdb is not None:
                self._duckdb.close()
                self._duckdb = None
