"""Which tables hold whose data, and how each is exported and erased.

Access, portability and erasure (the privacy module) walk ``PER_USER_TABLES`` instead of
knowing the schema, so a new table is exported and erased as soon as it is listed here, and
``tests/test_store_registry.py`` fails if a table with a ``user_id`` column is missing.
Erasure deletes in the order listed: rows found through another table (a key's requests via
``api_keys``) come before that table, and ``users`` comes last.
"""

from __future__ import annotations

import dataclasses

OWNED_BY_USER = "user_id = :user_id"


@dataclasses.dataclass(frozen=True)
class TablePolicy:
    """How one per-user table takes part in export and erasure.

    ``where`` selects the user's rows (``:user_id`` is bound); ``hidden`` columns are left out
    of an export because they are useless or risky outside the server (a secret's hash).
    """

    export: bool
    erase: str  # "delete": the rows go with the user
    why: str
    where: str = OWNED_BY_USER
    hidden: tuple[str, ...] = ()


PER_USER_TABLES: dict[str, TablePolicy] = {
    "generations": TablePolicy(True, "delete", "prompts, parameters, image paths"),
    "characters": TablePolicy(True, "delete", "names, reference image paths, embeddings"),
    "user_styles": TablePolicy(True, "delete", "styles the user saved"),
    "consents": TablePolicy(True, "delete", "the user's consent ledger"),
    "api_requests": TablePolicy(
        True,
        "delete",
        "request log of the user's keys, including failed calls made with their key prefix",
        where=f"{OWNED_BY_USER} OR key_prefix IN (SELECT prefix FROM api_keys "
        "WHERE user_id = :user_id)",
    ),
    "api_keys": TablePolicy(True, "delete", "the user's API keys", hidden=("secret_hash",)),
    "users": TablePolicy(True, "delete", "the account row: role, flags, policy version seen"),
}

# Kept on erasure, because they hold nothing that identifies a person.
KEPT_TABLES: dict[str, str] = {
    "usage_events": "anonymous: day, coarse fields, a latency bucket, a visitor hash whose salt "
    "rotates daily "
    "(Parquet files under usage/, queried with DuckDB)",
    "privacy_requests": "audit: a request's kind, times and row counts, under a keyed user hash",
}

INTERNAL_TABLES: dict[str, str] = {
    "_gempix_migrations": "which migrations ran",
    "_gempix_imports": "the earlier release's DuckDB file moved in: when, and row counts",
}
