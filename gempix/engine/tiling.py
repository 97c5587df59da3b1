"""Running an image model tile by tile, with overlap and feathered seams, in bounded memory.

An image model whose activations grow with the input (an ESRGAN upscaler, an img2img pass) is
applied to overlapping tiles. Where two tiles overlap, each tile's outermost margin is dropped
(pixels near a tile's edge saw zero padding instead of their real neighbours) and the middle of
the overlap is cross-faded linearly, so there is no visible seam. Rows of tiles are blended
into a rolling band and written out as soon as no later tile can touch them: beyond the model
itself, memory holds one band of float accumulators plus the 8-bit output.

The tile size adapts to the memory available (``runtime.free_device_bytes``: CUDA's free
memory, MPS's budget, or free RAM) through a per-model estimate of bytes per input pixel.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .runtime import free_device_bytes

# progress(done, total, stage), the same callback generation uses
Progress = Callable[[int, int, str], None]

MIN_TILE = 64
MAX_TILE = 1024
TILE_MULTIPLE = 16
CPU_BUDGET_CAP = 2 * 1024**3  # on a CPU, no more than this for activations (and 1/4 of free)
CPU_BUDGET_FRACTION = 0.25
GPU_BUDGET_FRACTION = 0.5


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``length``, overlapping >= ``overlap``.

    The first tile starts at 0, the last ends at ``length``, and the ones between are spread
    evenly, so every overlap is at least ``overlap`` and tiles are all the same size.
    """
    if tile >= length:
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, {tile}), got {overlap}")
    count = math.ceil((length - overlap) / (tile - overlap))
    count = max(count, 2)
    return [round(index * (length - tile) / (count - 1)) for index in range(count)]


def axis_tiles(length: int, tile: int, overlap: int, multiple: int = 1) -> tuple[int, list[int]]:
    """Tile size and start offsets along one axis: as few tiles of at most ``tile`` pixels as
    cover ``length``, shrunk to share the length evenly (a 384-pixel side with tiles of up to
    336 gets two of 208, not two of 336), so overlap costs as little computation as possible.
    The size is rounded up to ``multiple`` (a model's size rule) unless that passes ``tile``.
    """
    if length <= tile:
        return length, [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length - overlap) / count) + overlap
    size = min(tile, -(-size // multiple) * multiple)
    return size, tile_starts(length, size, overlap)


def ramp(size: int, fade_start: bool, fade_end: bool, overlap: int, margin: int) -> np.ndarray:
    """Per-pixel weight along one axis of a tile of ``size`` pixels.

    On a side that overlaps a neighbour, the first ``margin`` pixels get weight 0 and the next
    ``overlap - 2 * margin`` rise linearly to 1. A side on the image border keeps weight 1.
    Two neighbours overlapping by at least ``overlap`` therefore always sum to a positive
    weight, and to exactly 1 across a cross-fade of a nominal overlap.
    """
    distance = np.arange(size, dtype=np.float32)
    weight = np.ones(size, dtype=np.float32)
    width = max(overlap - 2 * margin, 1)
    if fade_start:
        weight = np.minimum(weight, np.clip((distance - margin + 0.5) / width, 0.0, 1.0))
    if fade_end:
        weight = np.minimum(weight, np.clip((size - 1 - distance - margin + 0.5) / width, 0, 1))
    return weight


def tile_count(height: int, width: int, tile: int, overlap: int, multiple: int = 1) -> int:
    rows = axis_tiles(height, tile, overlap, multiple)[1]
    return len(rows) * len(axis_tiles(width, tile, overlap, multiple)[1])


def tiled_apply(
    image: np.ndarray,
    model: Callable[[np.ndarray], np.ndarray],
    scale: int,
    tile: int,
    overlap: int,
    progress: Progress | None = None,
    stage: str = "upscale",
    done_before: int = 0,
    total: int | None = None,
    multiple: int = 1,
) -> np.ndarray:
    """Apply ``model`` to ``image`` tile by tile; returns the blended result as uint8.

    ``image`` is float32 HxWxC in [0, 1]; ``model`` maps an hxwxC float32 tile to an
    (h*scale)x(w*scale)xC float32 tile in [0, 1]. ``overlap`` is in input pixels; a quarter of
    it on each side is dropped and the middle half cross-faded. ``progress`` is called after
    every tile with (done_before + tiles done, total, stage). Tile sides are rounded up to
    ``multiple`` where the image allows.
    """
    height, width, channels = image.shape
    tile_h, rows = axis_tiles(height, max(1, tile), overlap, multiple)
    tile_w, cols = axis_tiles(width, max(1, tile), overlap, multiple)
    total = total if total is not None else done_before + len(rows) * len(cols)
    out_w = width * scale
    output = np.empty((height * scale, out_w, channels), dtype=np.uint8)
    margin = (overlap // 4) * scale
    fade = overlap * scale
    ramp_x = [
        ramp(tile_w * scale, index > 0, index < len(cols) - 1, fade, margin)
        for index in range(len(cols))
    ]
    done = done_before
    # The band holds weighted sums for output rows [band_top, band_top + band rows).
    band_top = 0
    band = np.zeros((0, out_w, channels), dtype=np.float32)
    band_weight = np.zeros((0, out_w, 1), dtype=np.float32)
    for row_index, top in enumerate(rows):
        row_top, row_bottom = top * scale, (top + tile_h) * scale
        grown = row_bottom - band_top
        if grown > band.shape[0]:
            extra = grown - band.shape[0]
            band = np.concatenate([band, np.zeros((extra, out_w, channels), np.float32)])
            band_weight = np.concatenate([band_weight, np.zeros((extra, out_w, 1), np.float32)])
        ramp_y = ramp(tile_h * scale, row_index > 0, row_index < len(rows) - 1, fade, margin)
        for col_index, left in enumerate(cols):
            piece = image[top : top + tile_h, left : left + tile_w]
            result = model(piece)
            expected = (tile_h * scale, tile_w * scale, channels)
            if result.shape != expected:
                raise RuntimeError(f"tile model returned {result.shape}, expected {expected}")
            weight = ramp_y[:, None, None] * ramp_x[col_index][None, :, None]
            y0, x0 = row_top - band_top, left * scale
            band[y0 : y0 + expected[0], x0 : x0 + expected[1]] += result * weight
            band_weight[y0 : y0 + expected[0], x0 : x0 + expected[1]] += weight
            done += 1
            if progress is not None:
                progress(done, total, stage)
        # Rows above the next tile row are final: no later tile reaches them.
        last = row_index + 1 == len(rows)
        final = (row_bottom if last else rows[row_index + 1] * scale) - band_top
        finished = band[:final] / np.maximum(band_weight[:final], 1e-8)
        output[band_top : band_top + final] = to_uint8(finished)
        band, band_weight = band[final:], band_weight[final:]
        band_top += final
    return output


def to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


def memory_budget(device: str) -> int:
    """How many bytes one tile's activations may use on ``device``."""
    free = free_device_bytes(device)
    if device.startswith("cuda"):
        return int(free * GPU_BUDGET_FRACTION)
    return int(min(free * CPU_BUDGET_FRACTION, CPU_BUDGET_CAP))


def choose_tile(
    budget: int,
    bytes_per_pixel: float,
    minimum: int = MIN_TILE,
    maximum: int = MAX_TILE,
    multiple: int = TILE_MULTIPLE,
) -> int:
    """The largest square tile whose estimated activation memory fits ``budget``."""
    side = int(math.sqrt(max(budget, 0) / max(bytes_per_pixel, 1.0)))
    side -= side % multiple
    return int(min(max(side, minimum), maximum))
