"""One view of a user's account for the Privacy tab, ``gempix user show`` and notebooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..store.registry import PER_USER_TABLES
from . import consent
from .policy import load_policy, needs_notice

if TYPE_CHECKING:
    from ..service import Studio


def account_summary(studio: Studio, user_id: str) -> dict[str, Any]:
    """Profile, flags, consent states, policy notice and how many rows each table holds."""
    store = studio.store
    user = store.get_user(user_id)
    policy = load_policy()
    return {
        "display_name": user["display_name"],
        "created_at": user["created_at"],
        "age_confirmed": user["age_confirmed_at"] is not None,
        "restricted": user["restricted"],
        "analytics_objection": user["analytics_objection"],
        "consents": consent.status(studio, user_id),
        "policy_version": policy.version,
        "policy_last_updated": policy.last_updated,
        "needs_notice": needs_notice(studio, user_id),
        "rows": {
            table: len(store.rows_for_user(table, user_id))
            for table in PER_USER_TABLES
            if table != "users"
        },
    }
