"""Everything that only PostgreSQL needs, in one module (``sqlite.py`` is its twin).

Chosen with ``GEMPIX_DATABASE_URL=postgresql://...``; needs psycopg 3 (``gempix[postgres]``).
The store's SQL is the same as on SQLite; what differs lives here:

- Parameters: the store writes ``?`` and ``:name``; psycopg takes ``%s`` and ``%(name)s``.
  ``Connection`` rewrites each statement once (cached) before psycopg sees it.
- Types: ``BLOB`` is ``BYTEA`` in the DDL; the catalogue's type names are mapped back to the
  declared ones (``TIMESTAMP``, ``JSON``...), so the store encodes values the same way.
- Schema: the tables live in the connection's current schema (the URL may choose one with
  ``?options=-csearch_path%3Dname``), so several installations, or tests, share one database.
- Writers take turns, as on SQLite: ``begin_write`` takes a transaction-scoped advisory lock
  of the schema, so "check the user is not being erased, then insert" is one step against
  every other process, and concurrent first starts apply each migration once.
- Durability as on SQLite: a commit is on the server before it returns, so a crash of the
  app loses nothing; writes run with ``synchronous_commit = off`` (the server flushes its WAL
  within ~0.6 s), so a crash of the server may lose the last moment's records, and the writes
  that must survive that too (consent, restriction, keys, an erasure's lock) run ``synced``,
  waiting for the flush as the server's setting says.
- Erasure (``scrub``): deleted rows stay in heap, TOAST and index pages until those are
  rewritten, and in the WAL segments written since; see ``scrub`` and docs/store.md for the
  procedure that was measured to leave none of them in the cluster's files.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from ..errors import GemPixError, StoreError, ValidationError

Error = psycopg.Error
CONNECT_TIMEOUT_S = 10
# The catalogue's names for the declared types the store encodes by (see ``StoreBase._encode``).
_DECLARED = {"TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP", "BYTEA": "BLOB"}
_NAMED = re.compile(r"(?<!:):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=512)
def _pyformat(sql: str) -> str:
    """The store's ``?`` / ``:name`` placeholders as psycopg's ``%s`` / ``%(name)s``."""
    sql = sql.replace("%", "%%").replace("?", "%s")
    return _NAMED.sub(r"%(\1)s", sql)


class Connection:
    """A psycopg connection in autocommit mode that speaks the store's placeholders and has
    the few attributes of ``sqlite3.Connection`` the store uses."""

    def __init__(self, raw: psycopg.Connection):
        self.raw = raw
        self.durable = False  # set by ``PostgreSQL.synced`` for the writes in its block

    def execute(self, sql: str, params: Any = None) -> psycopg.Cursor:
        if params is None:
            return self.raw.execute(sql)
        return self.raw.execute(_pyformat(sql), params)

    def executemany(self, sql: str, rows: Iterable[Any]) -> psycopg.Cursor:
        cursor = self.raw.cursor()
        cursor.executemany(_pyformat(sql), list(rows))
        return cursor

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unreadable URL)"
    host = parts.get("host", "localhost")
    port = f":{parts['port']}" if parts.get("port") else ""
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname', '')}"


class PostgreSQL:
    """The records in a PostgreSQL database (``url``)."""

    name = "PostgreSQL"
    Error = psycopg.Error

    def __init__(self, url: str):
        self.url = url
        self.where = redacted(url)

    def prepare(self) -> None:
        """Nothing to create on disk: the server holds the files."""

    def connect(self) -> Connection:
        raw = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="gempix",
        )
        return Connection(raw)

    @staticmethod
    def ddl(statement: str) -> str:
        return re.sub(r"\bBLOB\b", "BYTEA", statement)

    @staticmethod
    def begin_write(conn: Connection) -> None:
        """Start a transaction holding this schema's write lock (one writer at a time, in
        every process, as SQLite's ``BEGIN IMMEDIATE``); released at commit or rollback.
        One round trip."""
        relaxed = "" if conn.durable else "SET LOCAL synchronous_commit = off; "
        conn.execute(
            f"BEGIN; {relaxed}SELECT pg_advisory_xact_lock(hashtext('gempix:' || current_schema()))"
        )

    @staticmethod
    @contextlib.contextmanager
    def synced(conn: Connection):
        """Commits in this block wait for the server's WAL flush before they return."""
        conn.durable = True
        try:
            yield
        finally:
            conn.durable = False

    @staticmethod
    def busy_timeout(conn: Connection, seconds: float):
        """Writers wait for the lock without a limit here; nothing to change."""
        return contextlib.nullcontext()

    @staticmethod
    def columns(conn: Connection) -> dict[str, dict[str, str]]:
        """``{table: {column: declared type}}`` of the current schema's tables."""
        found: dict[str, dict[str, str]] = {}
        for table, column, kind in conn.execute(
            "SELECT table_name, column_name, upper(data_type) FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        ):
            found.setdefault(table, {})[column] = _DECLARED.get(kind, kind)
        return found

    @staticmethod
    def contains(column: str, parameter: str) -> str:
        """SQL that is true when text or JSON ``column`` contains the text of ``:parameter``."""
        return f'strpos(CAST("{column}" AS TEXT), :{parameter}) > 0'

    def scrub(self, conn: Connection, tables: Iterable[str]) -> None:
        """Leave no deleted row of ``tables`` in the cluster's files (measured, docs/store.md).

        1. ``VACUUM FULL`` of each table writes its live rows, TOAST and indexes into new
           files; the old files are truncated at once and unlinked at the next checkpoint.
           (A plain ``VACUUM`` frees the space but leaves the bytes in heap and TOAST pages.)
        2. ``pg_switch_wal()`` ends the WAL segment that holds the rows as written, and the
           page images logged since; ``CHECKPOINT`` then moves the redo point past it, so the
           checkpoint deletes the segment, and unlinks the old table files.

        Segments are deleted only with ``wal_recycle = off``; with it on (the default) they are
        renamed for reuse with their bytes. WAL kept for ``wal_keep_size`` or a replication
        slot stays too. Those are refused here, naming the setting. Copies elsewhere (archived
        WAL, replicas, backups) are out of reach. Needs ownership of the tables, and the
        ``pg_checkpoint`` role and ``EXECUTE`` on ``pg_switch_wal()`` (or a superuser).
        """
        keeping = self._wal_kept(conn)
        if keeping:
            raise StoreError(
                f"Could not scrub deleted records in {self.where}: the server keeps old WAL "
                f"({'; '.join(keeping)}), so deleted values would stay in its files. See "
                "docs/store.md (PostgreSQL erasure)."
            )
        for table in tables:
            conn.execute(f'VACUUM FULL "{table}"')
        conn.execute("SELECT pg_switch_wal()")
        conn.execute("CHECKPOINT")

    @staticmethod
    def _wal_kept(conn: Connection) -> list[str]:
        """What makes the server keep WAL segments (and their bytes) after a checkpoint."""
        recycle, keep_size = conn.execute(
            "SELECT current_setting('wal_recycle'), current_setting('wal_keep_size')"
        ).fetchone()
        (slots,) = conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone()
        return [
            reason
            for reason, applies in (
                ("wal_recycle is on; set it off", recycle == "on"),
                (f"wal_keep_size is {keep_size}; set it to 0", keep_size not in ("0", "0MB")),
                (f"{slots} replication slot(s)", slots > 0),
            )
            if applies
        ]

    def translated(self, error: psycopg.Error, action: str) -> GemPixError:
        """The project's error for a PostgreSQL error. Messages name columns and rules, never
        values (the server's own text may quote them, so it is used only for other errors)."""
        diag = error.diag
        if isinstance(error, pg_errors.CheckViolation):
            return ValidationError(
                f"Could not {action}: a value breaks the rule {diag.constraint_name}."
            )
        if isinstance(error, pg_errors.NotNullViolation):
            return ValidationError(
                f"Could not {action}: {diag.table_name}.{diag.column_name} needs a value."
            )
        if isinstance(error, pg_errors.UniqueViolation):
            return ValidationError(f"Could not {action}: {diag.constraint_name} is already taken.")
        if isinstance(error, pg_errors.ForeignKeyViolation):
            return ValidationError(f"Could not {action}: it refers to a record that is gone.")
        if isinstance(error, (psycopg.IntegrityError, psycopg.DataError)):
            return ValidationError(f"Could not {action}: a value does not fit its column.")
        message = diag.message_primary or str(error).splitlines()[0]
        return StoreError(f"Could not {action} in {self.where}: {message}")
