"""Rate limits shared in Redis: two front processes (``gempix serve`` on two loopback ports,
one data dir, one real ``redis-server``) allow exactly the configured number of requests in
total, per key and per client without a key, however the requests are spread over them.

Needs ``GEMPIX_TEST_REDIS_URL`` (scripts/services.sh); skipped without it, failed in CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
import services
from conftest import free_port, launch_app, wait_up

from gempix.api import API_PREFIX

ROOT = Path(__file__).resolve().parent.parent
REQUESTS_LIMIT = 10
ANONYMOUS_LIMIT = 7
CLIENTS = 6
WAIT_S = 240  # bound on every wait for a process; never reached when things work

pytestmark = pytest.mark.slow


@pytest.fixture
def fronts(settings):
    """Two fronts on one data dir and one Redis (a fresh database of it, emptied)."""
    import redis

    redis_url = services.service("GEMPIX_TEST_REDIS_URL")
    limits = {
        "GEMPIX_REDIS_URL": redis_url,
        "GEMPIX_RATE_REQUESTS": f"{REQUESTS_LIMIT}/hour",
        "GEMPIX_RATE_ANONYMOUS": f"{ANONYMOUS_LIMIT}/hour",
    }
    ports = [free_port(), free_port()]
    apps = []
    try:
        for port in ports:  # both start at once
            apps.append((launch_app(settings.data_dir, port, limits), f"http://127.0.0.1:{port}"))
        for app, url in apps:
            wait_up(app, url, WAIT_S)
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
