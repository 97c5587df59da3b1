"""The GPU work under ``spaces.GPU`` on a Hugging Face ZeroGPU Space; unchanged everywhere else.

Hugging Face sets ``SPACES_ZERO_GPU`` on ZeroGPU hardware. There the app process has no GPU of
its own: a function decorated with ``spaces.GPU`` gets one for each call, runs in a worker
process forked from the app, and is stopped when the duration it asked for runs out. Without the
variable this module never imports ``spaces``, and ``run``/``upscale`` call the engine directly.

What ZeroGPU requires, and how this module meets it:

- The decorated functions must exist before the Gradio app launches (``spaces`` registers them
  and packs the model's tensors at launch). They are built once, when this module is imported
  (``gempix.service`` imports it), never per call.
- Arguments and results cross to the worker by pickling. The loaded pipeline (it holds a lock)
  and the upscaler cannot, so they stay in a registry the forked worker inherits; only a token,
  the plan (text, numbers, a PIL image), the reference embeddings and the requested seconds go
  over, and PIL images come back. A worker forked before a model switch does not know the new
  model: it says so (``StaleWorker``) and the call is made once more, which forks a fresh one.
- The duration is estimated per call from the request (``estimate_seconds``, see
  docs/deployment.md), and handed to ``spaces.GPU(duration=...)`` as a callable taking the same
  arguments as the decorated function, which is how ``spaces`` asks for a dynamic duration.

Progress callbacks are not forwarded to the worker (closures do not pickle); ZeroGPU shows its
own progress while it queues and starts the worker.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import threading
from typing import Any

from PIL import Image

from . import generate
from .adapters import Conditioning
from .detail import DetailJob
from .generate import Progress
from .models import LoadedModel
from .request import Plan
from .runtime import on_zerogpu as enabled  # the front doors ask zerogpu.enabled()
from .upscale import Upscaler

log = logging.getLogger(__name__)

# The duration asked for, in seconds. ZeroGPU's default is 60; a shorter request gets a better
# place in the queue, but a cold worker start alone can take several seconds, so never less than
# 15. A request must fit in the visitor's remaining daily quota (2 minutes for visitors who are
# not signed in), so 120 is the most a call asks for.
FLOOR_S = 15
CAP_S = 120

# Deliberately pessimistic figures for half an H200 (ZeroGPU's default slice) in half
# precision, about twice what these models measure on an A100: running past the duration kills
# the call, asking a little too much only costs queue priority (quota is charged for the time
# actually used).
STARTUP_S = 10.0  # forking the worker and moving the weights to the GPU
IMAGE_S = 1.0  # per image: text encoding, VAE decoding, handing the image back
# seconds per denoising step per megapixel of one image, one model pass (doubled by guidance > 1)
STEP_S_PER_MEGAPIXEL = {"sd": 0.12, "sdxl": 0.2, "flux": 0.8}
OTHER_STEP_S_PER_MEGAPIXEL = 0.3
ESRGAN_S_PER_MEGAPIXEL = 1.5  # per output megapixel (Real-ESRGAN x4plus, tiled)
LANCZOS_S_PER_MEGAPIXEL = 0.1  # per output megapixel, on the CPU inside the call
ADAPTER_FACTOR = 1.25  # IP-Adapter (style reference, character): extra attention per step


# -- the estimate -------------------------------------------------------------------------------


def _step_rate(loaded: LoadedModel, guidance: float) -> float:
    rate = STEP_S_PER_MEGAPIXEL.get(loaded.preset.family, OTHER_STEP_S_PER_MEGAPIXEL)
    return rate * (2 if guidance > 1 else 1)  # classifier-free guidance: two passes per step


def upscale_seconds(
    loaded: LoadedModel,
    target: tuple[int, int],
    backend: str,
    upscaler: Upscaler | None = None,
    detail: DetailJob | None = None,
) -> float:
    """Seconds to bring one image to ``target`` with ``backend`` (``auto`` resolved here)."""
    chosen = upscaler.resolve(backend) if upscaler is not None else backend
    esrgan = chosen == "esrgan" or chosen == "auto"
    if chosen == "detail":
        esrgan = upscaler is None or upscaler.local_weights() is not None
    megapixels = target[0] * target[1] / 1e6
    seconds = megapixels * (ESRGAN_S_PER_MEGAPIXEL if esrgan else LANCZOS_S_PER_MEGAPIXEL)
    if chosen == "detail" and detail is not None:
        steps = max(1, int(detail.inference_steps * detail.strength))
        tile_megapixels = detail.tile * detail.tile / 1e6
        rate = _step_rate(loaded, detail.guidance)
        seconds += detail.tiles(target) * (IMAGE_S + steps * tile_megapixels * rate)
    return seconds


def estimate_seconds(
    loaded: LoadedModel,
    plan: Plan,
    upscaler: Upscaler | None = None,
    conditioning: Conditioning | None = None,
) -> int:
    """GPU seconds to ask for: startup, then per image the denoising steps at the plan's size
    and, for 2k/4k, the upscaling; at least ``FLOOR_S``, at most ``CAP_S``."""
    steps = plan.steps
    if plan.init_image is not None:  # image-to-image runs steps x strength of them
        steps = max(1, int(plan.steps * plan.strength))
    megapixels = plan.width * plan.height / 1e6
    rate = _step_rate(loaded, plan.guidance)
    if conditioning is not None and conditioning.kinds:
        rate *= ADAPTER_FACTOR
    per_image = IMAGE_S + steps * megapixels * rate
    if plan.upscaled:
        detail = DetailJob.from_plan(loaded, plan) if plan.upscaler == "detail" else None
        per_image += upscale_seconds(loaded, plan.target, plan.upscaler, upscaler, detail)
    return _bounded(STARTUP_S + plan.num_images * per_image)


def _bounded(seconds: float) -> int:
    if seconds > CAP_S:
        log.warning(
            "ZeroGPU: this call may need about %.0f s of GPU time; asking for the %d s maximum.",
            seconds,
            CAP_S,
        )
    return int(min(CAP_S, max(FLOOR_S, math.ceil(seconds))))


# -- what the worker finds: the registry it inherits ----------------------------------------


class StaleWorker(RuntimeError):
    """The GPU worker was forked before the model now in use was loaded."""


_registry_lock = threading.Lock()
_tokens = itertools.count(1)
_current: tuple[int, LoadedModel, Upscaler | None] | None = None


def _register(loaded: LoadedModel, upscaler: Upscaler | None) -> int:
    """The token of (loaded, upscaler), new when either changed (the old entry is dropped)."""
    global _current
    with _registry_lock:
        if _current is None or _current[1] is not loaded or _current[2] is not upscaler:
            _current = (next(_tokens), loaded, upscaler)
        return _current[0]


def _lookup(token: int) -> tuple[LoadedModel, Upscaler | None]:
    current = _current
    if current is None or current[0] != token:
        raise StaleWorker("the GPU worker predates the model in use; starting a fresh one")
    return current[1], current[2]


# -- the decorated functions (their arguments pickle) ------------------------------------------


def _generate_on_gpu(
    token: int, plan: Plan, conditioning: Conditioning | None, seconds: int
) -> list:
    loaded, upscaler = _lookup(token)
    return generate.run(loaded, plan, None, upscaler=upscaler, conditioning=conditioning)


def _upscale_on_gpu(
    token: int,
    image: Image.Image,
    target: tuple[int, int],
    backend: str,
    detail: DetailJob | None,
    seconds: int,
) -> Image.Image:
    loaded, upscaler = _lookup(token)
    if detail is not None:
        detail = dataclasses.replace(detail, loaded=loaded)
    return upscaler.upscale(image, target, backend, None, detail)


def _requested(*args: Any) -> int:
    """The duration callable: same arguments as the decorated function, the last is seconds."""
    return args[-1]


def _decorate() -> tuple[Any, Any] | None:
    """``spaces.GPU`` around both GPU functions, on a ZeroGPU Space only (else no import)."""
    if not enabled():
        return None
    import spaces

    gpu = spaces.GPU(duration=_requested)
    return gpu(_generate_on_gpu), gpu(_upscale_on_gpu)


_decorated = _decorate()  # once, at import: before the app launches


def _call(function: Any, loaded: LoadedModel, upscaler: Upscaler | None, *args: Any) -> Any:
    try:
        return function(_register(loaded, upscaler), *args)
    except StaleWorker:  # the failed call's worker is dropped: this one forks a fresh worker
        return function(_register(loaded, upscaler), *args)


# -- the wrappers the service calls --------------------------------------------------------------


def run(
    loaded: LoadedModel,
    plan: Plan,
    progress: Progress | None = None,
    upscaler: Upscaler | None = None,
    conditioning: Conditioning | None = None,
    on_preview: generate.OnPreview | None = None,
) -> list:
    """``generate.run``, on a ZeroGPU Space inside ``spaces.GPU`` with an estimated duration
    (there without live previews: like progress, a callback does not cross to the worker)."""
    if _decorated is None:
        return generate.run(
            loaded,
            plan,
            progress,
            upscaler=upscaler,
            conditioning=conditioning,
            on_preview=on_preview,
        )
    seconds = estimate_seconds(loaded, plan, upscaler, conditioning)
    return _call(_decorated[0], loaded, upscaler, plan, conditioning, seconds)


def upscale(
    loaded: LoadedModel,
    upscaler: Upscaler,
    image: Image.Image,
    target: tuple[int, int],
    backend: str = "auto",
    progress: Progress | None = None,
    detail: DetailJob | None = None,
) -> Image.Image:
    """``upscaler.upscale``, on a ZeroGPU Space inside ``spaces.GPU`` with an estimated
    duration (the detail pass uses the loaded pipeline, so the worker needs it too)."""
    if _decorated is None:
        return upscaler.upscale(image, target, backend, progress, detail)
    seconds = _bounded(STARTUP_S + upscale_seconds(loaded, target, backend, upscaler, detail))
    portable = None if detail is None else dataclasses.replace(detail, loaded=None)
    return _call(_decorated[1], loaded, upscaler, image, target, backend, portable, seconds)
