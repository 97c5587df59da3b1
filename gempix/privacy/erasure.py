"""Erasure, verified: every row and every file of a user, and the bytes in the database files.

``erase`` runs in this order (docs/architecture.md, "The deletion path"):

1. **Audit** the request as received (a keyed hash, never the user id).
2. **Lock** the user: from now on the store refuses any record for them, so a generation that
   finishes meanwhile cannot re-create data (the service removes its files when refused).
3. **Collect** the user's files: their folders, the files their rows point to, and the copies
   front doors registered (``files.ServedCopies``: the web app's served PNGs, JPEG/WebP
   downloads, previews, uploads and export ZIPs in Gradio's cache).
4. **Delete the rows** of every per-user table (``Store.delete_user_rows``, registry order).
5. **Delete the files**: the registered copies, then the user's folders.
6. **Delete linkable usage events.** Usage events hold no id, only a visitor hash whose salt
   lives in this process's memory for at most ~48 h. While it lives, the events a user made
   today and yesterday can be recomputed from their id, so they are deleted too, from the
   store's event files and from Parquet snapshots found under the data dir (and
   ``snapshot_dirs``). Older events can no longer be linked to anyone by anyone and are kept
   as anonymous statistics. (Events that another process recorded for the user carry that
   process's salts, which this one cannot recompute: they stay unlinkable to anyone but that
   process, for at most ~48 h.)
7. **Scrub the database files** (``Store.scrub_deleted``): the deleted rows' pages were zeroed
   as they were written (``secure_delete``); a checkpoint puts them in the database file and
   truncates the WAL that still held their earlier versions.
8. **Verify**: no row of any per-user table has the user, no text of any table mentions their
   id, none of their files or folders and none of their registered copies is left; otherwise
   ``ErasureIncomplete`` is raised and the audit row stays open.
9. **Complete the audit row** with the counts.

Afterwards the user's key opens nothing (``identity.open_user`` raises NotFoundError).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import GemPixError, NotFoundError, StoreError, ValidationError
from ..store.privacy_queries import (
    count_usage_events,
    delete_usage_events,
    iter_user_rows,
    tables_mentioning,
)
from ..store.registry import PER_USER_TABLES
from . import audit
from .files import files_under, owned_path, remove_file, remove_tree, user_folders

if TYPE_CHECKING:
    from ..service import Studio

log = logging.getLogger(__name__)
_SKIP_WHEN_SEARCHING_SNAPSHOTS = {"images", "references", "models"}
MIN_SEARCHABLE_ID = 16  # shorter ids (the local operator's "local") are not searched as text


class ErasureIncomplete(StoreError):
    """Erasure ran but verification found something of the user left (status 500)."""


@dataclasses.dataclass(frozen=True)
class ErasureReport:
    """What an erasure removed. Counts only: it never holds the data."""

    request_id: str  # the audit row in privacy_requests
    rows: dict[str, int]  # rows deleted per table
    files: int  # files deleted: images, references, served copies
    bytes: int  # their total size
    cached_copies: int  # of ``files``, copies front doors had registered (served, downloads)
    usage_events: int  # linkable usage events deleted from the database
    snapshot_rows: int  # ... and from Parquet snapshots
    outside_files: int  # files the rows pointed to outside the user's folders: left alone
    verified: bool
    seconds: float

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def counts(self) -> dict[str, int]:
        """The counts kept in the audit row."""
        return {
            **self.rows,
            "files": self.files,
            "bytes": self.bytes,
            "cached_copies": self.cached_copies,
            "usage_events": self.usage_events,
            "snapshot_rows": self.snapshot_rows,
            "outside_files": self.outside_files,
        }


@dataclasses.dataclass
class _Files:
    owned: set[Path]  # files to delete: inside the user's folders
    outside: int  # paths the rows named outside the user's folders (never touched)


def _collect_files(studio: Studio, user_id: str) -> _Files:
    settings = studio.settings
    owned: set[Path] = set()
    outside = 0
    named: list[str] = []
    for row in iter_user_rows(studio.store, "generations", user_id):
        if row["file_path"]:
            named.append(row["file_path"])
    for row in iter_user_rows(studio.store, "characters", user_id):
        named.extend(row["reference_paths"] or [])
    for path in named:
        resolved = owned_path(settings, user_id, path)
        if resolved is not None:
            owned.add(resolved)
        elif Path(path).exists():
            outside += 1
    for folder in user_folders(settings, user_id):
        if folder.is_dir():
            owned.update(p.resolve() for p in files_under(folder))
    return _Files(owned, outside)


def _linkable_hashes(studio: Studio, user_id: str) -> set[str]:
    """The user's visitor hashes under the salts still in memory (today's and yesterday's)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    hashes = set()
    for day in (now, now - timedelta(days=1)):
        try:
            hashes.add(studio.visitors.visitor_hash(user_id, day))
        except ValidationError:  # that salt is already forgotten: nothing links any more
            continue
    return hashes


