"""Moving a data directory of an earlier release, one DuckDB file, to SQLite and Parquet.

Earlier releases kept everything in ``gempix.duckdb`` (schema version 4, with a journal of
generation records beside it after a crash). On the first start of this release,
``Store.open`` moves it:

1. Take the SQLite write lock (a process starting at the same time waits for the move) and
   open the DuckDB file read-only. If an older GemPix still runs on it, stop with a message.
2. Inside one SQLite transaction, copy every personal table, then the generation records the
   journal still held, and write the usage events as Parquet files named ``L9-imported``;
   every table's count is compared with the DuckDB file's, the events' too.
3. Record the move, with the DuckDB file's SHA-256, in ``_gempix_imports``; commit.
4. Securely remove ``gempix.duckdb`` and its companions (``.wal``, ``.journal``, leftovers of
   a rewrite): overwrite every byte with zeros, sync, unlink (see docs/store.md for what that
   means on which file system).

A crash before step 3 leaves the DuckDB file untouched (an earlier release still opens it) and
SQLite without a trace of the move; the next start moves it again, replacing the Parquet
files of the interrupted attempt. A crash after step 3 leaves the move recorded: the next
start only finishes step 4.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow.parquet as pq

from ..errors import GemPixError, StoreError
from .eventlog import sync
from .values import utcnow

if TYPE_CHECKING:
    from .core import StoreBase

LEGACY_FILE = "gempix.duckdb"
COMPANIONS = (".wal", ".journal", ".rewrite", ".rewrite.wal")
# In the order of their foreign keys: users first.
TABLES = (
    "users",
    "generations",
    "characters",
    "user_styles",
    "consents",
    "api_keys",
    "api_requests",
    "privacy_requests",
)
IMPORTED = "imported"  # the usage event files of the move: usage/day=.../L9-imported.parquet
UPGRADE_WAIT_S = 600.0  # how long a second process starting meanwhile waits for the move
BATCH = 5_000


def _identity(path: Path) -> str:
    """Which file this is (SHA-256 of its bytes): a different DuckDB file put back after the
    move is told apart from the moved one."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _shredding(path: Path) -> bool:
    """Whether ``_shred`` began on this file: it zeroes from the start, and a DuckDB file
    starts with its header."""
    with path.open("rb") as file:
        return not file.read(4096).strip(b"\0")


def import_legacy(store: StoreBase) -> dict[str, int] | None:
    """Move ``gempix.duckdb`` of the store's data dir into the store, if there is one;
    return the counts moved (None when there was nothing to move)."""
    legacy = store.data_dir / LEGACY_FILE
    if not legacy.exists():
        return None
    counts = None
    connection = store._connection()
    with store.backend.busy_timeout(connection, UPGRADE_WAIT_S):
        with store._write(f"move the records of {legacy}") as db:
            if not legacy.exists():  # another process moved it while we waited
                return None
            done = db.execute(
                "SELECT file_id FROM _gempix_imports WHERE source = ?", [LEGACY_FILE]
            ).fetchone()
            if done is None:
                counts = _copy_all(store, db, legacy)
                db.execute(
                    "INSERT INTO _gempix_imports VALUES (?, ?, ?, ?)",
                    [LEGACY_FILE, _identity(legacy), utcnow(), json.dumps(counts, sort_keys=True)],
                )
            elif not _shredding(legacy) and _identity(legacy) != done[0]:
                raise StoreError(
                    f"{store.data_dir} holds {store.path.name}, which already has the records "
                    f"of an earlier {LEGACY_FILE}, and another {LEGACY_FILE}. Move that file "
                    "out of the data folder (or the data folder's other files, to start from "
                    "it alone)."
                )
    for path in [legacy, *(Path(f"{legacy}{suffix}") for suffix in COMPANIONS)]:
        _shred(path)
    sync(store.data_dir)
    return counts


def _copy_all(store: StoreBase, db, legacy: Path) -> dict[str, int]:
    try:
        source = duckdb.connect(str(legacy), read_only=True)
    except duckdb.Error as error:
        if "lock" in str(error).lower():
            raise StoreError(
                f"{legacy} is open in another process (an earlier GemPix still running?). "
                f"Stop it, then start this release again to move its records into "
                f"{store.path.name}."
            ) from None
        raise StoreError(f"Could not read {legacy} to move its records: {error}") from None
    try:
        present = {
            name
            for (name,) in source.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        }
        counts = {
            table: _copy_table(store, db, source, table) for table in TABLES if table in present
        }
        counts["journaled_generations"] = _copy_journal(store, db, Path(f"{legacy}.journal"))
        counts["usage_events"] = _copy_events(store, source, legacy, "usage_events" in present)
    except BaseException:
        store.usage.remove_named(IMPORTED)
        raise
    finally:
        source.close()
    return counts


