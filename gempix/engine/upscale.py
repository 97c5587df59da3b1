"""Bringing a base image to its exact target size (up to 4096x4096) in bounded memory.

Backends:
- ``lanczos``: Pillow's Lanczos filter. Always available; memory is the output image.
- ``esrgan``: a Real-ESRGAN-family model (``srnets``; default Real-ESRGAN x4plus from
  the Hub cache, a local file, or the tiny model's own), run tile by tile with overlap and
  feathered seams; its x4 (or x2...) output is then brought to the exact target with Lanczos.
- ``detail``: the best of the two above, then a refiner: the diffusion detail pass (tiled
  img2img at low strength with the loaded pipeline, ``detail.DetailJob``), handed in by the
  caller, so upscaling itself needs no diffusion model.
- ``auto``: ``esrgan`` when its weights are on this machine, else ``lanczos``. ``auto`` never
  downloads; an explicit ``esrgan`` downloads the default weights once when the Hub answers
  and fails at once with a clear message when it does not.

The result image carries what was done, as JSON-ready parameters, in
``image.info[UPSCALE_INFO]``: the service puts them into the image's metadata.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from ..errors import ModelUnavailableError, ValidationError
from . import esrgan
from .sizes import MAX_OUTPUT_SIDE, MIN_SIDE, RESOLUTIONS, parse_resolution
from .tiling import axis_tiles, choose_tile, memory_budget, tile_count, tiled_apply

BACKENDS = ("lanczos", "esrgan", "detail")
CHOICES = ("auto", *BACKENDS)
UPSCALE_INFO = "gempix.upscale"
DEFAULT_OVERLAP = 32  # input pixels shared by neighbouring tiles (a quarter dropped per side)

Progress = Callable[[int, int, str], None]


class Refiner(Protocol):
    """The second pass of the ``detail`` backend, run over the upscaled image (``DetailJob``)."""

    def tiles(self, size: tuple[int, int]) -> int: ...  # its progress steps at ``size``

    def params(self, size: tuple[int, int]) -> dict[str, Any]: ...  # what it did, for metadata

    def refine(
        self, image: Image.Image, progress: Progress | None, done_before: int, total: int
    ) -> Image.Image: ...


def check_backend(backend: Any) -> str:
    if not isinstance(backend, str) or backend.strip().lower() not in CHOICES:
        raise ValidationError(
            f"upscaler: {backend!r} is not available; choose one of {', '.join(CHOICES)}."
        )
    return backend.strip().lower()


def _check_side(field: str, side: Any, low: int) -> int:
    if isinstance(side, bool) or not isinstance(side, int):
        raise ValidationError(f"{field}: expected a whole number, got {side!r}.")
    if not low <= side <= MAX_OUTPUT_SIDE:
        raise ValidationError(
            f"{field}: {side} is out of range; allowed {low} to {MAX_OUTPUT_SIDE}."
        )
    return side


def check_target(target: Any) -> tuple[int, int]:
    try:
        width, height = target
    except (TypeError, ValueError):
        raise ValidationError(f"target size: expected (width, height), got {target!r}.") from None
    return _check_side("target width", width, 1), _check_side("target height", height, 1)


def upscale_target(
    size: tuple[int, int],
    resolution: str | None = "4k",
    width: int | None = None,
    height: int | None = None,
) -> tuple[int, int]:
    """Target size for upscaling an existing ``size`` image ("upscale this image").

    Either an exact ``width`` and ``height`` (64 to 4096 each), or a ``resolution`` preset
    (2k, 4k) whose long side is applied to the image's own aspect ratio.
    """
    if width is not None or height is not None:
        if width is None or height is None:
            raise ValidationError("size: give both width and height.")
        return _check_side("width", width, MIN_SIDE), _check_side("height", height, MIN_SIDE)
    long_side = RESOLUTIONS[parse_resolution(resolution or "")]
    if long_side is None:
        raise ValidationError("resolution: upscaling needs 2k or 4k, or a width and height.")
    source_w, source_h = size
    if source_w >= source_h:
        return long_side, max(1, round(long_side * source_h / source_w))
    return max(1, round(long_side * source_w / source_h)), long_side


def bytes_per_pixel(network) -> float:
    """Estimated peak activation bytes per *input* pixel of a loaded ``srnets`` network.

    For RRDB (ESRGAN), measured on this CPU in float32: 12.7 KB per input pixel for Real-ESRGAN
    x4plus (64 features) at 256x256, 2.6 KB for the tiny one; the estimate below (17 KB and
    4 KB) errs high. The compact network holds a few feature maps at input size and its
    output at ``scale`` squared, and gets the same generous formula.
    """
    elem = network.dtype.itemsize
    dense = network.features + 4 * esrgan.GROWTH_CHANNELS
    return elem * (3.5 * network.features * network.scale**2 + 4 * dense)


class Upscaler:
    """Upscaling for one process and model: finds and caches the ESRGAN weights, one at a time.

    ``weights``: a local model file; when set it is the only one used. ``use_default``: fall
    back to the default Real-ESRGAN weights in the Hub cache (the tiny model says False: it has
    its own). ``allow_download``: an explicit ``esrgan`` may fetch the default weights.
    ``tile``: fixed tile size in input pixels; None adapts it to free memory.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        use_default: bool = True,
        allow_download: bool = True,
        hub_timeout: float = 10,
        device: str = "cpu",
        half: bool = False,
        tile: int | None = None,
        overlap: int = DEFAULT_OVERLAP,
    ):
        self.weights = Path(weights).expanduser() if weights else None
        self.use_default = use_default
        self.allow_download = allow_download
        self.hub_timeout = hub_timeout
        self.device = device
        self.half = half
        if tile is not None and tile < 16:
            raise ValueError(f"tile must be at least 16 pixels, got {tile}")
        if not 0 <= overlap < (tile or 10**9):
            raise ValueError(f"overlap must be in [0, tile), got {overlap}")
        self.tile = tile
        self.overlap = overlap
        self._lock = threading.Lock()
        self._model: Any = None
        self._model_path: Path | None = None

    # -- choosing -----------------------------------------------------------------------

    def local_weights(self) -> Path | None:
        """The ESRGAN weights usable without the network, or None."""
        if self.weights is not None:
            if not self.weights.is_file():
                raise ValidationError(
                    f"esrgan weights: no such file: {self.weights} (GEMPIX_ESRGAN_WEIGHTS)."
                )
            return self.weights
        return esrgan.cached_default() if self.use_default else None

    def resolve(self, backend: str = "auto") -> str:
        """The backend that will run for ``backend``: ``auto`` becomes esrgan or lanczos."""
        backend = check_backend(backend)
        if backend == "auto":
            return "esrgan" if self.local_weights() is not None else "lanczos"
        return backend

    def model(self):
        """The upscaling network, loaded once (downloading the default weights if allowed)."""
        if self._model is not None:
            return self._model
        path = self.local_weights()
        if path is None:
            if not self.use_default:
                raise ModelUnavailableError(
                    "esrgan: this model has no ESRGAN upscaler; use lanczos or auto."
                )
            if not self.allow_download:
                raise ModelUnavailableError(
                    f"esrgan: the default weights are not downloaded. {esrgan.download_hint()}."
                )
            path = esrgan.download_default(self.hub_timeout)
        self._model = esrgan.load(path, self.device, half=self.half)
        self._model_path = path
        return self._model

    def tile_for(self, network) -> int:
        if self.tile is not None:
            return self.tile
        return choose_tile(memory_budget(self.device), bytes_per_pixel(network))

    # -- running ------------------------------------------------------------------------

    def upscale(
        self,
        image: Image.Image,
        target: tuple[int, int],
        backend: str = "auto",
        progress: Progress | None = None,
        refiner: Refiner | None = None,
    ) -> Image.Image:
        """``image`` at exactly ``target``; ``result.info[UPSCALE_INFO]`` says how it was made.

        ``refiner`` (a ``detail.DetailJob``) is required by the ``detail`` backend.
        """
        target = check_target(target)
        requested = check_backend(backend)
        chosen = self.resolve(requested)
        if chosen == "detail" and refiner is None:
            raise ValidationError(
                "upscaler: detail needs the model that made the image; use it when generating."
            )
        image = image.convert("RGB")
        base = "esrgan" if chosen == "esrgan" else "lanczos"
        if chosen == "detail":
            base = "esrgan" if self.local_weights() is not None else "lanczos"
        if image.width >= target[0] and image.height >= target[1]:
            base = "lanczos"  # nothing to enlarge: a model pass would only cost time
        started = time.perf_counter()
        info: dict[str, Any] = {
            "requested": requested,
            "backend": chosen if chosen == "detail" else base,
            "source_size": [image.width, image.height],
            "size": list(target),
        }
        with self._lock:  # one upscale at a time per process: memory stays bounded
            network = self.model() if base == "esrgan" else None
            model_tiles = 0
            if network is not None:
                tile = self.tile_for(network)
                model_tiles = tile_count(image.height, image.width, tile, self.overlap)
            detail_tiles = refiner.tiles(target) if chosen == "detail" else 0
            total = max(model_tiles, 1) + detail_tiles
            if network is not None:
                source = image.size
                image = self._run_model(network, image, tile, progress, total)
                info["esrgan"] = {
                    "weights": self._model_path.name if self._model_path else None,
                    "architecture": network.architecture,
                    "features": network.features,
                    "scale": network.scale,
                    "tile": tile,
                    "tile_size": [
                        axis_tiles(source[0], tile, self.overlap)[0],
                        axis_tiles(source[1], tile, self.overlap)[0],
                    ],
                    "overlap": self.overlap,
                    "tiles": model_tiles,
                    "device": self.device,
                }
            if image.size != target:
                image = image.resize(target, Image.Resampling.LANCZOS)
                info["resize"] = "lanczos"
            if network is None and progress is not None:
                progress(1, total, "upscale")
            if chosen == "detail":
                image = refiner.refine(image, progress, total - detail_tiles, total)
                info["detail"] = refiner.params(target)
        info["seconds"] = round(time.perf_counter() - started, 3)
        image.info[UPSCALE_INFO] = info
        return image

    def _run_model(self, network, image, tile, progress, total) -> Image.Image:
        import torch

        dtype = network.dtype
        device = network.device

        def apply(piece: np.ndarray) -> np.ndarray:
            tensor = torch.from_numpy(np.ascontiguousarray(piece.transpose(2, 0, 1)))[None]
            output = network(tensor.to(device=device, dtype=dtype))
            return output[0].float().cpu().numpy().transpose(1, 2, 0)

        pixels = np.asarray(image, dtype=np.float32) / 255.0
        with torch.inference_mode():
            out = tiled_apply(
                pixels, apply, network.scale, tile, self.overlap, progress, total=total
            )
        return Image.fromarray(out)


def upscaler_for(settings: Any, loaded: Any) -> Upscaler:
    """The upscaler that goes with a loaded model: the tiny model uses only its own weights.

    Reads ``settings.esrgan_weights`` when that setting exists (empty: the default weights).
    """
    device = getattr(loaded, "device", "cpu")
    half = device != "cpu"
    if loaded.preset.is_tiny:
        weights = Path(settings.models_dir) / "tiny" / esrgan.TINY_ESRGAN_FILE
        # None: a tiny model built before it had an upscaler
        return Upscaler(weights if weights.is_file() else None, use_default=False, device=device)
    configured = getattr(settings, "esrgan_weights", "") or None
    return Upscaler(configured, hub_timeout=settings.hub_timeout, device=device, half=half)


_DEFAULT: Upscaler | None = None


def default_upscaler() -> Upscaler:
    """An upscaler with no model of its own: the default weights when cached, else Lanczos."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Upscaler(allow_download=False)
    return _DEFAULT
