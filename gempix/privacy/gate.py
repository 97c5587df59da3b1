"""Who may generate right now: the checks the service runs before any work for a user.

The local operator (the CLI or a notebook on their own machine, with no user key) owns the
installation and is not gated; everyone identified by a user key confirms their age once.

``admit`` never creates a user other than the local operator: a request carrying the id of
an account that was just erased (a stale browser tab, a generation queued before the erasure)
must not bring the account back. Accounts are created by ``identity.create_user`` and, for a
signed-in visitor, by ``confirm_age`` (their first contact).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from ..errors import NotFoundError, UserLockedError, ValidationError
from ..settings import Settings
from ..store import Store
from .identity import LOCAL_USER

Progress = Callable[[int, int, str], None]  # as gempix.engine.generate calls it


class AgeConfirmationRequired(ValidationError):
    """A user's first generation needs a confirmation of the minimum age."""

    status = 403


def _age_message(settings: Settings) -> str:
    return (
        f"Please confirm that you are at least {settings.min_age} years old before "
        "your first image."
    )


def admit(store: Store, settings: Settings, user_id: str) -> dict:
    """The user's row; refuse users being erased and users who have not confirmed their age.

    An unknown user gets the same refusal as an unconfirmed one and nothing is stored for
    them; only ``LOCAL_USER`` is created on first contact.
    """
    if user_id == LOCAL_USER:
        user = store.ensure_user(user_id)
    else:
        try:
            user = store.get_user(user_id)
        except NotFoundError:
            raise AgeConfirmationRequired(_age_message(settings)) from None
    if user["locked"]:
        raise UserLockedError("This account is being deleted; nothing new can be made for it.")
    if user_id != LOCAL_USER and user["age_confirmed_at"] is None:
        raise AgeConfirmationRequired(_age_message(settings))
    return user


ERASED_MEANWHILE = "This account was deleted while the generation ran; nothing was kept."


def still_active(store: Store, user_id: str) -> None:
    """Raise UserLockedError (409) if ``user_id`` is being erased or was erased meanwhile."""
    try:
        locked = store.get_user(user_id)["locked"]
    except NotFoundError:
        raise UserLockedError(ERASED_MEANWHILE) from None
    if locked:
        raise UserLockedError("This account is being deleted; the generation was stopped.")


def watch(store: Store, user_id: str, progress: Progress | None) -> Progress:
    """``progress`` that first checks, at every step, that the user is still active.

    The privacy watch: an erasure locks the user before it deletes anything, so a generation
    it overtakes stops at its next denoising step (the engine's step callback calls progress
    before it makes a preview), instead of running on and writing previews after the
    erasure reported "verified" (tests/test_security.py). One indexed read per step.
    """

    def checked(done: int, total: int, stage: str) -> None:
        still_active(store, user_id)
        if progress is not None:
            progress(done, total, stage)

    return checked


def confirm_age(store: Store, user_id: str) -> dict:
    """Record the user's confirmation that they meet the minimum age (kept once, first time).

    Creates the user on first contact (a signed-in visitor's first visit).
    """
    user = store.ensure_user(user_id)
    if user["locked"]:
        raise UserLockedError("This account is being deleted; nothing new can be made for it.")
    if user["age_confirmed_at"] is not None:
        return user
    return store.update_user(user_id, age_confirmed_at=datetime.now(timezone.utc))
