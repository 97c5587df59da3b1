"""Whose data is where: the registry, per-user export and erasure, and what files contain.

Every test runs on SQLite and on PostgreSQL; there "the files" are the data dir and the test
cluster's whole data directory (``GEMPIX_TEST_DATABASE_DIR``): heap, TOAST, indexes, WAL.
"""

from __future__ import annotations

import secrets
import sqlite3
import uuid
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import services

from gempix import analytics
from gempix.errors import GemPixError, ValidationError
from gempix.settings import Settings
from gempix.store import INTERNAL_TABLES, KEPT_TABLES, PER_USER_TABLES, Store
from gempix.store.core import DB_FILE, backend_for

# Unique per run: the test cluster's files may still hold an earlier run's (dropped) rows.
SENTINEL = f"SENTINEL-prompt-{uuid.uuid4().hex[:12]}-lighthouse"
USER = f"user-SENTINELID-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings(tmp_path, database_url):
    return Settings.load({}, data_dir=str(tmp_path / "data"), database_url=database_url or None)


def catalogue(settings) -> dict[str, set[str]]:
    """``{table: columns}`` from the database's own catalogue."""
    backend = backend_for(settings)
    if backend.name == "SQLite":
        with closing(sqlite3.connect(settings.data_dir / DB_FILE)) as db:
            tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            return {t: {c[1] for c in db.execute(f'PRAGMA table_info("{t}")')} for t in tables}
    found: dict[str, set[str]] = {}
    with closing(backend.connect()) as db:
        for table, column in db.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema()"
        ).fetchall():
            found.setdefault(table, set()).add(column)
    return found


def columns_by_table(settings) -> dict[str, set[str]]:
    """Read from the database's own catalogue and a written event file's schema, not from a
    list in the code under test."""
    with Store.open(settings) as store:
        store.record_event(
            analytics.make_event(
                visitor_hash="0" * 16, front_door="cli", model="m", steps=1, latency_ms=1.0
            )
        )
        store.flush()
        (event_file,) = store.usage.files()
    return {**catalogue(settings), "usage_events": set(pq.read_schema(event_file).names)}


def test_every_table_with_a_user_id_has_an_export_and_erase_entry(settings):
    tables = columns_by_table(settings)
    with_user_id = {table for table, columns in tables.items() if "user_id" in columns}
    assert with_user_id <= set(PER_USER_TABLES), with_user_id - set(PER_USER_TABLES)
    assert set(tables) == set(PER_USER_TABLES) | set(KEPT_TABLES) | set(INTERNAL_TABLES)
    for table in KEPT_TABLES:
        assert not tables[table] & {"user_id", "prompt", "negative_prompt", "ip", "ip_address"}
    for table, policy in PER_USER_TABLES.items():
        assert policy.erase == "delete" and policy.export
        assert set(policy.hidden) <= tables[table]
    assert list(PER_USER_TABLES)[-1] == "users"  # deleted last


def mark(user: str) -> str:
    """The sentinel text written into every free-text field of ``user``."""
    return f"{SENTINEL}-{user}"


def populate(store: Store, user: str) -> None:
    """One row or more in every per-user table, through the public API."""
    store.ensure_user(user)
    store.update_user(user, display_name=mark(user)[:80])
    store.record_generation({"user_id": user, "prompt": mark(user), "negative_prompt": mark(user)})
    store.create_character(user, mark(user), [f"/refs/{mark(user)}.png"], embeddings=b"\x01")
    store.save_user_style(user, mark(user), f"{{prompt}}, {mark(user)}")
    store.add_consent(user, "training", True, "2026-11", "ui-toggle")
    prefix = f"gpx_{user[-4:]}"
    store.create_api_key_row(prefix, user, "laptop", "user", "f" * 64)
    store.record_api_request("/v1/generations", "POST", 200, 10.0, key_prefix=prefix, user_id=user)
    store.record_api_request("/v1/generations", "POST", 401, 1.0, key_prefix=prefix)


def test_export_covers_every_per_user_table_and_only_that_user(settings):
    with Store.open(settings) as store:
        populate(store, "alice")
        populate(store, "bobby")
        for table in PER_USER_TABLES:
            rows = store.rows_for_user(table, "alice")
            assert rows, f"{table} exported nothing"
            assert all(row.get("user_id") in ("alice", None) for row in rows), table
        assert len(store.rows_for_user("api_requests", "alice")) == 2  # by key prefix too
        assert "secret_hash" not in store.rows_for_user("api_keys", "alice")[0]
        with pytest.raises(ValidationError):
            store.rows_for_user("usage_events", "alice")


