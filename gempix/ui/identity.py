"""Who is calling: the user key kept in the browser, or a signed-in Space user.

The key lives in ``gr.BrowserState`` under a fixed storage key, encrypted with a secret derived
from the server secret, so it survives page reloads *and* server restarts (a random secret
would change at every start and make every browser a new user). The browser-state secret is
sent to the page (it is how the browser decrypts), so it is an HMAC of the server secret, never
the server secret itself. The server sees only the key and keeps only its HMAC, the user id.

Every handler asks ``Identity.user_id`` with what the browser sent; nothing else decides whose
data a call touches.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from ..errors import NotFoundError, ValidationError
from ..privacy.identity import new_user_key, oauth_user_id, server_secret, user_id_for
from ..service import Studio
from ..settings import Settings

STORAGE_KEY = "gempix-user-key"
_BROWSER_LABEL = b"gempix browser-state secret v1"
NO_KEY = "This browser has no user key yet. Reload the page to get one."


def browser_secret(settings: Settings) -> str:
    """The ``gr.BrowserState`` secret: stable across restarts, reveals nothing of the server's."""
    return hmac.new(server_secret(settings), _BROWSER_LABEL, hashlib.sha256).hexdigest()


def is_valid_key(secret: bytes, key: Any) -> bool:
    try:
        user_id_for(secret, key)
    except NotFoundError:
        return False
    return True


class Identity:
    """Maps what a browser sends (its key, or a Space sign-in) to a user id."""

    def __init__(self, studio: Studio, on_space: bool = False):
        self.studio = studio
        self.on_space = on_space
        self.secret = server_secret(studio.settings)

    def key_or_new(self, key: Any) -> str:
        """The browser's key when it is well-formed, else a fresh one (a new visitor)."""
        return key.strip() if is_valid_key(self.secret, key) else new_user_key()

    def signed_in(self, profile: Any) -> str | None:
        """The username of a signed-in Space user (None off a Space or when signed out)."""
        if not self.on_space or profile is None:
            return None
        username = getattr(profile, "username", None) or (
            profile.get("preferred_username") if isinstance(profile, dict) else None
        )
        return username if isinstance(username, str) and username else None

    def user_id(self, key: Any, profile: Any = None) -> str:
        """The caller's user id. Raises a GemPixError the page can show for a missing key."""
        username = self.signed_in(profile)
        if username is not None:
            return oauth_user_id(self.secret, username)
        if key in (None, ""):
            raise ValidationError(NO_KEY)
        return user_id_for(self.secret, key)
