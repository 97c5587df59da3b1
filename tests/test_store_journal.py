"""The generations journal: records durable before DuckDB sees them, and never seen outside.

A record is appended to ``gempix.duckdb.journal`` and synced, then moved into the DuckDB file
by the flusher or by the next read or write. These tests slow the flusher down (a minute
instead of half a second) wherever they need records to stay in the journal for a while.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from gempix.errors import StoreError, ValidationError
from gempix.settings import Settings
from gempix.store import Store, core
from gempix.store import journal as journal_module
from gempix.store.core import DB_FILE, JOURNAL_FILE
from gempix.store.journal import Journal
from gempix.store.values import new_id

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SENTINEL = "journal-sentinel-7f3a"


@pytest.fixture
def settings(tmp_path):
    return Settings.load({}, data_dir=str(tmp_path / "data"))


@pytest.fixture
def slow_flusher(monkeypatch):
    """Records stay in the journal until a read, a write, ``flush`` or ``close`` moves them."""
    monkeypatch.setattr(core, "FLUSH_INTERVAL_S", 60.0)


@pytest.fixture
def store(settings, slow_flusher):
    with Store.open(settings) as opened:
        opened.ensure_user("alice")
        opened.ensure_user("bob")
        yield opened


def journal_bytes(settings) -> bytes:
    """The journal's used part: what comes before the zeros written ahead."""
    path = settings.data_dir / JOURNAL_FILE
    return path.read_bytes().split(b"\0", 1)[0] if path.exists() else b""


def only_zeros(data: bytes) -> bool:
    return data.count(0) == len(data)


def test_a_record_waits_in_the_journal_and_every_read_sees_it(store, settings):
    generation_id = store.record_generation({"user_id": "alice", "prompt": SENTINEL})
    line = json.loads(journal_bytes(settings))
    assert [row["id"] for row in line] == [generation_id]
    assert line[0]["prompt"] == SENTINEL

    assert store.get_generation("alice", generation_id)["prompt"] == SENTINEL
    assert only_zeros((settings.data_dir / JOURNAL_FILE).read_bytes())  # moved, then zeroed


def test_writes_and_counts_see_journaled_records_too(store):
    generation_id = store.record_generation({"user_id": "alice", "file_path": "/x/1.png"})
    assert store.table_counts()["generations"] == 1
    second = store.record_generation({"user_id": "alice", "file_path": "/x/2.png"})
    assert store.delete_generation("alice", second) == "/x/2.png"
    assert [row["id"] for row in store.list_generations("alice")] == [generation_id]


def test_the_flusher_moves_records_without_any_read(settings):
    with Store.open(settings) as store:
        store.ensure_user("alice")
        store.record_generation({"user_id": "alice"})
        deadline = time.monotonic() + 10  # the flusher runs every 0.5 s
        while journal_bytes(settings) and time.monotonic() < deadline:
            threading.Event().wait(0.05)
        assert journal_bytes(settings) == b""


def test_close_moves_everything_and_leaves_only_the_database(settings, slow_flusher):
    with Store.open(settings) as store:
        store.ensure_user("alice")
        ids = store.record_generations([{"user_id": "alice", "seed": n} for n in range(3)])
    assert sorted(p.name for p in settings.data_dir.iterdir()) == [DB_FILE]
    with Store.open(settings) as store:
        assert {row["id"] for row in store.list_generations("alice")} == set(ids)


CRASHING_WRITER = """
import os, sys
from gempix.settings import Settings
from gempix.store import Store, core, journal as journal_module
core.FLUSH_INTERVAL_S = 60.0  # keep the records in the journal
store = Store.open(Settings.load({}, data_dir=sys.argv[1]))
store.ensure_user("writer")
for n in range(3):
    print(store.record_generation({"user_id": "writer", "seed": n, "prompt": sys.argv[2]}))
sys.stdout.flush()
os._exit(0)  # no close, no flush: as if the process died here
"""


def crash_after_three_records(settings) -> list[str]:
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, str(settings.data_dir), SENTINEL],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.split()


def test_records_left_by_a_crash_are_replayed_once_and_a_torn_line_is_skipped(settings):
    acknowledged = crash_after_three_records(settings)
    journal = settings.data_dir / JOURNAL_FILE
    kept = journal_bytes(settings)
    assert SENTINEL.encode() in kept  # not in DuckDB yet: only here
    torn = b'[{"id": "' + new_id().encode() + b'", "user_id": "wri'  # the next append, cut
    journal.write_bytes(kept + torn + bytes(1000))

    with Store.open(settings) as store:
        rows = store.rows_for_user("generations", "writer")
        assert sorted(row["id"] for row in rows) == sorted(acknowledged)
        assert {row["prompt"] for row in rows} == {SENTINEL}
        assert only_zeros(journal.read_bytes())  # replayed, then zeroed
    assert not journal.exists()

    # A crash right after a move but before the journal was emptied replays rows again:
    # they are stored once.
    journal.write_bytes(kept)
    with Store.open(settings) as store:
        assert len(store.rows_for_user("generations", "writer")) == 3


