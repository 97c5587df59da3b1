"""docs/store.md describes every table and column the store holds, so it cannot drift."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from gempix.settings import Settings
from gempix.store import PER_USER_TABLES, Store
from gempix.store.core import DB_FILE
from gempix.store.eventlog import EVENT_SCHEMA

DOC = Path(__file__).resolve().parent.parent / "docs" / "store.md"


def test_every_table_and_column_is_documented(tmp_path):
    settings = Settings.load({}, data_dir=str(tmp_path))
    Store.open(settings).close()
    db = sqlite3.connect(settings.data_dir / DB_FILE)
    try:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        columns = [(t, c[1]) for t in tables for c in db.execute(f'PRAGMA table_info("{t}")')]
    finally:
        db.close()
    columns += [("usage_events", name) for name in EVENT_SCHEMA.names]
    text = DOC.read_text()
    sections = dict(re.findall(r"^### `(\w+)`(.*?)(?=^### |^## )", text, re.M | re.S))
    for table, column in columns:
        assert table in sections, f"docs/store.md has no section for {table}"
        assert f"`{column}`" in sections[table], f"docs/store.md omits {table}.{column}"
    for table in PER_USER_TABLES:
        assert "per-user" in text.split(f"### `{table}`")[1].splitlines()[0]
