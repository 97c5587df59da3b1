"""Generations on GPU workers: the engine as a Ray Serve deployment, the front calls a handle.

``GEMPIX_WORKERS`` (``gempix serve --workers``) selects where the Studio's pictures are drawn:

- empty (the default): here, in this process; this module is then never used and Ray is
  never imported;
- ``local-ray:N``: start Ray in this process and deploy N replicas on this machine (one per
  GPU when it has N GPUs, else CPU processes);
- ``ray://HOST:PORT`` (Ray Client) or ``ray:ADDRESS`` (``ray:auto``, ``ray:HOST:6379``): join
  a running Ray cluster and use the GemPix application deployed there, deploying it (one
  replica per GPU of the cluster, at least one) when it is not.

Each replica (``Worker``) holds its own model, and same-shape requests that reach it together
share one pipeline call (today's ``Coalescer``, inside the replica). The front keeps every
job that needs users and files: it plans the request, and writes, signs and records the
images; a replica only turns a ``Plan`` into pixels. A call is a stream of events, so the
front sees progress and previews as the replica makes them, and cancels (the web app's and the
API's progress callbacks raise) by cancelling the stream, which stops the replica at its next
denoising step. A replica that dies mid-request fails that request with ``WorkerLost``; Serve
routes the others to the live replicas and starts a new one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
from collections.abc import Iterator
from typing import Any

from ..errors import GemPixError
from ..settings import Settings
from .coalesce import Coalescer
from .generate import Progress
from .models import LoadedModel, ModelManager
from .previews import OnPreview
from .request import Plan
from .upscale import upscaler_for

APP = "gempix-workers"  # the Serve application's name in the cluster
CPU_SHARE = 0.5  # Ray CPUs a CPU replica reserves (its torch threads are set separately)


class WorkerLost(GemPixError):
    """The worker drawing a request stopped, or no worker could be reached."""

    status = 503


class Cancelled(Exception):
    """The front cancelled the stream: the replica's next denoising step stops the call."""


@dataclasses.dataclass(frozen=True)
class PipelineFacts:
    """What the front reads of a replica's pipeline without holding it: the scheduler (the
    sampler named in the metadata) and the tokenizer (the prompt-length warnings)."""

    scheduler: Any
    tokenizer: Any


class Worker:
    """One replica: a model, the GPU line that lets same-shape requests share a call."""

    def __init__(self, settings: Settings, threads: int):
        self.settings = dataclasses.replace(settings, threads=threads)
        self.models = ModelManager(self.settings)
        self.line = Coalescer(self.settings.max_batch)
        self._upscaler: tuple[LoadedModel, Any] | None = None
        self.models.get()  # a replica is ready once its model is: no request pays the load

    def describe(self) -> tuple[Any, PipelineFacts, str]:
        """The loaded model as the front plans with it: preset, pipeline facts, notice."""
        loaded = self.models.get()
        pipe = loaded.pipe
        facts = PipelineFacts(pipe.scheduler, getattr(pipe, "tokenizer", None))
        return loaded.preset, facts, loaded.notice

    def _draw(self, plan: Plan, progress: Progress, on_preview: OnPreview | None) -> list:
        loaded = self.models.get()
        if self._upscaler is None or self._upscaler[0] is not loaded:
            self._upscaler = (loaded, upscaler_for(self.settings, loaded))
        return self.line.draw(loaded, plan, progress, self._upscaler[1], on_preview)

    async def draw(self, plan: Plan, previews: bool):
        """Events of one generation: ``("worker", pid)``, then ``("progress", done, total,
        stage)`` and ``("preview", step, total, image)`` as they happen, and last
        ``("images", images)`` or ``("error", GemPixError)``. The pipeline runs in a thread;
        a cancelled stream makes its next step raise."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()

        def put(*event: Any) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        def progress(done: int, total: int, stage: str) -> None:
            if stop.is_set():
                raise Cancelled("the request was cancelled")
            put("progress", done, total, stage)

        on_preview = (
            (lambda step, total, image: put("preview", step, total, image)) if previews else None
        )
        task = asyncio.ensure_future(asyncio.to_thread(self._draw, plan, progress, on_preview))
        yield ("worker", os.getpid())
        try:
            while not task.done() or not events.empty():
                getter = asyncio.ensure_future(events.get())
                await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield getter.result()
                else:
                    getter.cancel()
            try:
                yield ("images", task.result())
            except GemPixError as error:
                yield ("error", error)
        finally:
            stop.set()


class RemoteWorkers:
    """The front's side: a Serve handle to the ``Worker`` replicas, used like the local GPU."""

    def __init__(self, handle: Any):
        self._handle = handle
        self._model: LoadedModel | None = None

    def model(self) -> LoadedModel:
        """The replicas' model as the front plans with it (asked once, then kept). Its
        ``pipe`` is only ``PipelineFacts``; its device is the front's CPU, where the front
        upscales saved images."""
        if self._model is None:
            preset, facts, notice = self._call(lambda: self._handle.describe.remote().result())
            self._model = LoadedModel(preset, facts, "cpu", None, notice)
        return self._model

    def stream(self, plan: Plan, previews: bool = False) -> Any:
        """The raw event stream of one generation (``Worker.draw``); ``cancel()`` stops it."""
        return self._handle.options(stream=True).draw.remote(plan, previews)

    def draw(
        self, plan: Plan, progress: Progress | None = None, on_preview: OnPreview | None = None
    ) -> list:
        """The plan's images, drawn by a replica; progress and previews are relayed here, and
        an exception raised by either (a cancel) cancels the request on the replica."""
        return self.consume(self.stream(plan, on_preview is not None), progress, on_preview)

    def consume(
        self, stream: Any, progress: Progress | None = None, on_preview: OnPreview | None = None
    ) -> list:
        """The images at the end of ``stream``, relaying its progress and previews."""
        return self._call(lambda: self._relay(stream, progress, on_preview), stream)

    @staticmethod
    def _relay(events: Iterator, progress: Progress | None, on_preview: OnPreview | None):
        for kind, *rest in events:
            if kind == "progress" and progress is not None:
                progress(*rest)
            elif kind == "preview" and on_preview is not None:
                on_preview(*rest)
            elif kind == "images":
                return rest[0]
            elif kind == "error":
                raise rest[0]
            # "worker" (the replica's pid) is for callers reading the stream themselves
        raise WorkerLost("The worker ended this generation without its images; try again.")

    @staticmethod
    def _call(work: Any, stream: Any = None) -> Any:
        """``work()``, with a lost replica or cluster as ``WorkerLost`` and any other
        interruption (a cancel raised by a callback) cancelling ``stream`` first."""
        from ray.exceptions import RayActorError, RayError

        try:
            return work()
        except RayActorError:
            raise WorkerLost(
                "The worker drawing this generation stopped before it finished; nothing was "
                "saved. Try again."
            ) from None
        except RayError as error:
            raise WorkerLost(f"The GPU workers failed: {str(error).splitlines()[0]}") from None
        except BaseException:
            if stream is not None:
                stream.cancel()
            raise