def test_a_damaged_journal_stops_the_open_with_a_clear_message(settings, tmp_path):
    acknowledged = crash_after_three_records(settings)
    journal = settings.data_dir / JOURNAL_FILE
    journal.write_bytes(b"not json\n" + journal_bytes(settings))
    with pytest.raises(StoreError, match=r"Line 1 of the journal .* is damaged") as raised:
        Store.open(settings)
    assert str(journal) in str(raised.value) and "Move the file aside" in str(raised.value)

    shutil.move(journal, tmp_path / "journal.aside")  # what the message says to do
    with Store.open(settings) as store:  # the failed open released the file
        assert store.rows_for_user("generations", "writer") == []
    lines = (tmp_path / "journal.aside").read_bytes().splitlines()
    assert [row["id"] for row in json.loads(lines[1])] == acknowledged[:1]


@pytest.mark.parametrize(
    "field, value",
    [
        ("seed", "12"),
        ("seed", 2**70),
        ("steps", 2**40),
        ("steps", 2.5),
        ("width", True),
        ("guidance", "high"),
        ("guidance", [1.0]),
        ("styles", "watercolor"),
        ("styles", ["ok", 3]),
        ("params", "{not json"),
        ("params", {"bad": object()}),
        ("prompt", "lone surrogate \ud800"),
        ("prompt", b"bytes"),
        ("front_door", "web"),
        ("status", None),
        ("created_at", "yesterday"),
        ("id", "../../etc/passwd"),
        ("id", 12),
    ],
)
def test_a_record_that_does_not_fit_is_refused_before_anything_is_written(
    store, settings, field, value
):
    with pytest.raises(ValidationError, match=f"generations.{field}|record_generation"):
        store.record_generations([{"user_id": "alice"}, {"user_id": "alice", field: value}])
    assert journal_bytes(settings) == b""
    assert store.table_counts()["generations"] == 0


def test_numpy_numbers_are_stored_as_plain_numbers(store):
    generation_id = store.record_generation(
        {"user_id": "alice", "seed": np.int64(7), "duration_ms": np.float32(1.5)}
    )
    row = store.get_generation("alice", generation_id)
    assert (row["seed"], row["duration_ms"]) == (7, 1.5)


def test_an_id_used_twice_is_refused_while_journaled_and_logged_after(store, caplog):
    taken = new_id()
    store.record_generation({"user_id": "alice", "id": taken, "prompt": "first"})
    with pytest.raises(ValidationError, match="already used"):
        store.record_generation({"user_id": "alice", "id": taken, "prompt": "second"})
    with pytest.raises(ValidationError, match="already used"):
        store.record_generations([{"user_id": "bob", "id": n} for n in (new_id(),) * 2])

    store.flush()  # once in DuckDB, only the move can tell: checking first would cost 0.4 ms
    with caplog.at_level(logging.ERROR, logger="gempix.store.core"):
        store.record_generation({"user_id": "alice", "id": taken, "prompt": "second"})
        store.flush()
    assert "1 journaled generation records had a taken id" in caplog.text
    assert store.get_generation("alice", taken)["prompt"] == "first"
    assert store.table_counts()["generations"] == 1


def test_erasure_takes_journaled_records_with_it(store, settings):
    store.record_generation({"user_id": "bob", "prompt": "bob's"})
    store.record_generation({"user_id": "alice", "prompt": SENTINEL})
    assert SENTINEL.encode() in journal_bytes(settings)
    counts = store.delete_user_rows("alice")
    assert counts["generations"] == 1
    assert only_zeros((settings.data_dir / JOURNAL_FILE).read_bytes())
    assert [row["prompt"] for row in store.list_generations("bob")] == ["bob's"]


def test_the_journal_grows_past_its_zeros_written_ahead(tmp_path):
    journal = Journal(tmp_path / "j")
    batches = [[{"id": str(n), "prompt": "p" * 300_000}] * 2 for n in range(5)]  # 3 MB
    for batch in batches:
        journal.append(batch)
    assert (tmp_path / "j").stat().st_size >= 3_000_000
    reopened = Journal(tmp_path / "j")
    assert reopened.read() == [row for batch in batches for row in batch]
    reopened.clear()
    assert only_zeros((tmp_path / "j").read_bytes())
    assert Journal(tmp_path / "j").read() == []
    reopened.close()
    assert not (tmp_path / "j").exists()


def test_the_journal_is_readable_by_its_owner_only(store, settings):
    store.record_generation({"user_id": "alice", "prompt": SENTINEL})
    assert stat.S_IMODE((settings.data_dir / JOURNAL_FILE).stat().st_mode) == 0o600


def test_a_failing_disk_gives_a_store_error_and_leaves_no_fragment(store, settings, monkeypatch):
    first = store.record_generation({"user_id": "alice", "prompt": "p" * 500})

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(journal_module.os, "fdatasync", disk_full)
    with pytest.raises(StoreError, match="Could not record the generation in .*No space left"):
        store.record_generation({"user_id": "alice", "prompt": "q" * 500})
    monkeypatch.undo()
    second = store.record_generation({"user_id": "alice", "prompt": "short"})

    # What a crash now would leave: the two acknowledged records, nothing of the failed one.
    data = (settings.data_dir / JOURNAL_FILE).read_bytes()
    assert b"q" * 500 not in data
    replayed = [row["id"] for row in Journal(settings.data_dir / JOURNAL_FILE).read()]
    assert replayed == [first, second]
