"""Run every ``benchmarks/bench_*.py`` with ``--smoke``; fail when any of them fails.

CI runs this after the tests (``scripts/test.sh``), so a benchmark that no longer runs fails
the build instead of rotting unnoticed. Benchmarks are found by name and none is skipped: a
new one must have a ``--smoke`` mode (one tiny run, seconds, no full-size model). Each runs in
its own process, offline, with this checkout first on the path; ``--jobs`` run at once. Prints
each one's seconds and, for a failure, the end of its output.

    python scripts/bench_smoke.py               # all, as many at once as there are CPUs
    python scripts/bench_smoke.py --jobs 1      # one after another (per-benchmark times)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAIL = 25  # lines of a failed benchmark's output shown


def smoke(bench: Path, timeout: float) -> tuple[str, int | None, float, str]:
    """(name, exit code or None on timeout, seconds, output) of ``bench --smoke``."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {
        **os.environ,
        "PYTHONPATH": path,
        "HF_HUB_OFFLINE": "1",  # a benchmark never downloads
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(bench), "--smoke"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:  # its output may come back as bytes
        parts = [part or b"" for part in (expired.stdout, expired.stderr)]
        text = "".join(p.decode(errors="replace") if isinstance(p, bytes) else p for p in parts)
        code, output = None, f"{text}\n(stopped after {timeout:.0f} s)"
    return bench.name, code, time.perf_counter() - started, output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="at once")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per benchmark")
    args = parser.parse_args()
    benches = sorted((ROOT / "benchmarks").glob("bench_*.py"))
    if not benches:
        print("no benchmarks/bench_*.py found", file=sys.stderr)
        return 1
    started = time.perf_counter()
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(lambda bench: smoke(bench, args.timeout), benches))
    failed = [result for result in results if result[1] != 0]
    for name, code, _, output in failed:
        print(f"\n--- {name} --smoke failed (exit {code}); its last lines:", file=sys.stderr)
        print("\n".join(output.rstrip().splitlines()[-TAIL:]), file=sys.stderr)
    print(f"\nbenchmark smoke runs ({args.jobs} at once):")
    for name, code, seconds, _ in results:
        print(f"  {name:<22} {'ok' if code == 0 else 'FAILED':<7} {seconds:6.1f} s")
    total = time.perf_counter() - started
    print(f"  {len(results)} benchmarks, {len(failed)} failed, {total:.1f} s in all")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
