"""Who a user is, without the server ever storing who they are.

A user holds a high-entropy random *user key* (a bearer secret they can copy to another
device). The server keeps only ``user_id = HMAC-SHA256(server_secret, key)``: a database leak
reveals no key, and without the server secret no key can be checked offline. The secret comes
from ``GEMPIX_SECRET`` or is generated once into the data dir, readable by its owner only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from ..errors import NotFoundError
from ..settings import Settings

LOCAL_USER = "local"  # the operator of a CLI or notebook session without a user key
USER_KEY_PREFIX = "gpu_"
_USER_KEY = re.compile(r"^gpu_[A-Za-z0-9_-]{43}$")
SECRET_FILE = "server-secret"


def server_secret(settings: Settings) -> bytes:
    """``GEMPIX_SECRET``, else the data dir's secret file, created once with mode 0600."""
    if settings.secret:
        return settings.secret.encode()
    path = Path(settings.data_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32))
    return path.read_bytes().strip()


def new_user_key() -> str:
    """32 random bytes, URL-safe: easy to copy, impossible to guess."""
    return USER_KEY_PREFIX + secrets.token_urlsafe(32)


def keyed_hash(secret: bytes, value: str) -> str:
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()


def user_id_for(secret: bytes, key: object) -> str:
    """The stored id of a key. A malformed key is "unknown", exactly like a wrong one."""
    if not isinstance(key, str) or not _USER_KEY.match(key.strip()):
        raise NotFoundError(UNKNOWN_KEY)
    return keyed_hash(secret, key.strip())


def oauth_user_id(secret: bytes, username: str) -> str:
    """A signed-in Space user's stable id, derived from their username the same way."""
    return keyed_hash(secret, "oauth:" + username)


UNKNOWN_KEY = "Unknown user key. Check that you copied the whole key (it starts with gpu_)."
