"""docs/store.md describes every table and column that DuckDB reports, so it cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from gempix.settings import Settings
from gempix.store import PER_USER_TABLES, Store
from gempix.store.core import DB_FILE

DOC = Path(__file__).resolve().parent.parent / "docs" / "store.md"


def test_every_table_and_column_is_documented(tmp_path):
    settings = Settings.load({}, data_dir=str(tmp_path))
    Store.open(settings).close()
    with duckdb.connect(str(settings.data_dir / DB_FILE), read_only=True) as db:
        rows = db.execute("SELECT table_name, column_name FROM information_schema.columns")
        columns = rows.fetchall()
    sections = dict(re.findall(r"^### `(\w+)`(.*?)(?=^### |^## )", DOC.read_text(), re.M | re.S))
    for table, column in columns:
        assert table in sections, f"docs/store.md has no section for {table}"
        assert f"`{column}`" in sections[table], f"docs/store.md omits {table}.{column}"
    for table in PER_USER_TABLES:
        assert "per-user" in DOC.read_text().split(f"### `{table}`")[1].splitlines()[0]
