"""Generations waiting for the GPU together share one pipeline call (engine.coalesce).

The GPU is held (``gpu_line.exclusive()``) while requests arrive from several threads, as they
do from the web app's and the API's workers; released, the first takes the others of its shape
along. "Same image" is within 2/255 per channel, the bound batching.py states.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image

from gempix.api.errors import Busy
from gempix.api.gpu import GpuQueue
from gempix.engine import coalesce
from gempix.errors import GemPixError
from gempix.params import GenerationRequest
from gempix.privacy.identity import LOCAL_USER

TOLERANCE = 2


class Stop(GemPixError):
    """What a cancel raises from a progress callback."""


@pytest.fixture
def studio(fresh_studio):
    """A studio with its own model: sharing calls depends on what the model has loaded."""
    return fresh_studio


@pytest.fixture
def batches(monkeypatch):
    """The number of plans in every shared pipeline call."""
    sizes: list[int] = []
    real = coalesce.run_batched

    def spy(loaded, plans, *args, **kwargs):
        sizes.append(len(plans))
        return real(loaded, plans, *args, **kwargs)

    monkeypatch.setattr(coalesce, "run_batched", spy)
    return sizes


def arrive_together(studio, requests, progress=None) -> list:
    """Generate ``requests`` from one thread each while the GPU is held; results in order."""
    outcomes: list = [None] * len(requests)

    def one(index):
        try:
            outcomes[index] = studio.generate(
                requests[index], progress=progress[index] if progress else None
            )
        except GemPixError as error:
            outcomes[index] = error

    studio.model()  # loaded before the race
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
    with studio.gpu_line.exclusive():
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while studio.gpu_line.waiting() < len(requests) and time.monotonic() < deadline:
            time.sleep(0.01)
    for thread in threads:
        thread.join(60)
    return outcomes


def pixels(result) -> np.ndarray:
    return np.asarray(Image.open(result.images[0].path), dtype=np.int16)


def ask(seed: int, prompt: str = "a lighthouse", **fields) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, seed=seed, **fields)


def test_same_shape_requests_share_one_call_and_keep_their_images(studio, batches):
    requests = [ask(1, "a fox"), ask(2, "a boat"), ask(3, "a tree"), ask(4, aspect="16:9")]
    together = arrive_together(studio, requests)
    assert batches == [3]  # the three squares together; the wide one alone
    for request, result in zip(requests, together, strict=True):
        alone = studio.generate(request)
        assert np.abs(pixels(result) - pixels(alone)).max() <= TOLERANCE
        assert result.images[0].params["prompt"] == request.prompt
    assert len(studio.store.list_generations(LOCAL_USER, limit=20)) == 8


def test_a_batch_never_exceeds_max_batch(studio, batches):
    studio.gpu_line.max_batch = 2
    results = arrive_together(studio, [ask(seed) for seed in range(5)])
    assert all(not isinstance(result, GemPixError) for result in results)
    assert sorted(batches, reverse=True)[0] <= 2 and sum(batches) >= 4


def test_a_cancel_costs_only_the_request_that_cancelled(studio, batches):
    def cancel(done, total, stage):
        raise Stop("cancelled")

    results = arrive_together(studio, [ask(1), ask(2), ask(3)], progress=[None, cancel, None])
    assert batches == [3]  # tried together, then redone one by one
    assert isinstance(results[1], Stop)
    assert all(len(results[i].images) == 1 for i in (0, 2))
    assert len(studio.store.list_generations(LOCAL_USER, limit=20)) == 2


def test_nothing_is_shared_once_an_adapter_is_loaded(studio, batches):
    studio.characters.create(LOCAL_USER, "Mira", [Image.new("RGB", (32, 32), "red")], True)
    studio.generate(ask(9, character="Mira"))
    results = arrive_together(studio, [ask(1), ask(2)])
    assert batches == [] and all(len(result.images) == 1 for result in results)


def test_api_queue_lets_max_batch_jobs_run_and_counts_waiting_ones():
    queue = GpuQueue(max_queue=1, workers=2)
    release = threading.Event()
    running = [queue.submit(lambda job: release.wait(30), timeout=60) for _ in range(2)]
    assert all(job.started.wait(10) for job in running)
    waiting = queue.submit(lambda job: "done", timeout=60)
    with pytest.raises(Busy):
        queue.submit(lambda job: "too many", timeout=60)
    release.set()
    assert queue.result(waiting) == "done"
