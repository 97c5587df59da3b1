"""HTTP API throughput and generation overhead, against a real local server.

    python benchmarks/bench_api.py                 # 2000 requests per route, 30 pairs
    python benchmarks/bench_api.py --requests 500 --generations 5
    python benchmarks/bench_api.py --smoke         # 20 requests, 2 pairs (CI)

Starts the API (``create_app``) with uvicorn on a free localhost port and measures:

- requests/s for ``GET /api/v1/health`` (no key, no database) and ``GET /api/v1/styles`` (key
  check: one store read, rate-limit counters, the request log row), with ``--clients``
  concurrent httpx clients, each on its own keep-alive connection;
- ``POST /api/v1/generate`` with the ``tiny`` model against ``Studio.generate`` with the same
  request, interleaved in one run (the machines are shared and noisy; half the pairs in each
  order): medians, the ratio and the milliseconds the API adds (HTTP, JSON, key check, the
  GPU queue hop, the log row); and, less noisy, each API call's round trip minus the
  ``duration_ms`` the service measured for that same call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import interleaved  # noqa: E402


def throughput(url: str, path: str, headers: dict, total: int, clients: int) -> float:
    """Requests per second over ``total`` requests split across ``clients`` threads."""
    import httpx

    per_client = total // clients
    start = threading.Barrier(clients + 1)
    failures: list[int] = []

    def run():
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            http.get(path)  # open the connection before the clock starts
            start.wait()
            for _ in range(per_client):
                status = http.get(path).status_code
                if status != 200:
                    failures.append(status)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise SystemExit(f"{path}: {len(failures)} requests failed (e.g. {failures[0]})")
    return per_client * clients / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per route")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--generations", type=int, default=30, help="interleaved pairs")
    parser.add_argument("--smoke", action="store_true", help="a few of each (seconds)")
    args = parser.parse_args()
    if args.smoke:
        args.requests, args.clients, args.generations = 20, 2, 2

    import httpx

    from gempix import keys
    from gempix.api import API_PREFIX, ApiConfig, create_app
    from gempix.engine.request import GenerationRequest
    from gempix.engine.tiny import ensure_tiny
    from gempix.privacy.identity import LOCAL_USER
    from gempix.server import start_server
    from gempix.service import Studio
    from gempix.settings import Settings

    temporary = tempfile.TemporaryDirectory(prefix="gempix-bench-api-")
    data = Path(temporary.name)
    ensure_tiny(data / "models" / "tiny")
    studio = Studio(Settings.load({}, data_dir=str(data), model="tiny"))
    key = keys.create_key(studio, LOCAL_USER)[0]
    unlimited = ApiConfig(
        rate_requests="100000000/hour",
        rate_generate="100000000/hour",
        rate_anonymous="100000000/hour",
    )
    server = start_server(create_app(studio, unlimited))
    auth = {"Authorization": f"Bearer {key}"}
    try:
        print(f"server {server.url}, {args.clients} clients, {args.requests} requests per route")
        for path, headers in ((f"{API_PREFIX}/health", {}), (f"{API_PREFIX}/styles", auth)):
            rate = throughput(server.url, path, headers, args.requests, args.clients)
            print(f"  GET {path:<22} {rate:8.0f} requests/s")

        body = {"prompt": "a lighthouse at dawn", "seed": 1}
        request = GenerationRequest(body["prompt"], seed=1)
        http = httpx.Client(base_url=server.url, headers=auth, timeout=120)

        paired: list[float] = []  # round trip minus the service's own duration_ms

        def api():
            started = time.perf_counter()
            response = http.post(f"{API_PREFIX}/generate", json=body)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, response.text
            paired.append(elapsed - response.json()["duration_ms"])

        def direct():
            studio.generate(request, front_door="api")

        api()  # warm both paths (model load, first-call lazy init)
        direct()
        # Both orders, half the pairs each: whichever runs second overlaps the first one's
        # trailing work (the server finishing its response, the store flusher).
        half = max(1, args.generations // 2)
        first = interleaved(half, direct=direct, api=api)
        second = interleaved(half, api=api, direct=direct)
        medians = {name: (first[name] + second[name]) / 2 for name in first}
        added = (medians["api"] - medians["direct"]) * 1000
        print(f"POST {API_PREFIX}/generate with tiny, {2 * half} interleaved pairs:")
        print(f"  direct Studio.generate  {medians['direct'] * 1000:8.1f} ms (median)")
        print(f"  through the HTTP API    {medians['api'] * 1000:8.1f} ms (median)")
        print(f"  ratio api/direct        {medians['api'] / medians['direct']:8.3f}")
        print(f"  added by the API        {added:8.1f} ms")
        print(
            f"  paired, per request     {statistics.median(paired):8.1f} ms (round trip minus "
            "the service's duration_ms, which excludes its final store commit)"
        )
        print(
            f"  (ratio with direct first {first['api'] / first['direct']:.3f}, "
            f"with api first {second['api'] / second['direct']:.3f})"
        )
        http.close()
        studio.store.flush()
        latencies = [
            row["latency_ms"]
            for row in studio.store.list_api_requests(1000)
            if row["route"] == f"{API_PREFIX}/styles"
        ]
        if latencies:
            print(
                f"  (server-side /styles latency, median of the log: "
                f"{statistics.median(latencies):.2f} ms)"
            )
    finally:
        server.stop()
        studio.close()
        temporary.cleanup()


if __name__ == "__main__":
    main()
