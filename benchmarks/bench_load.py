"""Load test: 1 and 2 front processes x 1 and 2 Ray Serve worker replicas of the tiny model.

    python benchmarks/bench_load.py                # 8 users, 25 generations each, <= 60 s
    python benchmarks/bench_load.py --users 4 --per-user 10 --seconds 30
    python benchmarks/bench_load.py --smoke        # 2 users, 3 generations each (CI)

Starts a Ray cluster in this process (2 CPUs, loopback) and deploys the workers application
(``gempix/engine/workers.py``); starts ``gempix serve --workers ray:<this cluster>`` front
processes on free localhost ports over one data folder; and for 1, then 2 replicas (a
redeploy), warms each front up with one generation, then runs locust headless against one,
then both fronts (``benchmarks/load_users.py``): every user is an API
client with its own key, sending ``POST /api/v1/generate`` without think time, at most
``--per-user`` times and for at most ``--seconds``. Prints, side by side, throughput
(acknowledged generations per second, first start to last end) and p95 latency per
configuration, and the 1 -> 2 replica ratios.

Then it checks, and fails when a check fails:

- every acknowledged generation is in the store with its file (read back through the core);
- the generation limit held across fronts: one key, limited to ``--per-user`` generations an
  hour, sends twice that and two more, alternating between the two fronts. With
  ``GEMPIX_REDIS_URL`` the fronts share counters and exactly the limit is allowed; without it
  the counters are per process (memory), which the benchmark reports as "not shared" rather
  than failing.

PostgreSQL and Redis are used when their URLs are given (``GEMPIX_DATABASE_URL`` /
``GEMPIX_REDIS_URL``, or CI's ``GEMPIX_TEST_DATABASE_URL`` / ``GEMPIX_TEST_REDIS_URL``);
otherwise the fronts share a SQLite file and keep limits in memory, and a note says so.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
USERS_FILE = Path(__file__).resolve().parent / "load_users.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def backing_services(environ: dict) -> dict[str, str]:
    """The database and Redis URLs to use, printing a note for each one not given."""
    chosen = {}
    for setting, test_var, fallback in (
        ("GEMPIX_DATABASE_URL", "GEMPIX_TEST_DATABASE_URL", "SQLite in the shared data folder"),
        ("GEMPIX_REDIS_URL", "GEMPIX_TEST_REDIS_URL", "limits in memory, per front process"),
    ):
        url = environ.get(setting) or environ.get(test_var)
        if url:
            chosen[setting] = url
            print(f"{setting}: {url.split('@')[-1]}")
        else:
            print(f"note: {setting} (or {test_var}) not given: {fallback}")
    return chosen


class Front:
    """One ``gempix serve`` process, its output in a log file."""

    def __init__(self, env: dict, address: str, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [sys.executable, "-m", "gempix", "serve", "--port", str(self.port)]
        command += ["--workers", f"ray:{address}"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
        )

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        tail = "\n".join(self.log.read_text().splitlines()[-20:])
        raise SystemExit(f"front {self.url} did not start; its log ends:\n{tail}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def run_users(env: dict, fronts: list[Front], keys: list[str], args, out: Path) -> list[dict]:
    """Run locust headless with one user per key; the JSON lines its users wrote."""
    load_env = {
        **env,
        "GEMPIX_LOAD_FRONTS": ",".join(front.url for front in fronts),
        "GEMPIX_LOAD_KEYS": ",".join(keys),
        "GEMPIX_LOAD_PER_USER": str(args.per_user),
        "GEMPIX_LOAD_OUT": str(out),
    }
    users = str(len(keys))
    command = [sys.executable, "-m", "locust", "-f", str(USERS_FILE), "--headless"]
    command += ["--users", users, "--spawn-rate", users, "--run-time", f"{args.seconds}s"]
    command += ["--stop-timeout", "30", "--only-summary", "--loglevel", "WARNING"]
    subprocess.run(command, cwd=ROOT, env=load_env, capture_output=True, timeout=args.seconds + 90)
    if not out.is_file():
        raise SystemExit("locust sent no request")
    return [json.loads(line) for line in out.read_text().splitlines()]


def summary(lines: list[dict]) -> dict:
    ok = [line for line in lines if line["status"] == 200]
    latencies = sorted(line["end"] - line["start"] for line in ok)
    span = max(line["end"] for line in lines) - min(line["start"] for line in lines)
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)] if latencies else float("nan")
    return {
        "requests": len(lines),
        "ok": len(ok),
        "failed": len(lines) - len(ok),
        "throughput": len(ok) / span if span > 0 else 0.0,
        "p95_ms": p95 * 1000,
        "median_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "ids": [image_id for line in ok for image_id in line["ids"]],
    }


def warm_up(fronts: list[Front], key: str) -> None:
    """One generation through each front, unmeasured: its handle and the replicas' first
    calls are set up before the clock runs."""
    for front in fronts:
        response = httpx.post(
            f"{front.url}/api/v1/generate",
            json={"prompt": "warm up"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        )
        if response.status_code != 200:
            raise SystemExit(f"warm-up on {front.url}: HTTP {response.status_code}")


def limit_check(fronts: list[Front], key: str, limit: int) -> int:
    """Generations allowed for one key limited to ``limit``, alternating between fronts."""
    allowed = 0
    headers = {"Authorization": f"Bearer {key}"}
    for number in range(2 * limit + 2):
        url = f"{fronts[number % len(fronts)].url}/api/v1/generate"
        body = {"prompt": "a limit", "seed": number}
        status = httpx.post(url, json=body, headers=headers, timeout=120).status_code
        if status not in (200, 429):
            raise SystemExit(f"the limit check got HTTP {status}")
        allowed += status == 200
    return allowed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8, help="locust users (API clients)")
    parser.add_argument("--per-user", type=int, default=25, help="generations per user")
    parser.add_argument("--seconds", type=int, default=60, help="longest run per config")
    parser.add_argument("--smoke", action="store_true", help="2 users, 3 each (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.users, args.per_user, args.seconds = 2, 3, 30

    temporary = tempfile.TemporaryDirectory(prefix="gempix-bench-load-")
    data = Path(temporary.name)
    env = {
        **os.environ,
        **backing_services(os.environ),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "GEMPIX_DATA_DIR": str(data),
        "GEMPIX_MODEL": "tiny",
        "GEMPIX_RATE_GENERATE": f"{args.per_user}/hour",
        "GEMPIX_RATE_REQUESTS": "100000/hour",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        # the throwaway cluster's own token: the fronts join with it (Ray token auth)
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
    }
    os.environ.update(env)  # this process reads the same settings (the store check)

    import ray

    from gempix.engine import workers
    from gempix.engine.tiny import ensure_tiny
    from gempix.privacy.identity import LOCAL_USER
    from gempix.service import Studio
    from gempix.settings import Settings

    ensure_tiny(data / "models" / "tiny")
    settings = Settings.load()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    address = ray.get_runtime_context().gcs_address
    workers.deploy(settings, 1)
    studio = Studio(settings)
    fronts = [Front(env, address, data / f"front{number}.log") for number in range(2)]
    results: dict[tuple[int, int], dict] = {}
    try:
        for front in fronts:
            front.wait(240)
        for replicas in (1, 2):
            if replicas > 1:  # scaling restarts the replicas (their torch threads change)
                workers.deploy(settings, replicas)
            warm_up(fronts, studio.keys.create(LOCAL_USER)[0])
            for count in (1, 2):
                keys = [studio.keys.create(LOCAL_USER)[0] for _ in range(args.users)]
                out = data / f"load-{count}x{replicas}.jsonl"
                lines = run_users(env, fronts[:count], keys, args, out)
                results[count, replicas] = summary(lines)
                print(f"  {count} front(s) x {replicas} replica(s): done", flush=True)
        allowed = limit_check(fronts, studio.keys.create(LOCAL_USER)[0], args.per_user)
        missing = [
            image_id
            for result in results.values()
            for image_id in result["ids"]
            if not Path(studio.images.get(LOCAL_USER, image_id)["file_path"]).is_file()
        ]
    finally:
        for front in fronts:
            front.stop()
        studio.close()
        workers.disconnect()
    return report(results, allowed, missing, args, shared="GEMPIX_REDIS_URL" in env)


def report(results: dict, allowed: int, missing: list, args, shared: bool) -> int:
    print(
        f"\n{args.users} API clients, at most {args.per_user} generations each and "
        f"{args.seconds} s per configuration, tiny model (64x64, 2 steps):"
    )
    print(
        f"  {'fronts x replicas':<18} {'requests':>8} {'ok':>5} {'failed':>6} "
        f"{'gen/s':>7} {'p95 ms':>8} {'median ms':>9}"
    )
    for (count, replicas), result in sorted(results.items()):
        print(
            f"  {count} x {replicas:<14} {result['requests']:>8} {result['ok']:>5} "
            f"{result['failed']:>6} {result['throughput']:>7.2f} {result['p95_ms']:>8.0f} "
            f"{result['median_ms']:>9.0f}"
        )
    for count in (1, 2):
        one, two = results[count, 1]["throughput"], results[count, 2]["throughput"]
        print(f"  {count} front(s): 2 replicas / 1 replica throughput = {two / one:.2f}")
    acknowledged = sum(len(result["ids"]) for result in results.values())
    failures = []
    if missing:
        failures.append(f"{len(missing)} acknowledged images missing from the store or disk")
    print(f"store: {acknowledged - len(missing)} of {acknowledged} acknowledged images found")
    limit = args.per_user
    print(
        f"limit across 2 fronts: {allowed} of {2 * limit + 2} allowed for a key limited to "
        f"{limit}/hour",
        end="",
    )
    if shared:
        print(" (Redis: " + ("held)" if allowed == limit else "NOT held)"))
        if allowed != limit:
            failures.append("the rate limit did not hold across fronts")
    else:
        print(" (memory: each front counts alone; set GEMPIX_REDIS_URL to share)")
    if any(result["failed"] for result in results.values()):
        failures.append("some generations failed under load")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
