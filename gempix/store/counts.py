"""Counting a user's rows without reading them (a gallery page shows "images 1-24 of N")."""

from __future__ import annotations

from .core import StoreBase


class CountsMixin(StoreBase):
    def count_generations(self, user_id: str) -> int:
        """How many generations the user has: one aggregate, never the rows themselves."""
        with self._read("count generations") as cursor:
            row = cursor.execute(
                "SELECT count(*) FROM generations WHERE user_id = ?", [user_id]
            ).fetchone()
        return int(row[0])