def parse_spec(spec: str) -> tuple[str | None, int | None]:
    """(address for ``ray.init``, replicas to deploy or None) of a ``GEMPIX_WORKERS`` value."""
    if spec.startswith("local-ray:"):  # "local": a new cluster, never one left running here
        return "local", int(spec.partition(":")[2])
    if spec.startswith("ray://"):
        return spec, None
    return spec.partition(":")[2], None


def deploy(settings: Settings, replicas: int) -> Any:
    """(Re)deploy the workers application with ``replicas`` replicas; returns its handle.

    A replica asks for one GPU when the cluster has one per replica, else ``CPU_SHARE`` of a
    CPU with torch threads sharing the cluster's CPUs between the replicas.
    """
    import ray
    from ray import serve

    resources = ray.cluster_resources()
    if resources.get("GPU", 0) >= replicas:
        options, threads = {"num_gpus": 1}, settings.threads
    else:
        options = {"num_cpus": CPU_SHARE}
        threads = max(1, int(resources.get("CPU", 1)) // replicas)
    serve.start(proxy_location="Disabled")
    deployment = serve.deployment(
        Worker,
        name="Worker",
        num_replicas=replicas,
        ray_actor_options=options,
        max_ongoing_requests=2 * settings.max_batch,
        health_check_period_s=2,
    )
    return serve.run(deployment.bind(settings, threads), name=APP, route_prefix=None)


def _join(settings: Settings) -> Any:
    """The handle of the application on a running cluster, deployed first if missing."""
    from ray import serve

    if APP in serve.status().applications:
        return serve.get_app_handle(APP)
    import ray

    return deploy(settings, max(1, int(ray.cluster_resources().get("GPU", 0))))


_connected: dict[str, RemoteWorkers] = {}
_connecting = threading.Lock()


def connect(settings: Settings) -> RemoteWorkers:
    """The workers ``settings.workers`` names, connected (and deployed) once per process."""
    with _connecting:
        if settings.workers not in _connected:
            import ray

            address, replicas = parse_spec(settings.workers)
            if not ray.is_initialized():
                local = {"include_dashboard": False} if address == "local" else {}
                ray.init(address=address, log_to_driver=False, **local)
            if replicas is None:
                handle = _join(settings)
            else:
                handle = deploy(settings, replicas)
            _connected[settings.workers] = RemoteWorkers(handle)
        return _connected[settings.workers]


def disconnect() -> None:
    """Leave Ray (a cluster ``local-ray`` started ends with it); ``connect`` starts afresh."""
    with _connecting:
        if _connected:
            import ray

            _connected.clear()
            ray.shutdown()
