"""Migrations: blank and older files reach the current schema; newer files are refused."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from gempix.errors import GemPixError
from gempix.settings import Settings
from gempix.store import MIGRATIONS, SCHEMA_VERSION, Store
from gempix.store.core import DB_FILE
from gempix.store.migrations import migrate, schema_version
from gempix.store.sqlite import connect
from gempix.store.values import utcnow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def schema(path) -> list[tuple]:
    """Every table's and index's DDL as SQLite keeps it, plus every column's details."""
    db = sqlite3.connect(path)
    try:
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
    finally:
        db.close()
    return objects + columns


def settings_at(tmp_path, name):
    return Settings.load({}, data_dir=str(tmp_path / name))


def old_file(tmp_path, name, count):
    """A database written by a release that knew only the first ``count`` migrations."""
    settings = settings_at(tmp_path, name)
    settings.data_dir.mkdir(parents=True)
    path = settings.data_dir / DB_FILE
    db = connect(path)
    try:
        migrate(db, path, MIGRATIONS[:count])
    finally:
        db.close()
    return settings, path


def test_blank_file_gets_every_migration(tmp_path):
    settings = settings_at(tmp_path, "fresh")
    Store.open(settings).close()
    db = connect(settings.data_dir / DB_FILE)
    try:
        assert schema_version(db) == SCHEMA_VERSION == len(MIGRATIONS)
        names = [n for (n,) in db.execute("SELECT name FROM _gempix_migrations ORDER BY version")]
    finally:
        db.close()
    assert names == [migration.__name__ for migration in MIGRATIONS]


@pytest.mark.parametrize("count", range(len(MIGRATIONS)))
def test_every_older_version_reaches_the_same_schema(tmp_path, count):
    settings, path = old_file(tmp_path, "old", count)
    Store.open(settings).close()
    fresh = settings_at(tmp_path, "fresh")
    Store.open(fresh).close()
    assert schema(path) == schema(fresh.data_dir / DB_FILE)


def m002_add_a_column(db):
    """A later release's step: what appending a migration looks like."""
    db.execute("ALTER TABLE users ADD COLUMN locale TEXT")


def test_a_file_with_rows_takes_an_appended_migration_and_keeps_them(tmp_path):
    settings = settings_at(tmp_path, "data")
    with Store.open(settings) as store:
        store.ensure_user("alice")
        generation_id = store.record_generation(
            {"user_id": "alice", "prompt": "a lighthouse", "params": {"seed": 7}}
        )
    path = settings.data_dir / DB_FILE
    db = connect(path)
    try:
        assert migrate(db, path, [*MIGRATIONS, m002_add_a_column]) == ["m002_add_a_column"]
        assert migrate(db, path, [*MIGRATIONS, m002_add_a_column]) == []  # once only
        assert schema_version(db) == SCHEMA_VERSION + 1
        row = db.execute(
            "SELECT prompt, params FROM generations WHERE id = ?", [generation_id]
        ).fetchone()
    finally:
        db.close()
    assert row == ("a lighthouse", {"seed": 7})


def test_reopening_applies_nothing_twice(tmp_path):
    settings = settings_at(tmp_path, "data")
    Store.open(settings).close()
    Store.open(settings).close()
    db = connect(settings.data_dir / DB_FILE)
    try:
        assert migrate(db, settings.data_dir / DB_FILE) == []
        count = db.execute("SELECT count(*) FROM _gempix_migrations").fetchone()[0]
    finally:
        db.close()
    assert count == len(MIGRATIONS)


def test_a_failing_migration_leaves_the_file_at_the_previous_step(tmp_path):
    def m002_broken(db):
        db.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("boom")

    path = tmp_path / "x.sqlite3"
    db = connect(path)
    try:
        with pytest.raises(RuntimeError):
            migrate(db, path, [MIGRATIONS[0], m002_broken])
        assert schema_version(db) == 1
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    finally:
        db.close()
    assert "half_done" not in tables and "users" in tables


def test_file_from_a_newer_release_is_refused(tmp_path):
    settings = settings_at(tmp_path, "data")
    Store.open(settings).close()
    path = settings.data_dir / DB_FILE
    newer = SCHEMA_VERSION + 3
    db = connect(path)
    try:
        db.execute(
            "INSERT INTO _gempix_migrations VALUES ('m099_from_the_future', ?, ?)",
            [newer, utcnow()],
        )
    finally:
        db.close()
    before = schema(path)
    with pytest.raises(GemPixError) as refused:
        Store.open(settings)
    message = str(refused.value)
    assert str(path) in message
    assert f"schema version {newer}" in message and f"up to version {SCHEMA_VERSION}" in message
    assert schema(path) == before  # and the file was not touched


OPENER = """
import sys
from gempix.settings import Settings
from gempix.store import Store
sys.stdin.readline()
Store.open(Settings.load({}, data_dir=sys.argv[1])).close()
"""


def test_processes_starting_at_once_apply_each_migration_once(tmp_path):
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": ROOT}
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, str(data)], env=env, stdin=subprocess.PIPE, text=True
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
    db = connect(data / DB_FILE)
    try:
        rows = db.execute("SELECT name FROM _gempix_migrations").fetchall()
    finally:
        db.close()
    assert sorted(name for (name,) in rows) == sorted(m.__name__ for m in MIGRATIONS)