def snapshot_files(folders: Iterable[Path], skip: Path | None = None) -> list[Path]:
    """Parquet files of usage events below ``folders`` (image and model folders skipped, and
    ``skip``: the store's own event files, which the store erases under its lock)."""
    found = []
    for folder in folders:
        for root, dirs, names in os.walk(folder):
            dirs[:] = [
                d for d in dirs if d not in _SKIP_WHEN_SEARCHING_SNAPSHOTS and Path(root, d) != skip
            ]
            found.extend(Path(root) / n for n in names if n.endswith(".parquet"))
    return found


def remove_snapshot_rows(path: Path, visitor_hashes: set[str]) -> int:
    """Rewrite one Parquet snapshot without the rows of ``visitor_hashes``; return how many.

    Files without a ``visitor_hash`` column, or without such rows, are left untouched. The
    file is rewritten row group by row group (flat memory) and swapped in atomically.
    """
    source = pq.ParquetFile(path)
    if "visitor_hash" not in source.schema_arrow.names or not visitor_hashes:
        return 0
    wanted = pa.array(sorted(visitor_hashes))
    matches = sum(
        pc.sum(pc.is_in(group.column("visitor_hash"), wanted)).as_py() or 0
        for group in source.iter_batches(columns=["visitor_hash"])
    )
    if not matches:
        return 0
    partial = path.with_name(path.name + ".partial")
    try:
        with pq.ParquetWriter(partial, source.schema_arrow, compression="zstd") as out:
            for batch in source.iter_batches():
                keep = pc.invert(pc.is_in(batch.column("visitor_hash"), wanted))
                out.write_batch(batch.filter(keep))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return matches


def erase(
    studio: Studio, user_id: str, *, snapshot_dirs: Iterable[str | Path] = ()
) -> ErasureReport:
    """Erase everything of ``user_id`` and verify it; see the module docstring for the order.

    ``snapshot_dirs``: folders with usage-event Parquet snapshots besides the data dir.
    Raises NotFoundError for an unknown user, ErasureIncomplete if verification fails. An
    erasure that failed after deleting the rows (a checkpoint kept waiting by a long reader in
    another process...) can be run again with the same id: it resumes under its open audit
    row.
    """
    started = time.perf_counter()
    store = studio.store
    settings = studio.settings
    try:
        store.get_user(user_id)
    except NotFoundError:
        request_id = _unfinished_erasure(studio, user_id)  # resume, or NotFoundError
    else:
        request_id = audit.received(studio, user_id, "erasure")
        store.update_user(user_id, locked=True)

    files = _collect_files(studio, user_id)
    copies = studio.served.paths(user_id)
    rows = store.delete_user_rows(user_id)

    cached, cached_bytes = studio.served.remove(user_id)
    removed, removed_bytes = cached, cached_bytes
    for path in files.owned:
        freed = remove_file(path)
        if freed is not None:
            removed, removed_bytes = removed + 1, removed_bytes + freed
    for folder in user_folders(settings, user_id):
        extra_files, extra_bytes = remove_tree(folder)  # anything that appeared meanwhile
        removed, removed_bytes = removed + extra_files, removed_bytes + extra_bytes

    hashes = _linkable_hashes(studio, user_id)
    events = delete_usage_events(store, hashes)
    snapshot_rows = sum(
        remove_snapshot_rows(path, hashes)
        for path in snapshot_files(
            [Path(settings.data_dir), *map(Path, snapshot_dirs)], skip=store.usage.folder
        )
    )
    if files.outside:
        log.warning(
            "erasure: %d file(s) named by the user's rows lie outside their folders and were "
            "left alone",
            files.outside,
        )

    store.scrub_deleted()
    late_events = delete_usage_events(store, hashes)  # from a generation that was in flight
    problems = verify_erased(studio, user_id, [*files.owned, *copies])
    report = ErasureReport(
        request_id=request_id,
        rows=rows,
        files=removed,
        bytes=removed_bytes,
        cached_copies=cached,
        usage_events=events + late_events,
        snapshot_rows=snapshot_rows,
        outside_files=files.outside,
        verified=not problems,
        seconds=time.perf_counter() - started,
    )
    if problems:
        raise ErasureIncomplete(
            "Erasure did not complete; left: " + "; ".join(problems) + ". The request stays "
            "open in the privacy audit; run the erasure again after fixing the cause."
        )
    audit.completed(studio, request_id, report.counts())
    return report


