"""API keys: created and shown once, stored as a keyed hash, checked in constant time.

A key reads ``gpx_<prefix>_<secret>``. The prefix (12 hex digits) is public: it names the key
in lists, logs and ``gempix keys revoke``. The secret is 32 random bytes (43 URL-safe
characters); the store keeps only ``HMAC-SHA256(server_secret, prefix:secret)``, so a database
leak reveals no usable key and, without the installation's server secret, no key can be
checked offline. Verification compares digests with ``hmac.compare_digest`` and does the same
work for unknown, malformed and revoked keys, which all get one and the same error.

A key belongs to a user (its ``user_id``) and has a role, ``user`` or ``admin``: requests made
with it act as that user, who still passes the age gate like in the web app. The HTTP API, the
CLI (``gempix keys``) and the web app's API tab all call these functions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
from typing import TYPE_CHECKING, Any

from .errors import GemPixError, ValidationError
from .privacy.identity import LOCAL_USER, server_secret
from .store.users import ROLES

if TYPE_CHECKING:
    from .service import Studio

KEY_START = "gpx_"
PREFIX_HEX = 12  # 48 bits: unique enough to name keys, never enough to guess one
SECRET_BYTES = 32
_KEY = re.compile(rf"gpx_([0-9a-f]{{{PREFIX_HEX}}})_([A-Za-z0-9_-]{{43}})")
UNKNOWN_API_KEY = "Missing, unknown or revoked API key. Send it as 'Authorization: Bearer gpx_...'."
_DUMMY_HASH = "0" * 64  # compared against when no key row exists, so timing says nothing


class InvalidKeyError(GemPixError):
    """No key, a malformed, unknown or revoked key: all the same, on purpose (HTTP 401)."""

    status = 401

    def __init__(self, message: str = UNKNOWN_API_KEY, prefix: str | None = None):
        super().__init__(message)
        self.prefix = prefix  # set only for a real key's prefix (a wrong secret), for the log


class PermissionDenied(GemPixError):
    """A valid key whose role may not do this (HTTP 403)."""

    status = 403


@dataclasses.dataclass(frozen=True)
class KeyInfo:
    """Who a verified key speaks for."""

    prefix: str
    user_id: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_secret(secret_key: bytes, prefix: str, secret: str) -> str:
    """The stored form of a key's secret: HMAC-SHA256 under the server secret, hex."""
    return hmac.new(secret_key, f"{prefix}:{secret}".encode(), hashlib.sha256).hexdigest()


def _check_role(role: Any) -> str:
    if role not in ROLES:
        raise ValidationError(f"role: expected one of {', '.join(ROLES)}, got {str(role)[:20]!r}.")
    return role


def create_key(
    studio: Studio, user_id: str, role: str = "user", name: str = ""
) -> tuple[str, dict[str, Any]]:
    """A new key for ``user_id``: ``(full_key, row)``. Show ``full_key`` once; it is not kept.

    ``name`` is a label (1-64 printable characters; empty gives ``key <prefix>``). The local
    operator's account is created on first use; any other user must exist already (they are
    created when they first use the web app or by ``privacy.create_user``).
    """
    _check_role(role)
    name = (name or "").strip()
    prefix = secrets.token_hex(PREFIX_HEX // 2)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    if user_id == LOCAL_USER:
        studio.store.ensure_user(LOCAL_USER)
    studio.store.create_api_key_row(
        prefix,
        user_id,
        name or f"key {prefix}",
        role,
        hash_secret(server_secret(studio.settings), prefix, secret),
    )
    row = studio.store.get_api_key(prefix) or {}
    return f"{KEY_START}{prefix}_{secret}", _public(row)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != "secret_hash"}


def parse_key(value: Any) -> tuple[str, str] | None:
    """``(prefix, secret)`` of ``gpx_<prefix>_<secret>`` (a leading ``Bearer`` is allowed)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text[:7].lower() == "bearer ":
        text = text[7:].strip()
    match = _KEY.fullmatch(text)
    return (match.group(1), match.group(2)) if match else None


def verify_key(studio: Studio, bearer: Any) -> KeyInfo:
    """Who ``bearer`` (a key, with or without ``Bearer``) speaks for; else InvalidKeyError.

    One store read by prefix, then a constant-time comparison of HMAC digests. Malformed,
    unknown and revoked keys take the same path and get the same error.
    """
    parsed = parse_key(bearer)
    prefix, secret = parsed if parsed else ("0" * PREFIX_HEX, "")
    row = studio.store.get_api_key(prefix) if parsed else None
    expected = row["secret_hash"] if row else _DUMMY_HASH
    actual = hash_secret(server_secret(studio.settings), prefix, secret)
    matches = hmac.compare_digest(expected.encode(), actual.encode())
    if row is None or not matches or row.get("revoked_at") is not None:
        raise InvalidKeyError(prefix=prefix if row is not None else None)
    return KeyInfo(prefix=prefix, user_id=row["user_id"], role=row["role"])


def require_role(info: KeyInfo, role: str) -> KeyInfo:
    """``info`` if its role allows ``role``'s actions (admin allows everything)."""
    _check_role(role)
    if role == "admin" and not info.is_admin:
        raise PermissionDenied("This needs an admin key; this key has the role 'user'.")
    return info


def list_keys(studio: Studio, user_id: str | None = None) -> list[dict[str, Any]]:
    """Keys newest first, never with their hashes: one user's, or everyone's when None."""
    return studio.store.list_api_keys(user_id)


def revoke_key(studio: Studio, user_id: str | None, prefix: str) -> None:
    """Revoke a key now: the owner's own (``user_id``), or any key when ``user_id`` is None
    (the operator's CLI, admins). Another user's prefix is "not found", like a missing one."""
    if not isinstance(prefix, str) or not prefix.strip():
        raise ValidationError("prefix: give the key's prefix (the part after gpx_).")
    prefix = prefix.strip()
    if prefix.startswith(KEY_START):  # a whole key or "gpx_<prefix>" pasted: take the prefix
        prefix = prefix[len(KEY_START) :].split("_", 1)[0]
    studio.store.revoke_api_key(prefix, user_id)


__all__ = [
    "InvalidKeyError",
    "KeyInfo",
    "PermissionDenied",
    "create_key",
    "hash_secret",
    "list_keys",
    "parse_key",
    "require_role",
    "revoke_key",
    "verify_key",
]
