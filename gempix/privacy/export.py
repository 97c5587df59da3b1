"""Access and portability: everything stored about a user, as one ZIP.

Layout (schema version 1, described by ``export_schema.json`` in this package)::

    manifest.json                    format, schema version, created time, SHA-256 of every file
    README.md                        what each file and field means (generated from the schema)
    data/profile.json                the account row          } each {format, schema_version,
    data/generations.json            every image's parameters }  table, rows}
    data/characters.json, data/styles.json, data/consents.json,
    data/api_keys.json (never a secret or its hash), data/api_requests.json,
    data/privacy_requests.json       the user's own audit trail
    images/<generation id>.png       every image file
    references/<character id>/<n>.png, embeddings.bin

The data files walk ``store.registry.PER_USER_TABLES``, so a new per-user table is exported as
soon as it is listed there (and the schema test fails until it is documented). The ZIP is
streamed to disk: rows are read in pages and written as they come, files are copied in
chunks, so memory stays flat however many images there are. It is written under a temporary
name and renamed when complete. Only files inside the user's own folders are included
(``files.owned_path``); anything else a row points to is listed under ``missing``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .. import __version__
from ..editing import SOURCES_FOLDER
from ..errors import UserLockedError
from ..store.privacy_queries import iter_user_rows
from ..store.registry import PER_USER_TABLES
from . import audit
from .files import owned_path
from .identity import audit_hash
from .jsonout import json_value
from .policy import load_policy

if TYPE_CHECKING:
    from ..service import Studio

FORMAT = "gempix-export"
SCHEMA_VERSION = 1
SCHEMA_FILE = "export_schema.json"
# Data file name of each exported table (the table name where not listed).
TABLE_FILES = {"users": "profile", "user_styles": "styles"}
AUDIT_FILE = "privacy_requests"
EXPORT_PREFIX = "gempix-export-"
_CHUNK = 1 << 20


@lru_cache(maxsize=1)
def export_schema() -> dict[str, Any]:
    """The JSON Schema of every JSON file in an export (``$defs``: one per file and row)."""
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def data_files() -> dict[str, str]:
    """Data file name (without ``.json``) -> table, in the order they are written."""
    tables = sorted(PER_USER_TABLES, key=lambda t: t != "users")  # the profile first
    files = {TABLE_FILES.get(t, t): t for t in tables if PER_USER_TABLES[t].export}
    files[AUDIT_FILE] = "privacy_requests"
    return files


def export_filename(studio: Studio, user_id: str, now: datetime | None = None) -> str:
    """A download name that says nothing about the user to anybody: a keyed hash prefix,
    never the user id."""
    now = now or datetime.now(timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    return f"{EXPORT_PREFIX}{audit_hash(studio.settings, user_id)[:16]}-{stamp}.zip"


@dataclasses.dataclass(frozen=True)
class ExportResult:
    path: Path
    files: int  # entries listed in the manifest
    bytes: int  # size of the ZIP
    counts: dict[str, int]  # rows per data file
    missing: int  # files the rows refer to that are not included
    request_id: str  # the audit row


class _HashingWriter:
    """A file-like sink that hashes and counts what passes into a ZIP entry."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.raw.write(data)
        self.digest.update(data)
        self.size += len(data)


class _ZipWriter:
    def __init__(self, archive: zipfile.ZipFile, when: datetime):
        self.archive = archive
        self.date_time = when.timetuple()[:6]
        self.files: list[dict[str, Any]] = []
        self.missing: list[dict[str, str]] = []

    @contextmanager
    def entry(self, name: str, compress: bool = True) -> Iterator[_HashingWriter]:
        info = zipfile.ZipInfo(name, self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        with self.archive.open(info, "w", force_zip64=True) as raw:
            sink = _HashingWriter(raw)
            yield sink
        self.files.append({"path": name, "sha256": sink.digest.hexdigest(), "bytes": sink.size})

    def rows(self, name: str, table: str, rows: Iterable[dict[str, Any]]) -> int:
        """``{format, schema_version, table, rows: [...]}``, written one row at a time."""
        count = 0
        with self.entry(name) as out:
            head = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "table": table}
            out.write(json.dumps(head, ensure_ascii=False)[:-1].encode() + b', "rows": [')
            for row in rows:
                text = json.dumps(json_value(row), ensure_ascii=False, allow_nan=False)
                out.write((",\n  " if count else "\n  ").encode() + text.encode())
                count += 1
            out.write(b"\n]}\n")
        return count

    def copy(self, source: Path, name: str, table: str, row_id: str) -> None:
        try:
            handle = source.open("rb")
        except OSError:
            self.missing.append({"table": table, "id": row_id, "reason": "deleted meanwhile"})
            return
        with handle, self.entry(name, compress=False) as out:
            while chunk := handle.read(_CHUNK):
                out.write(chunk)

    def data(self, name: str, content: bytes) -> None:
        with self.entry(name) as out:
            out.write(content)


