"""Store costs: buffered events, recording a generation, and the style-trend aggregate.

    python benchmarks/bench_store.py                 # everything except the tiny generation
    python benchmarks/bench_store.py --tiny          # also time a tiny generation (builds it)
    python benchmarks/bench_store.py --tiny-ms 95    # or relate to a time measured elsewhere

Measured side by side in one run, alternating, because the machines are shared and noisy:
(1) usage events through the store's buffer (``record_event`` then ``flush``) against one
``INSERT`` per event on a file of the same schema; (2) ``record_generation`` (journaled and
synced before it returns), a batch of 4, one ``fdatasync`` on the same disk (a durable write's
floor) and the same row committed straight to DuckDB (what a record cost before the journal),
optionally against ``Studio.generate`` on the tiny model (target < 1 %), and, apart, what the
flusher's later move of journaled records into the file costs per record;
(3) ``analytics.style_trends`` over 1,000,000 synthetic events against the same grouping in
plain DuckDB SQL (one ``GROUP BY`` with ``HAVING count(DISTINCT visitor) >= k``: no totals, no
secondary suppression).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import interleaved  # noqa: E402

from gempix import analytics  # noqa: E402
from gempix.settings import Settings  # noqa: E402
from gempix.store import Store  # noqa: E402
from gempix.store.core import DB_FILE  # noqa: E402
from gempix.store.migrations import migrate  # noqa: E402
from gempix.store.values import new_id  # noqa: E402

NOW = datetime.now(timezone.utc).replace(tzinfo=None)
K = 10

PLAIN_STYLE_TRENDS = """
    WITH uses AS (
        SELECT strftime(hour_bucket, '%Y-%m-%d') AS day, visitor_hash,
               unnest(CASE WHEN len(styles) > 0 THEN styles ELSE ['(none)'] END) AS style
        FROM usage_events WHERE hour_bucket >= ?
    )
    SELECT day, style, count(*) AS events, count(DISTINCT visitor_hash) AS visitors
    FROM uses GROUP BY ALL HAVING count(DISTINCT visitor_hash) >= ? ORDER BY ALL