def test_delete_user_rows_removes_everything_of_one_user(settings):
    with Store.open(settings) as store:
        populate(store, "alice")
        populate(store, "bobby")
        before = store.table_counts()
        counts = store.delete_user_rows("alice")
        assert counts == {
            "generations": 1,
            "characters": 1,
            "user_styles": 1,
            "consents": 1,
            "api_requests": 2,
            "api_keys": 1,
            "users": 1,
        }
        for table in PER_USER_TABLES:
            assert store.rows_for_user(table, "alice") == []
            assert store.rows_for_user(table, "bobby"), table
        after = store.table_counts()
        assert all(after[t] == before[t] - counts.get(t, 0) for t in before)
        with pytest.raises(Exception, match="No such user"):
            store.record_generation({"user_id": "alice"})  # a late generation adds nothing


def places(settings) -> dict[str, Path]:
    """Where the records' bytes may be: the data dir, and the PostgreSQL cluster's files."""
    found = {"": settings.data_dir}
    if settings.database_url:
        found["cluster/"] = services.postgres_data_dir()
    return found


def files_with(settings, text: str) -> list[str]:
    """Every file of the data dir (and the cluster) whose bytes hold ``text``, in UTF-8 or
    UTF-16; cluster files are named ``cluster/<path in its data directory>``."""
    needles = [text.encode(encoding) for encoding in ("utf-8", "utf-16-le", "utf-16-be")]
    found = []
    for prefix, root in places(settings).items():
        for path in root.rglob("*"):
            try:
                data = path.read_bytes() if path.is_file() else b""
            except FileNotFoundError:  # the server removed it meanwhile
                continue
            if any(needle in data for needle in needles):
                found.append(prefix + str(path.relative_to(root)))
    return sorted(found)


def test_sentinel_prompt_never_reaches_anonymous_tables_snapshots_or_erased_files(
    settings, tmp_path
):
    hasher = analytics.VisitorHasher()
    day = datetime(2026, 11, 28, 15, 30)
    visitor = hasher.visitor_hash(USER, day)
    with Store.open(settings) as store:
        populate(store, USER)
        populate(store, "bobby")
        for n in range(20):
            event = analytics.make_event(
                visitor_hash=visitor,
                front_door="ui",
                model="sd-turbo",
                styles=["watercolor"],
                steps=2,
                latency_ms=100.0 + n,
                now=day,
            )
            assert store.record_event(event, user_id=USER)
        request_id = store.add_privacy_request("ab" * 16, "erasure")
        snapshot = analytics.snapshot(store, tmp_path / "snapshots")
        secret = mark(USER)

        # Stored text is visible as plain bytes: the prompt is in the database's files.
        assert files_with(settings, secret)
        # The snapshot and the event files hold usage_events and nothing else: no prompt, no
        # user id, in bytes or rows.
        for path in [snapshot, *store.usage.files()]:
            assert secret.encode() not in path.read_bytes()
            assert USER.encode() not in path.read_bytes()
        table = pq.read_table(snapshot)
        assert table.num_rows == 20
        assert table.column_names == pq.read_schema(store.usage.files()[0]).names
        decoded = str(table.to_pylist())
        assert SENTINEL not in decoded and USER not in decoded and visitor in decoded

        counts = store.delete_user_rows(USER)
        store.complete_privacy_request(request_id, counts)
        # Deleted (SQLite: and zeroed in the new page versions), but the WAL still holds the
        # old ones (PostgreSQL: the heap pages too)...
        left = files_with(settings, secret)
        assert any(name.endswith("-wal") or "pg_wal/" in name for name in left), left
        store.scrub_deleted()
        # ...until the scrub: then no file has the user, and the rest is all there.
        assert files_with(settings, secret) == [] and files_with(settings, USER) == []
        assert files_with(settings, mark("bobby")) and files_with(settings, visitor)
        assert store.table_counts()["usage_events"] == 20
        assert store.list_privacy_requests()[0]["counts"] == counts
        assert all(SENTINEL not in str(row) for row in store.list_privacy_requests())