class _Exporter:
    """Shapes rows for the export and remembers which files to copy after the JSON."""

    def __init__(self, studio: Studio, user_id: str, writer: _ZipWriter):
        self.studio = studio
        self.user_id = user_id
        self.writer = writer
        self.images: list[tuple[Path, str, str]] = []  # (source, name in ZIP, generation id)
        self.references: list[tuple[Path, str, str]] = []
        self.embeddings: list[tuple[str, str]] = []  # (character id, name in ZIP)

    def _owned(self, path: Any, table: str, row_id: str) -> Path | None:
        owned = owned_path(self.studio.settings, self.user_id, path)
        if owned is None or not owned.is_file():
            reason = "outside your folders" if path and owned is None else "file not found"
            self.writer.missing.append({"table": table, "id": row_id, "reason": reason})
            return None
        return owned

    def shape(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        if table == "generations":
            source = self._owned(row["file_path"], table, row["id"]) if row["file_path"] else None
            name = f"images/{row['id']}{source.suffix.lower()}" if source else None
            if source is not None:
                self.images.append((source, name, row["id"]))
            sources = []
            folder = self.studio.settings.images_dir / self.user_id / SOURCES_FOLDER / row["id"]
            for picture in sorted(folder.glob("*.png")):  # an edit's pictures (editing.py)
                sources.append(f"sources/{row['id']}/{picture.name}")
                self.images.append((picture, sources[-1], row["id"]))
            return {**row, "image": name, "sources": sources}
        if table == "characters":
            row = dict(row)
            blob = row.pop("embeddings", None)
            files = []
            for n, path in enumerate(row["reference_paths"] or [], start=1):
                source = self._owned(path, table, row["id"])
                if source is not None:
                    name = f"references/{row['id']}/{n}{source.suffix.lower()}"
                    self.references.append((source, name, row["id"]))
                    files.append(name)
            embeddings = f"references/{row['id']}/embeddings.bin" if blob else None
            if embeddings:
                self.embeddings.append((row["id"], embeddings))
            return {**row, "reference_files": files, "embeddings_file": embeddings}
        return row

    def files(self) -> None:
        for source, name, row_id in self.images:
            self.writer.copy(source, name, "generations", row_id)
        for source, name, row_id in self.references:
            self.writer.copy(source, name, "characters", row_id)
        for character_id, name in self.embeddings:
            blob = self.studio.store.get_character(self.user_id, character_id)["embeddings"]
            if blob:
                self.writer.data(name, bytes(blob))


def export(studio: Studio, user_id: str, path: str | Path) -> ExportResult:
    """Write everything stored about ``user_id`` to the ZIP at ``path``; audit the request.

    Raises NotFoundError for an unknown user and UserLockedError for one being erased.
    """
    store = studio.store
    if store.get_user(user_id)["locked"]:
        raise UserLockedError("This account is being deleted; there is nothing to export.")
    request_id = audit.received(studio, user_id, "export")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    counts: dict[str, int] = {}
    try:
        with zipfile.ZipFile(partial, "w", allowZip64=True) as archive:
            writer = _ZipWriter(archive, now)
            exporter = _Exporter(studio, user_id, writer)
            for name, table in data_files().items():
                if table == "privacy_requests":
                    rows: Iterable[dict[str, Any]] = audit.requests_of(studio, user_id)
                else:
                    rows = (
                        exporter.shape(table, row) for row in iter_user_rows(store, table, user_id)
                    )
                counts[name] = writer.rows(f"data/{name}.json", table, rows)
            exporter.files()
            writer.data("README.md", readme().encode())
            manifest = {
                "format": FORMAT,
                "schema_version": SCHEMA_VERSION,
                "created_at": json_value(now),
                "generator": f"GemPix {__version__}",
                "policy_version": load_policy().version,
                "counts": counts,
                "files": writer.files,
                "missing": writer.missing,
            }
            listed = len(writer.files)
            missing = len(writer.missing)
            archive.writestr(
                zipfile.ZipInfo("manifest.json", writer.date_time),
                json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                compress_type=zipfile.ZIP_DEFLATED,
            )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    audit.completed(studio, request_id, {**counts, "files": listed})
    return ExportResult(path, listed, path.stat().st_size, counts, missing, request_id)


def readme() -> str:
    """The export's README, generated from the schema so that it cannot drift from it."""
    schema = export_schema()["$defs"]
    lines = [
        "# Your GemPix data",
        "",
        "This ZIP holds everything this GemPix installation stores about you. Times are UTC",
        "(ISO 8601, ending in Z). `manifest.json` lists every other file with its SHA-256 hash",
        "and size; check one with `sha256sum FILE` (Linux), `shasum -a 256 FILE` (macOS) or",
        "`Get-FileHash FILE` (Windows). `export_schema.json` in the GemPix package (schema",
        "version 1) describes every JSON file formally.",
        "",
        "Every file in `data/` has the shape `{format, schema_version, table, rows: [...]}`.",
        "",
        f"## manifest.json\n\n{schema['manifest']['description']}\n",
    ]
    for field, spec in schema["manifest"]["properties"].items():
        lines.append(f"- `{field}`: {spec.get('description', '')}")
    for name in data_files():
        spec = schema[name]
        lines += ["", f"## data/{name}.json", "", spec["description"], ""]
        for field, column in schema[f"{name}_row"]["properties"].items():
            lines.append(f"- `{field}`: {column.get('description', '')}")
    lines += [
        "",
        "## images/",
        "",
        "Every image you generated, named by its id (`image` in data/generations.json). Each PNG",
        "carries its parameters and an AI-generated label in its metadata.",
        "",
        "## references/",
        "",
        "The reference images of each character (`references/<character id>/<n>.png`) and, where",
        "stored, `embeddings.bin`: the image encoder's embeddings of them (safetensors).",
        "",
    ]
    return "\n".join(lines)
