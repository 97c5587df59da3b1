"""The schema, as an append-only list of migrations (the habit of simonw/llm ``migrations.py``).

Each function moves the schema one step; ``migrate`` runs the ones a database lacks, each in
its own transaction together with the row that records it, so a crash leaves the file at a
whole step, and two processes starting at once apply each step once. A change to the schema
is a new function at the end of ``MIGRATIONS``; released ones are never edited.
``_gempix_migrations`` records each step by name and number; the highest number is the file's
schema version, and a file from a newer release (a version this code does not know) is
refused rather than half-understood.

The DDL is plain SQL with standard types, so SQLite and PostgreSQL run the same steps (the
backend's ``ddl`` renames the one type they spell differently: ``BLOB`` is ``BYTEA`` there).
Times are naive UTC ``TIMESTAMP``; ``JSON`` columns hold JSON text. Numeric columns that take
values from outside carry a ``CHECK (x = CAST(x AS type))``: SQLite stores any value in any
column, and this makes it refuse, say, text in ``seed`` (elsewhere it is always true). Every
per-user table refers to ``users``, so no record can outlive its user; erasure deletes table by
table in the order of ``registry.PER_USER_TABLES``, ``users`` last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import GemPixError
from .values import utcnow

Migration = Callable[[Any], None]  # takes a connection's ``execute``, as ``Schema`` offers it


class Schema:
    """What a migration is given: ``execute`` that speaks the backend's type names."""

    def __init__(self, db, backend):
        self.db, self.backend = db, backend

    def execute(self, statement: str, params: Sequence[Any] = ()):
        return self.db.execute(self.backend.ddl(statement), params)


def _whole(column: str, kind: str = "INTEGER") -> str:
    return f"{column} {kind} CHECK ({column} = CAST({column} AS {kind}))"


def _real(column: str) -> str:
    return f"{column} DOUBLE PRECISION CHECK ({column} = CAST({column} AS DOUBLE PRECISION))"


