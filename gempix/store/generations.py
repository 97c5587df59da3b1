"""A user's generations, characters and saved styles.

Every lookup takes the user id: another user's record is "not found", with the same message
as a missing one, so ids cannot be probed. Records for a user being erased are refused.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ..errors import ConflictError, NotFoundError, ValidationError
from .core import StoreBase
from .usage import FRONT_DOORS
from .values import as_utc, check_limit, check_text, fetch_dicts, new_id

_CHARACTER_FIELDS = ("name", "reference_paths", "embeddings", "rights_confirmed_at", "strength")


def _check_name(name: Any, field: str = "name") -> str:
    """A short display name: 1-64 printable characters, surrounding spaces removed."""
    if not isinstance(name, str) or not re.fullmatch(r"[^\x00-\x1f\x7f]{1,64}", name.strip()):
        raise ValidationError(f"{field}: expected 1 to 64 printable characters.")
    return name.strip()


def _check_paths(paths: Any) -> list[str]:
    if not isinstance(paths, (list, tuple)) or not all(isinstance(p, str) for p in paths):
        raise ValidationError("reference_paths: expected a list of file paths.")
    return list(paths)


class GenerationsMixin(StoreBase):
    # -- generations --------------------------------------------------------------------------

    def record_generation(self, record: dict[str, Any]) -> str:
        """Store one generated (or failed) image's record; committed before returning its id.

        ``record`` holds ``generations`` columns (unknown keys are refused); ``id`` (32 hex
        digits, as ``uuid4().hex``), ``created_at`` and ``status`` ("ok") are filled in when
        absent, ``params`` may be a dict. Raises NotFoundError for an unknown user and
        UserLockedError for one being erased.
        """
        return self.record_generations([record])[0]

    def record_generations(self, records: list[dict[str, Any]]) -> list[str]:
        """Store the records of one batch of images in one transaction, all or none; return
        their ids. The users are checked in the same transaction, so a record can never
        slip in after an erasure (in any process) locked or removed its user."""
        rows = [self._generation_row(record) for record in records]
        if not rows:
            return []
        names = self._columns["generations"]
        insert = (
            f"INSERT INTO generations ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        )
        values = [[row.get(name) for name in names] for row in rows]
        with self._write("record the generation") as connection:
            for user_id in dict.fromkeys(row["user_id"] for row in rows):
                self._require_active_user(connection, user_id)
            connection.executemany(insert, values)
        return [row["id"] for row in rows]

    def _generation_row(self, record: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(record, dict) or not isinstance(record.get("user_id"), str):
            raise ValidationError("record_generation: a dict with a user_id is required.")
        row = {"id": new_id(), "created_at": self.clock.now(), "status": "ok", **record}
        check_text(row["id"], "generations.id", "[0-9a-f]{32}", "32 hex digits")
        if row.get("front_door") not in (None, *FRONT_DOORS):
            doors = ", ".join(FRONT_DOORS)
            raise ValidationError(f"generations.front_door: expected one of {doors}.")
        return {
            name: self._encode("generations", name, row[name])
            for name in self._check_columns("generations", row)
        }

    def get_generation(self, user_id: str, generation_id: str) -> dict[str, Any]:
        with self._read("read the generation") as connection:
            rows = fetch_dicts(
                connection.execute(
                    "SELECT * FROM generations WHERE id = ? AND user_id = ?",
                    [generation_id, user_id],
                )
            )
        if not rows:
            raise NotFoundError(f"No generation with id {generation_id!r}.")
        return rows[0]

    def list_generations(
        self, user_id: str, limit: int = 50, offset: int = 0
    ) -> list[dict[str, Any]]:
        """The user's generations, newest first."""
        if type(offset) is not int or offset < 0:
            raise ValidationError("offset: expected a whole number >= 0.")
        with self._read("list generations") as connection:
            return fetch_dicts(
                connection.execute(
                    "SELECT * FROM generations WHERE user_id = ? "
                    "ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                    [user_id, check_limit(limit), offset],
                )
            )

    def delete_generation(self, user_id: str, generation_id: str) -> str | None:
        """Delete the record; return its image path so the caller can remove the file."""
        with self._write("delete the generation") as connection:
            rows = connection.execute(
                "DELETE FROM generations WHERE id = ? AND user_id = ? RETURNING file_path",
                [generation_id, user_id],
            ).fetchall()
        if not rows:
            raise NotFoundError(f"No generation with id {generation_id!r}.")
        return rows[0][0]

    # -- characters ---------------------------------------------------------------------------

    def create_character(
        self,
        user_id: str,
        name: str,
        reference_paths: list[str],
        *,
        embeddings: bytes | None = None,
        rights_confirmed_at: datetime | None = None,
        strength: float | None = None,
    ) -> str:
        name = _check_name(name)
        character_id = new_id()
        with self._write("create the character") as connection:
            self._require_active_user(connection, user_id)
            self._refuse_duplicate_name(connection, user_id, name, character_id)
            self._insert(
                connection,
                "characters",
                {
                    "id": character_id,
                    "user_id": user_id,
                    "name": name,
                    "created_at": self.clock.now(),
                    "reference_paths": _check_paths(reference_paths),
                    "embeddings": embeddings,
                    "rights_confirmed_at": None
                    if rights_confirmed_at is None
                    else as_utc(rights_confirmed_at, "rights_confirmed_at"),
                    "strength": strength,
                },
            )
        return character_id

    def _refuse_duplicate_name(
        self, connection, user_id: str, name: str, character_id: str
    ) -> None:
        taken = connection.execute(
            "SELECT count(*) FROM characters WHERE user_id = ? AND name = ? AND id <> ?",
            [user_id, name, character_id],
        ).fetchone()[0]
        if taken:
            raise ConflictError(f"name: you already have a character named {name!r}.")

    def list_characters(self, user_id: str) -> list[dict[str, Any]]:
        """The user's characters by name, without the (large) embeddings."""
        with self._read("list characters") as connection:
            return fetch_dicts(
                connection.execute(
                    f"SELECT {self._columns_except('characters', ('embeddings',))} "
                    "FROM characters WHERE user_id = ? ORDER BY name",
                    [user_id],
                )
            )

    def get_character(self, user_id: str, character_id: str) -> dict[str, Any]:
        with self._read("read the character") as connection:
            rows = fetch_dicts(
                connection.execute(
                    "SELECT * FROM characters WHERE id = ? AND user_id = ?",
                    [character_id, user_id],
                )
            )
        if not rows:
            raise NotFoundError(f"No character with id {character_id!r}.")
        return rows[0]

    def update_character(self, user_id: str, character_id: str, **fields: Any) -> dict[str, Any]:
        unknown = sorted(set(fields) - set(_CHARACTER_FIELDS))
        if unknown or not fields:
            raise ValidationError(
                f"update_character: change one or more of {', '.join(_CHARACTER_FIELDS)}."
            )
        if "name" in fields:
            fields["name"] = _check_name(fields["name"])
        if "reference_paths" in fields:
            fields["reference_paths"] = _check_paths(fields["reference_paths"])
        if fields.get("rights_confirmed_at") is not None:
            fields["rights_confirmed_at"] = as_utc(
                fields["rights_confirmed_at"], "rights_confirmed_at"
            )
        values = [self._encode("characters", name, value) for name, value in fields.items()]
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._write("update the character") as connection:
            if "name" in fields:
                self._refuse_duplicate_name(connection, user_id, fields["name"], character_id)
            rows = fetch_dicts(
                connection.execute(
                    f"UPDATE characters SET {assignments} WHERE id = ? AND user_id = ? RETURNING *",
                    [*values, character_id, user_id],
                )
            )
        if not rows:
            raise NotFoundError(f"No character with id {character_id!r}.")
        return rows[0]

    def cache_character_embeddings(
        self, user_id: str, character_id: str, reference_paths: list[str], embeddings: bytes
    ) -> bool:
        """Store embeddings computed from ``reference_paths``, unless the references changed
        meanwhile (replaced, or the character deleted): then nothing is written, False."""
        with self._write("store the character's embeddings") as connection:
            changed = connection.execute(
                "UPDATE characters SET embeddings = ? WHERE id = ? AND user_id = ? "
                "AND CAST(reference_paths AS TEXT) = ?",
                [
                    embeddings,
                    character_id,
                    user_id,
                    self._encode("characters", "reference_paths", list(reference_paths)),
                ],
            ).rowcount
        return changed > 0

    def delete_character(self, user_id: str, character_id: str) -> list[str]:
        """Delete the character; return its reference image paths for the caller to remove."""
        with self._write("delete the character") as connection:
            rows = fetch_dicts(
                connection.execute(
                    "DELETE FROM characters WHERE id = ? AND user_id = ? RETURNING reference_paths",
                    [character_id, user_id],
                )
            )
        if not rows:
            raise NotFoundError(f"No character with id {character_id!r}.")
        return rows[0]["reference_paths"]

    # -- saved styles -------------------------------------------------------------------------

    def save_user_style(self, user_id: str, name: str, template: str, negative: str = "") -> None:
        """Create or replace the user's style ``name``."""
        name = _check_name(name)
        for field, text in (("template", template), ("negative", negative)):
            if not isinstance(text, str) or len(text) > 2000:
                raise ValidationError(f"{field}: expected text of at most 2000 characters.")
        with self._write("save the style") as connection:
            self._require_active_user(connection, user_id)
            connection.execute(
                "INSERT INTO user_styles (user_id, name, template, negative, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, name) "
                "DO UPDATE SET template = excluded.template, negative = excluded.negative",
                [user_id, name, template, negative, self.clock.now()],
            )

    def list_user_styles(self, user_id: str) -> list[dict[str, Any]]:
        with self._read("list styles") as connection:
            return fetch_dicts(
                connection.execute(
                    "SELECT * FROM user_styles WHERE user_id = ? ORDER BY name", [user_id]
                )
            )

    def delete_user_style(self, user_id: str, name: str) -> None:
        with self._write("delete the style") as connection:
            found = connection.execute(
                "DELETE FROM user_styles WHERE user_id = ? AND name = ?", [user_id, name]
            ).rowcount
        if not found:
            raise NotFoundError(f"No saved style named {name!r}.")
