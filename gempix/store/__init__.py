"""The store: the only code in GemPix that speaks SQL.

Per data directory, personal records in one SQLite file (``data_dir/gempix.sqlite3``) and the
anonymous usage events as Parquet files that DuckDB queries (``data_dir/usage/``); any number
of processes open them at once. ``Store.open(settings)`` opens and migrates them; the methods
are grouped by what they hold (users and consent, generations and characters, API keys and
log, usage events, erasure) in the mixins below. ``registry`` says which tables hold whose
data. docs/store.md describes the design.
"""

from __future__ import annotations

from .api_log import ApiLogMixin
from .core import StoreError, UserLockedError
from .counts import CountsMixin
from .erasure import ErasureMixin
from .generations import GenerationsMixin
from .migrations import MIGRATIONS, SCHEMA_VERSION
from .registry import INTERNAL_TABLES, KEPT_TABLES, PER_USER_TABLES, TablePolicy
from .usage import UsageMixin
from .users import UsersMixin


class Store(UsersMixin, GenerationsMixin, CountsMixin, ApiLogMixin, UsageMixin, ErasureMixin):
    """All records of one data directory. ``Store.open(settings)``; ``close()`` when done."""


__all__ = [
    "INTERNAL_TABLES",
    "KEPT_TABLES",
    "MIGRATIONS",
    "PER_USER_TABLES",
    "SCHEMA_VERSION",
    "Store",
    "StoreError",
    "TablePolicy",
    "UserLockedError",
]
