"""Queries the privacy module needs beyond the Store's methods: streaming and verification.

Plain functions over a ``Store`` (this package is the only code that speaks SQL, so they live
here rather than in ``gempix/privacy``). They use the store's connections like its own
methods do, and read in pages so that an export of 1000 images, or a training manifest over
millions of rows, holds one page in memory at a time. Every page is its own read, so other
writes (in this process or another) run between two pages; the keyset pagination on
``(created_at, id)`` neither repeats nor skips a row across them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import ValidationError
from .core import StoreBase
from .registry import PER_USER_TABLES
from .values import fetch_dicts

PAGE_SIZE = 500
_TEXT_TYPES = ("TEXT", "JSON")


def _check_page_size(page_size: int) -> int:
    if type(page_size) is not int or not 1 <= page_size <= 100_000:
        raise ValidationError("page_size: expected a whole number from 1 to 100000.")
    return page_size


def iter_user_rows(
    store: StoreBase, table: str, user_id: str, page_size: int = PAGE_SIZE
) -> Iterator[dict[str, Any]]:
    """The user's rows of one exported per-user table, as the export shows them, in pages.

    Tables with ``created_at`` and ``id`` columns are read page by page in that order; the
    others (a handful of rows per user) in one read, like ``Store.rows_for_user``.
    """
    policy = PER_USER_TABLES.get(table)
    if policy is None or not policy.export:
        exported = [name for name, entry in PER_USER_TABLES.items() if entry.export]
        raise ValidationError(f"table: expected one of {', '.join(exported)}.")
    page_size = _check_page_size(page_size)
    columns = store._columns[table]
    if not {"created_at", "id"} <= set(columns):
        yield from store.rows_for_user(table, user_id)
        return
    select = store._columns_except(table, policy.hidden)
    after: tuple[Any, Any] | None = None
    while True:
        params: dict[str, Any] = {"user_id": user_id, "n": page_size}
        keyset = ""
        if after is not None:
            keyset = "AND (created_at, id) > (:after_t, :after_id)"
            params.update(after_t=after[0], after_id=after[1])
        with store._read(f"export {table}") as connection:
            rows = fetch_dicts(
                connection.execute(
                    f"SELECT {select} FROM {table} WHERE ({policy.where}) {keyset} "
                    "ORDER BY created_at, id LIMIT :n",
                    params,
                )
            )
        yield from rows
        if len(rows) < page_size:
            return
        after = (rows[-1]["created_at"], rows[-1]["id"])


# The latest training entry of each user's ledger, joined to the users who may be used now.
_TRAINING = """
WITH latest AS (
    SELECT user_id, granted, id AS consent_id, created_at AS consent_at, policy_version,
           row_number() OVER (PARTITION BY user_id ORDER BY created_at DESC, id DESC) AS n
    FROM consents WHERE purpose = 'training'
)
SELECT g.id, g.created_at, g.front_door, g.prompt, g.negative_prompt, g.model, g.seed,
       g.steps, g.guidance, g.width, g.height, g.params, g.styles, g.file_path,
       l.consent_id, l.consent_at, l.policy_version AS consent_policy_version
FROM generations g
JOIN users u ON u.user_id = g.user_id
JOIN latest l ON l.user_id = g.user_id AND l.n = 1
WHERE l.granted AND NOT u.restricted AND NOT u.locked AND g.status = 'ok'
  {keyset}
ORDER BY g.created_at, g.id
LIMIT :n
"""


def iter_training_rows(store: StoreBase, page_size: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
    """Generations that may be used for training right now, oldest first, without user ids.

    A row qualifies when its user's latest ``training`` ledger entry is a grant and the user
    is neither restricted nor being erased. Each page re-checks this, so a withdrawal made
    while a long manifest is written takes effect from the next page on.
    """
    page_size = _check_page_size(page_size)
    after: tuple[Any, Any] | None = None
    while True:
        params: dict[str, Any] = {"n": page_size}
        keyset = ""
        if after is not None:
            keyset = "AND (g.created_at, g.id) > (:after_t, :after_id)"
            params.update(after_t=after[0], after_id=after[1])
        with store._read("list generations that may be used for training") as connection:
            rows = fetch_dicts(connection.execute(_TRAINING.format(keyset=keyset), params))
        yield from rows
        if len(rows) < page_size:
            return
        after = (rows[-1]["created_at"], rows[-1]["id"])


def _hash_list(visitor_hashes: Iterable[str]) -> set[str]:
    hashes = set(visitor_hashes)
    if not all(isinstance(h, str) for h in hashes):
        raise ValidationError("visitor_hashes: expected visitor hash strings.")
    return hashes


def count_usage_events(store: StoreBase, visitor_hashes: Iterable[str]) -> int:
    """Usage events carrying one of ``visitor_hashes`` (this process's buffer included)."""
    hashes = _hash_list(visitor_hashes)
    if not hashes:
        return 0
    store.flush()
    with store.usage.reading() as cursor:
        return cursor.execute(
            "SELECT count(*) FROM usage_events WHERE list_contains(?, visitor_hash)",
            [sorted(hashes)],
        ).fetchone()[0]


def delete_usage_events(store: StoreBase, visitor_hashes: Iterable[str]) -> int:
    """Delete usage events carrying one of ``visitor_hashes``; return how many.

    Used by erasure for the events a user made while their visitor hash can still be
    recomputed (today's and yesterday's salts, see ``gempix.analytics.VisitorHasher``).
    """
    return store.usage.delete_visitors(_hash_list(visitor_hashes))


def tables_mentioning(store: StoreBase, text: str) -> dict[str, int]:
    """Rows per table in which any text or JSON column contains ``text``, the usage events
    included.

    Erasure verification: after a user is erased, no row of any table (kept tables too)
    may mention their id, wherever it might have been copied (a file path, a JSON field).
    """
    if not isinstance(text, str) or len(text) < 8:
        raise ValidationError("text: expected at least 8 characters to search for.")
    found: dict[str, int] = {}
    with store._read("search every table") as connection:
        for table, columns in store._columns.items():
            names = [name for name, kind in columns.items() if kind in _TEXT_TYPES]
            if not names:
                continue
            condition = " OR ".join(store.backend.contains(name, "text") for name in names)
            (count,) = connection.execute(
                f'SELECT count(*) FROM "{table}" WHERE {condition}', {"text": text}
            ).fetchone()
            if count:
                found[table] = count
    store.flush()
    with store.usage.reading() as cursor:
        (count,) = cursor.execute(
            "SELECT count(*) FROM usage_events WHERE contains(concat_ws(' ', front_door, "
            "model, array_to_string(styles, ' '), resolution_class, status, visitor_hash), ?)",
            [text],
        ).fetchone()
    if count:
        found["usage_events"] = count
    return found


def privacy_requests_of(store: StoreBase, user_hash: str) -> list[dict[str, Any]]:
    """The audit rows of one (hashed) user, oldest first: what they asked and when."""
    with store._read("read the user's privacy requests") as connection:
        return fetch_dicts(
            connection.execute(
                "SELECT * FROM privacy_requests WHERE user_hash = ? ORDER BY received_at, id",
                [user_hash],
            )
        )
