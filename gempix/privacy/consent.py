"""Consent: what a user allowed, as an append-only ledger, changed in one call either way.

Two purposes. ``training`` (default **off**): a user's generations appear in a training
manifest only while their latest ledger entry for it is a grant. ``analytics`` (default
**on**, objectable): withdrawing it is an objection, after which the user's activity produces
no usage event at all (``users.analytics_objection``, which the store checks per event).

Every change appends a ledger row (purpose, granted, the policy version in force, time,
method: ui, api, cli or notebook) and an audit row. Granting and withdrawing are the same
call with the opposite value, so withdrawing is exactly as easy as granting.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING

from ..errors import ValidationError
from . import audit
from .policy import load_policy

if TYPE_CHECKING:
    from ..service import Studio


@dataclasses.dataclass(frozen=True)
class Purpose:
    name: str
    default: bool
    description: str


PURPOSES: dict[str, Purpose] = {
    "training": Purpose(
        "training",
        False,
        "Use my prompts and images to train or fine-tune image models.",
    ),
    "analytics": Purpose(
        "analytics",
        True,
        "Count my activity in anonymous usage statistics (no prompt, no id, no IP).",
    ),
}
METHODS = ("ui", "api", "cli", "notebook")


@dataclasses.dataclass(frozen=True)
class ConsentState:
    """Where one purpose stands for one user."""

    purpose: str
    granted: bool
    default: bool  # True: the user never chose, so the purpose's default applies
    since: datetime | None = None  # when the latest choice was made
    policy_version: str | None = None  # the policy in force then
    method: str | None = None  # ui, api, cli or notebook


def check_purpose(purpose: object) -> str:
    if purpose not in PURPOSES:
        raise ValidationError(
            f"purpose: expected one of {', '.join(PURPOSES)}, got {str(purpose)[:40]!r}."
        )
    return purpose  # type: ignore[return-value]


def check_method(method: object) -> str:
    if method not in METHODS:
        raise ValidationError(f"method: expected one of {', '.join(METHODS)}.")
    return method  # type: ignore[return-value]


def _kind(purpose: str, granted: bool) -> str:
    if purpose == "analytics":
        return "objection-withdrawn" if granted else "objection"
    return f"consent-{purpose}-{'granted' if granted else 'withdrawn'}"


def _change(studio: Studio, user_id: str, purpose: str, granted: bool, method: str):
    check_purpose(purpose)
    check_method(method)
    store = studio.store
    store.get_user(user_id)  # unknown users: NotFoundError before anything is written
    version = load_policy().version
    # The enforcing flag changes first on the way to "no", last on the way to "yes": a failure
    # in between always leaves the more private state in force.
    if purpose == "analytics" and not granted:
        store.update_user(user_id, analytics_objection=True)
    store.add_consent(user_id, purpose, granted, version, method)
    if purpose == "analytics" and granted:
        store.update_user(user_id, analytics_objection=False)
    audit.record(studio, user_id, _kind(purpose, granted), {"consents": 1})
    return state(studio, user_id, purpose)


def grant(studio: Studio, user_id: str, purpose: str, *, method: str = "notebook"):
    """Opt in to ``purpose``; returns the new ``ConsentState``."""
    return _change(studio, user_id, purpose, True, method)


def withdraw(studio: Studio, user_id: str, purpose: str, *, method: str = "notebook"):
    """Opt out of ``purpose`` (one call, like granting); returns the new ``ConsentState``.

    Withdrawing training consent removes the user's generations from every training
    manifest built afterwards.
    """
    return _change(studio, user_id, purpose, False, method)


def state(studio: Studio, user_id: str, purpose: str) -> ConsentState:
    """The current state of one purpose (the latest ledger row, or the default)."""
    check_purpose(purpose)
    user = studio.store.get_user(user_id)
    latest = studio.store.current_consent(user_id, purpose)
    if purpose == "analytics":
        granted = not user["analytics_objection"]  # the flag is what the store enforces
    else:
        granted = latest["granted"] if latest else PURPOSES[purpose].default
    if latest is None:
        return ConsentState(purpose, granted, default=True)
    return ConsentState(
        purpose,
        granted,
        default=False,
        since=latest["created_at"],
        policy_version=latest["policy_version"],
        method=latest["method"],
    )


def status(studio: Studio, user_id: str) -> dict[str, ConsentState]:
    """Every purpose's current state for the user."""
    return {purpose: state(studio, user_id, purpose) for purpose in PURPOSES}


def history(studio: Studio, user_id: str) -> list[dict]:
    """The user's whole ledger, oldest first."""
    studio.store.get_user(user_id)
    return studio.store.consent_history(user_id)


def object_to_analytics(studio: Studio, user_id: str, *, method: str = "notebook"):
    """Object to analytics: from now on the user's activity produces no usage events."""
    return withdraw(studio, user_id, "analytics", method=method)


def withdraw_objection(studio: Studio, user_id: str, *, method: str = "notebook"):
    """Take back an objection to analytics (counted anonymously again)."""
    return grant(studio, user_id, "analytics", method=method)
