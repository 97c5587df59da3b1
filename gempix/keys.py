"""API keys: created and shown once, stored as a keyed hash, checked in constant time.

A key reads ``gpx_<prefix>_<secret>``. The prefix (12 hex digits) is public: it names the key
in lists, logs and ``gempix keys revoke``. The secret is 32 random bytes (43 URL-safe
characters); the store keeps only ``HMAC-SHA256(server_secret, prefix:secret)``, so a database
leak reveals no usable key and, without the installation's server secret, no key can be
checked offline. Verification compares digests with ``hmac.compare_digest`` and does the same
work for unknown, malformed and revoked keys, which all get one and the same error.

A key belongs to a user (its ``user_id``): requests made with it act as that user, who still
passes the age gate like in the web app. Who is an admin is decided in one place, the account's
role (``privacy.identity.is_admin``: ``gempix user role admin``; the local operator always is);
a key's own role can only narrow that: an ``admin`` key acts as admin while its account is one,
a ``user`` key never does. The HTTP API, the CLI (``gempix keys``) and the web app's API tab
all go through ``studio.keys`` (``Keys``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
import threading
from typing import TYPE_CHECKING, Any

from .errors import GemPixError, PermissionDenied, ValidationError
from .privacy.identity import LOCAL_USER, is_admin, server_secret
from .store.users import ROLES

if TYPE_CHECKING:
    from .service import Studio

KEY_START = "gpx_"
PREFIX_HEX = 12  # 48 bits: unique enough to name keys, never enough to guess one
SECRET_BYTES = 32
_KEY = re.compile(rf"gpx_([0-9a-f]{{{PREFIX_HEX}}})_([A-Za-z0-9_-]{{43}})")
UNKNOWN_API_KEY = "Missing, unknown or revoked API key. Send it as 'Authorization: Bearer gpx_...'."
_DUMMY_HASH = "0" * 64  # compared against when no key row exists, so timing says nothing
_NO_PREFIX = "g" * PREFIX_HEX  # looked up for a malformed key: not hex, so never a real prefix


class InvalidKeyError(GemPixError):
    """No key, a malformed, unknown or revoked key: all the same, on purpose (HTTP 401)."""

    status = 401

    def __init__(self, message: str = UNKNOWN_API_KEY, prefix: str | None = None):
        super().__init__(message)
        self.prefix = prefix  # set only for a real key's prefix (a wrong secret), for the log


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


def require_role(info: KeyInfo, role: str) -> KeyInfo:
    """``info`` if its role allows ``role``'s actions (admin allows everything)."""
    _check_role(role)
    if role == "admin" and not info.is_admin:
        raise PermissionDenied("This needs an admin key of an account with the admin role.")
    return info


class Keys:
    """The API keys of each user: created and shown once, listed, revoked, verified."""

    def __init__(self, studio: Studio):
        self.studio = studio
        self._create_lock = threading.Lock()

    def create(
        self, user_id: str, role: str = "user", name: str = ""
    ) -> tuple[str, dict[str, Any]]:
        """A new key for ``user_id``: ``(full_key, row)``. Show ``full_key`` once; it is not kept.

        ``name`` is a label (1-64 printable characters; empty gives ``key <prefix>``). The local
        operator's account is created on first use; any other user must exist already (they
        are created when they first use the web app or by ``studio.privacy.create_user``). An
        ``admin`` key needs an admin account.
        """
        _check_role(role)
        store = self.studio.store
        owner = store.ensure_user(LOCAL_USER) if user_id == LOCAL_USER else store.get_user(user_id)
        if role == "admin" and not is_admin(owner):
            raise PermissionDenied(
                "role: an admin key needs an admin account (gempix user role admin)."
            )
        name = (name or "").strip()
        prefix = secrets.token_hex(PREFIX_HEX // 2)
        secret = secrets.token_urlsafe(SECRET_BYTES)
        with self._create_lock:  # count and create as one step in this process
            self._check_room(user_id)
            store.create_api_key_row(
                prefix,
                user_id,
                name or f"key {prefix}",
                role,
                hash_secret(server_secret(self.studio.settings), prefix, secret),
            )
        return f"{KEY_START}{prefix}_{secret}", _public(store.get_api_key(prefix) or {})

    def _check_room(self, user_id: str) -> None:
        """Refuse a key beyond ``GEMPIX_MAX_KEYS_PER_USER`` unrevoked ones: each key has its
        own rate limits, so unlimited keys would mean unlimited requests."""
        most = self.studio.settings.max_keys_per_user
        active = sum(1 for row in self.list(user_id) if row.get("revoked_at") is None)
        if user_id != LOCAL_USER and active >= most:
            raise ValidationError(
                f"keys: you have {active} active API keys, the most allowed ({most}); "
                "revoke one before creating another."
            )

    def verify(self, bearer: Any) -> KeyInfo:
        """Who ``bearer`` (a key, with or without ``Bearer``) speaks for; else InvalidKeyError.

        One store read by prefix, then a constant-time comparison of HMAC digests. Malformed,
        unknown and revoked keys take the same path and get the same error. The role is
        ``admin`` only for an admin key of an account that is an admin now.
        """
        parsed = parse_key(bearer)
        prefix, secret = parsed if parsed else (_NO_PREFIX, "")
        store = self.studio.store
        row = store.get_api_key(prefix)  # a malformed key reads too: same work, same time
        expected = row["secret_hash"] if row else _DUMMY_HASH
        actual = hash_secret(server_secret(self.studio.settings), prefix, secret)
        matches = hmac.compare_digest(expected.encode(), actual.encode())
        if row is None or not matches or row.get("revoked_at") is not None:
            raise InvalidKeyError(prefix=prefix if row is not None else None)
        admin = row["role"] == "admin" and is_admin(store.get_user(row["user_id"]))
        return KeyInfo(prefix=prefix, user_id=row["user_id"], role="admin" if admin else "user")

    def list(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """Keys newest first, never with their hashes: one user's, or everyone's when None."""
        return self.studio.store.list_api_keys(user_id)

    def revoke(self, user_id: str | None, prefix: str) -> None:
        """Revoke a key now: the owner's own (``user_id``), or any key when ``user_id`` is None
        (the operator's CLI). Another user's prefix is "not found", like a missing one."""
        if not isinstance(prefix, str) or not prefix.strip():
            raise ValidationError("prefix: give the key's prefix (the part after gpx_).")
        prefix = prefix.strip()
        if prefix.startswith(KEY_START):  # a whole key or "gpx_<prefix>" pasted: take the prefix
            prefix = prefix[len(KEY_START) :].split("_", 1)[0]
        self.studio.store.revoke_api_key(prefix, user_id)

    def touch(self, prefix: str) -> None:
        """Note that the key was used now (``last_used_at``)."""
        self.studio.store.touch_api_key(prefix)

    def log_request(self, route: str, method: str, status: int, latency_ms: float, **facts: Any):
        """One row of the API request log: route template, method, status, latency, and the
        key prefix, user and error class in ``facts``; never a body, a secret or an address."""
        self.studio.store.record_api_request(route, method, status, latency_ms, **facts)


__all__ = [
    "ROLES",
    "InvalidKeyError",
    "KeyInfo",
    "Keys",
    "PermissionDenied",
    "hash_secret",
    "parse_key",
    "require_role",
]