def _copy_table(store: StoreBase, db, source, table: str) -> int:
    """Copy one table, batch by batch; its new rows must number exactly the DuckDB file's."""
    names = [
        name
        for (name,) in source.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
    ]
    unknown = sorted(set(names) - set(store._columns[table]))
    if unknown:
        raise StoreError(
            f"{table} in {LEGACY_FILE} has columns this release does not know: "
            f"{', '.join(unknown)}; nothing was moved."
        )
    (before,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    users = _user_ids(db) if table == "api_requests" else None
    insert = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    rows = source.execute(f"SELECT {', '.join(names)} FROM {table}")
    try:
        while batch := rows.fetchmany(BATCH):
            db.executemany(insert, [_encoded(store, table, names, row, users) for row in batch])
    except Exception as error:
        raise StoreError(
            f"Could not move {table} from {LEGACY_FILE}: {error}. Nothing was moved; "
            f"{LEGACY_FILE} is left as it was."
        ) from None
    ((expected,),) = source.execute(f"SELECT count(*) FROM {table}").fetchall()
    (after,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    if after - before != expected:
        raise StoreError(
            f"Moving {table} from {LEGACY_FILE} copied {after - before} of {expected} rows; "
            f"nothing was moved, {LEGACY_FILE} is left as it was."
        )
    return expected


def _user_ids(db) -> set[str]:
    return {user_id for (user_id,) in db.execute("SELECT user_id FROM users")}


def _encoded(store: StoreBase, table: str, names: list[str], row, users) -> list[Any]:
    values = [store._encode(table, name, value) for name, value in zip(names, row, strict=True)]
    if users is not None:  # a request logged for a user erased since: keep it, unlinked
        at = names.index("user_id")
        if values[at] not in users:
            values[at] = None
    return values


def _copy_journal(store: StoreBase, db, path: Path) -> int:
    """Generation records that a crash of the earlier release left in its journal (it would
    have replayed them at its next start): each complete line is a JSON list of records."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    lines = data.split(b"\0", 1)[0].split(b"\n")  # the last item: b"" or a line cut short
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines[:-1], start=1):
        try:
            records.extend(json.loads(line))
        except ValueError:
            raise StoreError(
                f"Line {number} of {path} is damaged, so its generation records cannot be "
                "moved. Move the file aside to start without them."
            ) from None
    users, moved = _user_ids(db), 0
    for record in records:
        if record.get("user_id") not in users:
            continue
        try:
            names = store._check_columns("generations", record)
            values = [store._encode("generations", name, record[name]) for name in names]
        except GemPixError as error:
            raise StoreError(f"A record in {path} does not fit: {error.message}") from None
        moved += db.execute(
            f"INSERT INTO generations ({', '.join(names)}) "
            f"VALUES ({', '.join('?' * len(names))}) ON CONFLICT (id) DO NOTHING",
            values,
        ).rowcount
    return moved


def _copy_events(store: StoreBase, source, legacy: Path, present: bool) -> int:
    if not present:
        return 0
    ((expected,),) = source.execute("SELECT count(*) FROM usage_events").fetchall()
    events = source.sql("SELECT * FROM usage_events").to_arrow_table()
    written = store.usage.write_imported(events, IMPORTED)
    copied = sum(pq.read_metadata(path).num_rows for path in written)
    if copied != expected:
        raise StoreError(
            f"Moving usage_events from {legacy} wrote {copied} of {expected} events; nothing "
            f"was moved, {LEGACY_FILE} is left as it was."
        )
    return expected


def _shred(path: Path) -> None:
    """Overwrite every byte of ``path`` with zeros, sync, unlink (nothing if it is gone)."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return
    try:
        size, done, zeros = os.fstat(fd).st_size, 0, bytes(1 << 20)
        while done < size:
            done += os.pwrite(fd, zeros[: size - done], done)
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink(missing_ok=True)
