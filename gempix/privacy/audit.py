"""The privacy audit: one row per request a user makes about their data.

A row holds a keyed hash of the user (``identity.audit_hash``, never the user id), the kind
of request, when it was received and completed, and row counts; never the data itself. Rows
are kept after an erasure: they show that the request was honoured, and point to nobody.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..store.privacy_queries import privacy_requests_of
from .identity import audit_hash

if TYPE_CHECKING:
    from ..service import Studio

# Every kind of request that writes an audit row, and what it means.
KINDS: dict[str, str] = {
    "export": "access and portability: a ZIP of the user's data was made",
    "erasure": "everything of the user was deleted and the deletion verified",
    "image-deletion": "the user deleted one or more of their images",
    "rectification": "the user corrected their profile or a character",
    "restriction": "processing restricted: data kept, no analytics, no training",
    "restriction-lifted": "the restriction was lifted",
    "objection": "the user objected to analytics: no usage events from them",
    "objection-withdrawn": "the user withdrew their objection to analytics",
    "consent-training-granted": "the user opted in to training",
    "consent-training-withdrawn": "the user withdrew their training consent",
}


def record(studio: Studio, user_id: str, kind: str, counts: dict[str, int] | None = None) -> str:
    """A completed request of ``kind`` for ``user_id``; returns the audit row's id."""
    return studio.store.add_privacy_request(
        audit_hash(studio.settings, user_id), _check_kind(kind), counts=counts, completed=True
    )


def received(studio: Studio, user_id: str, kind: str) -> str:
    """A request that is starting (completed by ``completed``); returns its id."""
    return studio.store.add_privacy_request(audit_hash(studio.settings, user_id), _check_kind(kind))


def completed(studio: Studio, request_id: str, counts: dict[str, int]) -> None:
    studio.store.complete_privacy_request(request_id, counts)


def requests_of(studio: Studio, user_id: str) -> list[dict[str, Any]]:
    """The user's own audit trail, oldest first (it is part of their export)."""
    return privacy_requests_of(studio.store, audit_hash(studio.settings, user_id))


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown audit kind {kind!r}")  # a programming error, not input
    return kind
