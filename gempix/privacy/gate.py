"""Who may generate right now: the checks the service runs before any work for a user.

The local operator (the CLI or a notebook on their own machine, with no user key) owns the
installation and is not gated; everyone identified by a user key confirms their age once.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ..errors import UserLockedError, ValidationError
from ..settings import Settings
from ..store import Store
from .identity import LOCAL_USER


class AgeConfirmationRequired(ValidationError):
    """A user's first generation needs a confirmation of the minimum age."""

    status = 403


def admit(store: Store, settings: Settings, user_id: str) -> dict:
    """The user's row, created on first contact; refuse erased-in-progress or unconfirmed users."""
    user = store.ensure_user(user_id)
    if user["locked"]:
        raise UserLockedError("This account is being deleted; nothing new can be made for it.")
    if user_id != LOCAL_USER and user["age_confirmed_at"] is None:
        raise AgeConfirmationRequired(
            f"Please confirm that you are at least {settings.min_age} years old before "
            "your first image."
        )
    return user


def confirm_age(store: Store, user_id: str) -> dict:
    """Record the user's confirmation that they meet the minimum age (kept once, first time)."""
    user = store.ensure_user(user_id)
    if user["age_confirmed_at"] is not None:
        return user
    return store.update_user(user_id, age_confirmed_at=datetime.now(timezone.utc))
