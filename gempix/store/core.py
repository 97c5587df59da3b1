"""Opening a data directory's records and events, and sharing them between threads and processes.

Personal records live in SQLite (``gempix.sqlite3``; ``sqlite.py`` has the pragmas), or, with
``settings.database_url``, in PostgreSQL (``postgres.py``): the backend, chosen by
``backend_for``, holds every difference between the two; the SQL here and in the mixins is the
same for both. With SQLite, every process opens the file: WAL mode lets the running app, the CLI
and notebooks read and write side by side, and writers take turns, each holding the lock for one
short transaction. Inside a process each thread has its own connection; writes also pass a
process lock, so threads queue in order instead of polling SQLite's busy handler. Every record
is committed (and synced) before the method that made it returns.

The anonymous usage events live beside it as Parquet files that DuckDB reads
(``eventlog.py``). A background thread writes the buffered events every second, merges their
files, and once a day purges the API request log.
"""

from __future__ import annotations

import atexit
import json
import logging
import numbers
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, StoreError, UserLockedError, ValidationError
from ..settings import Settings
from . import sqlite
from .eventlog import USAGE_DIR, EventLog
from .legacy import import_legacy
from .migrations import migrate
from .registry import PER_USER_TABLES
from .values import Clock, as_utc

log = logging.getLogger(__name__)

DB_FILE = sqlite.DB_FILE
FLUSH_INTERVAL_S = 1.0  # buffered usage events reach their files at most about this late
MAINTAIN_EVERY = timedelta(days=1)
LOCKED_MESSAGE = "This user's data is being erased; nothing new is recorded."
_VALUE_ERRORS = (UnicodeEncodeError, OverflowError)  # raised by the driver while binding
# Numbers are checked before they reach the database: PostgreSQL would round 2.5 into an
# INTEGER column where SQLite's CHECK refuses it.
_NUMBERS = {"INTEGER": numbers.Integral, "BIGINT": numbers.Integral}


def backend_for(settings: Settings):
    """SQLite in the data dir, or PostgreSQL when ``settings.database_url`` names a server."""
    if not settings.database_url:
        return sqlite.SQLite(Path(settings.data_dir).resolve() / DB_FILE)
    try:
        from .postgres import PostgreSQL
    except ImportError as error:
        raise StoreError(
            f"GEMPIX_DATABASE_URL names a PostgreSQL server, but psycopg is missing ({error}). "
            'Install it with: pip install "gempix[postgres]"'
        ) from None
    return PostgreSQL(settings.database_url)


