"""Migrations: blank and older files reach the current schema; newer files are refused."""

from __future__ import annotations

import duckdb
import pytest

from gempix.errors import GemPixError
from gempix.settings import Settings
from gempix.store import MIGRATIONS, SCHEMA_VERSION, Store
from gempix.store.core import DB_FILE
from gempix.store.migrations import migrate, schema_version
from gempix.store.values import utcnow


def schema(path) -> list[tuple]:
    """Every column with its type, default and nullability, plus every constraint."""
    with duckdb.connect(str(path), read_only=True) as db:
        columns = db.execute(
            "SELECT table_name, column_name, data_type, column_default, is_nullable "
            "FROM information_schema.columns ORDER BY ALL"
        ).fetchall()
        constraints = db.execute(
            "SELECT table_name, constraint_type, constraint_text FROM duckdb_constraints() "
            "ORDER BY ALL"
        ).fetchall()
    return columns + constraints


def settings_at(tmp_path, name):
    return Settings.load({}, data_dir=str(tmp_path / name))


def old_file(tmp_path, name, count):
    """A database written by a release that knew only the first ``count`` migrations."""
    settings = settings_at(tmp_path, name)
    settings.data_dir.mkdir(parents=True)
    path = settings.data_dir / DB_FILE
    with duckdb.connect(str(path)) as db:
        migrate(db, path, MIGRATIONS[:count])
    return settings, path


def test_blank_file_gets_every_migration(tmp_path):
    settings = settings_at(tmp_path, "fresh")
    Store.open(settings).close()
    with duckdb.connect(str(settings.data_dir / DB_FILE), read_only=True) as db:
        assert schema_version(db) == SCHEMA_VERSION == len(MIGRATIONS)
        rows = db.execute("SELECT name FROM _gempix_migrations ORDER BY version").fetchall()
    names = [name for (name,) in rows]
    assert names == [migration.__name__ for migration in MIGRATIONS]


def test_m001_file_with_rows_migrates_to_current(tmp_path):
    settings, path = old_file(tmp_path, "old", 1)
    created = utcnow()
    with duckdb.connect(str(path)) as db:
        db.execute("INSERT INTO users (user_id, created_at) VALUES ('alice', ?)", [created])
        db.execute(
            "INSERT INTO generations (id, user_id, created_at, prompt, params, styles) "
            "VALUES ('g1', 'alice', ?, 'a lighthouse', '{\"seed\": 7}', ['noir'])",
            [created],
        )
        db.execute(
            "INSERT INTO consents VALUES ('c1', 'alice', 'training', true, '1', ?, 'ui')",
            [created],
        )
    with Store.open(settings) as store:
        generation = store.get_generation("alice", "g1")
        assert (generation["prompt"], generation["params"], generation["styles"]) == (
            "a lighthouse",
            {"seed": 7},
            ["noir"],
        )
        assert store.current_consent("alice", "training")["granted"] is True
        store.create_api_key_row("gpx_abcd", "alice", "k", "user", "h" * 64)  # m002
        store.save_user_style("alice", "mine", "{prompt}")  # m004
    fresh = settings_at(tmp_path, "fresh")
    Store.open(fresh).close()
    assert schema(path) == schema(fresh.data_dir / DB_FILE)


@pytest.mark.parametrize("count", range(len(MIGRATIONS)))
def test_every_older_version_reaches_the_same_schema(tmp_path, count):
    settings, path = old_file(tmp_path, "old", count)
    Store.open(settings).close()
    fresh = settings_at(tmp_path, "fresh")
    Store.open(fresh).close()
    assert schema(path) == schema(fresh.data_dir / DB_FILE)


def test_reopening_applies_nothing_twice(tmp_path):
    settings = settings_at(tmp_path, "data")
    Store.open(settings).close()
    path = settings.data_dir / DB_FILE
    with duckdb.connect(str(path)) as db:
        assert migrate(db, path) == []
        assert db.execute("SELECT count(*) FROM _gempix_migrations").fetchone()[0] == len(
            MIGRATIONS
        )


def test_a_failing_migration_leaves_the_file_at_the_previous_step(tmp_path):
    def m002_broken(db):
        db.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("boom")

    path = tmp_path / "x.duckdb"
    with duckdb.connect(str(path)) as db:
        with pytest.raises(RuntimeError):
            migrate(db, path, [MIGRATIONS[0], m002_broken])
        assert schema_version(db) == 1
        rows = db.execute("SELECT table_name FROM information_schema.tables").fetchall()
    tables = {table for (table,) in rows}
    assert "half_done" not in tables and "users" in tables


def test_file_from_a_newer_release_is_refused(tmp_path):
    settings = settings_at(tmp_path, "data")
    Store.open(settings).close()
    path = settings.data_dir / DB_FILE
    newer = SCHEMA_VERSION + 3
    with duckdb.connect(str(path)) as db:
        db.execute(
            "INSERT INTO _gempix_migrations VALUES ('m099_from_the_future', ?, ?)",
            [newer, utcnow()],
        )
    with pytest.raises(GemPixError) as refused:
        Store.open(settings)
    message = str(refused.value)
    assert str(path) in message
    assert f"schema version {newer}" in message and f"up to version {SCHEMA_VERSION}" in message
    Store.open(Settings.load({}, data_dir=str(tmp_path / "other"))).close()  # lock released
    with duckdb.connect(str(path)) as db:  # and the file was not touched
        assert schema_version(db) == newer
