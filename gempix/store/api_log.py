"""API keys (only a hash of each secret) and the API request log.

The log keeps what security and reliability need (when, which route template, method, status,
latency, key prefix, error class) and never a body, a raw path or an IP address; it is
purged after ``settings.retention_days`` (see ``core``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import NotFoundError, ValidationError
from .core import StoreBase
from .usage import ERROR_CLASS
from .users import ROLES
from .values import as_utc, check_limit, check_text, fetch_dicts, new_id

KEY_PREFIX = r"[A-Za-z0-9_-]{4,64}"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
# A route template such as /v1/generations/{id}: path segments or {placeholders}, no query.
ROUTE = r"(/([A-Za-z0-9._-]+|\{[a-z_]+\}))+/?|/"


class ApiLogMixin(StoreBase):
    # -- keys -------------------------------------------------------------------------------

    def create_api_key_row(
        self, prefix: str, user_id: str, name: str, role: str, secret_hash: str
    ) -> None:
        """Store a new key: its public prefix and the hash of its secret, never the secret."""
        check_text(prefix, "prefix", KEY_PREFIX, "a key prefix")
        check_text(name, "name", r"[^\x00-\x1f\x7f]{1,64}", "a name of 1 to 64 characters")
        if role not in ROLES:
            raise ValidationError(f"role: expected one of {', '.join(ROLES)}, got {role!r}.")
        if not isinstance(secret_hash, str) or len(secret_hash) < 32:
            raise ValidationError("secret_hash: expected the hash of the key's secret.")
        with self._write("create the API key", durable=True) as connection:
            self._require_active_user(connection, user_id)
            self._insert(
                connection,
                "api_keys",
                {
                    "prefix": prefix,
                    "user_id": user_id,
                    "name": name,
                    "role": role,
                    "secret_hash": secret_hash,
                    "created_at": self.clock.now(),
                },
            )

    def get_api_key(self, prefix: str) -> dict[str, Any] | None:
        """The key row with its secret hash, for verifying a request (None: no such key)."""
        with self._read("read the API key") as connection:
            rows = fetch_dicts(
                connection.execute("SELECT * FROM api_keys WHERE prefix = ?", [prefix])
            )
        return rows[0] if rows else None

    def list_api_keys(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """Keys newest first, without secret hashes; all users' when ``user_id`` is None."""
        with self._read("list API keys") as connection:
            return fetch_dicts(
                connection.execute(
                    f"SELECT {self._columns_except('api_keys', ('secret_hash',))} FROM api_keys "
                    "WHERE CAST(? AS TEXT) IS NULL OR user_id = ? ORDER BY created_at DESC",
                    [user_id, user_id],
                )
            )

    def revoke_api_key(self, prefix: str, user_id: str | None = None) -> None:
        """Revoke a key (an owner's own, or any when ``user_id`` is None, for admins)."""
        with self._write("revoke the API key", durable=True) as connection:
            found = connection.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) "
                "WHERE prefix = ? AND (CAST(? AS TEXT) IS NULL OR user_id = ?)",
                [self.clock.now(), prefix, user_id, user_id],
            ).rowcount
        if not found:
            raise NotFoundError(f"No API key with prefix {prefix!r}.")

    def touch_api_key(self, prefix: str, when: datetime | None = None) -> None:
        """Note that the key was just used."""
        when = self.clock.now() if when is None else as_utc(when, "when")
        with self._write("update the API key") as connection:
            connection.execute(
                "UPDATE api_keys SET last_used_at = ? WHERE prefix = ?", [when, prefix]
            )

    # -- request log ------------------------------------------------------------------------

    def record_api_request(
        self,
        route: str,
        method: str,
        status: int,
        latency_ms: float,
        *,
        key_prefix: str | None = None,
        user_id: str | None = None,
        error_class: str | None = None,
        created_at: datetime | None = None,
    ) -> None:
        """Log one API call. ``route`` is the template, not the requested path.

        A call of a user being erased (or gone) is kept without who made it: no user id, and
        no key prefix of theirs.
        """
        check_text(route, "route", ROUTE, "a route template such as /v1/generations/{id}")
        if method not in METHODS:
            raise ValidationError(f"method: expected one of {', '.join(METHODS)}.")
        if type(status) is not int or not 100 <= status <= 599:
            raise ValidationError("status: expected an HTTP status code.")
        if key_prefix is not None:
            check_text(key_prefix, "key_prefix", KEY_PREFIX, "a key prefix")
        if error_class is not None:
            check_text(error_class, "error_class", ERROR_CLASS, "an exception class name")
        row = {
            "id": new_id(),
            "created_at": self.clock.now() if created_at is None else created_at,
            "route": route,
            "method": method,
            "status": status,
            "latency_ms": float(latency_ms),
            "key_prefix": key_prefix,
            "user_id": user_id,
            "error_class": error_class,
        }
        with self._write("log the API request") as connection:
            if not self._may_name(connection, user_id, key_prefix):
                row["user_id"] = row["key_prefix"] = None
            self._insert(connection, "api_requests", row)

    @staticmethod
    def _may_name(connection, user_id: str | None, key_prefix: str | None) -> bool:
        """Whether the log may say who called: not for a user being erased or gone, checked
        in the same transaction as the insert, so an erasure in any process is seen."""
        found = connection.execute(
            "SELECT count(*) FROM users WHERE locked AND (user_id = ? "
            "OR user_id IN (SELECT user_id FROM api_keys WHERE prefix = ?))",
            [user_id, key_prefix],
        ).fetchone()[0]
        if found:
            return False
        if user_id is None:
            return True
        return (
            connection.execute(
                "SELECT count(*) FROM users WHERE user_id = ?", [user_id]
            ).fetchone()[0]
            > 0
        )

    def list_api_requests(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest logged calls, for admins and tests."""
        with self._read("read the API request log") as connection:
            return fetch_dicts(
                connection.execute(
                    "SELECT * FROM api_requests ORDER BY created_at DESC LIMIT ?",
                    [check_limit(limit)],
                )
            )
