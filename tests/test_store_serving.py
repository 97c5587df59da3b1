"""The store beside a running app: CLI commands in other processes, and a SIGKILL mid-burst.

Both start the real app: in this process with ``start_server(build_server(...))`` for the CLI
test, and as ``python -m gempix serve`` (so that it can be killed) for the crash test. The
CLI runs as separate processes on the same data dir, as an operator would run it. Both run
on SQLite and on PostgreSQL (``database_url``: the processes inherit GEMPIX_DATABASE_URL).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import httpx
import pytest
from conftest import free_port, launch_app, wait_up
from PIL import Image

from gempix.api import API_PREFIX
from gempix.privacy.identity import LOCAL_USER
from gempix.server import build_server, start_server
from gempix.service import Studio
from gempix.store import Store

ROOT = Path(__file__).resolve().parent.parent
GENERATE = {"prompt": "a lighthouse", "steps": 1, "width": 64, "height": 64, "seed": 1}
WAIT_S = 240  # bound on every wait for a process; never reached when things work

pytestmark = pytest.mark.slow


def gempix(data: Path, *args: str) -> str:
    """Run the CLI in its own process; its output, after asserting it succeeded."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "gempix", *args, "--data-dir", str(data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert done.returncode == 0, f"gempix {' '.join(args)}: {done.stderr}"
    return done.stdout


def generate(url: str, key: str) -> httpx.Response:
    return httpx.post(
        f"{url}{API_PREFIX}/generate",
        json=GENERATE,
        headers={"Authorization": f"Bearer {key}"},
        timeout=WAIT_S,
    )


@pytest.fixture
def settings(settings, database_url):
    return dataclasses.replace(settings, database_url=database_url)


def test_every_cli_command_works_while_the_app_serves_the_same_data_dir(settings, tmp_path):
    data = settings.data_dir
    studio = Studio(settings)
    server = start_server(build_server(studio))
    try:
        user_key = gempix(data, "user", "create").split()[0]
        assert user_key.startswith("gpu_")
        gempix(data, "user", "confirm-age", "--user-key", user_key)
        api_key = gempix(data, "keys", "create", "--user-key", user_key).splitlines()[0]
        made = generate(server.url, api_key)  # the app knows the key the CLI made
        assert made.status_code == 200, made.text
        (image,) = made.json()["images"]

        archive = tmp_path / "export.zip"
        gempix(data, "export", "--user-key", user_key, "-o", str(archive))
        with zipfile.ZipFile(archive) as exported:
            assert any(image["id"] in name for name in exported.namelist())

        report = json.loads(gempix(data, "analytics", "--format", "json", "--since", "7d"))
        assert set(report["reports"]) >= {"style_trends", "daily_uniques"}
        snapshot = gempix(data, "analytics", "snapshot", "-o", str(tmp_path / "snap")).strip()
        assert Path(snapshot).is_file()

        gempix(data, "erase", "--user-key", user_key, "--yes")
        gone = httpx.get(
            f"{server.url}{API_PREFIX}/images/{image['id']}",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=30,
        )
        assert gone.status_code == 401  # the app sees the erasure at once
        assert httpx.get(f"{server.url}{API_PREFIX}/health", timeout=30).status_code == 200
        assert gempix(data, "keys", "list").startswith("No API keys")  # none left of the user
    finally:
        server.stop()
        studio.close()


def serve(data: Path, port: int) -> subprocess.Popen:
    limits = {"GEMPIX_RATE_GENERATE": "100000/minute", "GEMPIX_RATE_REQUESTS": "100000/minute"}
    app = launch_app(data, port, limits)
    wait_up(app, f"http://127.0.0.1:{port}", WAIT_S)
    return app


def test_a_sigkill_during_a_burst_loses_no_acknowledged_generation(settings):
    data, port = settings.data_dir, free_port()
    key = gempix(data, "keys", "create").splitlines()[0]
    app = serve(data, port)
    acknowledged: list[str] = []
    enough, stop = threading.Event(), threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                response = generate(f"http://127.0.0.1:{port}", key)
            except httpx.TransportError:  # the app is gone
                return
            if response.status_code == 200:
                acknowledged.extend(image["id"] for image in response.json()["images"])
            if len(acknowledged) >= 12:
                enough.set()

    clients = [threading.Thread(target=client) for _ in range(4)]
    try:
        for thread in clients:
            thread.start()
        assert enough.wait(WAIT_S), "the burst did not get going"
        app.send_signal(signal.SIGKILL)  # mid-burst: three other requests are in flight
        assert app.wait(timeout=WAIT_S) == -signal.SIGKILL
    finally:
        stop.set()
        app.kill()
        for thread in clients:
            thread.join(WAIT_S)
    with Store.open(settings) as store:  # the restart
        rows = store.rows_for_user("generations", LOCAL_USER)
        usage = store.usage_events()
    stored = {row["id"]: Path(row["file_path"]) for row in rows}
    assert set(acknowledged) <= set(stored)
    for path in stored.values():  # no row without its whole file
        with Image.open(path) as picture:
            picture.load()
        assert picture.size == (64, 64)
    # Events written before the kill read back whole (the last second's may be lost: they
    # are flushed every second); nothing half-written is in view.
    assert len(usage) <= len(acknowledged) + 4
    assert set(usage["front_door"]) <= {"api"}
    assert not list(data.glob("usage/**/*.merging"))
