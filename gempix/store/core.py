"""Opening, sharing and rewriting the one DuckDB file of a data directory.

DuckDB lets one process open a file read-write, and no other process may then open it at all,
so the serving process is the only writer and a second one gets ``StoreLockedError`` naming
the file and what to do instead. Inside the process there is one connection and a cursor per
thread; single-record writes are one transaction each, serialised by a lock (concurrent
updates of one row would otherwise abort each other), while reads run side by side. DuckDB is
fast at few large transactions and slow at many tiny ones, so the frequent records are written
in batches by a background flusher: usage events and the API request log are buffered in
memory (at most ~0.5 s may be lost in a crash), and generation records are made durable first
in the journal (``journal.py``) and moved into the file before any read or write sees it.

``rewrite_database`` exists because deleting rows does not remove their bytes from a DuckDB
file (see DESIGN.md, "Data and erasure"): only copying the live data into a new file does.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import (
    NotFoundError,
    StoreError,
    StoreLockedError,
    UserLockedError,
    ValidationError,
)
from ..settings import Settings
from .gate import Gate
from .journal import Journal
from .migrations import migrate
from .values import Clock, arrow_schema, column_value, sql_string

log = logging.getLogger(__name__)

DB_FILE = "gempix.duckdb"
JOURNAL_FILE = DB_FILE + ".journal"
FLUSH_INTERVAL_S = 0.5  # buffered and journaled rows reach the file at most about this late
FLUSH_BATCH = 5_000  # ... or sooner, once this many wait
PURGE_EVERY = timedelta(days=1)
BUFFERED_TABLES = ("usage_events", "api_requests")
LOCKED_MESSAGE = "This user's data is being erased; nothing new is recorded."

_open_paths: set[Path] = set()
_open_paths_lock = threading.Lock()


def _locked_message(path: Path) -> str:
    return (
        f"The GemPix database {path} is in use by another process (usually the running app); "
        "only one process may open it. Read analytics through the running app's admin API or "
        "from a Parquet snapshot (`gempix analytics snapshot -o DIR`, run while the app is "
        "stopped), or stop the app first to open the file directly."
    )


class StoreBase:
    """Connection, cursors, transactions, buffers and the file's lifecycle.

    Build with ``Store.open(settings)``; the domain methods live in the mixins that make up
    ``gempix.store.Store``.
    """

    def __init__(self, settings: Settings, *, force_uncompressed: bool = False):
        self.settings = settings
        self.path = (Path(settings.data_dir) / DB_FILE).resolve()
        self.clock = Clock()
        self._force_uncompressed = force_uncompressed
        self._gate = Gate()
        self._write_lock = threading.Lock()
        self._journal = Journal(self.path.with_name(JOURNAL_FILE))
        self._journaled: list[dict[str, Any]] = []  # generation rows not yet in the file
        self._journaled_ids: set[str] = set()
        self._journal_lock = threading.Lock()
        self._recording_users: set[str] = set()  # users seen unlocked, see GenerationsMixin
        self._cursors: dict[threading.Thread, duckdb.DuckDBPyConnection] = {}
        self._cursors_lock = threading.Lock()
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._columns: dict[str, tuple[str, ...]] = {}
        self._column_types: dict[str, dict[str, tuple[str, bool]]] = {}
        self._json_columns: set[tuple[str, str]] = set()
        self._buffers: dict[str, list[dict[str, Any]]] = {t: [] for t in BUFFERED_TABLES}
        self._buffer_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._stopping = False
        self._flusher: threading.Thread | None = None
        self._last_purge = self.clock.now()
        self._no_analytics: set[str] = set()  # objected, restricted or locked
        self._locked: set[str] = set()

    @classmethod
    def open(cls, settings: Settings, *, force_uncompressed: bool = False):
        """Open (creating) ``data_dir/gempix.duckdb`` read-write, migrate it, purge old logs.

        ``force_uncompressed`` stores every column uncompressed, so that tests can grep the
        file for a sentinel value; never use it in production.
        """
        store = cls(settings, force_uncompressed=force_uncompressed)
        with _open_paths_lock:
            if store.path in _open_paths:
                raise StoreLockedError(
                    f"The GemPix database {store.path} is already open in this process; "
                    "share that Store instead of opening a second one."
                )
            _open_paths.add(store.path)
        try:
            store.path.parent.mkdir(parents=True, exist_ok=True)
            store._connect()
            with store._translated("migrate the database"):
                migrate(store._conn, store.path)
                store._load_state()
            store._replay_journal()
            store.purge_api_requests(settings.retention_days)
        except BaseException:
            store._disconnect()
            with _open_paths_lock:
                _open_paths.discard(store.path)
            raise
        store._flusher = threading.Thread(target=store._flush_loop, name="gempix-store-flusher")
        store._flusher.daemon = True
        store._flusher.start()
        atexit.register(store._close_at_exit)
        return store

    # -- connection and cursors ---------------------------------------------------------------

    def _connect(self) -> None:
        try:
            self._conn = duckdb.connect(str(self.path))
        except duckdb.Error as error:
            if isinstance(error, duckdb.IOException) and "lock" in str(error).lower():
                raise StoreLockedError(_locked_message(self.path)) from None
            raise StoreError(f"Could not open the GemPix database {self.path}: {error}") from None
        if self._force_uncompressed:
            self._conn.execute("SET force_compression = 'uncompressed'")

    def _disconnect(self) -> None:
        with self._cursors_lock:
            for cursor in self._cursors.values():
                cursor.close()
            self._cursors.clear()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _load_state(self) -> None:
        """Column types (to validate records) and the users whose events are dropped."""
        rows = self._conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable = 'YES' "
            "FROM information_schema.columns "
            "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
        ).fetchall()
        self._column_types = {}
        for table, column, kind, nullable in rows:
            self._column_types.setdefault(table, {})[column] = (kind, nullable)
        self._columns = {table: tuple(types) for table, types in self._column_types.items()}
        self._json_columns = {(table, column) for table, column, kind, _ in rows if kind == "JSON"}
        flags = self._conn.execute(
            "SELECT user_id, locked FROM users WHERE analytics_objection OR restricted OR locked"
        ).fetchall()
        self._no_analytics = {user_id for user_id, _ in flags}
        self._locked = {user_id for user_id, locked in flags if locked}

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor; cursors of finished threads are closed on the way."""
        me = threading.current_thread()
        with self._cursors_lock:
            cursor = self._cursors.get(me)
            if cursor is None:
                if self._conn is None:
                    raise StoreError(f"The store for {self.path} is closed.")
                for thread in [t for t in self._cursors if not t.is_alive()]:
                    self._cursors.pop(thread).close()
                cursor = self._cursors[me] = self._conn.cursor()
            return cursor

    @contextmanager
    def _read(self, action: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """This thread's cursor for reading, once journaled records are in the file.

        Never read inside a ``_write`` block: moving the journal needs the write lock.
        """
        self._move_journaled()
        with self._gate.shared(), self._translated(action):
            yield self._cursor()

    @contextmanager
    def _write(self, action: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold the write lock for one transaction (see ``_transaction``), once journaled
        records are in the file."""
        self._move_journaled()
        with self._locked_transaction(action) as cursor:
            yield cursor

    @contextmanager
    def _locked_transaction(self, action: str) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._gate.shared(), self._write_lock, self._transaction(action) as cursor:
            yield cursor

    @contextmanager
    def _transaction(self, action: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """A transaction on this thread's cursor, committed on leaving the block and rolled
        back on any error. The caller holds the write lock."""
        with self._translated(action):
            cursor = self._cursor()
            cursor.begin()
            try:
                yield cursor
            except BaseException:
                cursor.rollback()
                raise
            cursor.commit()

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """DuckDB errors become the project's errors; messages never echo the values."""
        try:
            yield
        except duckdb.ConstraintException:
            raise ValidationError(
                f"Could not {action}: it conflicts with an existing record or breaks a rule "
                "of the schema."
            ) from None
        except (duckdb.ConversionException, duckdb.InvalidInputException) as error:
            raise ValidationError(
                f"Could not {action}: a value does not fit its column ({type(error).__name__})."
            ) from None
        except duckdb.Error as error:
            raise StoreError(f"Could not {action} in {self.path}: {error}") from error

    def _require_active_user(self, cursor: duckdb.DuckDBPyConnection, user_id: str) -> None:
        """Refuse records for unknown users and for users being erased."""
        row = cursor.execute("SELECT locked FROM users WHERE user_id = ?", [user_id]).fetchone()
        if row is None:
            raise NotFoundError("No such user.")
        if row[0]:
            raise UserLockedError(LOCKED_MESSAGE)

    def _insert(self, cursor: duckdb.DuckDBPyConnection, table: str, row: dict[str, Any]) -> None:
        """Insert one row given as a dict; unknown keys are refused, not ignored."""
        names = self._check_columns(table, row)
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [self._encode(table, name, row[name]) for name in names],
        )

    def _encode(self, table: str, column: str, value: Any) -> Any:
        """Python structures for JSON columns become JSON text; other values pass as they are."""
        if value is None or (table, column) not in self._json_columns or isinstance(value, str):
            return value
        try:
            return json.dumps(value, sort_keys=True)
        except (TypeError, ValueError):
            raise ValidationError(f"{table}.{column}: expected JSON-compatible data.") from None

    def _checked_row(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        """``row`` with each value in the form its column stores, checked as DuckDB would on
        insert, for rows acknowledged before DuckDB sees them. Unknown fields are refused."""
        types = self._column_types[table]
        return {
            name: column_value(table, name, *types[name], row[name])
            for name in self._check_columns(table, row)
        }

    def _check_columns(self, table: str, row: dict[str, Any]) -> list[str]:
        unknown = sorted(set(row) - set(self._columns[table]))
        if unknown:
            raise ValidationError(f"{table}: unknown field(s) {', '.join(unknown)}.")
        return [name for name in self._columns[table] if name in row]

    def table_counts(self) -> dict[str, int]:
        """Rows per table as stored now (rows still in a buffer are not counted)."""
        with self._read("count rows") as cursor:
            return {
                table: cursor.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in self._columns
                if not table.startswith("_")
            }

    # -- journaled generation records --------------------------------------------------------

    def _move_journaled(self) -> None:
        """Move the journaled generation records into the file (one transaction), then empty
        the journal. New records wait meanwhile, so the journal never loses one unmoved."""
        if not self._journaled:
            return
        with self._journal_lock:
            if self._journaled:
                rows = self._journaled
                stored = self._store_generations(rows, "move journaled generation records")
                if stored < len(rows):  # only a caller reusing an id can cause this
                    log.error("%d journaled generation records had a taken id", len(rows) - stored)
                self._journal.clear()
                self._journaled, self._journaled_ids = [], set()

    def _replay_journal(self) -> None:
        """Store the records a crash left in the journal; those already stored are skipped."""
        rows = [self._checked_row("generations", row) for row in self._journal.read()]
        if rows:
            stored = self._store_generations(rows, "replay the generations journal")
            log.info("replayed %d of %d journaled generation records", stored, len(rows))
        self._journal.clear()

    def _store_generations(self, rows: list[dict[str, Any]], action: str) -> int:
        """Insert checked generation rows; return how many were new. A row whose id is stored
        already (a replay repeats rows moved just before a crash) or whose user is gone is
        skipped."""
        types = self._column_types["generations"]
        batch = pa.Table.from_pylist(rows, schema=arrow_schema(types))
        with self._locked_transaction(action) as cursor:
            cursor.register("_gempix_batch", batch)
            try:
                (stored,) = cursor.execute(
                    f"INSERT INTO generations SELECT {', '.join(types)} FROM _gempix_batch "
                    "WHERE user_id IN (SELECT user_id FROM users) ON CONFLICT DO NOTHING"
                ).fetchone()
            finally:
                cursor.unregister("_gempix_batch")
        return stored

    # -- buffered writes ----------------------------------------------------------------------

    def _buffer(self, table: str, row: dict[str, Any]) -> None:
        if set(row) != set(self._columns[table]):
            raise ValidationError(
                f"{table}: expected exactly the fields {', '.join(self._columns[table])}."
            )
        with self._buffer_lock:
            if self._closed:
                raise StoreError(f"The store for {self.path} is closed.")
            pending = self._buffers[table]
            pending.append(row)
            if len(pending) >= FLUSH_BATCH:
                self._wake.set()

    def flush(self) -> None:
        """Write every buffered and journaled row now (the flusher does this at most ~0.5 s
        later anyway)."""
        self._move_journaled()
        with self._buffer_lock:
            batches, self._buffers = self._buffers, {t: [] for t in BUFFERED_TABLES}
        for table, rows in batches.items():
            if rows:
                columns = self._columns[table]
                batch = pa.Table.from_pydict({c: [row[c] for row in rows] for c in columns})
                with self._write(f"write {len(rows)} buffered {table} rows") as cursor:
                    cursor.register("_gempix_batch", batch)
                    try:
                        cursor.execute(f"INSERT INTO {table} SELECT * FROM _gempix_batch")
                    finally:
                        cursor.unregister("_gempix_batch")

    def _flush_loop(self) -> None:
        while not self._stopping:
            self._wake.wait(FLUSH_INTERVAL_S)
            self._wake.clear()
            try:
                self.flush()
                if self.clock.now() - self._last_purge >= PURGE_EVERY:
                    self.purge_api_requests(self.settings.retention_days)
            except Exception:  # a lost batch (logged) must not stop the batches after it
                log.exception("store flusher: a batch could not be written")

    # -- retention ----------------------------------------------------------------------------

    def purge_api_requests(self, older_than_days: int) -> int:
        """Delete API request log rows older than ``older_than_days``; return how many.

        Runs at open and daily in the flusher with ``settings.retention_days``.
        """
        if not isinstance(older_than_days, int) or older_than_days < 1:
            raise ValidationError("older_than_days: expected a whole number of days >= 1.")
        self.flush()
        now = self.clock.now()
        with self._write("purge the API request log") as cursor:
            (count,) = cursor.execute(
                "DELETE FROM api_requests WHERE created_at < ?",
                [now - timedelta(days=older_than_days)],
            ).fetchone()
        self._last_purge = now
        return count

    # -- rewrite and close --------------------------------------------------------------------

    def rewrite_database(self) -> None:
        """Copy the live data into a fresh file and swap it in, so deleted values are gone.

        Writers wait at the gate while the connection is closed and the file is replaced
        (``os.replace``, atomic); a crash before the swap leaves the old file intact and a
        leftover ``.rewrite`` file that the next rewrite removes.
        """
        self.flush()
        fresh = self.path.with_name(self.path.name + ".rewrite")
        with self._gate.exclusive(), self._translated("rewrite the database"):
            for leftover in (fresh, Path(f"{fresh}.wal")):
                leftover.unlink(missing_ok=True)
            (name,) = self._conn.execute("SELECT current_database()").fetchone()
            self._conn.execute(f"ATTACH {sql_string(str(fresh))} AS gempix_rewrite")
            try:
                self._conn.execute(f'COPY FROM DATABASE "{name}" TO gempix_rewrite')
            finally:
                self._conn.execute("DETACH gempix_rewrite")
            self._disconnect()
            try:
                for stray in (Path(f"{self.path}.wal"), Path(f"{fresh}.wal")):
                    if stray.exists():  # a WAL applied to the wrong file would corrupt it
                        raise StoreError(f"Rewrite stopped: {stray} was left after closing.")
                os.replace(fresh, self.path)
            finally:
                self._connect()

    def close(self) -> None:
        """Stop the flusher, write the buffers, close the file. Safe to call twice."""
        if self._flusher is None:
            return
        self._stopping = True
        self._wake.set()
        self._flusher.join()
        self._flusher = None
        with self._buffer_lock, self._journal_lock:
            self._closed = True
        self.flush()
        with self._gate.exclusive():
            self._disconnect()
        self._journal.close()
        with _open_paths_lock:
            _open_paths.discard(self.path)
        atexit.unregister(self._close_at_exit)

    def _close_at_exit(self) -> None:
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
