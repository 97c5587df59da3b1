"""A data dir of the DuckDB release moves to SQLite and Parquet on first start, crash-safely.

The old data dir is built here as that release wrote it: its schema, frozen in
``tests/fixtures/gempix_duckdb_v4.sql``, rows in every table, and a journal that a crash left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from gempix.errors import StoreError
from gempix.settings import Settings
from gempix.store import PER_USER_TABLES, Store
from gempix.store.legacy import LEGACY_FILE, _shred

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "tests" / "fixtures" / "gempix_duckdb_v4.sql"
SENTINEL = "SENTINEL-duckdb-era-5c1e"
T0 = datetime(2026, 11, 20, 9, 30)
EVENTS = 50


def build_old_data_dir(data: Path) -> Path:
    """``data/gempix.duckdb`` with rows in every table, and a journal with one record that
    never reached the file, one that did, and a last line cut short by the crash."""
    data.mkdir(parents=True)
    path = data / LEGACY_FILE
    db = duckdb.connect(str(path))
    db.execute(SCHEMA.read_text())
    for n, user in enumerate(("alice", "bob")):
        db.execute(
            "INSERT INTO users VALUES (?, ?, 'user', ?, '2026-11', false, ?, false, ?)",
            [user, T0, T0, n == 1, f"{user} {SENTINEL}"],
        )
        for g in range(3):
            db.execute(
                "INSERT INTO generations (id, user_id, created_at, front_door, prompt, seed, "
                "steps, guidance, width, height, params, styles, file_path, duration_ms) "
                "VALUES (?, ?, ?, 'ui', ?, ?, 2, 0.0, 64, 64, ?, ?, ?, 12.5)",
                [
                    f"{n}{g}".ljust(32, "a"),
                    user,
                    T0 + timedelta(minutes=g),
                    f"{SENTINEL} {user} {g}",
                    2**40 + g,
                    json.dumps({"seed": g, "nested": {"styles": ["noir"]}}),
                    ["noir", "ink"] if g else [],
                    f"/data/images/{user}/{g}.png",
                ],
            )
        db.execute(
            "INSERT INTO characters VALUES (?, ?, 'Ada', ?, ?, ?, ?, 0.8)",
            [f"c{n}", user, T0, json.dumps([f"/refs/{user}/1.png"]), b"\x00\x01\xff", T0],
        )
        db.execute("INSERT INTO user_styles VALUES (?, 'mine', '{prompt}, ink', '', ?)", [user, T0])
        db.execute(
            "INSERT INTO consents VALUES (?, ?, 'training', ?, '2026-11', ?, 'ui-toggle')",
            [f"k{n}", user, n == 0, T0],
        )
        db.execute(
            "INSERT INTO api_keys VALUES (?, ?, 'laptop', 'user', ?, ?, ?, NULL)",
            [f"gpx_{user}", user, "h" * 64, T0, T0],
        )
        db.execute(
            "INSERT INTO api_requests VALUES (?, ?, '/v1/generate', 'POST', 200, 9.5, ?, ?, NULL)",
            [f"r{n}", T0, f"gpx_{user}", user],
        )
    # A call logged for a user erased since: kept, without whose it was.
    db.execute(
        "INSERT INTO api_requests VALUES ('r9', ?, '/v1/images', 'GET', 404, 1.0, NULL, "
        "'erased-user', 'NotFoundError')",
        [T0],
    )
    db.execute(
        "INSERT INTO privacy_requests VALUES ('p1', ?, 'erasure', ?, ?, ?)",
        ["ab" * 16, T0, T0, json.dumps({"generations": 2})],
    )
    db.execute(
        "INSERT INTO usage_events SELECT ?::TIMESTAMP + INTERVAL (i % 3) DAY, 'ui', 'tiny', "
        "['noir'], false, i % 2 = 0, 'native', 1, 2, 'ok', i * 1.5, printf('%016x', i) "
        "FROM range(?) t(i)",
        [T0.replace(minute=0), EVENTS],
    )
    db.close()
    journal = [
        {"id": "f" * 32, "user_id": "alice", "created_at": "2026-11-21T08:00:00", "prompt": "late"},
        {"id": "00".ljust(32, "a"), "user_id": "alice", "created_at": "2026-11-20T09:30:00"},
    ]
    line = json.dumps([journal[0]]) + "\n" + json.dumps([journal[1]]) + "\n" + '[{"id": "cut'
    Path(f"{path}.journal").write_bytes(line.encode() + bytes(4096))
    return path


def old_rows(path: Path, table: str) -> list[dict]:
    db = duckdb.connect(str(path), read_only=True)
    try:
        cursor = db.execute(f"SELECT * FROM {table} ORDER BY ALL")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        db.close()


def as_stored(row: dict) -> dict:
    """A DuckDB row as the store returns it: JSON columns parsed."""
    parsed = {"params", "reference_paths", "counts"}
    return {k: json.loads(v) if k in parsed and v is not None else v for k, v in row.items()}


@pytest.fixture
def old(tmp_path):
    data = tmp_path / "data"
    path = build_old_data_dir(data)
    expected = {
        table: old_rows(path, table)
        for table in (*PER_USER_TABLES, "privacy_requests", "usage_events")
    }
    return Settings.load({}, data_dir=str(data)), path, expected


def files_with(folder: Path, text: str) -> list[str]:
    return sorted(
        p.name for p in folder.rglob("*") if p.is_file() and text.encode() in p.read_bytes()
    )


def test_a_data_dir_of_the_duckdb_release_is_moved_on_first_start(old):
    settings, path, expected = old
    assert files_with(settings.data_dir, SENTINEL) == [LEGACY_FILE]  # control
    with Store.open(settings) as store:
        for table in PER_USER_TABLES:
            for user in ("alice", "bob"):
                moved = store.rows_for_user(table, user)
                old_ones = [
                    as_stored(row)
                    for row in expected[table]
                    if row.get("user_id") == user
                    or (table == "api_requests" and row["key_prefix"] == f"gpx_{user}")
                ]
                if table == "generations" and user == "alice":
                    late = store.get_generation("alice", "f" * 32)  # from the journal
                    assert late["prompt"] == "late" and late["created_at"] == T0 + timedelta(
                        days=1, minutes=-90
                    )
                    moved = [row for row in moved if row["id"] != "f" * 32]
                hidden = PER_USER_TABLES[table].hidden
                old_ones = [{k: v for k, v in r.items() if k not in hidden} for r in old_ones]
                key = sorted(old_ones[0]) if old_ones else []
                assert sorted(moved, key=repr) == sorted(old_ones, key=repr), (table, user)
                assert all(sorted(row) == key for row in moved)
        (erased,) = [r for r in store.list_api_requests() if r["id"] == "r9"]
        assert erased["user_id"] is None and erased["status"] == 404
        assert store.list_privacy_requests()[0]["counts"] == {"generations": 2}
        events = store.usage_events()
        assert len(events) == EVENTS
        old_events = sorted(
            (e["hour_bucket"], e["visitor_hash"], e["latency_ms"], tuple(e["styles"]))
            for e in expected["usage_events"]
        )
        assert (
            sorted(
                (e.hour_bucket.to_pydatetime(), e.visitor_hash, e.latency_ms, tuple(e.styles))
                for e in events.itertuples()
            )
            == old_events
        )
        counts = store.table_counts()
    assert counts["generations"] == 7 and counts["users"] == 2
    assert not path.exists() and not Path(f"{path}.journal").exists()
    assert files_with(settings.data_dir, SENTINEL) == ["gempix.sqlite3"]
    db = sqlite3.connect(settings.data_dir / "gempix.sqlite3")
    try:
        (recorded,) = db.execute("SELECT counts FROM _gempix_imports").fetchone()
    finally:
        db.close()
    assert json.loads(recorded) == {
        "users": 2,
        "generations": 6,
        "journaled_generations": 1,
        "characters": 2,
        "user_styles": 2,
        "consents": 2,
        "api_keys": 2,
        "api_requests": 3,
        "privacy_requests": 1,
        "usage_events": EVENTS,
    }
    with Store.open(settings) as store:  # the next start has nothing more to move
        assert store.table_counts() == counts


CRASHING_MOVE = """
import os, signal, sys
from gempix.settings import Settings
from gempix.store import Store, legacy
from gempix.store.eventlog import EventLog

