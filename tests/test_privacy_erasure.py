"""Erasure is verified, not assumed: nothing of an erased user is left in any file.

SQLite stores text as plain bytes, so a value still in the database's files shows up in a
grep; every test that greps also checks that the grep *can* find the sentinel before the
erasure, and looks in every file of the data dir, in UTF-8 and UTF-16 (docs/store.md).
Copies outside the data dir are the ones a front door registered (``studio.served``), as the
web app does for everything it serves.
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import threading
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from gempix import analytics
from gempix.errors import GemPixError, NotFoundError, StoreError, UserLockedError
from gempix.params import GenerationRequest
from gempix.privacy import (
    UNKNOWN_KEY,
    AgeConfirmationRequired,
    confirm_age,
    create_user,
    delete_images,
    erase,
    export,
    export_filename,
    grant_consent,
    open_user,
)
from gempix.privacy.files import save_references
from gempix.privacy.identity import audit_hash
from gempix.service import Studio
from gempix.store import PER_USER_TABLES, Store
from gempix.store.privacy_queries import count_usage_events, tables_mentioning

WAIT_S = 60  # bound on every wait between threads; never reached when things work


@pytest.fixture
def studio(settings, tiny_models):
    with Studio(settings, store=Store.open(settings), models=tiny_models) as studio:
        yield studio


def new_sentinel() -> str:
    return f"SENTINEL{secrets.token_hex(8)}"


def png_with_text(path: Path, text: str, color=(200, 30, 30)) -> Path:
    """A small PNG whose metadata holds ``text`` as plain bytes (a tEXt chunk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    info.add_text("comment", text)
    Image.new("RGB", (16, 16), color).save(path, pnginfo=info)
    return path


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def files_containing(folder: Path, needle: str) -> list[str]:
    """Every file below ``folder`` whose bytes contain ``needle`` (UTF-8 or UTF-16), or whose
    path names it."""
    raws = [needle.encode(encoding) for encoding in ("utf-8", "utf-16-le", "utf-16-be")]
    return [
        str(path.relative_to(folder))
        for path in files_in(folder)
        if any(raw in path.read_bytes() for raw in raws) or needle in str(path.relative_to(folder))
    ]


DATABASE = {"gempix.sqlite3", "gempix.sqlite3-wal"}


@dataclasses.dataclass
class Person:
    key: str
    user_id: str
    mark: str
    images: list[Path]
    character_id: str
    references: list[Path]
    upload: Path
    copies: list[Path]


def populate(studio: Studio, cache: Path, color) -> Person:
    """A user with data in every per-user table, files, and copies in a cache folder."""
    store = studio.store
    key, user_id = create_user(studio)
    confirm_age(store, user_id)
    mark = new_sentinel()
    result = studio.generate(
        GenerationRequest(f"a {mark} lighthouse", seed=3, num_images=2, steps=2),
        user_id=user_id,
        front_door="ui",
    )
    images = [image.path for image in result.images]
    upload = png_with_text(cache / secrets.token_hex(8) / "me.png", f"upload {mark}", color)
    character_id = store.create_character(user_id, f"{mark} hero", [], embeddings=mark.encode())
    references = save_references(studio.settings, user_id, character_id, [upload])
    store.update_character(user_id, character_id, reference_paths=references)
    store.save_user_style(user_id, f"look {mark[-6:]}", f"{{prompt}}, {mark}")
    store.update_user(user_id, display_name=f"name {mark}")
    grant_consent(studio, user_id, "training", method="ui")
    prefix = f"gpx_{mark[-10:]}"
    store.create_api_key_row(prefix, user_id, f"key {mark}", "user", "f" * 64)
    store.record_api_request(
        "/v1/generations", "POST", 200, 12.0, key_prefix=prefix, user_id=user_id
    )
    store.record_api_request("/v1/generations", "POST", 401, 1.0, key_prefix=prefix)
    # What the web app keeps in Gradio's cache, and registers: a served image under its own
    # name, a copy under another name, an export, and the upload.
    by_name = cache / secrets.token_hex(8) / images[0].name
    renamed = cache / secrets.token_hex(8) / "image.png"
    for source, copy in ((images[0], by_name), (images[1], renamed)):
        copy.parent.mkdir(parents=True)
        shutil.copyfile(source, copy)
        studio.served.add(user_id, [source.stem], copy)
    zipped = cache / secrets.token_hex(8) / export_filename(studio, user_id)
    export(studio, user_id, zipped)
    studio.served.add(user_id, ["export"], zipped)
    studio.served.add(user_id, [character_id], upload)
    copies = [by_name, renamed, zipped]
    return Person(
        key, user_id, mark, images, character_id, [Path(p) for p in references], upload, copies
    )


def snapshot_rows(folder: Path, visitor_hash: str) -> int:
    return sum(
        pc.sum(pc.equal(pq.read_table(path).column("visitor_hash"), visitor_hash)).as_py() or 0
        for path in folder.glob("*.parquet")
    )


def test_erasure_leaves_no_byte_of_the_user_anywhere_under_the_data_dir(studio):
    store, data = studio.store, studio.settings.data_dir
    cache = data / "gradio-cache"
    alice = populate(studio, cache, (200, 30, 30))
    bob = populate(studio, cache, (30, 30, 200))
    hash_a = studio.visitors.visitor_hash(alice.user_id)
    hash_b = studio.visitors.visitor_hash(bob.user_id)
    snapshots = data / "snapshots"
    analytics.snapshot(store, snapshots)
    bob_rows = {table: store.rows_for_user(table, bob.user_id) for table in PER_USER_TABLES}

    # Control: the grep can fail. Alice's sentinel and id are in the database, her images,
    # the cached copies and the upload; her events are in the snapshot.
    store.flush()
    before = files_containing(data, alice.mark)
    assert DATABASE & set(before)
    assert {str(p.relative_to(data)) for p in alice.images + [alice.upload]} <= set(before)
    assert files_containing(data, alice.user_id)
    assert snapshot_rows(snapshots, hash_a) == 1 and snapshot_rows(snapshots, hash_b) == 1

    report = erase(studio, alice.user_id)

    assert report.verified
    assert report.rows == {
        "generations": 2,
        "characters": 1,
        "user_styles": 1,
        "consents": 1,
        "api_requests": 2,
        "api_keys": 1,
        "users": 1,
    }
    assert report.cached_copies == 4  # by name, under another name, the export, the upload
    assert report.files == 2 + 1 + 4 and report.bytes > 0  # images, reference, copies
    assert report.usage_events == 1 and report.snapshot_rows == 1
    assert files_containing(data, alice.mark) == []
    assert files_containing(data, alice.user_id) == []
    assert tables_mentioning(store, alice.user_id) == {}
    assert count_usage_events(store, {hash_a}) == 0 and snapshot_rows(snapshots, hash_a) == 0

    # Bob: every row, file, copy and his sentinel in the database file are untouched.
    assert {table: store.rows_for_user(table, bob.user_id) for table in PER_USER_TABLES} == (
        bob_rows
    )
    assert all(p.is_file() for p in bob.images + bob.references + bob.copies + [bob.upload])
    assert DATABASE & set(files_containing(data, bob.mark))
    assert count_usage_events(store, {hash_b}) == 1 and snapshot_rows(snapshots, hash_b) == 1

    # The key opens nothing; a late request with the old id re-creates nothing.
    with pytest.raises(NotFoundError) as unknown:
        open_user(studio, alice.key)
    assert unknown.value.message == UNKNOWN_KEY
    with pytest.raises(AgeConfirmationRequired):
        studio.generate(GenerationRequest("again"), user_id=alice.user_id)
    with pytest.raises(NotFoundError):
        store.get_user(alice.user_id)

    # One completed audit row for the erasure: a keyed hash and counts, never the data.
    audit = [r for r in store.list_privacy_requests() if r["kind"] == "erasure"]
    assert len(audit) == 1 and audit[0]["completed_at"] is not None
    assert audit[0]["user_hash"] == audit_hash(studio.settings, alice.user_id) != alice.user_id
    assert audit[0]["counts"] == report.counts()
    assert alice.mark not in str(store.list_privacy_requests())


def test_erasing_an_unknown_user_changes_nothing(studio):
    store = studio.store
    _, user_id = create_user(studio)
    before = store.table_counts()
    with pytest.raises(NotFoundError):
        erase(studio, "f" * 64)
    assert store.table_counts() == before and store.get_user(user_id)


@pytest.mark.parametrize("release", ["after_lock", "after_erase"])
def test_a_generation_finishing_during_erasure_recreates_nothing(studio, release, monkeypatch):
    """A generation of the user is held mid-denoise and released either while the user is
    locked (before the rows go) or after the erasure returned: either way it is refused and
    its files are removed."""
    store, data = studio.store, studio.settings.data_dir
    _, user_id = create_user(studio)
    confirm_age(store, user_id)
    mark = new_sentinel()
    studio.generate(GenerationRequest(f"{mark} first", seed=1, steps=2), user_id=user_id)
    assert files_containing(data, mark)  # control: the grep below can fail
    running, go = threading.Event(), threading.Event()
    outcome: list[BaseException | None] = []

    def hold(done, total, stage):
        running.set()
        assert go.wait(WAIT_S)

    def generate():
        try:
            studio.generate(
                GenerationRequest(f"{mark} racing", seed=2, steps=2),
                user_id=user_id,
                progress=hold,
            )
        except GemPixError as error:
            outcome.append(error)
        else:
            outcome.append(None)

    worker = threading.Thread(target=generate)
    worker.start()
    assert running.wait(WAIT_S)
    if release == "after_lock":
        delete_rows = store.delete_user_rows

        def release_then_delete(user):
            assert store.get_user(user)["locked"]
            go.set()
            worker.join(WAIT_S)
            assert not worker.is_alive()
            return delete_rows(user)

        monkeypatch.setattr(store, "delete_user_rows", release_then_delete)
    try:
        report = erase(studio, user_id)
    finally:
        go.set()
        worker.join(WAIT_S)
    assert not worker.is_alive()

    (error,) = outcome
    assert isinstance(error, UserLockedError), error  # 409 either way, as docs/api.md says
    assert report.verified and report.rows["generations"] == 1
    for table in PER_USER_TABLES:
        assert store.rows_for_user(table, user_id) == [], table
    assert tables_mentioning(store, user_id) == {}
    store.flush()
    assert files_containing(data, mark) == []
    assert files_in(data / "images" / user_id) == []  # the late image was removed again
    with pytest.raises(NotFoundError):
        store.get_user(user_id)


def record_image(studio: Studio, user_id: str, text: str) -> tuple[str, Path]:
    """A generation row plus its PNG, without running the model."""
    image_id = secrets.token_hex(16)
    path = png_with_text(studio.settings.images_dir / user_id / f"{image_id}.png", text)
    studio.store.record_generation(
        {"id": image_id, "user_id": user_id, "prompt": text, "file_path": str(path)}
    )
    return image_id, path


def test_delete_image_removes_row_file_copies_and_the_bytes_in_the_database(studio):
    store, data = studio.store, studio.settings.data_dir
    _, alice = create_user(studio)
    _, bob = create_user(studio)
    gone_mark, kept_mark, bob_mark = new_sentinel(), new_sentinel(), new_sentinel()
    gone_id, gone_path = record_image(studio, alice, gone_mark)
    kept_id, kept_path = record_image(studio, alice, kept_mark)
    bob_id, bob_path = record_image(studio, bob, bob_mark)
    cache = data / "cache"
    copy = cache / "abc123" / gone_path.name
    copy.parent.mkdir(parents=True)
    shutil.copyfile(gone_path, copy)
    studio.served.add(alice, [gone_id], copy)
    assert DATABASE & set(files_containing(data, gone_mark))
    size = gone_path.stat().st_size

    counts = delete_images(studio, alice, [gone_id])

    assert counts == {
        "images": 1,
        "files": 2,
        "bytes": 2 * size,
        "cached_copies": 1,
    }
    assert files_containing(data, gone_mark) == []
    assert not copy.parent.exists()  # the folder made for the copy went with it
    assert studio.served.paths(alice) == []
    assert store.get_generation(alice, kept_id) and kept_path.is_file()
    assert store.get_generation(bob, bob_id) and bob_path.is_file()
    assert DATABASE & set(files_containing(data, kept_mark))
    kinds = [r["kind"] for r in store.list_privacy_requests()]
    assert kinds == ["image-deletion"]


def test_another_users_image_is_not_found_and_nothing_is_deleted(studio):
    store = studio.store
    _, alice = create_user(studio)
    _, bob = create_user(studio)
    alice_id, alice_path = record_image(studio, alice, new_sentinel())
    bob_id, bob_path = record_image(studio, bob, new_sentinel())
    before = store.table_counts()
    for ids in ([bob_id], [alice_id, bob_id], ["no-such-image"], [f"../{bob}/{bob_id}"]):
        with pytest.raises(NotFoundError, match="No generation with id"):
            delete_images(studio, alice, ids)
    with pytest.raises(NotFoundError):
        delete_images(studio, bob, [alice_id])
    assert store.table_counts() == before
    assert alice_path.is_file() and bob_path.is_file()
    assert store.list_privacy_requests() == []


def test_rows_pointing_outside_the_users_folders_never_delete_those_files(studio):
    """A hostile or buggy path in a user's row (another user's image, a system file) is
    reported, not deleted, by erasure and by image deletion."""
    store = studio.store
    _, alice = create_user(studio)
    _, bob = create_user(studio)
    _, bob_path = record_image(studio, bob, new_sentinel())
    outside = png_with_text(studio.settings.data_dir.parent / "elsewhere.png", "not gempix")
    for target in (bob_path, outside):
        store.record_generation({"user_id": alice, "prompt": "x", "file_path": str(target)})
    theirs = store.list_generations(alice)[0]["id"]
    delete_images(studio, alice, [theirs])
    assert bob_path.is_file() and outside.is_file()
    report = erase(studio, alice)
    assert report.outside_files == 1 and report.verified  # the row left after delete_image
    assert bob_path.is_file() and outside.is_file()
    assert store.get_user(bob)


def test_an_erasure_that_failed_midway_can_be_run_again_to_finish(studio, monkeypatch):
    store, data = studio.store, studio.settings.data_dir
    _, alice = create_user(studio)
    mark = new_sentinel()
    record_image(studio, alice, mark)
    scrub = store.scrub_deleted

    def reader_in_the_way():
        raise StoreError("Could not checkpoint the database: another process kept reading it")

    monkeypatch.setattr(store, "scrub_deleted", reader_in_the_way)
    with pytest.raises(StoreError, match="kept reading"):
        erase(studio, alice)
    (request,) = store.list_privacy_requests()
    assert request["kind"] == "erasure" and request["completed_at"] is None  # still open
    assert DATABASE & set(files_containing(data, mark))  # deleted, but the WAL still has it

    monkeypatch.setattr(store, "scrub_deleted", scrub)
    report = erase(studio, alice)
    assert report.verified and report.request_id == request["id"]
    assert files_containing(data, mark) == []
    (request,) = store.list_privacy_requests()
    assert request["completed_at"] is not None
    with pytest.raises(NotFoundError):
        erase(studio, alice)  # finished: now simply unknown
