"""Whose data is where: the registry, per-user export and erasure, and what files contain."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import pyarrow.parquet as pq
import pytest

from gempix import analytics
from gempix.errors import ValidationError
from gempix.settings import Settings
from gempix.store import INTERNAL_TABLES, KEPT_TABLES, PER_USER_TABLES, Store
from gempix.store.core import DB_FILE

SENTINEL = "SENTINEL-prompt-7f3a9c-lighthouse"
USER = "user-SENTINELID-4b1d"


@pytest.fixture
def settings(tmp_path):
    return Settings.load({}, data_dir=str(tmp_path / "data"))


def columns_by_table(settings) -> dict[str, set[str]]:
    """Read from SQLite's own catalogue and a written event file's schema, not from a list in
    the code under test."""
    with Store.open(settings) as store:
        store.record_event(
            analytics.make_event(
                visitor_hash="0" * 16, front_door="cli", model="m", steps=1, latency_ms=1.0
            )
        )
        store.flush()
        (event_file,) = store.usage.files()
    db = sqlite3.connect(settings.data_dir / DB_FILE)
    try:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        found = {t: {c[1] for c in db.execute(f'PRAGMA table_info("{t}")')} for t in tables}
    finally:
        db.close()
    return {**found, "usage_events": set(pq.read_schema(event_file).names)}


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


def files_with(settings, text: str) -> list[str]:
    """Every file of the data dir whose bytes hold ``text``, in UTF-8 or UTF-16."""
    needles = [text.encode(encoding) for encoding in ("utf-8", "utf-16-le", "utf-16-be")]
    return sorted(
        str(path.relative_to(settings.data_dir))
        for path in settings.data_dir.rglob("*")
        if path.is_file() and any(needle in path.read_bytes() for needle in needles)
    )


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
        # Deleted and zeroed in the new page versions, but the WAL still holds the old ones...
        assert any(name.endswith("-wal") for name in files_with(settings, secret))
        store.scrub_deleted()
        # ...until the checkpoint: then no file has the user, and the rest is all there.
        assert files_with(settings, secret) == [] and files_with(settings, USER) == []
        assert files_with(settings, mark("bobby")) and files_with(settings, visitor)
        assert store.table_counts()["usage_events"] == 20
        assert store.list_privacy_requests()[0]["counts"] == counts
        assert all(SENTINEL not in str(row) for row in store.list_privacy_requests())


def test_scrubbing_leaves_nothing_in_overflow_index_or_free_pages(settings):
    """Many rows, prompts longer than a page (overflow pages), the user id in every index:
    after deleting the user and scrubbing, their pages are free but hold zeros."""
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
