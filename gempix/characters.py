"""A user's character library, as every front door works with it: ``studio.characters``.

A character is a name, 1-4 reference images (checked, made upright RGB, stored as PNG in the
user's reference folder) and an optional strength. Every rule is checked here, once, for every
door: the rights confirmation, the references, the name (by the store) and the strength (the
request model's range for ``character_strength``). A character is found by id or by name among
the caller's own only, so another user's reads as "not found".
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .errors import ValidationError, out_of_range
from .images import ImageSource
from .params import field_range
from .privacy import correction
from .privacy.files import reference_dir, save_references
from .references import find_character

if TYPE_CHECKING:
    from .service import Studio


def check_strength(value: Any) -> float | None:
    """A character's own strength: None (the default) or a number in the request's range."""
    if value is None:
        return None
    low, high = field_range("character_strength")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"strength: expected a number from {low} to {high}, got {value!r}.")
    if not low <= value <= high:
        raise ValidationError(out_of_range("strength", value, low, high))
    return float(value)


def _rights(confirmed: Any) -> datetime:
    if confirmed is not True:
        raise ValidationError(
            "rights_confirmed: confirm that you have the rights to use these reference images."
        )
    return datetime.now(timezone.utc)


class Characters:
    """Create, find, change and delete the characters of each user."""

    def __init__(self, studio: Studio):
        self.studio = studio

    def list(self, user_id: str) -> list[dict[str, Any]]:
        return self.studio.store.list_characters(user_id)

    def get(self, user_id: str, key: str) -> dict[str, Any]:
        """The user's character with this id or name; NotFoundError for anything else."""
        if not isinstance(key, str) or not key:
            raise ValidationError("character: choose a character first.")
        return find_character(self.studio.store, user_id, key)

    def create(
        self,
        user_id: str,
        name: str,
        references: Sequence[ImageSource],
        rights_confirmed: bool,
        strength: float | None = None,
    ) -> dict[str, Any]:
        """Store a character and its references; the user's confirmation that they may use
        the images is required and kept with it (``rights_confirmed_at``)."""
        confirmed_at = _rights(rights_confirmed)
        strength = check_strength(strength)
        store = self.studio.store
        store.ensure_user(user_id)
        character_id = store.create_character(
            user_id, name, [], rights_confirmed_at=confirmed_at, strength=strength
        )
        try:
            paths = save_references(self.studio.settings, user_id, character_id, references)
            return store.update_character(user_id, character_id, reference_paths=paths)
        except BaseException:
            store.delete_character(user_id, character_id)
            shutil.rmtree(
                reference_dir(self.studio.settings, user_id, character_id), ignore_errors=True
            )
            raise

    def update(
        self,
        user_id: str,
        key: str,
        *,
        name: str | None = None,
        references: Sequence[ImageSource] | None = None,
        rights_confirmed: bool = False,
        strength: float | None = None,
    ) -> dict[str, Any]:
        """Rename, set the strength, or replace the references (with a fresh confirmation of
        the rights; the old files and their served copies are deleted). Each is audited."""
        if name is None and references is None and strength is None:
            raise ValidationError("character: give at least one of name, references, strength.")
        character_id = self.get(user_id, key)["id"]
        confirmed_at = _rights(rights_confirmed) if references is not None else None
        strength = check_strength(strength)
        if name is not None:
            correction.rename_character(self.studio, user_id, character_id, name)
        if strength is not None:
            self.studio.store.update_character(user_id, character_id, strength=strength)
        if references is not None:
            correction.replace_character_references(self.studio, user_id, character_id, references)
            self.studio.store.update_character(
                user_id, character_id, rights_confirmed_at=confirmed_at
            )
        return self.studio.store.get_character(user_id, character_id)

    def delete(self, user_id: str, key: str) -> None:
        """Delete the character, its reference files and folder, and their served copies."""
        character_id = self.get(user_id, key)["id"]
        self.studio.store.delete_character(user_id, character_id)
        self.studio.served.remove(user_id, [character_id])
        shutil.rmtree(
            reference_dir(self.studio.settings, user_id, character_id), ignore_errors=True
        )
