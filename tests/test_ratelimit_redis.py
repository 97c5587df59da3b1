"""Rate limits shared in Redis: two front processes (``gempix serve`` on two loopback ports,
one data dir, one real ``redis-server``) allow exactly the configured number of requests in
total, per key and per client without a key, however the requests are spread over them.

Needs ``GEMPIX_TEST_REDIS_URL`` (scripts/services.sh); skipped without it, failed in CI.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import services

from gempix.api import API_PREFIX

ROOT = Path(__file__).resolve().parent.parent
REQUESTS_LIMIT = 10
ANONYMOUS_LIMIT = 7
CLIENTS = 6
WAIT_S = 240  # bound on every wait for a process; never reached when things work

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def front(data: Path, redis_url: str) -> tuple[subprocess.Popen, str]:
    """One front process serving ``data`` with its limits in ``redis_url``, and its URL."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GEMPIX_REDIS_URL": redis_url,
        "GEMPIX_RATE_REQUESTS": f"{REQUESTS_LIMIT}/hour",
        "GEMPIX_RATE_ANONYMOUS": f"{ANONYMOUS_LIMIT}/hour",
    }
    command = [sys.executable, "-m", "gempix", "serve", "--port", str(port), "--model", "tiny"]
    app = subprocess.Popen(
        [*command, "--data-dir", str(data)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return app, f"http://127.0.0.1:{port}"


def wait_up(app: subprocess.Popen, url: str) -> None:
    deadline, pause = time.monotonic() + WAIT_S, threading.Event()
    while True:  # bounded: the process dies or the deadline passes
        assert app.poll() is None, "the front stopped while starting"
        assert time.monotonic() < deadline, "the front did not start in time"
        try:
            if httpx.get(f"{url}{API_PREFIX}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pause.wait(0.2)


@pytest.fixture
def fronts(settings):
    """Two fronts on one data dir and one Redis (a fresh database of it, emptied)."""
    import redis

    redis_url = services.service("GEMPIX_TEST_REDIS_URL")
    apps = []
    try:
        for _ in range(2):  # both start at once
            apps.append(front(settings.data_dir, redis_url))
        for app, url in apps:
            wait_up(app, url)
        redis.Redis.from_url(redis_url).flushdb()  # the health checks above counted too
        yield [url for _, url in apps]
    finally:
        for app, _ in apps:
            app.terminate()
            app.wait(timeout=WAIT_S)


def spread(urls: list[str], headers: dict, total: int) -> Counter:
    """``total`` GET /styles, from ``CLIENTS`` threads released at once, each request to the
    next front in turn; the status codes counted."""
    start = threading.Barrier(CLIENTS)
    statuses: Counter = Counter()
    lock = threading.Lock()

    def client(n: int) -> None:
        start.wait(timeout=30)
        for i in range(n, total, CLIENTS):
            url = urls[i % len(urls)]
            status = httpx.get(f"{url}{API_PREFIX}/styles", headers=headers, timeout=30)
            with lock:
                statuses[status.status_code] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT_S)
    assert not any(thread.is_alive() for thread in threads)
    return statuses


def test_two_fronts_sharing_redis_allow_exactly_the_limit_in_total(settings, fronts):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    made = subprocess.run(
        [sys.executable, "-m", "gempix", "keys", "create", "--data-dir", str(settings.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=True,
    )
    key = made.stdout.splitlines()[0]
    keyed = spread(fronts, {"Authorization": f"Bearer {key}"}, total=3 * REQUESTS_LIMIT)
    assert keyed == {200: REQUESTS_LIMIT, 429: 2 * REQUESTS_LIMIT}
    # Without a valid key: counted per client address, under the same pseudonym on both.
    bogus = {"Authorization": "Bearer gpx_nokey000_notasecret"}
    anonymous = spread(fronts, bogus, total=3 * ANONYMOUS_LIMIT)
    assert anonymous == {401: ANONYMOUS_LIMIT, 429: 2 * ANONYMOUS_LIMIT}
