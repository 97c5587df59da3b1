"""Output sizes: aspect ratios, resolution presets, and the base size a model generates at.

A user asks for a look ("4k, 16:9"); the model generates near its native pixel count at that
aspect, and the upscaler brings it to the exact target. ``4k`` 16:9 is exactly 3840x2160.
"""

from __future__ import annotations

import math

from ..errors import ValidationError

ASPECTS: dict[str, tuple[int, int]] = {
    "1:1": (1, 1),
    "16:9": (16, 9),
    "9:16": (9, 16),
    "4:3": (4, 3),
    "3:4": (3, 4),
    "3:2": (3, 2),
    "2:3": (2, 3),
    "21:9": (21, 9),
}
# Long side in pixels; "native" means the model's own size.
RESOLUTIONS: dict[str, int | None] = {"native": None, "2k": 2560, "4k": 3840}
MAX_OUTPUT_SIDE = 4096
MIN_SIDE = 64
MAX_GENERATION_SIDE = 2048


def parse_aspect(aspect: str) -> tuple[int, int]:
    key = str(aspect).strip()
    if key not in ASPECTS:
        raise ValidationError(
            f"aspect: {aspect!r} is not supported; choose one of {', '.join(ASPECTS)}."
        )
    return ASPECTS[key]


def parse_resolution(resolution: str) -> str:
    key = str(resolution).strip().lower()
    if key not in RESOLUTIONS:
        raise ValidationError(
            f"resolution: {resolution!r} is not supported; choose one of {', '.join(RESOLUTIONS)}."
        )
    return key


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def base_size(aspect: str, native: tuple[int, int], multiple: int) -> tuple[int, int]:
    """The generation size: the model's native pixel count at the requested aspect."""
    ratio_w, ratio_h = parse_aspect(aspect)
    area = native[0] * native[1]
    width = math.sqrt(area * ratio_w / ratio_h)
    return _round_to(width, multiple), _round_to(width * ratio_h / ratio_w, multiple)


def target_size(
    aspect: str, resolution: str, native: tuple[int, int], multiple: int
) -> tuple[int, int]:
    """The final output size for an aspect and a resolution preset."""
    long_side = RESOLUTIONS[parse_resolution(resolution)]
    if long_side is None:
        return base_size(aspect, native, multiple)
    ratio_w, ratio_h = parse_aspect(aspect)
    if ratio_w >= ratio_h:
        return long_side, _round_to(long_side * ratio_h / ratio_w, 8)
    return _round_to(long_side * ratio_w / ratio_h, 8), long_side


def parse_size(size: str) -> tuple[int, int]:
    """``"768x512"`` -> (768, 512), with a message that shows the expected form."""
    parts = str(size).lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise ValidationError(f"size: {size!r} is not WIDTHxHEIGHT, e.g. 768x512.")
    return int(parts[0]), int(parts[1])
