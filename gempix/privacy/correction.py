"""Rectification: the user corrects what is stored about them.

Editable: the profile's ``display_name``, a character's name and its reference images. A
generation is a record of what was made and is deleted rather than edited. Each correction
writes an audit row. Replaced reference images are deleted at once; their old embeddings are
dropped with them (``embeddings`` becomes None, or the caller passes the new ones), so nothing
derived from the old pictures stays in use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..images import ImageSource
from . import audit
from .files import owned_path, remove_file, save_references

if TYPE_CHECKING:
    from ..service import Studio

PROFILE_FIELDS = ("display_name",)


def update_profile(studio: Studio, user_id: str, **fields: Any) -> dict[str, Any]:
    """Change the profile's editable fields (``display_name``: 1-80 printable characters, or
    None/"" to remove it); returns the updated row."""
    unknown = sorted(set(fields) - set(PROFILE_FIELDS))
    if unknown or not fields:
        raise ValidationError(
            f"profile: the editable field is {', '.join(PROFILE_FIELDS)}"
            + (f"; not {', '.join(unknown)}." if unknown else ".")
        )
    name = fields["display_name"]
    if name is not None:
        if not isinstance(name, str):
            raise ValidationError("display_name: expected text.")
        name = name.strip() or None
    if name is not None and not re.fullmatch(r"[^\x00-\x1f\x7f]{1,80}", name):
        raise ValidationError("display_name: expected 1 to 80 printable characters.")
    user = studio.store.update_user(user_id, display_name=name)
    audit.record(studio, user_id, "rectification", {"users": 1})
    return user


def rename_character(studio: Studio, user_id: str, character_id: str, name: str) -> dict:
    """Rename one of the user's characters (another user's: NotFoundError, nothing changes)."""
    row = studio.store.update_character(user_id, character_id, name=name)
    audit.record(studio, user_id, "rectification", {"characters": 1})
    return _without_embeddings(row)


def replace_character_references(
    studio: Studio,
    user_id: str,
    character_id: str,
    images: Sequence[ImageSource],
    *,
    embeddings: bytes | None = None,
) -> dict:
    """Replace a character's 1-4 reference images; delete the old files and their served
    copies.

    The new images are checked like any upload before anything changes. ``embeddings`` are
    the new references' embeddings if the caller computed them (the engine does); otherwise
    they are cleared and computed again on the character's next use.
    """
    store = studio.store
    old = store.get_character(user_id, character_id)  # NotFoundError for another user's
    new_paths = save_references(studio.settings, user_id, character_id, images)
    try:
        row = store.update_character(
            user_id, character_id, reference_paths=new_paths, embeddings=embeddings
        )
    except BaseException:
        for path in new_paths:
            remove_file(Path(path))
        raise
    old_files = [
        owned
        for path in old["reference_paths"] or []
        if (owned := owned_path(studio.settings, user_id, path)) is not None
        and str(owned) not in new_paths
    ]
    studio.served.remove(user_id, [character_id])
    for path in old_files:
        remove_file(path)
    audit.record(studio, user_id, "rectification", {"characters": 1})
    return _without_embeddings(row)


def _without_embeddings(row: dict) -> dict:
    return {key: value for key, value in row.items() if key != "embeddings"}