def _unfinished_erasure(studio: Studio, user_id: str) -> str:
    """The open audit row of an erasure of ``user_id`` that failed after deleting the rows
    (so running it again finishes the job); NotFoundError when there is none."""
    for request in reversed(audit.requests_of(studio, user_id)):
        if request["kind"] == "erasure" and request["completed_at"] is None:
            return request["id"]
    raise NotFoundError("No such user.")


def verify_erased(studio: Studio, user_id: str, known_files: Iterable[Path] = ()) -> list[str]:
    """What is left of ``user_id`` (empty when nothing): counts and kinds, never data.

    ``known_files``: the files and registered copies the erasure deleted; each must be gone,
    and so must every copy still registered for the user.
    """
    store = studio.store
    problems = []
    for table in PER_USER_TABLES:
        left = len(store.rows_for_user(table, user_id))
        if left:
            problems.append(f"{left} row(s) in {table}")
    if len(user_id) >= MIN_SEARCHABLE_ID:  # key-derived ids: 64 hex digits, found only as such
        for table, count in tables_mentioning(store, user_id).items():
            problems.append(f"{count} row(s) of {table} mention the user id")
    left_files = sum(1 for path in {*known_files, *studio.served.paths(user_id)} if path.exists())
    for folder in user_folders(studio.settings, user_id):
        if folder.exists():
            left_files += sum(1 for _ in files_under(folder))
            problems.append(f"folder {folder.parent.name}/<user> still exists")
    if left_files:
        problems.append(f"{left_files} file(s)")
    linkable = count_usage_events(store, _linkable_hashes(studio, user_id))
    if linkable:
        problems.append(f"{linkable} linkable usage event(s)")
    return problems


def delete_images(studio: Studio, user_id: str, image_ids: Iterable[str]) -> dict[str, int]:
    """Delete some of the user's images: rows, files, registered copies; then scrub the
    database files, so the prompts are gone from them too (one checkpoint for the batch).

    All ids are checked first: if any is unknown or another user's, NotFoundError is raised
    and nothing is deleted. Returns counts: images, files, bytes, cached_copies.
    """
    store = studio.store
    ids = list(dict.fromkeys(image_ids))
    if not ids or not all(isinstance(i, str) for i in ids):
        raise ValidationError("image_ids: give one or more image ids.")
    rows = [store.get_generation(user_id, image_id) for image_id in ids]  # NotFound first
    paths = [owned_path(studio.settings, user_id, row["file_path"]) for row in rows]
    copies = studio.served.paths(user_id, ids)
    deleted = 0
    for image_id in ids:
        try:
            store.delete_generation(user_id, image_id)
            deleted += 1
        except NotFoundError:  # deleted meanwhile by a concurrent call: already gone
            continue
    cached, size = studio.served.remove(user_id, ids)
    files = cached
    for path in paths:
        freed = remove_file(path) if path is not None else None
        if freed is not None:
            files, size = files + 1, size + freed
    left = [i for i in ids if _still_there(store, user_id, i)]
    left_files = [p for p in [*paths, *copies] if p is not None and p.exists()]
    if left or left_files:
        raise ErasureIncomplete("Image deletion did not complete; please try again.")
    counts = {"images": deleted, "files": files, "bytes": size, "cached_copies": cached}
    audit.record(studio, user_id, "image-deletion", counts)
    store.scrub_deleted()  # last: one checkpoint makes the deletion and its audit row durable
    return counts


def _still_there(store, user_id: str, image_id: str) -> bool:
    try:
        store.get_generation(user_id, image_id)
    except GemPixError:
        return False
    return True