"""

# 1M events over 30 days: ~800 visitors a day, 12 styles with a long tail, 0-2 styles each.
SYNTHETIC_EVENTS = """
    INSERT INTO usage_events
    SELECT date_trunc('hour', ?::TIMESTAMP - INTERVAL (i % 720) HOUR),
           ['ui', 'api', 'cli', 'notebook'][1 + i % 4],
           ['sd-turbo', 'sdxl-turbo', 'flux-schnell'][1 + (i // 7) % 3],
           CASE WHEN i % 5 = 0 THEN []
                ELSE list_slice(['watercolor', 'noir', 'anime', 'pixel-art', 'ink', 'photo',
                                 'clay', 'neon', 'sketch', 'oil', 'vapor', 'rare-style'],
                                1 + floor(12 * pow(random(), 3))::INT,
                                1 + floor(12 * pow(random(), 3))::INT + i % 2) END,
           i % 9 = 0, i % 11 = 0, ['native', '2k', '4k'][1 + (i % 13 = 0)::INT + (i % 29 = 0)::INT],
           1 + i % 4, 2, CASE WHEN i % 50 = 0 THEN 'OutOfMemoryError' ELSE 'ok' END,
           100 + random() * 900, printf('%016x', hash((i % 720) // 24, i % 800))
    FROM range(?) AS t(i)
"""


def event(n: int) -> dict:
    return analytics.make_event(
        visitor_hash=f"{n % 800:016x}",
        front_door="ui",
        model="sd-turbo",
        styles=["watercolor"],
        steps=2,
        latency_ms=120.0,
        now=NOW,
    )


def event_throughput(work: Path, buffered_batch: int, single_batch: int) -> tuple[float, float]:
    """Events per second: the store's buffer vs one INSERT per event on the same schema."""
    settings = Settings.load({}, data_dir=str(work / "events"))
    store = Store.open(settings)
    plain_path = work / "plain.duckdb"
    plain = duckdb.connect(str(plain_path))
    migrate(plain, plain_path)
    columns = list(event(0))
    insert = f"INSERT INTO usage_events VALUES ({', '.join('?' * len(columns))})"
    events = [event(n) for n in range(max(buffered_batch, single_batch))]

    def buffered() -> None:
        for item in events[:buffered_batch]:
            store.record_event(item)
        store.flush()

    def single_rows() -> None:
        for item in events[:single_batch]:
            plain.execute(insert, [item[c] for c in columns])

    seconds = interleaved(3, buffered=buffered, single_rows=single_rows)
    store.close()
    plain.close()
    return buffered_batch / seconds["buffered"], single_batch / seconds["single_rows"]


RECORD = {
    "user_id": "bench",
    "front_door": "ui",
    "prompt": "a lighthouse at dawn, volumetric light",
    "negative_prompt": "blurry",
    "model": "sd-turbo",
    "seed": 1234,
    "steps": 2,
    "guidance": 0.0,
    "width": 512,
    "height": 512,
    "params": {"aspect": "1:1", "resolution": "native", "sampler": "Euler"},
    "styles": ["watercolor"],
    "file_path": "/data/images/bench/x.png",
    "status": "ok",
    "duration_ms": 310.0,
}


def generation_cost(work: Path, runs: int) -> dict[str, float]:
    """Median ms of ``record_generation``, of a batch of 4, of the disk's own sync, and of the
    same row committed straight to a DuckDB file of the same schema."""
    with Store.open(Settings.load({}, data_dir=str(work / "generations"))) as store:
        store.ensure_user("bench")
        store.record_generation(RECORD)  # the first record of a user checks the user once
        probe = os.open(work / "generations" / "sync-probe", os.O_WRONLY | os.O_CREAT)

        def sync() -> None:  # what any durable write costs on this disk: one fdatasync
            os.write(probe, b"x" * 256)
            os.fdatasync(probe)

        plain_path = work / "plain-generations.duckdb"
        plain = duckdb.connect(str(plain_path))
        migrate(plain, plain_path)
        plain.execute("INSERT INTO users (user_id, created_at) VALUES ('bench', now())")

        def commit_in_duckdb() -> None:
            row = {**RECORD, "id": new_id(), "created_at": NOW, "params": "{}"}
            plain.begin()
            plain.execute(
                f"INSERT INTO generations ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )
            plain.commit()

        seconds = interleaved(
            runs,
            one=lambda: store.record_generation(RECORD),
            batch_of_4=lambda: store.record_generations([RECORD] * 4),
            fdatasync=sync,
        )
        # Apart: a DuckDB commit slows the next sync on the disk (0.2 ms to 0.45 ms here).
        seconds |= interleaved(runs, duckdb_commit=commit_in_duckdb)
        os.close(probe)
        plain.close()
    return {name: value * 1000 for name, value in seconds.items()}


def move_cost(work: Path, runs: int, records: int = 100) -> float:
    """Median ms per record of moving ``records`` journaled records into the file, as the
    flusher does every 0.5 s (off the callers' path)."""
    samples = []
    with Store.open(Settings.load({}, data_dir=str(work / "moves"))) as store:
        store.ensure_user("bench")
        for _ in range(runs):
            store.record_generations([RECORD] * records)
            started = time.perf_counter()
            store.flush()
            samples.append((time.perf_counter() - started) * 1000 / records)
    return statistics.median(samples)


def tiny_generation_ms(work: Path, runs: int) -> float:
    """Median ms of ``Studio.generate`` on the tiny model (64 px, 2 steps, as bench_generate)."""
    from gempix.engine.request import GenerationRequest
    from gempix.engine.tiny import ensure_tiny
    from gempix.service import Studio

    ensure_tiny(work / "tiny-data" / "models" / "tiny")
    studio = Studio(Settings.load({}, data_dir=str(work / "tiny-data"), model="tiny"))
    request = GenerationRequest("a lighthouse at dawn", seed=1, steps=2, width=64, height=64)
    studio.generate(request)  # warm up: model load and lazy init
    return interleaved(runs, tiny=lambda: studio.generate(request))["tiny"] * 1000


def style_trend_times(work: Path, rows: int) -> tuple[float, float, int]:
    """Seconds of style_trends vs the plain SQL grouping over ``rows`` synthetic events.

    The plain query runs on a copy of the file: DuckDB lets only the store open the original.
    """
    settings = Settings.load({}, data_dir=str(work / "trends"))
    settings.data_dir.mkdir(parents=True)
    path = settings.data_dir / DB_FILE
    with duckdb.connect(str(path)) as db:
        migrate(db, path)
        db.execute("SELECT setseed(0.42)")
        db.execute(SYNTHETIC_EVENTS, [NOW, rows])
    copy = work / "trends-copy.duckdb"
    shutil.copyfile(path, copy)
    since = analytics.parse_since("30d", NOW)
    with Store.open(settings) as store, duckdb.connect(str(copy), read_only=True) as plain:
        frame = analytics.style_trends(store, since, K)  # warm both once
        plain.execute(PLAIN_STYLE_TRENDS, [since, K]).df()
        seconds = interleaved(
            5,
            library=lambda: analytics.style_trends(store, since, K),
            plain_sql=lambda: plain.execute(PLAIN_STYLE_TRENDS, [since, K]).df(),
        )
    return seconds["library"], seconds["plain_sql"], len(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="synthetic events")
    parser.add_argument("--tiny", action="store_true", help="build and time a tiny generation")
    parser.add_argument("--tiny-ms", type=float, help="tiny generation ms (measured elsewhere)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gempix-bench-store-"))
    buffered, single = event_throughput(work, buffered_batch=20_000, single_batch=500)
    costs = generation_cost(work, runs=200)
    move_ms = move_cost(work, runs=20)
    record_ms = costs["one"]
    tiny_ms = tiny_generation_ms(work, runs=10) if args.tiny else args.tiny_ms
    library_s, plain_s, cells = style_trend_times(work, args.rows)

    table = [
        ("usage events, buffered (events/s)", f"{buffered:,.0f}"),
        ("usage events, one INSERT each (events/s)", f"{single:,.0f}"),
        ("  buffered / one INSERT each", f"{buffered / single:,.0f}x"),
        ("record_generation, journaled and synced (ms, median)", f"{record_ms:.3f}"),
        ("  record_generations, batch of 4 (ms per image)", f"{costs['batch_of_4'] / 4:.3f}"),
        ("  one fdatasync on the same disk (ms)", f"{costs['fdatasync']:.3f}"),
        ("  the row committed straight to DuckDB (ms)", f"{costs['duckdb_commit']:.3f}"),
        ("  record_generation / DuckDB commit", f"{record_ms / costs['duckdb_commit']:.2f}x"),
        ("  later move into the file, 100 at a time (ms per record)", f"{move_ms:.3f}"),
    ]
    if tiny_ms:
        table += [
            ("tiny generation, 64 px 2 steps (ms)", f"{tiny_ms:.1f}"),
            ("  record_generation / tiny generation", f"{100 * record_ms / tiny_ms:.2f} %"),
        ]
    table += [
        (f"style_trends over {args.rows:,} events (ms)", f"{library_s * 1000:.0f}"),
        ("  the same grouping in plain DuckDB SQL (ms)", f"{plain_s * 1000:.0f}"),
        ("  style_trends / plain SQL", f"{library_s / plain_s:.2f}x"),
        ("  cells in the style_trends table", f"{cells}"),
    ]
    print(f"\nGemPix store benchmark: duckdb {duckdb.__version__}, {os.cpu_count()} CPUs")
    width = max(len(name) for name, _ in table)
    for name, value in table:
        print(f"{name:<{width}}  {value:>12}")


if __name__ == "__main__":
    main()