def test_scrubbing_leaves_nothing_in_overflow_index_or_free_pages(tmp_path):
    """Many rows, prompts longer than a page (overflow pages), the user id in every index:
    after deleting the user and scrubbing, their pages are free but hold zeros."""
    settings = Settings.load({}, data_dir=str(tmp_path / "data"))
    long_prompt = mark(USER) + " " + "x" * 9000
    with Store.open(settings) as store:
        for user in (USER, "bobby"):
            store.ensure_user(user)
        for n in range(600):
            store.record_generations(
                [
                    {"user_id": USER, "prompt": long_prompt, "file_path": f"/i/{USER}/{n}.png"},
                    {"user_id": "bobby", "prompt": mark("bobby"), "seed": n},
                ]
            )
        store.scrub_deleted()  # everything in the database file itself first
        assert files_with(settings, mark(USER)) == ["gempix.sqlite3"]
        assert store.delete_user_rows(USER)["generations"] == 600
        store.scrub_deleted()
        (free_pages,) = store._connection().execute("PRAGMA freelist_count").fetchone()
        assert free_pages > 100  # the deleted rows' pages went to the freelist...
        assert files_with(settings, mark(USER)) == []  # ...zeroed
        assert files_with(settings, USER) == []  # nor in an index, nor in a path
        assert len(store.rows_for_user("generations", "bobby")) == 600


def test_postgres_scrub_leaves_nothing_in_heap_toast_index_or_wal(tmp_path):
    """PostgreSQL: rows in the heap, prompts stored out of line in TOAST (incompressible, over
    2 kB), the user id in every index, all of it in WAL segments. After deleting the user
    they are all still there; after the scrub (VACUUM FULL, WAL switch, checkpoint), no file
    of the cluster holds the user's id or text, and the other user's rows are intact."""
    user = f"user-SENTINELID-{uuid.uuid4().hex[:8]}"
    with services.postgres_schema() as url:
        settings = Settings.load({}, data_dir=str(tmp_path / "data"), database_url=url)
        with Store.open(settings) as store:
            for who in (user, "bobby"):
                store.ensure_user(who)
            for n in range(300):
                store.record_generations(
                    [
                        {"user_id": user, "prompt": f"{mark(user)} {secrets.token_hex(2000)}"},
                        {"user_id": "bobby", "prompt": mark("bobby"), "seed": n},
                    ]
                )
            connection = store._connection()
            connection.execute("CHECKPOINT")  # the pages reach the table's files
            (heap, toast, index) = connection.execute(
                "SELECT pg_relation_filepath('generations'), pg_relation_filepath(reltoastrelid), "
                "pg_relation_filepath('generations_by_user') FROM pg_class "
                "WHERE oid = 'generations'::regclass"
            ).fetchone()
            before = files_with(settings, user)
            assert {f"cluster/{heap}", f"cluster/{toast}", f"cluster/{index}"} <= set(before), (
                heap,
                toast,
                index,
                before,
            )
            assert any("pg_wal/" in name for name in before), before
            assert store.delete_user_rows(user)["generations"] == 300
            connection.execute("CHECKPOINT")
            assert {f"cluster/{heap}", f"cluster/{toast}"} <= set(files_with(settings, user))
            store.scrub_deleted()
            assert files_with(settings, user) == []
            assert files_with(settings, mark("bobby"))
            assert len(store.rows_for_user("generations", "bobby")) == 300


def test_postgres_scrub_refuses_while_the_server_keeps_old_wal(tmp_path):
    """A replication slot makes the server keep every WAL segment since it was made, so the
    scrub cannot keep its promise: it says so, naming the cause, instead of reporting done."""
    slot = f"test_{uuid.uuid4().hex[:8]}"
    with services.postgres_schema() as url:
        settings = Settings.load({}, data_dir=str(tmp_path / "data"), database_url=url)
        with Store.open(settings) as store:
            connection = store._connection()
            connection.execute(f"SELECT pg_create_physical_replication_slot('{slot}', true)")
            try:
                with pytest.raises(GemPixError, match=r"keeps old WAL \(1 replication slot"):
                    store.scrub_deleted()
            finally:
                connection.execute(f"SELECT pg_drop_replication_slot('{slot}')")
            store.scrub_deleted()