def m001_initial(db: Schema) -> None:
    """Users and everything they own, the privacy audit, and the record of imports."""
    statements = [
        """
        CREATE TABLE users (
            user_id TEXT PRIMARY KEY,
            created_at TIMESTAMP NOT NULL,
            role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
            age_confirmed_at TIMESTAMP,
            policy_version_seen TEXT,
            restricted BOOLEAN NOT NULL DEFAULT FALSE,
            analytics_objection BOOLEAN NOT NULL DEFAULT FALSE,
            locked BOOLEAN NOT NULL DEFAULT FALSE,
            display_name TEXT
        )
        """,
        f"""
        CREATE TABLE generations (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users (user_id),
            created_at TIMESTAMP NOT NULL,
            front_door TEXT CHECK (front_door IN ('ui', 'api', 'cli', 'notebook')),
            prompt TEXT,
            negative_prompt TEXT,
            model TEXT,
            {_whole("seed", "BIGINT")},
            {_whole("steps")},
            {_real("guidance")},
            {_whole("width")},
            {_whole("height")},
            params JSON,
            styles JSON,
            character_id TEXT,
            {_real("consistency")},
            source_id TEXT,
            file_path TEXT,
            status TEXT NOT NULL DEFAULT 'ok',
            error_class TEXT,
            {_real("duration_ms")}
        )
        """,
        "CREATE INDEX generations_by_user ON generations (user_id, created_at, id)",
        "CREATE INDEX generations_by_time ON generations (created_at, id)",
        f"""
        CREATE TABLE characters (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users (user_id),
            name TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL,
            reference_paths JSON NOT NULL,
            embeddings BLOB,
            rights_confirmed_at TIMESTAMP,
            {_real("strength")},
            UNIQUE (user_id, name)
        )
        """,
        """
        CREATE TABLE user_styles (
            user_id TEXT NOT NULL REFERENCES users (user_id),
            name TEXT NOT NULL,
            template TEXT NOT NULL,
            negative TEXT NOT NULL DEFAULT '',
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (user_id, name)
        )
        """,
        """
        CREATE TABLE consents (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users (user_id),
            purpose TEXT NOT NULL,
            granted BOOLEAN NOT NULL,
            policy_version TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL,
            method TEXT NOT NULL
        )
        """,
        "CREATE INDEX consents_by_user ON consents (user_id, purpose, created_at)",
        """
        CREATE TABLE api_keys (
            prefix TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users (user_id),
            name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('user', 'admin')),
            secret_hash TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL,
            last_used_at TIMESTAMP,
            revoked_at TIMESTAMP
        )
        """,
        "CREATE INDEX api_keys_by_user ON api_keys (user_id)",
        """
        CREATE TABLE api_requests (
            id TEXT PRIMARY KEY,
            created_at TIMESTAMP NOT NULL,
            route TEXT NOT NULL,
            method TEXT NOT NULL,
            status INTEGER NOT NULL,
            latency_ms DOUBLE PRECISION NOT NULL,
            key_prefix TEXT,
            user_id TEXT REFERENCES users (user_id),
            error_class TEXT
        )
        """,
        "CREATE INDEX api_requests_by_time ON api_requests (created_at)",
        "CREATE INDEX api_requests_by_user ON api_requests (user_id)",
        "CREATE INDEX api_requests_by_key ON api_requests (key_prefix)",
        """
        CREATE TABLE privacy_requests (
            id TEXT PRIMARY KEY,
            user_hash TEXT NOT NULL,
            kind TEXT NOT NULL,
            received_at TIMESTAMP NOT NULL,
            completed_at TIMESTAMP,
            counts JSON
        )
        """,
        "CREATE INDEX privacy_requests_by_user ON privacy_requests (user_hash, received_at)",
        """
        CREATE TABLE _gempix_imports (
            source TEXT PRIMARY KEY,
            file_id TEXT NOT NULL,
            imported_at TIMESTAMP NOT NULL,
            counts JSON NOT NULL
        )
        """,
    ]
    for statement in statements:
        db.execute(statement)


MIGRATIONS: tuple[Migration, ...] = (m001_initial,)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db) -> int:
    """The file's version: the highest migration number recorded (0 for a blank file)."""
    (found,) = db.execute("SELECT coalesce(max(version), 0) FROM _gempix_migrations").fetchone()
    return found


def _refuse_newer(db, where: str, migrations: Sequence[Migration]) -> None:
    found = schema_version(db)
    if found > len(migrations):
        raise GemPixError(
            f"{where} was written by a newer GemPix (schema version {found}); this release "
            f"knows up to version {len(migrations)}. Upgrade GemPix to open it."
        )


def migrate(db, backend, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply the migrations ``db`` (a connection of ``backend``) lacks, in order; return their
    names.

    Raises ``GemPixError`` naming the database and both versions when it is newer than
    ``migrations``: an older release must not write into a schema it does not know.
    """
    where = backend.where
    backend.begin_write(db)  # two processes creating the table at once: one waits
    db.execute(
        "CREATE TABLE IF NOT EXISTS _gempix_migrations ("
        "name TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    db.execute("COMMIT")
    _refuse_newer(db, where, migrations)
    done = {name for (name,) in db.execute("SELECT name FROM _gempix_migrations")}
    applied = []
    for version, migration in enumerate(migrations, start=1):
        if migration.__name__ in done:
            continue
        backend.begin_write(db)
        try:
            _refuse_newer(db, where, migrations)
            again = db.execute(
                "SELECT count(*) FROM _gempix_migrations WHERE name = ?", [migration.__name__]
            ).fetchone()[0]
            if not again:  # another process may have applied it since we looked
                migration(Schema(db, backend))
                db.execute(
                    "INSERT INTO _gempix_migrations VALUES (?, ?, ?)",
                    [migration.__name__, version, utcnow()],
                )
                applied.append(migration.__name__)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return applied
