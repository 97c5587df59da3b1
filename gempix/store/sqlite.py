"""Everything that only SQLite needs, in one module (``postgres.py`` is its twin).

``SQLite`` is the default backend: one file in the data dir. The rest of the store speaks
plain SQL through the DB-API connections a backend makes: standard
column types (``TEXT``, ``INTEGER``, ``BIGINT``, ``DOUBLE PRECISION``, ``BOOLEAN``,
``TIMESTAMP``, ``JSON``, ``BLOB``), ``?`` and ``:name`` parameters, ``RETURNING``,
``ON CONFLICT``, window functions. What is SQLite's own lives here: the file and its modes,
the pragmas, how values cross into and out of SQLite's few storage classes, how its errors
read, the catalogue, and the WAL checkpoint that erasure relies on.

Pragmas, per connection:

- ``journal_mode = WAL``: readers never block the writer and other processes (the CLI, a
  notebook) read and write beside the running app; writers take turns.
- ``synchronous = NORMAL``: a commit is in the WAL before it returns, so it survives a crash
  of the process (it costs 0.02 ms instead of an ``fsync``); the WAL is synced at checkpoints.
  A power loss may roll back the last commits before one, never corrupt the file. Writes
  that must survive that too (consent, restriction, keys) run ``synced``: ``FULL`` for them.
- ``secure_delete = ON``: deleted content is overwritten with zeros in its page, in freed
  (freelist) pages and overflow pages; after a checkpoint that truncates the WAL
  (``checkpoint``), no deleted value is left in any file.
- ``foreign_keys = ON``: no record can point at a user who does not exist.
- ``temp_store = MEMORY``: sorts never spill prompts into temporary files outside the data dir.
- a busy timeout: a writer waits for another process's transaction (a few ms) instead of
  failing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from datetime import datetime
from pathlib import Path

from ..errors import GemPixError, StoreError, ValidationError

DB_FILE = "gempix.sqlite3"
SIDE_SUFFIXES = ("-wal", "-shm")  # SQLite creates these with the database file's mode
BUSY_TIMEOUT_S = 10.0
FILE_MODE = 0o600


def _timestamp_text(value: datetime) -> str:
    """Naive UTC as fixed-width text, so text order is time order (see ``values.as_utc``)."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


# SQLite has no timestamp, boolean or JSON storage class: values go in as text or integers and
# come back typed by the column's declared type (``detect_types=PARSE_DECLTYPES``, which looks
# at its first word). Registered once per process, for connections made here.
sqlite3.register_adapter(datetime, _timestamp_text)
sqlite3.register_converter("TIMESTAMP", lambda raw: datetime.fromisoformat(raw.decode()))
sqlite3.register_converter("BOOLEAN", lambda raw: raw not in (b"0", b""))
sqlite3.register_converter("JSON", json.loads)
sqlite3.register_converter("DOUBLE", float)


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it is missing, and tighten it if it is looser:
    the database holds prompts. Its -wal and -shm files inherit the mode."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    for suffix in SIDE_SUFFIXES:
        side = Path(f"{path}{suffix}")
        with contextlib.suppress(FileNotFoundError):
            if side.stat().st_mode & 0o077:
                side.chmod(FILE_MODE)


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (the store opens its transactions itself)."""
    conn = sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_S,
        detect_types=sqlite3.PARSE_DECLTYPES,
        isolation_level=None,
        check_same_thread=False,  # one per thread; ``close`` may run on another
    )
    try:
        (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode != "wal":
            raise StoreError(f"{path} could not be switched to WAL mode (it is in {mode}).")
        for pragma in ("synchronous = NORMAL", "secure_delete = ON", "foreign_keys = ON"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("PRAGMA temp_store = MEMORY")
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def busy_timeout(conn: sqlite3.Connection, seconds: float):
    """Wait up to ``seconds`` for other writers in this block (a long one-off upgrade)."""
    conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")


@contextlib.contextmanager
def synced(conn: sqlite3.Connection):
    """Commits in this block are synced to disk before they return (``synchronous = FULL``)."""
    conn.execute("PRAGMA synchronous = FULL")
    try:
        yield
    finally:
        conn.execute("PRAGMA synchronous = NORMAL")


def begin_write(conn: sqlite3.Connection) -> None:
    """Start a write transaction holding the write lock now, so it can never fail later
    because another process wrote first (a plain BEGIN would take the lock lazily)."""
    conn.execute("BEGIN IMMEDIATE")


def columns(conn: sqlite3.Connection) -> dict[str, dict[str, str]]:
    """``{table: {column: declared type}}`` of every table, from SQLite's catalogue."""
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    return {
        table: {row[1]: row[2].upper() for row in conn.execute(f'PRAGMA table_info("{table}")')}
        for table in tables
    }


