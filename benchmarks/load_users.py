"""The locust users of ``benchmarks/bench_load.py`` (a locustfile, not a benchmark of its own).

Each user is one API client: its own key, one front (users are spread over the fronts in
turn), at most ``GEMPIX_LOAD_PER_USER`` generations, one after another without think time;
the run ends when the last user is done (or at locust's ``--run-time``).
Every request is written as a JSON line to ``GEMPIX_LOAD_OUT`` (start, end, status, the ids of
the images it acknowledged), which the benchmark reads for throughput, p95 and the store
check. Imports nothing of GemPix: locust patches the standard library with gevent first.
"""

from __future__ import annotations

import itertools
import json
import os
import time

import gevent
from locust import HttpUser, constant, task
from locust.exception import StopUser

FRONTS = os.environ["GEMPIX_LOAD_FRONTS"].split(",")
KEYS = os.environ["GEMPIX_LOAD_KEYS"].split(",")
PER_USER = int(os.environ["GEMPIX_LOAD_PER_USER"])
OUT = os.environ["GEMPIX_LOAD_OUT"]
_numbers = itertools.count()
_finished = itertools.count(1)


class ApiClient(HttpUser):
    host = FRONTS[0]
    wait_time = constant(0)

    def on_start(self) -> None:
        number = next(_numbers)
        self.front = FRONTS[number % len(FRONTS)]
        self.headers = {"Authorization": f"Bearer {KEYS[number % len(KEYS)]}"}
        self.number = number
        self.sent = 0

    @task
    def generate(self) -> None:
        if self.sent >= PER_USER:
            if next(_finished) == len(KEYS):  # the last user is done: end the run now
                gevent.spawn(self.environment.runner.quit)
            raise StopUser()
        self.sent += 1
        body = {"prompt": "a lighthouse at dawn", "seed": self.number * 1000 + self.sent}
        started = time.time()
        with self.client.post(
            f"{self.front}/api/v1/generate",
            json=body,
            headers=self.headers,
            name="POST /api/v1/generate",
            catch_response=True,
        ) as response:
            ok = response.status_code == 200
            ids = [image["id"] for image in response.json()["images"]] if ok else []
            if not ok:
                response.failure(f"HTTP {response.status_code}")
        line = {"start": started, "end": time.time(), "status": response.status_code, "ids": ids}
        with open(OUT, "a") as out:
            out.write(json.dumps(line) + "\n")
