"""Everything stored about one user, for access/portability and for erasure.

Both walk ``registry.PER_USER_TABLES``, so a table is exported and erased as soon as it is
listed there. Deleting rows is not the end of erasure: the values stay in the file's blocks
until ``rewrite_database`` copies the live data into a new file (DESIGN.md, "Data and erasure").
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
        hidden = f" EXCLUDE ({', '.join(policy.hidden)})" if policy.hidden else ""
        self.flush()
        with self._read(f"export {table}") as cursor:
            return fetch_dicts(
                cursor.execute(
                    f"SELECT *{hidden} FROM {table} WHERE {policy.where}", {"user_id": user_id}
                )
            )

    def delete_user_rows(self, user_id: str) -> dict[str, int]:
        """Delete every per-user row of ``user_id``; return the count per table.

        The user is locked first (so a generation finishing meanwhile is refused rather than
        re-creating data) and the buffers are flushed, then all deletes run in one
        transaction. Call ``rewrite_database`` afterwards to remove the bytes from the file.
        """
        self._locked.add(user_id)
        self._no_analytics.add(user_id)
        with self._write("lock the user") as cursor:
            cursor.execute("UPDATE users SET locked = true WHERE user_id = ?", [user_id])
        self.flush()
        counts = {}
        with self._write("erase the user's rows") as cursor:
            for table, policy in PER_USER_TABLES.items():
                if policy.erase == "delete":
                    (counts[table],) = cursor.execute(
                        f"DELETE FROM {table} WHERE {policy.where}", {"user_id": user_id}
                    ).fetchone()
        # The erased id stays blocked for this process's life: a generation or API call in
        # flight must not log a linkable usage event, or the id, once the rows are gone. A
        # later record looks the user up again, and finds no such user.
        self._recording_users.discard(user_id)
        return counts