def contains(column: str, parameter: str) -> str:
    """SQL that is true when text ``column`` contains the text bound to ``:parameter``."""
    return f'instr("{column}", :{parameter}) > 0'


def checkpoint(conn: sqlite3.Connection, path: Path) -> None:
    """Copy the WAL into the database file and truncate the WAL to zero bytes, synced.

    With ``secure_delete`` on, the pages written back hold zeros where deleted rows were, and
    the WAL's older copies of those pages are cut off. It needs every reader of an older
    snapshot to finish; it waits for them up to the busy timeout, then raises StoreError.
    Everything committed before is durable afterwards.
    """
    (busy, _, _) = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        raise StoreError(
            f"Could not checkpoint {path}: another process kept reading it for more than "
            f"{BUSY_TIMEOUT_S:.0f} s. Deleted values may remain in {path.name}-wal until the "
            "next checkpoint; try again."
        )


_RULE = re.compile(r"CHECK constraint failed: (.+)")
_FIELD = re.compile(r"(?:NOT NULL|UNIQUE) constraint failed: ([\w.]+(?:, [\w.]+)*)")


def translated(error: sqlite3.Error, action: str, path: Path) -> GemPixError:
    """The project's error for an SQLite error. Messages name columns and rules, never values."""
    text = str(error)
    if isinstance(error, sqlite3.IntegrityError):
        rule, field = _RULE.search(text), _FIELD.search(text)
        if rule:
            return ValidationError(f"Could not {action}: a value breaks the rule {rule[1]}.")
        if text.startswith("NOT NULL") and field:
            return ValidationError(f"Could not {action}: {field[1]} needs a value.")
        if text.startswith("UNIQUE") and field:
            return ValidationError(f"Could not {action}: {field[1]} is already taken.")
        if "FOREIGN KEY" in text:
            return ValidationError(f"Could not {action}: it refers to a record that is gone.")
        return ValidationError(f"Could not {action}: it breaks a rule of the schema.")
    if isinstance(error, (sqlite3.InterfaceError, sqlite3.ProgrammingError)) and "binding" in text:
        return ValidationError(f"Could not {action}: a value does not fit its column.")
    if isinstance(error, sqlite3.OperationalError) and "locked" in text:
        return StoreError(
            f"Could not {action}: {path} stayed busy for more than {BUSY_TIMEOUT_S:.0f} s "
            "(another process is writing a long transaction); try again."
        )
    return StoreError(f"Could not {action} in {path}: {text}")


class SQLite:
    """The records in ``data_dir/gempix.sqlite3``: the functions above, as a backend with the
    same methods as ``postgres.PostgreSQL``."""

    name = "SQLite"
    Error = sqlite3.Error
    begin_write = staticmethod(begin_write)
    synced = staticmethod(synced)
    busy_timeout = staticmethod(busy_timeout)
    columns = staticmethod(columns)
    contains = staticmethod(contains)

    def __init__(self, path: Path):
        self.path = path
        self.where = str(path)

    def prepare(self) -> None:
        private_file(self.path)

    def connect(self) -> sqlite3.Connection:
        return connect(self.path)

    @staticmethod
    def ddl(statement: str) -> str:
        return statement

    def scrub(self, conn: sqlite3.Connection, tables) -> None:
        """``secure_delete`` already zeroed the rows of every table: fold the WAL in."""
        checkpoint(conn, self.path)

    def translated(self, error: sqlite3.Error, action: str) -> GemPixError:
        return translated(error, action, self.path)
