"""Export and erasure of one user among many: time and peak memory.

    python benchmarks/bench_privacy.py                    # 1000 images among 100k other rows
    python benchmarks/bench_privacy.py --others 20000 --images 200   # a quicker run
    python benchmarks/bench_privacy.py --others 5000 --pixels 256    # 190 KiB images
    python benchmarks/bench_privacy.py --smoke                       # 200 rows, 20 images (CI)

Builds a data dir with ``--others`` generation rows of other users (inserted through
``Store.record_generations`` in batches, realistic prompt and parameter sizes, no files) and
two users with placeholder PNG files: a small one (``--images`` / 10) and a large one
(``--images``). Then each measurement runs in its own fresh process, so its peak resident
memory (``VmHWM``) is its own:

- ``baseline``: import GemPix, open the store, read one user (the floor every run pays);
- ``export-small`` and ``export-large``: the ZIP of each; the two peaks side by side show
  whether memory grows with the number of images (it should not: rows are read in pages and
  files copied in chunks);
- ``scrub``: ``Store.scrub_deleted`` alone, for context (erasure includes one);
- ``erase-large``: the full verified erasure of the large user.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from gempix.settings import Settings
from gempix.store import Store

PROMPT = "a lighthouse on a cliff at dawn, volumetric light, film grain, {n}, " * 2
BATCH = 1000


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def params(n: int) -> dict:
    return {
        "prompt": PROMPT.format(n=n),
        "negative_prompt": "blurry, low quality",
        "seed": n,
        "steps": 4,
        "guidance": 0.0,
        "sampler": "Euler",
        "width": 512,
        "height": 512,
        "model": "sd-turbo",
        "styles": ["watercolor"],
        "batch_index": 0,
        "batch_size": 1,
        "generator": "GemPix bench",
        "ai_generated": True,
    }


def row(user_id: str, n: int, file_path: str | None) -> dict:
    return {
        "user_id": user_id,
        "front_door": "ui",
        "prompt": PROMPT.format(n=n),
        "negative_prompt": "blurry, low quality",
        "model": "sd-turbo",
        "seed": n,
        "steps": 4,
        "guidance": 0.0,
        "width": 512,
        "height": 512,
        "params": params(n),
        "styles": ["watercolor"],
        "file_path": file_path,
        "duration_ms": 950.0,
    }


def build(data: Path, others: int, images: int, pixels: int = 64) -> dict:
    from gempix.privacy import create_user, grant_consent
    from gempix.service import Studio

    settings = Settings.load({}, data_dir=str(data))
    placeholder = data / "placeholder.png"
    data.mkdir(parents=True, exist_ok=True)
    noise = Image.frombytes("RGB", (pixels, pixels), secrets.token_bytes(pixels * pixels * 3))
    noise.save(placeholder)
    users = {}
    with Studio(settings) as studio:
        store = studio.store
        started = time.perf_counter()
        other_ids = [f"other-{n:05d}" for n in range(max(1, others // 100))]
        for user in other_ids:
            store.ensure_user(user)
        for start in range(0, others, BATCH):
            store.record_generations(
                [
                    row(other_ids[n % len(other_ids)], n, f"/elsewhere/{n}.png")
                    for n in range(start, min(others, start + BATCH))
                ]
            )
        for name, count in (("small", max(1, images // 10)), ("large", images)):
            key, user_id = create_user(studio)
            grant_consent(studio, user_id, "training")
            folder = settings.images_dir / user_id
            folder.mkdir(parents=True)
            rows = []
            for n in range(count):
                image_id = secrets.token_hex(16)
                path = folder / f"{image_id}.png"
                shutil.copyfile(placeholder, path)
                rows.append({**row(user_id, n, str(path)), "id": image_id})
                if len(rows) == BATCH:
                    store.record_generations(rows)
                    rows = []
            if rows:
                store.record_generations(rows)
            users[name] = {"key": key, "user_id": user_id, "images": count}
        built_s = time.perf_counter() - started
        counts = store.table_counts()
    size = (data / "gempix.sqlite3").stat().st_size
    return {"users": users, "rows": counts["generations"], "build_s": built_s, "db_bytes": size}


def child(action: str, data: str, user_id: str, out: str) -> None:
    """One measurement, in a fresh process; prints a JSON line."""
    from gempix.privacy import erase, export
    from gempix.service import Studio

    settings = Settings.load({}, data_dir=data)
    with Studio(settings, store=Store.open(settings)) as studio:
        studio.store.get_user(user_id)
        started = time.perf_counter()
        result: dict = {}
        if action.startswith("export"):
            exported = export(studio, user_id, Path(out))
            result = {"zip_bytes": exported.bytes, "files": exported.files}
        elif action == "scrub":
            studio.store.scrub_deleted()
        elif action.startswith("erase"):
            report = erase(studio, user_id)
            result = {"rows": report.total_rows, "files": report.files, "verified": report.verified}
        seconds = time.perf_counter() - started
    print(json.dumps({"action": action, "seconds": seconds, "peak_mib": peak_rss_mib(), **result}))


def measure(action: str, data: Path, user_id: str, out: Path) -> dict:
    command = [sys.executable, __file__, "--child", action, str(data), user_id, str(out)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--others", type=int, default=100_000, help="rows of other users")
    parser.add_argument("--images", type=int, default=1000, help="images of the large user")
    parser.add_argument(
        "--pixels", type=int, default=64, help="side of the placeholder noise PNGs (64: 12 KiB)"
    )
    parser.add_argument("--smoke", action="store_true", help="200 rows, 20 images (seconds)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.others, args.images = 200, 20
    if args.child:
        child(*args.child)
        return
    work = Path(tempfile.mkdtemp(prefix="gempix-bench-privacy-"))
    try:
        data = work / "data"
        built = build(data, args.others, args.images, args.pixels)
        small, large = built["users"]["small"], built["users"]["large"]
        print(
            f"data: {built['rows']:,} generation rows ({args.others:,} of other users), "
            f"database {built['db_bytes'] / 2**20:.1f} MiB, built in {built['build_s']:.1f} s"
        )
        runs = [
            measure("baseline", data, large["user_id"], work / "none"),
            measure("export-small", data, small["user_id"], work / "small.zip"),
            measure("export-large", data, large["user_id"], work / "large.zip"),
            measure("scrub", data, large["user_id"], work / "none"),
            measure("erase-large", data, large["user_id"], work / "none"),
        ]
        floor = runs[0]["peak_mib"]
        print(f"{'run':<14}{'images':>8}{'seconds':>10}{'peak MiB':>10}{'over base':>11}  notes")
        for run in runs:
            images = {"export-small": small["images"]}.get(run["action"], large["images"])
            images = images if run["action"] not in ("baseline", "scrub") else ""
            notes = ""
            if "zip_bytes" in run:
                notes = f"ZIP {run['zip_bytes'] / 2**20:.1f} MiB, {run['files']} files"
            if "verified" in run:
                notes = f"{run['rows']} rows, {run['files']} files, verified={run['verified']}"
            print(
                f"{run['action']:<14}{images!s:>8}{run['seconds']:>10.2f}{run['peak_mib']:>10.0f}"
                f"{run['peak_mib'] - floor:>11.0f}  {notes}"
            )
        growth = (runs[2]["peak_mib"] - floor) / max(runs[1]["peak_mib"] - floor, 1.0)
        print(
            f"export memory over baseline, {large['images']} vs {small['images']} images: "
            f"{growth:.2f}x (flat is ~1x; {large['images'] // small['images']}x more images)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
