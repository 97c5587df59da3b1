"""Generations on Ray Serve workers (``GEMPIX_WORKERS``, ``gempix/engine/workers.py``).

One Ray cluster for the module (``ray.init(num_cpus=2)``, about 8 s to start) with the tiny
model deployed as 2 CPU replicas; the front is a real server (web app and HTTP API on one
port) whose own process never loads a model.
"""

from __future__ import annotations

import os
import signal
import threading

import httpx
import numpy as np
import pytest
from conftest import tiny_settings
from gradio_client import Client
from PIL import Image
from test_app import confirmed_user, generate

from gempix.api import API_PREFIX
from gempix.engine import workers
from gempix.engine.request import plan
from gempix.errors import SettingsError, ValidationError
from gempix.params import GenerationRequest
from gempix.privacy.identity import LOCAL_USER
from gempix.server import build_server, start_server
from gempix.service import Studio
from gempix.settings import Settings

pytestmark = pytest.mark.slow


class Stop(Exception):
    """What the test's progress callback raises to cancel a generation."""


@pytest.fixture(scope="module")
def front(tmp_path_factory, tiny_folder):
    """A studio drawing on 2 replicas, served (web app and API) on a free port."""
    import ray

    data = tmp_path_factory.mktemp("workers") / "data"
    settings = tiny_settings(data, tiny_folder, workers="local-ray:2")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(data / "gradio-cache"))
        studio = Studio(settings)
        server = start_server(build_server(studio))
        try:
            yield studio, server.url
        finally:
            server.stop()
            studio.close()
            workers.disconnect()


@pytest.fixture
def studio(front, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(front[0].settings.data_dir / "gradio-cache"))
    return front[0]


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_the_http_api_generates_on_a_replica(front, studio, tiny_models):
    key = studio.keys.create(LOCAL_USER)[0]
    response = httpx.post(
        f"{front[1]}{API_PREFIX}/generate",
        json={"prompt": "a lighthouse", "seed": 7, "num_images": 2},
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    ids = [image["id"] for image in response.json()["images"]]
    assert len(ids) == 2
    rows = [studio.images.get(LOCAL_USER, image_id) for image_id in ids]
    assert all(os.path.isfile(row["file_path"]) for row in rows)
    assert studio.models.loaded_name is None, "the front loaded a model of its own"
    # The replica drew what this process draws for the same request (float rounding aside).
    local = Studio(studio.settings, models=tiny_models)
    here = local.render(GenerationRequest("a lighthouse", seed=7, num_images=2))
    for row, image in zip(rows, here.images, strict=True):
        assert np.abs(pixels(row["file_path"]) - pixels(image.path)).mean() < 2


def test_the_web_app_generates_on_a_replica(front, studio):
    client = Client(front[1], verbose=False)
    key = confirmed_user(client)
    gallery, *_ = generate(client, key, prompt="a red fox", seed=11)
    assert len(gallery) == 1
    listed = client.predict(key, 1, api_name="/list_images")
    assert len(listed) == 1
    assert studio.models.loaded_name is None, "the front loaded a model of its own"


def test_progress_and_previews_reach_the_front(studio):
    steps, previews = [], []
    result = studio.generate(
        GenerationRequest("a kite", seed=3, steps=3),
        progress=lambda done, total, stage: steps.append((done, total, stage)),
        on_preview=lambda step, total, image: previews.append((step, total, image.size)),
    )
    assert steps == [(1, 3, "denoise"), (2, 3, "denoise"), (3, 3, "denoise")]
    assert [entry[:2] for entry in previews] == [(1, 3), (2, 3), (3, 3)]
    assert result.images[0].path.is_file()


def test_a_cancel_from_the_front_stops_the_request_and_stores_nothing(studio):
    before = studio.store.count_generations(LOCAL_USER)

    def cancel(done, total, stage):
        raise Stop

    with pytest.raises(Stop):
        studio.generate(GenerationRequest("a boat", seed=4, steps=3), progress=cancel)
    assert studio.store.count_generations(LOCAL_USER) == before
    assert studio.generate(GenerationRequest("a boat", seed=4)).images  # the replica serves on


def test_a_replica_killed_mid_request_fails_that_request_only(studio):
    remote = workers.connect(studio.settings)
    model = remote.model()
    long = plan(GenerationRequest("a storm", seed=1, steps=50, width=512, height=512), model.preset)
    short = plan(GenerationRequest("a calm", seed=2), model.preset)
    doomed = remote.stream(long)
    kind, doomed_pid = next(doomed)
    other = remote.stream(short)
    kind, other_pid = next(other)
    assert kind == "worker" and other_pid != doomed_pid, "both requests went to one replica"
    os.kill(doomed_pid, signal.SIGKILL)
    with pytest.raises(workers.WorkerLost, match="stopped before it finished"):
        remote.consume(doomed)
    assert len(remote.consume(other)) == 1
    # Serve routes new requests around the dead replica (and replaces it).
    assert studio.generate(GenerationRequest("after", seed=5)).images


def test_references_are_refused_with_remote_workers(studio):
    style = Image.new("RGB", (64, 64), "red")
    with pytest.raises(ValidationError, match="remote workers"):
        studio.generate(GenerationRequest("a cat", style_image=style))


def test_a_bad_workers_setting_names_the_variable():
    for value in ("local-ray:0", "local-ray:x", "redis://host", "ray:"):
        with pytest.raises(SettingsError, match="GEMPIX_WORKERS"):
            Settings.load({"GEMPIX_WORKERS": value})
    assert Settings.load({"GEMPIX_WORKERS": "ray://10.0.0.2:10001"}).workers


def test_concurrent_requests_all_complete(studio):
    """Requests arriving together (same shape: they may share a call inside a replica) each
    get their own images."""
    results: list = []

    def one(seed):
        results.append(studio.generate(GenerationRequest("a tree", seed=seed)).images[0].seed)

    threads = [threading.Thread(target=one, args=(seed,)) for seed in range(20, 26)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(20, 26))
