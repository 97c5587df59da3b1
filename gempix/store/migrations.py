"""The schema, as an append-only list of migrations (the habit of simonw/llm ``migrations.py``).

Each function moves the schema one step; ``migrate`` runs the ones a file lacks, each in its own
transaction together with the row that records it, so a crash leaves a file at a whole step.
A change to the schema is a new function at the end of ``MIGRATIONS``; released ones are never
edited. ``_gempix_migrations`` records each step by name and number; the highest number is the
file's schema version, and a file from a newer release (a version this code does not know) is
refused rather than half-understood.

All timestamps are UTC, stored as naive ``TIMESTAMP``. There are no foreign keys: DuckDB cannot
cascade and rejects deleting a referenced row, so erasure deletes per table in the order of
``registry.PER_USER_TABLES`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb

from ..errors import GemPixError
from .values import utcnow

Migration = Callable[[duckdb.DuckDBPyConnection], None]


def m001_initial(db: duckdb.DuckDBPyConnection) -> None:
    """The studio core: users, their generations and characters, consent, privacy audit."""
    db.execute(
        """
        CREATE TABLE users (
            user_id TEXT PRIMARY KEY,
            created_at TIMESTAMP NOT NULL,
            role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
            age_confirmed_at TIMESTAMP,
            policy_version_seen TEXT,
            restricted BOOLEAN NOT NULL DEFAULT false,
            analytics_objection BOOLEAN NOT NULL DEFAULT false,
            locked BOOLEAN NOT NULL DEFAULT false,
            display_name TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE generations (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL,
            front_door TEXT CHECK (front_door IN ('ui', 'api', 'cli', 'notebook')),
            prompt TEXT,
            negative_prompt TEXT,
            model TEXT,
            seed BIGINT,
            steps INTEGER,
            guidance DOUBLE,
            width INTEGER,
            height INTEGER,
            params JSON,
            styles TEXT[],
            character_id TEXT,
            consistency DOUBLE,
            source_id TEXT,
            file_path TEXT,
            status TEXT NOT NULL DEFAULT 'ok',
            error_class TEXT,
            duration_ms DOUBLE
        )
        """
    )
    db.execute(
        """
        CREATE TABLE characters (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            name TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL,
            reference_paths JSON NOT NULL,
            embeddings BLOB,
            rights_confirmed_at TIMESTAMP,
            strength DOUBLE,
            UNIQUE (user_id, name)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE consents (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            purpose TEXT NOT NULL,
            granted BOOLEAN NOT NULL,
            policy_version TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL,
            method TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE privacy_requests (
            id TEXT PRIMARY KEY,
            user_hash TEXT NOT NULL,
            kind TEXT NOT NULL,
            received_at TIMESTAMP NOT NULL,
            completed_at TIMESTAMP,
            counts JSON
        )
        """
    )


def m002_api(db: duckdb.DuckDBPyConnection) -> None:
    """The HTTP API: keys (secrets stored hashed) and the request log purged after retention."""
    db.execute(
        """
        CREATE TABLE api_keys (
            prefix TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('user', 'admin')),
            secret_hash TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL,
            last_used_at TIMESTAMP,
            revoked_at TIMESTAMP
        )
        """
    )
    db.execute(
        """
        CREATE TABLE api_requests (
            id TEXT NOT NULL,
            created_at TIMESTAMP NOT NULL,
            route TEXT NOT NULL,
            method TEXT NOT NULL,
            status INTEGER NOT NULL,
            latency_ms DOUBLE NOT NULL,
            key_prefix TEXT,
            user_id TEXT,
            error_class TEXT
        )
        """
    )


def m003_usage_events(db: duckdb.DuckDBPyConnection) -> None:
    """Anonymous usage events: coarse fields only, no user id, no prompt, no free text."""
    db.execute(
        """
        CREATE TABLE usage_events (
            hour_bucket TIMESTAMP NOT NULL,
            front_door TEXT NOT NULL CHECK (front_door IN ('ui', 'api', 'cli', 'notebook')),
            model TEXT NOT NULL,
            styles TEXT[] NOT NULL,
            used_character BOOLEAN NOT NULL,
            used_style_ref BOOLEAN NOT NULL,
            resolution_class TEXT NOT NULL,
            num_images INTEGER NOT NULL,
            steps INTEGER NOT NULL,
            status TEXT NOT NULL,
            latency_ms DOUBLE NOT NULL,
            visitor_hash TEXT NOT NULL
        )
        """
    )


def m004_user_styles(db: duckdb.DuckDBPyConnection) -> None:
    """Styles a user saved for themselves (``{prompt}`` template and negative prompt)."""
    db.execute(
        """
        CREATE TABLE user_styles (
            user_id TEXT NOT NULL,
            name TEXT NOT NULL,
            template TEXT NOT NULL,
            negative TEXT NOT NULL DEFAULT '',
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (user_id, name)
        )
        """
    )


MIGRATIONS: tuple[Migration, ...] = (m001_initial, m002_api, m003_usage_events, m004_user_styles)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: duckdb.DuckDBPyConnection) -> int:
    """The file's version: the highest migration number recorded (0 for a blank file)."""
    if not db.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = '_gempix_migrations'"
    ).fetchone()[0]:
        return 0
    return db.execute("SELECT coalesce(max(version), 0) FROM _gempix_migrations").fetchone()[0]


def migrate(
    db: duckdb.DuckDBPyConnection,
    path: Path,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> list[str]:
    """Apply the migrations ``db`` lacks, in order; return their names.

    Raises ``GemPixError`` naming the file and both versions when the file is newer than
    ``migrations``: an older release must not write into a schema it does not know.
    """
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS _gempix_migrations (
            name TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL
        )
        """
    )
    found = schema_version(db)
    if found > len(migrations):
        raise GemPixError(
            f"{path} was written by a newer GemPix (schema version {found}); this release "
            f"knows up to version {len(migrations)}. Upgrade GemPix to open it."
        )
    done = {name for (name,) in db.execute("SELECT name FROM _gempix_migrations").fetchall()}
    applied = []
    for version, migration in enumerate(migrations, start=1):
        if migration.__name__ in done:
            continue
        db.begin()
        try:
            migration(db)
            db.execute(
                "INSERT INTO _gempix_migrations VALUES (?, ?, ?)",
                [migration.__name__, version, utcnow()],
            )
        except BaseException:
            db.rollback()
            raise
        db.commit()
        applied.append(migration.__name__)
    return applied
