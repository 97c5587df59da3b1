"""Migrations: blank and older databases reach the current schema; newer ones are refused.

Every test runs on SQLite and on PostgreSQL (a fresh schema of the test server per database,
see tests/services.py).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import ExitStack, closing

import pytest
import services

from gempix.errors import GemPixError
from gempix.settings import Settings
from gempix.store import MIGRATIONS, SCHEMA_VERSION, Store
from gempix.store.core import backend_for
from gempix.store.migrations import migrate, schema_version
from gempix.store.values import utcnow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def schema(settings) -> list[tuple]:
    """Every table, column, index and constraint as the database's own catalogue shows them."""
    backend = backend_for(settings)
    if backend.name == "SQLite":
        with closing(sqlite3.connect(backend.path)) as db:
            objects = db.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                "ORDER BY type, name"
            ).fetchall()
            columns = [
                (name, *column)
                for (kind, name, _) in objects
                if kind == "table"
                for column in db.execute(f'PRAGMA table_info("{name}")')
            ]
        return objects + columns
    with closing(backend.connect()) as db:
        return [
            tuple(row)
            for query in (
                "SELECT table_name, column_name, data_type, is_nullable, column_default "
                "FROM information_schema.columns WHERE table_schema = current_schema() "
                "ORDER BY 1, 2",
                "SELECT indexname, replace(indexdef, current_schema() || '.', '') FROM pg_indexes "
                "WHERE schemaname = current_schema() ORDER BY 1",
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE connamespace = current_schema()::regnamespace ORDER BY 1",
            )
            for row in db.execute(query).fetchall()
        ]


@pytest.fixture(params=services.BACKENDS)
def databases(request, tmp_path):
    """``make(name)``: settings for a new, empty database on this test's backend."""
    with ExitStack() as stack:

        def make(name: str) -> Settings:
            url = stack.enter_context(services.database(request.param))
            return Settings.load({}, data_dir=str(tmp_path / name), database_url=url or None)

        yield make


def connected(settings):
    """``(connection, backend)`` of ``settings``' database, outside any Store."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    backend = backend_for(settings)
    return backend.connect(), backend


def old_database(settings, count):
    """A database written by a release that knew only the first ``count`` migrations."""
    db, backend = connected(settings)
    with closing(db):
        migrate(db, backend, MIGRATIONS[:count])
    return settings


def test_blank_file_gets_every_migration(databases):
    settings = databases("fresh")
    Store.open(settings).close()
    db, _ = connected(settings)
    with closing(db):
        assert schema_version(db) == SCHEMA_VERSION == len(MIGRATIONS)
        names = [n for (n,) in db.execute("SELECT name FROM _gempix_migrations ORDER BY version")]
    assert names == [migration.__name__ for migration in MIGRATIONS]


@pytest.mark.parametrize("count", range(len(MIGRATIONS)))
def test_every_older_version_reaches_the_same_schema(databases, count):
    settings = old_database(databases("old"), count)
    Store.open(settings).close()
    fresh = databases("fresh")
    Store.open(fresh).close()
    assert schema(settings) == schema(fresh)


def m002_add_a_column(db):
    """A later release's step: what appending a migration looks like."""
    db.execute("ALTER TABLE users ADD COLUMN locale TEXT")


def test_a_file_with_rows_takes_an_appended_migration_and_keeps_them(databases):
    settings = databases("data")
    with Store.open(settings) as store:
        store.ensure_user("alice")
        generation_id = store.record_generation(
            {"user_id": "alice", "prompt": "a lighthouse", "params": {"seed": 7}}
        )
    db, backend = connected(settings)
    with closing(db):
        assert migrate(db, backend, [*MIGRATIONS, m002_add_a_column]) == ["m002_add_a_column"]
        assert migrate(db, backend, [*MIGRATIONS, m002_add_a_column]) == []  # once only
        assert schema_version(db) == SCHEMA_VERSION + 1
        row = db.execute(
            "SELECT prompt, params FROM generations WHERE id = ?", [generation_id]
        ).fetchone()
    assert tuple(row) == ("a lighthouse", {"seed": 7})


def test_reopening_applies_nothing_twice(databases):
    settings = databases("data")
    Store.open(settings).close()
    Store.open(settings).close()
    db, backend = connected(settings)
    with closing(db):
        assert migrate(db, backend) == []
        count = db.execute("SELECT count(*) FROM _gempix_migrations").fetchone()[0]
    assert count == len(MIGRATIONS)


def test_a_failing_migration_leaves_the_file_at_the_previous_step(databases):
    def m002_broken(db):
        db.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("boom")

    db, backend = connected(databases("x"))
    with closing(db):
        with pytest.raises(RuntimeError):
            migrate(db, backend, [MIGRATIONS[0], m002_broken])
        assert schema_version(db) == 1
        tables = set(backend.columns(db))
    assert "half_done" not in tables and "users" in tables


def test_file_from_a_newer_release_is_refused(databases):
    settings = databases("data")
    Store.open(settings).close()
    newer = SCHEMA_VERSION + 3
    db, backend = connected(settings)
    with closing(db):
        db.execute(
            "INSERT INTO _gempix_migrations VALUES ('m099_from_the_future', ?, ?)",
            [newer, utcnow()],
        )
    before = schema(settings)
    with pytest.raises(GemPixError) as refused:
        Store.open(settings)
    message = str(refused.value)
    assert backend.where in message
    assert f"schema version {newer}" in message and f"up to version {SCHEMA_VERSION}" in message
    assert schema(settings) == before  # and the database was not touched


OPENER = """
import sys
from gempix.settings import Settings
from gempix.store import Store
sys.stdin.readline()
Store.open(Settings.load({}, data_dir=sys.argv[1], database_url=sys.argv[2] or None)).close()
"""


def test_processes_starting_at_once_apply_each_migration_once(databases):
    settings = databases("data")
    env = {**os.environ, "PYTHONPATH": ROOT}
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, str(settings.data_dir), settings.database_url],
            env=env,
            stdin=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for opener in openers:  # each opens as soon as it has imported GemPix
            opener.stdin.write("go\n")
            opener.stdin.flush()
        assert [opener.wait(timeout=120) for opener in openers] == [0, 0, 0]
    finally:
        for opener in openers:
            opener.kill()
            opener.wait()
    db, _ = connected(settings)
    with closing(db):
        rows = db.execute("SELECT name FROM _gempix_migrations").fetchall()
    assert sorted(name for (name,) in rows) == sorted(m.__name__ for m in MIGRATIONS)
