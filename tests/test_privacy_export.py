"""Access and portability: the export ZIP holds everything of the user and nothing else.

Checked: every file is in the manifest with its SHA-256; every JSON file validates against
the packaged JSON Schema, which matches the database's columns; the user's rows, images,
references and embeddings are all there; another user's sentinel appears nowhere in the ZIP;
memory stays flat however large the images are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import sqlite3
import tracemalloc
import zipfile
from pathlib import Path

import jsonschema
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from gempix.errors import NotFoundError, UserLockedError
from gempix.privacy import (
    confirm_age,
    create_user,
    export,
    export_schema,
    grant_consent,
    object_to_analytics,
    withdraw_consent,
)
from gempix.privacy.export import data_files, readme
from gempix.privacy.files import save_references
from gempix.service import Studio
from gempix.settings import Settings
from gempix.store import PER_USER_TABLES
from gempix.store.core import DB_FILE


@pytest.fixture
def studio(tmp_path):
    with Studio(Settings.load({}, data_dir=str(tmp_path / "data"))) as studio:
        yield studio


def png_with_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    info.add_text("comment", text)
    Image.new("RGB", (16, 16), (9, 99, 199)).save(path, pnginfo=info)
    return path


@dataclasses.dataclass
class Person:
    user_id: str
    mark: str
    secret_hash: str
    generations: dict[str, Path | None]
    character_id: str
    references: list[str]
    embeddings: bytes


def populate(studio: Studio) -> Person:
    """Rows in every per-user table and the files they point to, without running a model."""
    store = studio.store
    _, user_id = create_user(studio)
    mark = f"SENTINEL{secrets.token_hex(8)}"
    confirm_age(store, user_id)
    store.update_user(user_id, display_name=f"name {mark}")
    generations: dict[str, Path | None] = {}
    for n in range(3):
        image_id = secrets.token_hex(16)
        path = png_with_text(studio.settings.images_dir / user_id / f"{image_id}.png", mark)
        params = {"prompt": f"{mark} {n}", "seed": n, "sampler": "Euler", "nested": {"a": [1]}}
        store.record_generation(
            {
                "id": image_id,
                "user_id": user_id,
                "front_door": "api",
                "prompt": f"{mark} {n}",
                "seed": n,
                "width": 16,
                "height": 16,
                "params": params,
                "styles": ["watercolor"],
                "file_path": str(path),
            }
        )
        generations[image_id] = path
    failed = store.record_generation(
        {"user_id": user_id, "prompt": mark, "status": "ValidationError", "error_class": "X"}
    )
    generations[failed] = None
    upload = png_with_text(studio.settings.data_dir.parent / f"{mark}.png", mark)
    embeddings = b"\x00\x01" + mark.encode()
    character_id = store.create_character(user_id, f"hero {mark}", [], embeddings=embeddings)
    references = save_references(studio.settings, user_id, character_id, [upload, upload])
    store.update_character(user_id, character_id, reference_paths=references)
    store.save_user_style(user_id, "mine", f"{{prompt}}, {mark}", "blurry")
    grant_consent(studio, user_id, "training", method="ui")
    withdraw_consent(studio, user_id, "training", method="api")
    object_to_analytics(studio, user_id, method="cli")
    prefix = f"gpx_{secrets.token_hex(4)}"
    secret_hash = secrets.token_hex(32)
    store.create_api_key_row(prefix, user_id, "laptop", "user", secret_hash)
    store.touch_api_key(prefix)
    store.record_api_request(
        "/v1/generations", "POST", 200, 5.0, key_prefix=prefix, user_id=user_id
    )
    store.record_api_request("/v1/generations/{id}", "GET", 404, 1.0, key_prefix=prefix)
    return Person(user_id, mark, secret_hash, generations, character_id, references, embeddings)


def entries(archive: zipfile.ZipFile) -> dict[str, bytes]:
    return {name: archive.read(name) for name in archive.namelist()}


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = export_schema()
    return jsonschema.Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": schema["$defs"]})


def test_export_is_complete_hashed_valid_and_holds_nothing_of_anyone_else(studio, tmp_path):
    alice, bob = populate(studio), populate(studio)
    result = export(studio, alice.user_id, tmp_path / "out" / "alice.zip")
    with zipfile.ZipFile(result.path) as archive:
        files = entries(archive)
    manifest = json.loads(files["manifest.json"])

    # The manifest lists every other file with its hash and size, and validates.
    jsonschema.Draft202012Validator.check_schema(export_schema())
    validator("manifest").validate(manifest)
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert set(files) == set(listed) | {"manifest.json"}
    for path, entry in listed.items():
        assert hashlib.sha256(files[path]).hexdigest() == entry["sha256"], path
        assert len(files[path]) == entry["bytes"], path
    assert manifest["missing"] == [] and result.missing == 0
    assert result.files == len(listed) and result.bytes == result.path.stat().st_size

    # Every data file validates against the documented schema.
    data = {}
    for name in data_files():
        data[name] = json.loads(files[f"data/{name}.json"])
        validator(name).validate(data[name])
        assert manifest["counts"][name] == len(data[name]["rows"])

    # Everything Alice made is there, with every parameter and every file's exact bytes.
    (profile,) = data["profile"]["rows"]
    assert profile["user_id"] == alice.user_id and profile["display_name"] == f"name {alice.mark}"
    assert profile["analytics_objection"] is True
    rows = {row["id"]: row for row in data["generations"]["rows"]}
    assert set(rows) == set(alice.generations)
    for image_id, source in alice.generations.items():
        if source is None:
            assert rows[image_id]["image"] is None and rows[image_id]["status"] != "ok"
            continue
        assert files[rows[image_id]["image"]] == source.read_bytes()
        assert rows[image_id]["params"]["nested"] == {"a": [1]}
        assert rows[image_id]["styles"] == ["watercolor"]
    (character,) = data["characters"]["rows"]
    assert character["id"] == alice.character_id
    assert [files[name] for name in character["reference_files"]] == [
        Path(p).read_bytes() for p in alice.references
    ]
    assert files[character["embeddings_file"]] == alice.embeddings
    assert [(r["purpose"], r["granted"], r["method"]) for r in data["consents"]["rows"]] == [
        ("training", True, "ui"),
        ("training", False, "api"),
        ("analytics", False, "cli"),
    ]
    (key,) = data["api_keys"]["rows"]
    assert "secret_hash" not in key and key["last_used_at"] is not None
    assert len(data["api_requests"]["rows"]) == 2  # the failed call by key prefix too
    assert [r["user_id"] for r in data["api_requests"]["rows"]].count(None) == 1
    kinds = [row["kind"] for row in data["privacy_requests"]["rows"]]
    assert kinds == [
        "consent-training-granted",
        "consent-training-withdrawn",
        "objection",
        "export",
    ]
    assert alice.user_id not in json.dumps(data["privacy_requests"])  # a keyed hash only

    # Nothing of Bob, and never a secret's hash: not in any entry, not in the raw ZIP bytes.
    raw = result.path.read_bytes()
    for needle in (bob.mark, bob.user_id, alice.secret_hash):
        assert needle.encode() not in raw
        assert not [name for name, content in files.items() if needle.encode() in content]
    assert alice.mark.encode() in files["data/generations.json"]  # control: the search works

    # The audit row of the export is complete, with counts.
    (audit,) = [r for r in studio.store.list_privacy_requests() if r["kind"] == "export"]
    assert audit["completed_at"] is not None
    assert audit["counts"] == {**manifest["counts"], "files": len(listed)}


def test_the_schema_and_readme_describe_exactly_the_stored_columns(studio):
    studio.store.close()
    db = sqlite3.connect(studio.settings.data_dir / DB_FILE)
    try:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        pairs = [(t, c[1]) for t in tables for c in db.execute(f'PRAGMA table_info("{t}")')]
    finally:
        db.close()
    columns: dict[str, set[str]] = {}
    for table, column in pairs:
        columns.setdefault(table, set()).add(column)
    added = {
        "generations": {"image", "sources"},
        "characters": {"reference_files", "embeddings_file"},
    }
    dropped = {"characters": {"embeddings"}}
    schema = export_schema()["$defs"]
    assert set(data_files().values()) == {t for t, p in PER_USER_TABLES.items() if p.export} | {
        "privacy_requests"
    }
    text = readme()
    for name, table in data_files().items():
        hidden = set(PER_USER_TABLES[table].hidden) if table in PER_USER_TABLES else set()
        expected = (columns[table] - hidden - dropped.get(table, set())) | added.get(table, set())
        row_schema = schema[f"{name}_row"]
        assert set(row_schema["properties"]) == expected, name
        assert set(row_schema["required"]) == expected, name
        assert schema[name]["properties"]["table"] == {"const": table}
        assert f"## data/{name}.json" in text
        for field, spec in row_schema["properties"].items():
            assert spec.get("description"), f"{name}.{field} has no description"
            assert f"- `{field}`: {spec['description']}" in text


def test_files_outside_the_users_folders_are_never_exported(studio, tmp_path):
    alice, bob = populate(studio), populate(studio)
    bob_image = next(p for p in bob.generations.values() if p is not None)
    hostile = studio.store.record_generation(
        {"user_id": alice.user_id, "prompt": "x", "file_path": str(bob_image)}
    )
    gone_id, gone_path = next((i, p) for i, p in alice.generations.items() if p is not None)
    gone_path.unlink()
    result = export(studio, alice.user_id, tmp_path / "alice.zip")
    with zipfile.ZipFile(result.path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        rows = {r["id"]: r for r in json.loads(archive.read("data/generations.json"))["rows"]}
    assert bob.mark.encode() not in result.path.read_bytes()
    assert rows[hostile]["image"] is None and rows[gone_id]["image"] is None
    assert sorted(manifest["missing"], key=lambda m: m["reason"]) == [
        {"table": "generations", "id": gone_id, "reason": "file not found"},
        {"table": "generations", "id": hostile, "reason": "outside your folders"},
    ]


def test_export_streams_with_flat_memory(studio, tmp_path):
    """Twelve 1 MiB images: a ZIP built in memory (or files read whole and kept) would
    hold megabytes; streaming holds about one chunk."""
    store = studio.store
    _, user_id = create_user(studio)
    folder = studio.settings.images_dir / user_id
    folder.mkdir(parents=True)
    total = 0
    for _ in range(12):
        image_id = secrets.token_hex(16)
        path = folder / f"{image_id}.png"
        path.write_bytes(os.urandom(1 << 20))
        total += 1 << 20
        store.record_generation({"id": image_id, "user_id": user_id, "file_path": str(path)})
    tracemalloc.start()
    try:
        result = export(studio, user_id, tmp_path / "big.zip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.counts["generations"] == 12 and result.bytes > total
    assert peak < total / 4, f"export peaked at {peak:,} bytes for {total:,} bytes of images"


def test_unknown_or_erasing_users_get_no_export(studio, tmp_path):
    with pytest.raises(NotFoundError):
        export(studio, "f" * 64, tmp_path / "x.zip")
    _, user_id = create_user(studio)
    studio.store.update_user(user_id, locked=True)
    with pytest.raises(UserLockedError):
        export(studio, user_id, tmp_path / "y.zip")
    assert list(tmp_path.glob("*.zip*")) == []
    assert studio.store.list_privacy_requests() == []
