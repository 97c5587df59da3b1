"""Everything stored about one user, for access/portability and for erasure.

Both walk ``registry.PER_USER_TABLES``, so a table is exported and erased as soon as it is
listed there. Deleting rows is not the whole of erasure: ``StoreBase.scrub_deleted`` then
makes sure no deleted value is left in the database's files (docs/store.md).
"""

from __future__ import annotations

from typing import Any

from ..errors import ValidationError
from .core import StoreBase
from .registry import PER_USER_TABLES
from .values import fetch_dicts


class ErasureMixin(StoreBase):
    def rows_for_user(self, table: str, user_id: str) -> list[dict[str, Any]]:
        """The user's rows of one per-user table, as the export shows them."""
        policy = PER_USER_TABLES.get(table)
        if policy is None or not policy.export:
            exported = [name for name, entry in PER_USER_TABLES.items() if entry.export]
            raise ValidationError(f"table: expected one of {', '.join(exported)}.")
        with self._read(f"export {table}") as connection:
            return fetch_dicts(
                connection.execute(
                    f"SELECT {self._columns_except(table, policy.hidden)} FROM {table} "
                    f"WHERE {policy.where}",
                    {"user_id": user_id},
                )
            )

    def delete_user_rows(self, user_id: str) -> dict[str, int]:
        """Delete every per-user row of ``user_id``; return the count per table.

        The user is locked first, in its own transaction, so that a generation finishing
        meanwhile (in any process) is refused rather than re-creating data; then all deletes
        run in one transaction. Call ``scrub_deleted`` afterwards for the files.
        """
        with self._write("lock the user", durable=True) as connection:
            connection.execute("UPDATE users SET locked = TRUE WHERE user_id = ?", [user_id])
        counts = {}
        with self._write("erase the user's rows") as connection:
            for table, policy in PER_USER_TABLES.items():
                if policy.erase == "delete":
                    counts[table] = connection.execute(
                        f"DELETE FROM {table} WHERE {policy.where}", {"user_id": user_id}
                    ).rowcount
        return counts