class StoreBase:
    """Connections, transactions, the usage log and the flusher.

    Build with ``Store.open(settings)``; the domain methods live in the mixins that make up
    ``gempix.store.Store``.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.data_dir = Path(settings.data_dir).resolve()
        self.path = self.data_dir / DB_FILE  # the SQLite file (unused with PostgreSQL)
        self.backend = backend_for(settings)
        self.clock = Clock()
        self.usage = EventLog(self.data_dir / USAGE_DIR)
        self._columns: dict[str, dict[str, str]] = {}  # table -> column -> declared type
        self._connections: dict[threading.Thread, Any] = {}  # DB-API connections
        self._connections_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._last_maintenance = self.clock.now()

    @classmethod
    def open(cls, settings: Settings):
        """Open (creating) the data directory's records, migrate them (moving a
        ``gempix.duckdb`` of an earlier release over on first start), purge old logs."""
        store = cls(settings)
        try:
            try:
                store.data_dir.mkdir(parents=True, exist_ok=True)
                store.backend.prepare()
                connection = store._connection()
                migrate(connection, store.backend)
                store._columns = store.backend.columns(connection)
            except (OSError, store.backend.Error) as error:
                raise StoreError(
                    f"Could not open the GemPix database {store.backend.where}: {error}"
                ) from error
            import_legacy(store)
            store._maintain()
        except BaseException:
            store._disconnect()
            raise
        store._flusher = threading.Thread(target=store._flush_loop, name="gempix-store-flusher")
        store._flusher.daemon = True
        store._flusher.start()
        atexit.register(store._close_at_exit)
        return store

    # -- connections and transactions ---------------------------------------------------------

    def _connection(self):
        """This thread's connection; those of finished threads are closed on the way."""
        me = threading.current_thread()
        with self._connections_lock:
            if self._closed:
                raise StoreError(f"The store for {self.backend.where} is closed.")
            connection = self._connections.get(me)
            if connection is None:
                for thread in [t for t in self._connections if not t.is_alive()]:
                    self._connections.pop(thread).close()
                connection = self._connections[me] = self.backend.connect()
            return connection

    def _disconnect(self) -> None:
        with self._connections_lock:
            self._closed = True
            for connection in self._connections.values():
                connection.close()
            self._connections.clear()

    @contextmanager
    def _read(self, action: str) -> Iterator[Any]:
        """This thread's connection, for statements that only read."""
        with self._translated(action):
            yield self._connection()

    @contextmanager
    def _write(self, action: str, durable: bool = False) -> Iterator[Any]:
        """One write transaction, committed on leaving the block, rolled back on any error.

        ``durable``: the commit is synced to disk before the block ends, so it survives a
        power loss too (about 0.3 ms more); every commit survives a crash of the process.
        """
        with self._translated(action), self._write_lock:
            connection = self._connection()
            with self.backend.synced(connection) if durable else nullcontext():
                self.backend.begin_write(connection)
                try:
                    yield connection
                    connection.execute("COMMIT")
                except BaseException:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    raise

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """Database errors become the project's errors; messages never echo the values."""
        try:
            yield
        except self.backend.Error as error:
            raise self.backend.translated(error, action) from None
        except _VALUE_ERRORS as error:
            raise ValidationError(
                f"Could not {action}: a value does not fit its column ({type(error).__name__})."
            ) from None

    # -- rows ---------------------------------------------------------------------------------

    def _require_active_user(self, connection, user_id: str) -> None:
        """Refuse records for unknown users and for users being erased."""
        row = connection.execute("SELECT locked FROM users WHERE user_id = ?", [user_id]).fetchone()
        if row is None:
            raise NotFoundError("No such user.")
        if row[0]:
            raise UserLockedError(LOCKED_MESSAGE)

    def _insert(self, connection, table: str, row: dict[str, Any]) -> None:
        """Insert one row given as a dict; unknown keys are refused, not ignored."""
        names = self._check_columns(table, row)
        connection.execute(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [self._encode(table, name, row[name]) for name in names],
        )

    def _check_columns(self, table: str, row: dict[str, Any]) -> list[str]:
        unknown = sorted(set(row) - set(self._columns[table]))
        if unknown:
            raise ValidationError(f"{table}: unknown field(s) {', '.join(unknown)}.")
        return [name for name in self._columns[table] if name in row]

    def _encode(self, table: str, column: str, value: Any) -> Any:
        """``value`` as its column stores it: JSON columns take Python data (or JSON text),
        timestamp columns datetimes or ISO text, the others one plain value."""
        kind = self._columns[table][column]
        if value is None:
            return None
        if kind == "JSON":
            try:
                return json.dumps(
                    json.loads(value) if isinstance(value, str) else value, sort_keys=True
                )
            except (TypeError, ValueError):
                raise ValidationError(f"{table}.{column}: expected JSON-compatible data.") from None
        if kind == "TIMESTAMP":
            return as_utc(value, f"{table}.{column}")
        if not isinstance(value, _NUMBERS.get(kind, (str, int, float, bytes))) or (
            kind in _NUMBERS and isinstance(value, bool)
        ):
            raise ValidationError(
                f"{table}.{column}: expected one {kind.lower()} value, got {type(value).__name__}."
            )
        return int(value) if kind in _NUMBERS else value

    def _columns_except(self, table: str, hidden: tuple[str, ...]) -> str:
        """The select list of ``table`` without ``hidden`` columns."""
        return ", ".join(name for name in self._columns[table] if name not in hidden)

    def table_counts(self) -> dict[str, int]:
        """Rows per table as stored now, and the usage events written so far (buffered ones
        are not counted)."""
        with self._read("count rows") as connection:
            counts = {
                table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in self._columns
                if not table.startswith("_")
            }
        return {**counts, "usage_events": self.usage.count()}

    # -- usage events, retention, erasure residue ---------------------------------------------

    def flush(self) -> None:
        """Write the buffered usage events now (the flusher does so within a second anyway)."""
        if self._closed:
            raise StoreError(f"The store for {self.backend.where} is closed.")
        self.usage.flush()

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_S):
            try:
                days = self.usage.flush()
                if days:
                    self.usage.compact(days)
                if self.clock.now() - self._last_maintenance >= MAINTAIN_EVERY:
                    self._maintain()
            except Exception:  # a lost batch (logged) must not stop the batches after it
                log.exception("store flusher: usage events or maintenance failed")

    def _maintain(self) -> None:
        """Daily (and at open): purge old request logs, merge finished days' event files."""
        self.purge_api_requests(self.settings.retention_days)
        self.usage.compact()
        self._last_maintenance = self.clock.now()

    def purge_api_requests(self, older_than_days: int) -> int:
        """Delete API request log rows older than ``older_than_days``; return how many.

        Runs at open and daily in the flusher with ``settings.retention_days``.
        """
        if not isinstance(older_than_days, int) or older_than_days < 1:
            raise ValidationError("older_than_days: expected a whole number of days >= 1.")
        cutoff = self.clock.now() - timedelta(days=older_than_days)
        with self._write("purge the API request log") as connection:
            return connection.execute(
                "DELETE FROM api_requests WHERE created_at < ?", [cutoff]
            ).rowcount

    def scrub_deleted(self) -> None:
        """Leave no deleted value in any file of the database, and make the deletion durable.

        SQLite: ``secure_delete`` zeroes deleted content in its page as it is written; the
        pages go to the WAL first, beside earlier versions of themselves. A checkpoint that
        truncates the WAL writes the zeroed pages into the database file and cuts the old
        versions off. PostgreSQL: the per-user tables are rewritten and the WAL segments
        that held the rows are removed (``postgres.PostgreSQL.scrub``).
        """
        with self._translated("scrub deleted records"), self._write_lock:
            self.backend.scrub(self._connection(), PER_USER_TABLES)

    # -- close --------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the flusher, write the buffered events, close the database. Safe to call twice."""
        if self._flusher is None:
            return
        self._stop.set()
        self._flusher.join()
        self._flusher = None
        try:
            self.usage.flush()
        finally:
            self._disconnect()
            self.usage.close()
            atexit.unregister(self._close_at_exit)

    def _close_at_exit(self) -> None:
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
