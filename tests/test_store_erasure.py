"""Whose data is where: the registry, per-user export and erasure, and what files contain."""

from __future__ import annotations

from datetime import datetime

import duckdb
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
    """Read from DuckDB's own catalogue, not from a list in the code under test."""
    Store.open(settings).close()
    with duckdb.connect(str(settings.data_dir / DB_FILE), read_only=True) as db:
        rows = db.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
        ).fetchall()
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    return found


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
        store.flush()
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


def file_bytes(settings) -> bytes:
    """Every byte of the database and its WAL, as a disk image would show them."""
    return b"".join(path.read_bytes() for path in settings.data_dir.glob(f"{DB_FILE}*"))


def test_sentinel_prompt_never_reaches_anonymous_tables_snapshots_or_erased_files(
    settings, tmp_path
):
    hasher = analytics.VisitorHasher()
    day = datetime(2026, 11, 28, 15, 30)
    visitor = hasher.visitor_hash(USER, day)
    with Store.open(settings, force_uncompressed=True) as store:
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
    secret = mark(USER).encode()

    # Compression is off, so stored text is visible as plain bytes: the prompt is in the file.
    assert secret in file_bytes(settings)
    # The snapshot holds usage_events and nothing else: no prompt, no user id, in bytes or rows.
    assert secret not in snapshot.read_bytes() and USER.encode() not in snapshot.read_bytes()
    table = pq.read_table(snapshot)
    assert table.num_rows == 20
    assert set(table.column_names) == columns_by_table(settings)["usage_events"]
    decoded = str(table.to_pylist())
    assert SENTINEL not in decoded and USER not in decoded and visitor in decoded

    with Store.open(settings, force_uncompressed=True) as store:
        counts = store.delete_user_rows(USER)
        store.complete_privacy_request(request_id, counts)
    # DuckDB keeps deleted values in the file after DELETE and a checkpoint (DESIGN.md)...
    assert secret in file_bytes(settings)
    with Store.open(settings, force_uncompressed=True) as store:
        store.rewrite_database()
    # ...a rewrite removes them, and leaves the other user's rows and the anonymous data.
    data = file_bytes(settings)
    assert secret not in data and USER.encode() not in data
    assert mark("bobby").encode() in data and visitor.encode() in data
    with Store.open(settings) as store:
        assert store.table_counts()["usage_events"] == 20
        assert store.list_privacy_requests()[0]["counts"] == counts
        assert all(SENTINEL not in str(row) for row in store.list_privacy_requests())
