"""The usage event files: writing, merging, crash recovery, locking, erasure, import."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gempix.analytics import make_event
from gempix.store.eventlog import EVENT_SCHEMA, MERGE_AT, SOURCES, EventLog

TODAY = date(2026, 12, 3)
NOW = datetime(2026, 12, 3, 15, 30)


@pytest.fixture
def log(tmp_path):
    opened = EventLog(tmp_path / "usage")
    yield opened
    opened.close()


def event(n: int, when: datetime = NOW) -> dict:
    made = make_event(
        visitor_hash=f"{n:016x}", front_door="ui", model="tiny", steps=2, latency_ms=n, now=when
    )
    return {**made, "latency_ms": float(n)}  # a marker of which event this is (the log keeps it)


def write(log: EventLog, numbers, when: datetime = NOW) -> None:
    """One flush per event: one file each, as a busy app makes them."""
    for n in numbers:
        log.append(event(n, when))
        log.flush()


def stored(log: EventLog) -> list[int]:
    with log.reading() as cursor:
        rows = cursor.execute("SELECT latency_ms FROM usage_events ORDER BY 1").fetchall()
    return [int(value) for (value,) in rows]


def test_a_flush_writes_one_complete_file_per_day(log):
    log.append(event(1))
    log.append(event(2, NOW - timedelta(days=3)))
    assert log.flush() == {TODAY, TODAY - timedelta(days=3)}
    assert len(log.files()) == 2
    assert not list(log.folder.rglob("*.partial"))
    assert stored(log) == [1, 2]
    assert log.flush() == set()  # nothing buffered: no file
    assert [p.parent.name for p in log.files(NOW)] == ["day=2026-12-03"]


def test_a_full_level_merges_into_one_file_and_keeps_every_event(log):
    write(log, range(MERGE_AT - 1))
    assert log.compact([TODAY], today=TODAY) == 0  # not full yet
    write(log, [MERGE_AT - 1])
    assert log.compact([TODAY], today=TODAY) == MERGE_AT
    (merged,) = log.files()
    assert merged.name.startswith("L1-")
    assert stored(log) == list(range(MERGE_AT))


def test_a_finished_day_becomes_one_file(log):
    old = NOW - timedelta(days=5)
    write(log, range(3), old)
    write(log, [7])  # today's stay as they are
    assert log.compact(today=TODAY) == 3
    days = {path.parent.name: path.name for path in log.files()}
    assert days["day=2026-11-28"].startswith("L9-")
    assert stored(log) == [0, 1, 2, 7]


def test_a_merge_cut_short_after_removing_sources_is_finished(log):
    write(log, range(4))
    sources = log.files()
    table = pa.concat_tables(pq.read_table(path) for path in sources)
    names = str([path.name for path in sources]).replace("'", '"').encode()
    merging = sources[0].parent / "L1-crashed.parquet.merging"
    pq.write_table(table.replace_schema_metadata({SOURCES: names}), merging)
    (lost,) = [int(v) for v in pq.read_table(sources[0]).column("latency_ms").to_pylist()]
    sources[0].unlink()  # the crash came after removing one source
    assert stored(log) == sorted({0, 1, 2, 3} - {lost})  # a reader never looks at .merging
    log.compact([TODAY], today=TODAY)
    assert stored(log) == [0, 1, 2, 3]
    assert [path.name for path in log.files()] == ["L1-crashed.parquet"]


def test_a_merge_cut_short_while_writing_is_dropped(log):
    write(log, range(3))
    merging = log.files()[0].parent / "L1-torn.parquet.merging"
    merging.write_bytes(b"PAR1 cut short")
    log.compact([TODAY], today=TODAY)
    assert not merging.exists() and stored(log) == [0, 1, 2]


def test_a_stale_partial_file_is_removed_and_a_fresh_one_left(log):
    write(log, [1])
    folder = log.files()[0].parent
    stale, fresh = folder / "L0-old.parquet.partial", folder / "L0-new.parquet.partial"
    for path in (stale, fresh):
        path.write_bytes(b"half")
    os.utime(stale, (0, 0))
    log.compact([TODAY], today=TODAY)
    assert not stale.exists() and fresh.exists()
    assert stored(log) == [1]


def test_no_merge_while_a_query_reads(log):
    write(log, range(MERGE_AT))
    with log.reading() as cursor:
        assert log.compact([TODAY], today=TODAY) == 0  # the reader holds the lock
        assert cursor.execute("SELECT count(*) FROM usage_events").fetchone()[0] == MERGE_AT
    assert log.compact([TODAY], today=TODAY) == MERGE_AT


def test_deleting_visitors_rewrites_only_their_files(log):
    write(log, range(5))
    write(log, [9], NOW - timedelta(days=10))
    untouched = {path: path.stat().st_mtime_ns for path in log.files()}
    log.append(event(3))  # still buffered: deleted too
    hashes = {f"{3:016x}", f"{9:016x}"}
    assert log.delete_visitors(hashes) == 3
    assert stored(log) == [0, 1, 2, 4]
    changed = [path for path, mtime in untouched.items() if not path.exists()]
    assert len(changed) == 2  # the files that held only those events are gone
    assert log.delete_visitors(hashes) == 0


def test_an_import_written_twice_is_there_once(log):
    events = pa.Table.from_pylist([event(n, NOW - timedelta(days=n)) for n in range(3)])
    first = log.write_imported(events, "imported")
    second = log.write_imported(events, "imported")
    assert first == second and len(first) == 3
    assert stored(log) == [0, 1, 2]
    log.remove_named("imported")
    assert stored(log) == []


def test_no_events_reads_as_an_empty_table_with_the_schema(log):
    with log.reading() as cursor:
        columns = [d[0] for d in cursor.execute("SELECT * FROM usage_events").description]
    assert columns == EVENT_SCHEMA.names
    assert log.count() == 0
