"""Rectification: profile, character names and references; never another user's."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from gempix.errors import NotFoundError, ValidationError
from gempix.privacy import (
    create_user,
    rename_character,
    replace_character_references,
    update_profile,
)
from gempix.privacy.files import save_references
from gempix.service import Studio
from gempix.settings import Settings


@pytest.fixture
def studio(tmp_path):
    with Studio(Settings.load({}, data_dir=str(tmp_path / "data"))) as studio:
        yield studio


def png(color) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 12), color).save(buffer, "PNG")
    return buffer.getvalue()


def character(studio: Studio, user_id: str, name: str) -> tuple[str, list[str]]:
    character_id = studio.store.create_character(user_id, name, [], embeddings=b"old")
    paths = save_references(studio.settings, user_id, character_id, [png((1, 2, 3))])
    studio.store.update_character(user_id, character_id, reference_paths=paths)
    return character_id, paths


def test_update_profile_edits_only_the_display_name(studio):
    _, user_id = create_user(studio)
    assert update_profile(studio, user_id, display_name="  Ada  ")["display_name"] == "Ada"
    assert update_profile(studio, user_id, display_name="")["display_name"] is None
    for bad in ({"display_name": "x" * 81}, {"display_name": "a\nb"}, {"display_name": 5}):
        with pytest.raises(ValidationError, match="display_name"):
            update_profile(studio, user_id, **bad)
    for forbidden in ({"restricted": True}, {"role": "admin"}, {"locked": True}, {}):
        with pytest.raises(ValidationError, match="editable field is display_name"):
            update_profile(studio, user_id, **forbidden)
    user = studio.store.get_user(user_id)
    assert user["role"] == "user" and not user["restricted"] and not user["locked"]
    kinds = [r["kind"] for r in studio.store.list_privacy_requests()]
    assert kinds == ["rectification", "rectification"]


def test_rename_and_replace_references(studio, tmp_path):
    _, user_id = create_user(studio)
    character_id, old_paths = character(studio, user_id, "Hero")
    cache = tmp_path / "cache"
    copy = cache / "abc" / Path(old_paths[0]).name
    copy.parent.mkdir(parents=True)
    shutil.copyfile(old_paths[0], copy)
    studio.served.add(user_id, [character_id], copy)  # as the web app registers what it serves

    assert rename_character(studio, user_id, character_id, " Heroine ")["name"] == "Heroine"
    row = replace_character_references(
        studio, user_id, character_id, [png((9, 9, 9)), png((8, 8, 8))]
    )
    assert len(row["reference_paths"]) == 2 and "embeddings" not in row
    assert all(Path(p).is_file() for p in row["reference_paths"])
    assert not any(Path(p).exists() for p in old_paths) and not copy.exists()
    assert studio.store.get_character(user_id, character_id)["embeddings"] is None
    with Image.open(row["reference_paths"][0]) as image:
        assert image.getpixel((0, 0)) == (9, 9, 9)


def test_bad_references_change_nothing(studio):
    _, user_id = create_user(studio)
    character_id, old_paths = character(studio, user_id, "Hero")
    folder = Path(old_paths[0]).parent
    before = sorted(folder.iterdir())
    for bad in ([], [b"not an image"], [png((1, 1, 1))] * 5, [png((1, 1, 1))[:40]]):
        with pytest.raises(ValidationError):
            replace_character_references(studio, user_id, character_id, bad)
    assert sorted(folder.iterdir()) == before
    assert studio.store.get_character(user_id, character_id)["reference_paths"] == old_paths


def test_another_users_character_is_not_found_and_unchanged(studio):
    _, alice = create_user(studio)
    _, bob = create_user(studio)
    character_id, paths = character(studio, bob, "Bob's")
    with pytest.raises(NotFoundError):
        rename_character(studio, alice, character_id, "Mine now")
    with pytest.raises(NotFoundError):
        replace_character_references(studio, alice, character_id, [png((0, 0, 0))])
    row = studio.store.get_character(bob, character_id)
    assert row["name"] == "Bob's" and row["reference_paths"] == paths
    assert Path(paths[0]).is_file()
    assert not (studio.settings.data_dir / "references" / alice).exists()
    assert studio.store.list_privacy_requests() == []
