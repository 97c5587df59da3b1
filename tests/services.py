"""The servers some tests need (PostgreSQL, Redis), found through the environment.

``scripts/services.sh`` starts throwaway ones and exports ``GEMPIX_TEST_DATABASE_URL``,
``GEMPIX_TEST_DATABASE_DIR`` and ``GEMPIX_TEST_REDIS_URL``; CI runs it. Without them those
tests skip, saying which variable is missing, unless ``GEMPIX_REQUIRE_SERVICES=1`` (set by
scripts/test.sh), which turns the skip into a failure so that CI cannot pass without them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

BACKENDS = ("sqlite", "postgres")


def service(variable: str) -> str:
    """The value of ``variable``; skip the test (fail under GEMPIX_REQUIRE_SERVICES) when unset."""
    value = os.environ.get(variable, "").strip()
    if not value:
        reason = f"{variable} is not set (start the servers with scripts/services.sh)"
        if os.environ.get("GEMPIX_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}; GEMPIX_REQUIRE_SERVICES=1 requires it")
        pytest.skip(reason)
    return value


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL of the test server whose tables go to a new, empty schema, dropped afterwards:
    a fresh database for each test at the cost of a ``CREATE SCHEMA``."""
    import psycopg

    url = service("GEMPIX_TEST_DATABASE_URL")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            separator = "&" if "?" in url else "?"
            yield f"{url}{separator}options={quote(f'-csearch_path={schema}')}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def postgres_data_dir() -> Path:
    """The test cluster's data directory (readable: the tests run as its owner or root)."""
    return Path(service("GEMPIX_TEST_DATABASE_DIR"))


@contextmanager
def database(backend: str) -> Iterator[str]:
    """The ``database_url`` setting for ``backend``: empty for SQLite in the data dir."""
    if backend == "sqlite":
        yield ""
    else:
        with postgres_schema() as url:
            yield url
