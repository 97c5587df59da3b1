"""Workers for GPU work, so the event loop stays free.

``workers`` generations (``GEMPIX_MAX_BATCH``) enter the studio at once, where its GPU line
runs one pipeline call at a time and lets same-shape requests share a call (``coalesce``).
A ``Job`` waits in a bounded queue (``max_queue``; one more gets Busy, 503). The request that
queued it polls, every ``POLL_S``, whether the job is done, whether its client disconnected and
whether its deadline passed: a job whose client has gone or whose time is up is cancelled, and
never starts if it was still waiting. A job already running checks ``Job.check`` between
denoising steps (the service's progress callback), so it stops at the next step.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import Busy, ClientGone, GenerationTimeout

POLL_S = 0.2


@dataclasses.dataclass
class Stats:
    submitted: int = 0
    finished: int = 0
    failed: int = 0
    cancelled_waiting: int = 0  # cancelled before they started: no work done at all
    stopped_running: int = 0  # stopped between steps by a disconnect or the deadline


class Job:
    def __init__(self, deadline: float):
        self.deadline = deadline  # time.monotonic() by which the result must be there
        self.future: concurrent.futures.Future | None = None
        self.started = threading.Event()
        self._stop: type[Exception] | None = None

    def cancel(self, reason: type[Exception]) -> bool:
        """Stop the job; True if it had not started (then it never will)."""
        self._stop = reason
        return self.future.cancel() if self.future is not None else False

    def check(self, *_args: Any) -> None:
        """Raise if the job was cancelled or ran past its deadline (call between steps)."""
        if self._stop is None and time.monotonic() > self.deadline:
            self._stop = GenerationTimeout
        if self._stop is GenerationTimeout:
            raise GenerationTimeout("The generation took longer than this server allows.")
        if self._stop is not None:
            raise ClientGone("The client disconnected; the generation was cancelled.")


class GpuQueue:
    """A ``workers``-thread executor with a bounded number of waiting jobs and cancellation."""

    def __init__(self, max_queue: int, workers: int = 1):
        self.max_queue = max_queue
        self.workers = workers
        self.stats = Stats()
        self._executor = concurrent.futures.ThreadPoolExecutor(workers, "gempix-gpu")
        self._lock = threading.Lock()
        self._pending = 0  # submitted and not finished (waiting + running)

    def submit(self, work: Callable[[Job], Any], timeout: float) -> Job:
        """Queue ``work(job)``; raise Busy when ``max_queue`` jobs are already waiting."""
        job = Job(time.monotonic() + timeout)
        with self._lock:
            if self._pending >= self.workers + self.max_queue:  # running + waiting
                raise Busy("The server is busy with other generations; try again shortly.")
            self._pending += 1
            self.stats.submitted += 1

        def run() -> Any:
            job.started.set()
            job.check()
            return work(job)

        try:
            job.future = self._executor.submit(run)
        except RuntimeError:  # shut down
            self._release(None)
            raise Busy("The server is shutting down.") from None
        job.future.add_done_callback(self._release)
        return job

    def _release(self, future: concurrent.futures.Future | None) -> None:
        with self._lock:
            self._pending -= 1
            if future is None:
                return
            if future.cancelled():
                self.stats.cancelled_waiting += 1
            elif isinstance(future.exception(), (ClientGone, GenerationTimeout)):
                self.stats.stopped_running += 1
            elif future.exception() is not None:
                self.stats.failed += 1
            else:
                self.stats.finished += 1

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    async def wait(self, job: Job, disconnected: Callable[[], Awaitable[bool]]) -> Any:
        """The job's result; cancel it when ``disconnected()`` or past its deadline."""
        assert job.future is not None
        waiting = asyncio.wrap_future(job.future)
        # If we stop waiting (disconnect, deadline), the job's own error is still read, so
        # asyncio does not log "exception was never retrieved".
        waiting.add_done_callback(lambda done: done.cancelled() or done.exception())
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=POLL_S)
            if done:
                if waiting.cancelled():  # only shutdown cancels without us
                    raise Busy("The server is shutting down.")
                return waiting.result()
            if await disconnected():
                job.cancel(ClientGone)
                raise ClientGone("The client disconnected; the generation was cancelled.")
            if time.monotonic() > job.deadline:
                job.cancel(GenerationTimeout)
                raise GenerationTimeout("The generation took longer than this server allows.")

    def result(self, job: Job) -> Any:
        """Blocking wait (for callers off the event loop, such as the MCP tool)."""
        assert job.future is not None
        try:
            return job.future.result(timeout=max(0.0, job.deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            job.cancel(GenerationTimeout)
            raise GenerationTimeout("The generation took longer than this server allows.") from None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
