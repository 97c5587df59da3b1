"""The records on SQLite and on PostgreSQL, side by side in one run: what a generation record
costs, and what erasing one user costs as the tables grow (the PostgreSQL scrub rewrites the
per-user tables, so it grows with them; SQLite's does not).

    python benchmarks/bench_store_postgres.py            # stores of 1k, 10k and 50k rows
    python benchmarks/bench_store_postgres.py --smoke    # small sizes, a few seconds (CI)

The server is ``--database-url`` or ``GEMPIX_TEST_DATABASE_URL`` (scripts/services.sh starts
one); each store gets its own schema, dropped at the end. Without a server it says so and
exits 0, or 1 under ``GEMPIX_REQUIRE_SERVICES=1`` (CI).

(1) ``record_generation`` per call, SQLite against PostgreSQL (loopback TCP), alternating.
(2) One user's erasure in a store of N generations of 100 users: ``delete_user_rows`` then
``scrub_deleted``; and the scrub's parts on PostgreSQL: ``VACUUM FULL`` of the per-user
tables, then ``pg_switch_wal()`` + ``CHECKPOINT``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import interleaved  # noqa: E402

from gempix.settings import Settings  # noqa: E402
from gempix.store import PER_USER_TABLES, Store  # noqa: E402

USERS = 100
PROMPT = "a lighthouse on a cliff at dawn, volumetric light, film grain, {n}"


def open_store(folder: Path, url: str) -> Store:
    return Store.open(Settings.load({}, data_dir=str(folder), database_url=url or None))


def fill(store: Store, rows: int) -> None:
    users = [f"user{n:03d}" for n in range(USERS)]
    for user in users:
        store.ensure_user(user)
    batch = [
        {"user_id": users[n % USERS], "prompt": PROMPT.format(n=n), "seed": n} for n in range(rows)
    ]
    for start in range(0, rows, 1000):
        store.record_generations(batch[start : start + 1000])


def erase_one(store: Store, user: str) -> tuple[float, float]:
    """Seconds of the delete and of the scrub."""
    started = time.perf_counter()
    store.delete_user_rows(user)
    deleted = time.perf_counter()
    store.scrub_deleted()
    return deleted - started, time.perf_counter() - deleted


def scrub_parts(store: Store) -> tuple[float, float]:
    """PostgreSQL's scrub in two timed parts, on the store's own connection."""
    connection = store._connection()
    started = time.perf_counter()
    for table in PER_USER_TABLES:
        connection.execute(f'VACUUM FULL "{table}"')
    vacuumed = time.perf_counter()
    connection.execute("SELECT pg_switch_wal()")
    connection.execute("CHECKPOINT")
    return vacuumed - started, time.perf_counter() - vacuumed


def schema_url(admin, url: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in url else "?"
    return schema, f"{url}{separator}options=-csearch_path%3D{schema}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--database-url", default=os.environ.get("GEMPIX_TEST_DATABASE_URL"))
    args = parser.parse_args()
    if not args.database_url:
        print("no PostgreSQL server: set GEMPIX_TEST_DATABASE_URL (scripts/services.sh)")
        sys.exit(1 if os.environ.get("GEMPIX_REQUIRE_SERVICES") == "1" else 0)
    import psycopg

    sizes = [500, 2_000] if args.smoke else [1_000, 10_000, 50_000]
    runs = 20 if args.smoke else 200
    erasures = 2 if args.smoke else 5
    rows_out: list[tuple[str, str]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        closing(psycopg.connect(args.database_url, autocommit=True)) as admin,
    ):
        schemas = []
        try:
            stores = {}
            for backend in ("sqlite", "postgres"):
                url = ""
                if backend == "postgres":
                    schema, url = schema_url(admin, args.database_url)
                    schemas.append(schema)
                stores[backend] = store = open_store(Path(tmp) / f"record-{backend}", url)
                store.ensure_user("writer")
            counter = iter(range(10**9))

            def record(backend: str):
                return lambda: stores[backend].record_generation(
                    {"user_id": "writer", "prompt": PROMPT.format(n=next(counter))}
                )

            times = interleaved(runs, sqlite=record("sqlite"), postgres=record("postgres"))
            for store in stores.values():
                store.close()
            rows_out.append(("record_generation, SQLite (ms)", f"{times['sqlite'] * 1e3:.2f}"))
            rows_out.append(
                ("record_generation, PostgreSQL (ms)", f"{times['postgres'] * 1e3:.2f}")
            )
            rows_out.append(
                ("PostgreSQL / SQLite, per record", f"{times['postgres'] / times['sqlite']:.1f}x")
            )

            for size in sizes:
                for backend in ("sqlite", "postgres"):
                    url = ""
                    if backend == "postgres":
                        schema, url = schema_url(admin, args.database_url)
                        schemas.append(schema)
                    with open_store(Path(tmp) / f"{backend}-{size}", url) as store:
                        fill(store, size)
                        spent = [erase_one(store, f"user{n:03d}") for n in range(erasures)]
                        delete = statistics.median(d for d, _ in spent) * 1e3
                        scrub = statistics.median(s for _, s in spent) * 1e3
                        label = f"{backend}, {size:,} rows: erase one user"
                        rows_out.append((f"{label}: delete (ms)", f"{delete:.1f}"))
                        rows_out.append((f"{label}: scrub (ms)", f"{scrub:.1f}"))
                        if backend == "postgres":
                            vacuum, wal = zip(
                                *(scrub_parts(store) for _ in range(erasures)), strict=True
                            )
                            rows_out.append(
                                (
                                    f"{label}: of it VACUUM FULL (ms)",
                                    f"{statistics.median(vacuum) * 1e3:.1f}",
                                )
                            )
                            rows_out.append(
                                (
                                    f"{label}: of it WAL switch + CHECKPOINT (ms)",
                                    f"{statistics.median(wal) * 1e3:.1f}",
                                )
                            )
        finally:
            for schema in schemas:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")
    width = max(len(name) for name, _ in rows_out)
    print(f"{'measure':<{width}}  {'value':>10}")
    for name, value in rows_out:
        print(f"{name:<{width}}  {value:>10}")


if __name__ == "__main__":
    main()
