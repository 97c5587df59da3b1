"""Users, their consent ledger, and the audit trail of privacy requests."""

from __future__ import annotations

import json
from typing import Any

from ..errors import NotFoundError, ValidationError
from .core import StoreBase
from .values import as_utc, check_limit, check_text, fetch_dicts, new_id

USER_ID = r"[A-Za-z0-9_-]{1,128}"
SLUG = r"[a-z0-9][a-z0-9_-]{0,39}"
ROLES = ("user", "admin")
_FLAGS = ("restricted", "analytics_objection", "locked")
_TIMES = ("age_confirmed_at",)
_TEXTS = ("policy_version_seen", "display_name")


def _check_role(role: Any) -> str:
    if role not in ROLES:
        raise ValidationError(f"role: expected one of {', '.join(ROLES)}, got {role!r}.")
    return role


def _check_user_field(name: str, value: Any) -> Any:
    if name == "role":
        return _check_role(value)
    if name in _FLAGS:
        if not isinstance(value, bool):
            raise ValidationError(f"{name}: expected true or false.")
        return value
    if name in _TIMES:
        return None if value is None else as_utc(value, name)
    if name in _TEXTS:
        if value is not None and (not isinstance(value, str) or len(value) > 80):
            raise ValidationError(f"{name}: expected text of at most 80 characters.")
        return value
    raise ValidationError(f"users: unknown or read-only field {name!r}.")


class UsersMixin(StoreBase):
    def ensure_user(self, user_id: str, role: str = "user") -> dict[str, Any]:
        """The user's row, created on first contact (an existing user keeps their role).

        Reads first: the row exists on every call but the first, and a read takes no lock.
        """
        check_text(user_id, "user_id", USER_ID, "an opaque id of letters, digits, _ and -")
        _check_role(role)
        with self._read("read the user") as connection:
            rows = _user(connection, user_id)
        if rows:
            return rows[0]
        with self._write("create the user") as connection:
            connection.execute(
                "INSERT INTO users (user_id, created_at, role) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [user_id, self.clock.now(), role],
            )
            return _user(connection, user_id)[0]

    def get_user(self, user_id: str) -> dict[str, Any]:
        with self._read("read the user") as connection:
            rows = _user(connection, user_id)
        if not rows:
            raise NotFoundError("No such user.")
        return rows[0]

    def update_user(self, user_id: str, **fields: Any) -> dict[str, Any]:
        """Change flags, role or profile fields; returns the updated row.

        Setting ``analytics_objection``, ``restricted`` or ``locked`` stops usage events at
        once, in every process; ``locked`` also refuses new records (erasure sets it first).
        """
        if not fields:
            raise ValidationError("update_user: name at least one field to change.")
        values = {name: _check_user_field(name, value) for name, value in fields.items()}
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._write("update the user", durable=True) as connection:
            rows = fetch_dicts(
                connection.execute(
                    f"UPDATE users SET {assignments} WHERE user_id = ? RETURNING *",
                    [*values.values(), user_id],
                )
            )
        if not rows:
            raise NotFoundError("No such user.")
        return rows[0]

    # -- consent ledger -----------------------------------------------------------------------

    def add_consent(
        self, user_id: str, purpose: str, granted: bool, policy_version: str, method: str
    ) -> str:
        """Append a grant or a withdrawal to the ledger (rows are never updated)."""
        check_text(purpose, "purpose", SLUG, "a purpose name such as 'training'")
        check_text(method, "method", SLUG, "how it was given, such as 'ui-toggle'")
        if not isinstance(granted, bool):
            raise ValidationError("granted: expected true or false.")
        if not isinstance(policy_version, str) or not policy_version:
            raise ValidationError("policy_version: expected the version of the policy shown.")
        consent_id = new_id()
        with self._write("record the consent", durable=True) as connection:
            self._require_active_user(connection, user_id)
            self._insert(
                connection,
                "consents",
                {
                    "id": consent_id,
                    "user_id": user_id,
                    "purpose": purpose,
                    "granted": granted,
                    "policy_version": policy_version,
                    "created_at": self.clock.now(),
                    "method": method,
                },
            )
        return consent_id

    def consent_history(self, user_id: str, purpose: str | None = None) -> list[dict[str, Any]]:
        """The user's ledger, oldest first, for one purpose or all."""
        with self._read("read the consent ledger") as connection:
            return fetch_dicts(
                connection.execute(
                    "SELECT * FROM consents WHERE user_id = ? "
                    "AND (CAST(? AS TEXT) IS NULL OR purpose = ?) ORDER BY created_at, id",
                    [user_id, purpose, purpose],
                )
            )

    def current_consent(self, user_id: str, purpose: str) -> dict[str, Any] | None:
        """The latest ledger entry for ``purpose`` (None: never asked, which means no)."""
        history = self.consent_history(user_id, purpose)
        return history[-1] if history else None

    # -- privacy request audit ----------------------------------------------------------------

    def add_privacy_request(
        self,
        user_hash: str,
        kind: str,
        *,
        counts: dict[str, int] | None = None,
        completed: bool = False,
    ) -> str:
        """Record that a request (export, erasure...) was received, and maybe completed.

        ``user_hash`` is a keyed hash the privacy module computes, never the user id, so the
        audit row survives erasure without pointing back at the person; ``counts`` are row
        counts per table, never data.
        """
        check_text(user_hash, "user_hash", r"[0-9a-f]{16,128}", "a hex digest")
        check_text(kind, "kind", SLUG, "a request kind such as 'erasure'")
        now = self.clock.now()
        request_id = new_id()
        with self._write("record the privacy request") as connection:
            self._insert(
                connection,
                "privacy_requests",
                {
                    "id": request_id,
                    "user_hash": user_hash,
                    "kind": kind,
                    "received_at": now,
                    "completed_at": now if completed else None,
                    "counts": _check_counts(counts),
                },
            )
        return request_id

    def complete_privacy_request(self, request_id: str, counts: dict[str, int]) -> None:
        with self._write("complete the privacy request", durable=True) as connection:
            found = connection.execute(
                "UPDATE privacy_requests SET completed_at = ?, counts = ? WHERE id = ?",
                [self.clock.now(), _check_counts(counts), request_id],
            ).rowcount
        if not found:
            raise NotFoundError("No such privacy request.")

    def list_privacy_requests(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first, for the admin's audit view."""
        with self._read("read privacy requests") as connection:
            return fetch_dicts(
                connection.execute(
                    "SELECT * FROM privacy_requests ORDER BY received_at DESC LIMIT ?",
                    [check_limit(limit)],
                )
            )


def _user(connection, user_id: str) -> list[dict[str, Any]]:
    return fetch_dicts(connection.execute("SELECT * FROM users WHERE user_id = ?", [user_id]))


def _check_counts(counts: dict[str, int] | None) -> str | None:
    if counts is None:
        return None
    if not isinstance(counts, dict) or not all(
        isinstance(k, str) and type(v) is int for k, v in counts.items()
    ):
        raise ValidationError("counts: expected a mapping of table name to a row count.")
    return json.dumps(counts, sort_keys=True)
