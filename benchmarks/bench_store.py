"""Store costs, side by side in one run: deleting an image as the store grows, recording a
generation, and an analytics query over the usage events.

    python benchmarks/bench_store.py            # 1k / 10k / 100k generations, 1M events
    python benchmarks/bench_store.py --smoke    # small sizes, a few seconds (CI)

(1) ``studio.images.delete`` (row, file, audit row, and the scrub that leaves no deleted value
in the database's files) in stores of 1,000, 10,000 and 100,000 generations, alternating
between the stores so that the shared machine's noise hits them alike. It must stay flat.
(2) What a generation costs the store on its hot path, per image: admitting the local user,
recording the generation (committed: it survives a crash of the process) and its usage event;
for context, the same record synced to disk (``synchronous = FULL``, what consent and key
changes pay) and one ``fdatasync`` on the same disk (a delete pays two, in its checkpoint).
(3) ``analytics.style_trends`` over 1,000,000 synthetic events in the Parquet event files,
against the same grouping in plain DuckDB SQL over those files (one ``GROUP BY`` with
``HAVING count(DISTINCT visitor) >= k``: no totals, no secondary suppression).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import duckdb
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import interleaved  # noqa: E402

from gempix import analytics  # noqa: E402
from gempix.privacy.gate import admit  # noqa: E402
from gempix.privacy.identity import LOCAL_USER  # noqa: E402
from gempix.service import Studio  # noqa: E402
from gempix.settings import Settings  # noqa: E402
from gempix.store import Store  # noqa: E402

NOW = datetime.now(timezone.utc).replace(tzinfo=None)
K = 10
USERS = 100
PROMPT = "a lighthouse on a cliff at dawn, volumetric light, film grain, {n}"

# 30 days of events: ~800 visitors a day, 12 styles with a long tail, 0-2 styles each.
SYNTHETIC_EVENTS = """
    SELECT date_trunc('hour', $now::TIMESTAMP - INTERVAL (i % 720) HOUR) AS hour_bucket,
           ['ui', 'api', 'cli', 'notebook'][1 + i % 4] AS front_door,
           ['sd-turbo', 'sdxl-turbo', 'flux-schnell'][1 + (i // 7) % 3] AS model,
           CASE WHEN i % 5 = 0 THEN []
                ELSE list_slice(['watercolor', 'noir', 'anime', 'pixel-art', 'ink', 'photo',
                                 'clay', 'neon', 'sketch', 'oil', 'vapor', 'rare-style'],
                                1 + floor(12 * pow(random(), 3))::INT,
                                1 + floor(12 * pow(random(), 3))::INT + i % 2) END AS styles,
           i % 9 = 0 AS used_character, i % 11 = 0 AS used_style_ref,
           ['native', '2k', '4k'][1 + (i % 13 = 0)::INT + (i % 29 = 0)::INT] AS resolution_class,
           (1 + i % 4)::INT AS num_images, 2 AS steps,
           CASE WHEN i % 50 = 0 THEN 'OutOfMemoryError' ELSE 'ok' END AS status,
           100 + random() * 900 AS latency_ms,
           printf('%016x', hash((i % 720) // 24, i % 800)) AS visitor_hash
    FROM range($rows) AS t(i)
"""

PLAIN_STYLE_TRENDS = """
    WITH uses AS (
        SELECT strftime(hour_bucket, '%Y-%m-%d') AS day, visitor_hash,
               unnest(CASE WHEN len(styles) > 0 THEN styles ELSE ['(none)'] END) AS style
        FROM read_parquet($files) WHERE hour_bucket >= $since
    )
    SELECT day, style, count(*) AS events, count(DISTINCT visitor_hash) AS visitors
    FROM uses GROUP BY ALL HAVING count(DISTINCT visitor_hash) >= $k ORDER BY ALL
"""


def record(user_id: str, n: int, file_path: str | None = None) -> dict:
    """A generation row of realistic size: prompt, parameters, styles."""
    prompt = PROMPT.format(n=n)
    return {
        "user_id": user_id,
        "front_door": "ui",
        "prompt": prompt,
        "negative_prompt": "blurry, low quality",
        "model": "sd-turbo",
        "seed": n,
        "steps": 2,
        "guidance": 0.0,
        "width": 512,
        "height": 512,
        "params": {"prompt": prompt, "seed": n, "steps": 2, "sampler": "Euler", "aspect": "1:1"},
        "styles": ["watercolor"],
        "file_path": file_path,
        "status": "ok",
        "duration_ms": 310.0,
    }


def filled_studio(work: Path, size: int, deletions: int) -> tuple[Studio, list[str]]:
    """A studio whose store holds ``size`` generations of 100 users, among them
    ``deletions`` images of the local user with real PNG files, to delete one by one."""
    studio = Studio(Settings.load({}, data_dir=str(work / f"generations-{size}")))
    store = studio.store
    users = [f"user-{n:03d}" for n in range(USERS)]
    for user in [*users, LOCAL_USER]:
        store.ensure_user(user)
    for start in range(0, size - deletions, 1000):
        end = min(size - deletions, start + 1000)
        store.record_generations([record(users[n % USERS], n) for n in range(start, end)])
    folder = studio.settings.images_dir / LOCAL_USER
    folder.mkdir(parents=True)
    ids = []
    for n in range(deletions):
        path = folder / f"{n}.png"
        Image.new("RGB", (64, 64), (n % 256, 0, 0)).save(path)
        ids += store.record_generations([record(LOCAL_USER, n, str(path))])
    store.scrub_deleted()
    return studio, ids


def fdatasync_probe(path: Path):
    """One durable write on this disk: what a checkpoint pays twice."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)

    def sync() -> None:
        os.write(fd, b"x" * 256)
        os.fdatasync(fd)

    return sync


def deletion_costs(work: Path, sizes: list[int], runs: int) -> dict[str, float]:
    """Median ms of ``studio.images.delete`` per store size (and MiB of each database), with
    one ``fdatasync`` timed among them: the disk's own floor, as noisy as the deletes."""
    studios = {size: filled_studio(work, size, runs + 1) for size in sizes}
    for studio, ids in studios.values():  # warm each once
        studio.images.delete(LOCAL_USER, ids.pop())
    queues = {size: iter(ids) for size, (_, ids) in studios.items()}
    seconds = interleaved(
        runs,
        **{
            str(size): lambda s=size: studios[s][0].images.delete(LOCAL_USER, next(queues[s]))
            for size in sizes
        },
        fdatasync=fdatasync_probe(work / "sync-probe"),
    )
    costs = {name: value * 1000 for name, value in seconds.items()}
    for size, (studio, _) in studios.items():
        costs[f"{size} MiB"] = studio.store.path.stat().st_size / 2**20
        studio.close()
    return costs


def hot_path_costs(work: Path, runs: int) -> dict[str, float]:
    """Median ms of what the store does per generation call, and of its parts."""
    settings = Settings.load({}, data_dir=str(work / "hot-path"))
    event = analytics.make_event(
        visitor_hash="0123456789abcdef", front_door="ui", model="sd-turbo", steps=2, latency_ms=1
    )
    synced_settings = Settings.load({}, data_dir=str(work / "synced"))
    with Store.open(settings) as store, Store.open(synced_settings) as synced:
        synced.ensure_user(LOCAL_USER)
        synced._connection().execute("PRAGMA synchronous = FULL")

        def generation(images: int) -> None:
            admit(store, settings, LOCAL_USER)
            store.record_generations([record(LOCAL_USER, 1)] * images)
            store.record_event(event, user_id=LOCAL_USER)

        generation(1)  # the first call creates the local user
        seconds = interleaved(
            runs,
            one_image=lambda: generation(1),
            four_images=lambda: generation(4),
            admit=lambda: admit(store, settings, LOCAL_USER),
            record=lambda: store.record_generations([record(LOCAL_USER, 1)]),
            event=lambda: store.record_event(event, user_id=LOCAL_USER),
        )
        # Apart: a sync stalls the writes right after it while the file system commits.
        seconds |= interleaved(
            runs,
            synced_record=lambda: synced.record_generations([record(LOCAL_USER, 1)]),
            fdatasync=fdatasync_probe(work / "sync-probe"),
        )
    return {name: value * 1000 for name, value in seconds.items()}


def analytics_times(work: Path, rows: int) -> tuple[float, float, int]:
    """Seconds of ``analytics.style_trends`` and of the plain grouping over ``rows`` events."""
    settings = Settings.load({}, data_dir=str(work / "events"))
    with duckdb.connect() as maker:
        maker.execute("SELECT setseed(0.42)").fetchall()
        events = maker.sql(SYNTHETIC_EVENTS, params={"now": NOW, "rows": rows}).to_arrow_table()
    since = analytics.parse_since("30d", NOW)
    with Store.open(settings) as store, duckdb.connect() as plain:
        store.usage.write_imported(events, "bench")
        files = [str(path) for path in store.usage.files()]
        arguments = {"files": files, "since": since, "k": K}
        frame = analytics.style_trends(store, since, K)  # warm both once
        plain.execute(PLAIN_STYLE_TRENDS, arguments).df()
        seconds = interleaved(
            5,
            library=lambda: analytics.style_trends(store, since, K),
            plain_sql=lambda: plain.execute(PLAIN_STYLE_TRENDS, arguments).df(),
        )
    return seconds["library"], seconds["plain_sql"], len(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, a few seconds")
    args = parser.parse_args()
    sizes = [1_000, 2_000, 5_000] if args.smoke else [1_000, 10_000, 100_000]
    events = 20_000 if args.smoke else 1_000_000
    runs = 10 if args.smoke else 40

    work = Path(tempfile.mkdtemp(prefix="gempix-bench-store-"))
    deletes = deletion_costs(work, sizes, runs)
    hot = hot_path_costs(work, runs * 5)
    library_s, plain_s, cells = analytics_times(work, events)

    first, last = sizes[0], sizes[-1]
    table = [
        *(
            (f"delete one image among {size:,} generations (ms)", f"{deletes[str(size)]:.2f}")
            for size in sizes
        ),
        *(
            (f"  database size at {size:,} generations (MiB)", f"{deletes[f'{size} MiB']:.1f}")
            for size in sizes
        ),
        (
            f"  delete at {last:,} / at {first:,}",
            f"{deletes[str(last)] / deletes[str(first)]:.2f}x",
        ),
        ("  one fdatasync among the deletes (ms)", f"{deletes['fdatasync']:.3f}"),
        (
            f"  delete at {last:,} / one fdatasync",
            f"{deletes[str(last)] / deletes['fdatasync']:.1f}x",
        ),
        ("a generation's store work, one image (ms)", f"{hot['one_image']:.3f}"),
        ("  per image in a batch of 4 (ms)", f"{hot['four_images'] / 4:.3f}"),
        ("  of which admit the local user (ms)", f"{hot['admit']:.3f}"),
        ("  of which record_generations, committed (ms)", f"{hot['record']:.3f}"),
        ("  of which record_event (ms)", f"{hot['event']:.3f}"),
        ("  the same record synced, synchronous = FULL (ms)", f"{hot['synced_record']:.3f}"),
        ("  one fdatasync on the same disk (ms)", f"{hot['fdatasync']:.3f}"),
        (f"style_trends over {events:,} events (ms)", f"{library_s * 1000:.0f}"),
        ("  the same grouping in plain DuckDB SQL (ms)", f"{plain_s * 1000:.0f}"),
        ("  style_trends / plain SQL", f"{library_s / plain_s:.2f}x"),
        ("  cells in the style_trends table", f"{cells}"),
    ]
    print(
        f"\nGemPix store benchmark: SQLite {sqlite3.sqlite_version}, DuckDB "
        f"{duckdb.__version__}, {os.cpu_count()} CPUs"
    )
    width = max(len(name) for name, _ in table)
    for name, value in table:
        print(f"{name:<{width}}  {value:>10}")


if __name__ == "__main__":
    main()
