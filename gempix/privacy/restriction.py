"""Restriction of processing: the user's data is kept, but used for nothing but showing it.

A restricted user still sees, exports and deletes their data and may keep generating; their
activity produces no usage events (the store drops them) and their generations appear in no
training manifest, whatever their consent says. Restricting and lifting are both audited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import audit

if TYPE_CHECKING:
    from ..service import Studio


def restrict(studio: Studio, user_id: str) -> dict[str, Any]:
    """Restrict processing of the user's data; returns the user's row."""
    user = studio.store.update_user(user_id, restricted=True)
    audit.record(studio, user_id, "restriction", {"users": 1})
    return user


def lift_restriction(studio: Studio, user_id: str) -> dict[str, Any]:
    """Lift a restriction (logged like the restriction itself); returns the user's row."""
    user = studio.store.update_user(user_id, restricted=False)
    audit.record(studio, user_id, "restriction-lifted", {"users": 1})
    return user


def is_restricted(studio: Studio, user_id: str) -> bool:
    return bool(studio.store.get_user(user_id)["restricted"])
