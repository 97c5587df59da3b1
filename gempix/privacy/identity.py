"""Who a user is, without the server ever storing who they are.

A user holds a high-entropy random *user key* (a bearer secret they can copy to another
device). The server keeps only ``user_id = HMAC-SHA256(server_secret, key)``: a database leak
reveals no key, and without the server secret no key can be checked offline. The secret comes
from ``GEMPIX_SECRET`` (``settings.secret``) or is generated once into the data dir, readable
by its owner only (mode 0600), and stays the same across restarts.

``open_user`` answers a wrong, unknown, malformed or erased key with one and the same
``NotFoundError(UNKNOWN_KEY)``, so a caller learns nothing about other users.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, SettingsError
from ..settings import Settings

if TYPE_CHECKING:
    from ..service import Studio

log = logging.getLogger(__name__)

LOCAL_USER = "local"  # the operator of a CLI or notebook session without a user key
USER_KEY_PREFIX = "gpu_"
_USER_KEY = re.compile(r"gpu_[A-Za-z0-9_-]{43}")
SECRET_FILE = "server-secret"
MIN_SECRET_CHARS = 16
UNKNOWN_KEY = "Unknown user key. Check that you copied the whole key (it starts with gpu_)."


def server_secret(settings: Settings) -> bytes:
    """``GEMPIX_SECRET``, else the data dir's secret file, created once with mode 0600.

    The file is written completely under a temporary name and then linked into place, so
    two processes starting at once agree on one secret and nobody ever reads half of one.
    A file that others can read is tightened to 0600 (with a warning).
    """
    if settings.secret:
        if len(settings.secret) < MIN_SECRET_CHARS:
            raise SettingsError(
                f"GEMPIX_SECRET: expected at least {MIN_SECRET_CHARS} characters "
                "(e.g. the output of `python -c 'import secrets; print(secrets.token_hex(32))'`)."
            )
        return settings.secret.encode()
    path = Path(settings.data_dir) / SECRET_FILE
    if not path.exists():
        _create_secret_file(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); setting it to 0600.", path, mode)
        os.chmod(path, 0o600)
    secret = path.read_bytes().strip()
    if len(secret) < MIN_SECRET_CHARS:
        raise SettingsError(
            f"The server secret file {path} is damaged (too short). Restore it from a backup: "
            "without it no user key opens its account."
        )
    return secret


def _create_secret_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(partial, path)  # fails if another process created it first: theirs wins
        except FileExistsError:
            pass
    finally:
        partial.unlink(missing_ok=True)


def new_user_key() -> str:
    """32 random bytes, URL-safe: easy to copy, impossible to guess."""
    return USER_KEY_PREFIX + secrets.token_urlsafe(32)


def keyed_hash(secret: bytes, value: str) -> str:
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()


def user_id_for(secret: bytes, key: object) -> str:
    """The stored id of a key. A malformed key is "unknown", exactly like a wrong one."""
    if not isinstance(key, str) or not _USER_KEY.fullmatch(key.strip()):
        raise NotFoundError(UNKNOWN_KEY)
    return keyed_hash(secret, key.strip())


def oauth_user_id(secret: bytes, username: str) -> str:
    """A signed-in Space user's stable id, derived from their username the same way."""
    return keyed_hash(secret, "oauth:" + username)


def audit_hash(settings: Settings, user_id: str) -> str:
    """The keyed hash that stands for a user in the privacy audit (never the user id).

    Distinct from the user id (another HMAC input), so the audit table cannot be joined to
    anything, and erasing the user leaves nothing in it that points back at them.
    """
    return keyed_hash(server_secret(settings), "audit:" + user_id)


def is_admin(user: dict[str, Any] | None) -> bool:
    """The one rule for who is an admin, for every front door: the local operator (who owns
    the installation), or an account given the ``admin`` role (``gempix user role admin``);
    never an account being erased. API keys can only narrow it (``keys.Keys.verify``)."""
    if not user or user["locked"]:
        return False
    return user["user_id"] == LOCAL_USER or user["role"] == "admin"


def create_user(studio: Studio) -> tuple[str, str]:
    """A new user: ``(key, user_id)``. Show the key once; the server keeps only the id."""
    key = new_user_key()
    user_id = user_id_for(server_secret(studio.settings), key)
    studio.store.ensure_user(user_id)
    return key, user_id


def open_user(studio: Studio, key: object) -> str:
    """The user id of ``key``; ``NotFoundError(UNKNOWN_KEY)`` if it opens no active account.

    Malformed, wrong, never-issued and erased keys (and keys of an account being erased right
    now) all get the same error, so nothing is revealed about any other user.
    """
    user_id = user_id_for(server_secret(studio.settings), key)
    try:
        user = studio.store.get_user(user_id)
    except NotFoundError:
        raise NotFoundError(UNKNOWN_KEY) from None
    if user["locked"]:
        raise NotFoundError(UNKNOWN_KEY)
    return user_id