if sys.argv[2] == "while-copying":
    write = EventLog.write_imported
    def write_then_die(self, table, name):
        write(self, table, name)
        os.kill(os.getpid(), signal.SIGKILL)
    EventLog.write_imported = write_then_die
else:
    def shred_half_then_die(path):
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.write(bytes(size // 2))
        os.kill(os.getpid(), signal.SIGKILL)
    legacy._shred = shred_half_then_die
Store.open(Settings.load({}, data_dir=sys.argv[1]))
"""


def crash(settings, where: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", CRASHING_MOVE, str(settings.data_dir), where]
    assert subprocess.run(command, env=env, timeout=120).returncode == -signal.SIGKILL


def test_a_crash_while_moving_leaves_the_old_file_usable_and_the_move_restartable(old):
    settings, path, expected = old
    crash(settings, "while-copying")
    assert path.exists() and Path(f"{path}.journal").exists()
    for table, rows in expected.items():  # the old release could open it as it was
        assert old_rows(path, table) == rows, table
    db = sqlite3.connect(settings.data_dir / "gempix.sqlite3")
    try:
        assert db.execute("SELECT count(*) FROM generations").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM _gempix_imports").fetchone()[0] == 0
    finally:
        db.close()
    assert list(settings.data_dir.glob("usage/day=*/L9-imported.parquet"))  # half done
    with Store.open(settings) as store:
        assert len(store.usage_events()) == EVENTS  # the files were replaced, not added
        assert store.table_counts()["generations"] == 7
    assert not path.exists()


def test_a_crash_while_removing_the_old_file_is_finished_at_the_next_start(old):
    settings, path, _ = old
    crash(settings, "while-removing")
    assert path.exists() and path.read_bytes()[:16] == bytes(16)  # half zeroed
    with Store.open(settings) as store:
        assert store.table_counts()["generations"] == 7
        assert len(store.usage_events()) == EVENTS
    assert not path.exists() and not Path(f"{path}.journal").exists()
    assert files_with(settings.data_dir, SENTINEL) == ["gempix.sqlite3"]


def test_a_different_duckdb_file_put_back_after_the_move_is_refused(old, tmp_path):
    settings, path, _ = old
    same, other = tmp_path / "same.duckdb", tmp_path / "other.duckdb"
    shutil.copyfile(path, same)
    shutil.copyfile(path, other)
    db = duckdb.connect(str(other))
    db.execute("INSERT INTO users (user_id, created_at) VALUES ('carol', now())")
    db.close()
    Store.open(settings).close()
    shutil.copyfile(other, path)  # another data dir's file dropped into this one
    with pytest.raises(StoreError, match="another gempix.duckdb"):
        Store.open(settings)
    assert path.read_bytes() == other.read_bytes()  # left alone
    shutil.copyfile(same, path)  # a copy of the very file that was moved: just removed
    with Store.open(settings) as store:
        assert store.table_counts()["generations"] == 7  # nothing was moved twice
    assert not path.exists()


HOLDER = """
import sys, duckdb
db = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()
"""


def test_an_earlier_release_still_running_stops_the_move_with_a_message(old):
    settings, path, expected = old
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(StoreError, match="an earlier GemPix still running"):
            Store.open(settings)
    finally:
        holder.communicate("done\n", timeout=60)
    assert old_rows(path, "generations") == expected["generations"]
    with Store.open(settings) as store:  # once it stopped, the move goes through
        assert store.table_counts()["generations"] == 7


def test_shredding_overwrites_the_bytes_before_unlinking(tmp_path):
    path = tmp_path / "old.duckdb"
    path.write_bytes(SENTINEL.encode() * 100_000)  # more than one 1 MiB chunk
    other_name = tmp_path / "same-inode"
    os.link(path, other_name)  # sees the file's blocks after the unlink
    _shred(path)
    assert not path.exists()
    content = other_name.read_bytes()
    assert len(content) == len(SENTINEL) * 100_000 and content.count(0) == len(content)
