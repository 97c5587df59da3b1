"""A request resolved against one model: the ``Plan`` the engine draws.

The request itself, with every field's default, range and error text, is
``gempix.params.GenerationRequest`` (validated when it is built). ``plan`` adds what depends on
the model, before any computation, naming the field, the rule and the value the way diffusers'
``check_inputs`` does: the model's step limit, sizes in its multiple, steps x strength; and it
fills the model's defaults, computes sizes, draws seeds and decodes the init image.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from typing import Any, Protocol

from PIL import Image

from ..errors import ValidationError, whole
from ..images import load_image, pixel_digest
from .presets import ModelPreset
from .sizes import MAX_GENERATION_SIDE, base_size, target_size

MAX_SEED = 2**32 - 1  # seeds are drawn in [0, MAX_SEED]; image i of a batch gets seed + i


class Asked(Protocol):
    """The fields of ``gempix.params.GenerationRequest`` that planning reads (the engine
    plans any object that has them, and does not import the core's request model)."""

    prompt: str
    negative_prompt: str
    seed: int | None
    steps: int | None
    guidance: float | None
    width: int | None
    height: int | None
    aspect: str | None
    resolution: str
    num_images: int
    init_image: Any
    strength: float
    upscaler: str


@dataclasses.dataclass(frozen=True)
class Plan:
    """A validated request, resolved against one model."""

    prompt: str
    negative_prompt: str
    seeds: tuple[int, ...]
    steps: int
    guidance: float
    width: int
    height: int
    target: tuple[int, int]
    init_image: Image.Image | None
    strength: float
    upscaler: str
    init_sha256: str | None = None  # the init image's pixels, for the image's metadata

    @property
    def num_images(self) -> int:
        return len(self.seeds)

    @property
    def upscaled(self) -> bool:
        return self.target != (self.width, self.height)


def _side(value: int, field: str, multiple: int) -> int:
    if value % multiple:
        raise ValidationError(
            f"{field}: {value} is not a multiple of {multiple}, which this model needs "
            f"(try {value - value % multiple} or {value - value % multiple + multiple})."
        )
    return value


def _sizes(request: Asked, preset: ModelPreset) -> tuple[int, int, tuple[int, int]]:
    if request.width is not None:  # the request checked that height comes with it
        width, height = request.width, request.height
        if max(width, height) > MAX_GENERATION_SIDE:  # any size: the upscaler hits it exactly
            return (*_upscaled_base(width, height, preset), (width, height))
        width = _side(width, "width", preset.size_multiple)
        height = _side(height, "height", preset.size_multiple)
        return width, height, (width, height)
    aspect = request.aspect or "1:1"
    width, height = base_size(aspect, preset.native, preset.size_multiple)
    target = target_size(aspect, request.resolution, preset.native, preset.size_multiple)
    return width, height, target


def _upscaled_base(width: int, height: int, preset: ModelPreset) -> tuple[int, int]:
    """A custom size past MAX_GENERATION_SIDE is generated at the model's native pixel count
    with the same aspect (never larger than the target or MAX_GENERATION_SIDE), then upscaled.
    """
    multiple = preset.size_multiple
    area = preset.native[0] * preset.native[1]
    base_w = math.sqrt(area * width / height)
    base_h = base_w * height / width
    shrink = min(1.0, width / base_w, height / base_h, MAX_GENERATION_SIDE / max(base_w, base_h))

    def fit(side: float) -> int:
        return max(multiple, min(MAX_GENERATION_SIDE, int(side * shrink) // multiple * multiple))

    return fit(base_w), fit(base_h)


def _check_reads(request: Asked, preset: ModelPreset) -> None:
    """Refuse what the model cannot do, naming the field, instead of silently ignoring it."""
    if request.negative_prompt.strip() and not preset.negative_prompt:
        raise ValidationError(
            f"negative_prompt: {preset.name} reads no negative prompt (its pipeline, "
            f"{preset.pipeline}, has none: guidance-distilled). Leave it empty."
        )
    if request.init_image is not None and not preset.img2img:
        raise ValidationError(
            f"init_image: {preset.name} has no image-to-image (strength) mode; give the "
            "picture as a reference (references or a character) instead."
        )
    if request.upscaler == "detail" and not preset.img2img:
        raise ValidationError(
            f"upscaler: the detail pass redraws tiles with image-to-image, which {preset.name} "
            "has not; choose esrgan or lanczos."
        )


def plan(request: Asked, preset: ModelPreset) -> Plan:
    """Resolve ``request`` for ``preset`` (its defaults, limits and sizes); ValidationError."""
    _check_reads(request, preset)
    steps = whole(
        preset.steps if request.steps is None else request.steps, "steps", 1, preset.max_steps
    )
    guidance = preset.guidance if request.guidance is None else request.guidance
    width, height, target = _sizes(request, preset)
    init = digest = None
    strength = 1.0
    if request.init_image is not None:
        strength = request.strength
        if steps * strength < 1:
            raise ValidationError(
                f"strength: steps x strength must be at least 1 so one denoising step runs; "
                f"got {steps} x {strength}. Raise steps or strength."
            )
        picture = load_image(request.init_image, "init_image")
        init, digest = picture.resize((width, height)), pixel_digest(picture)
    first = secrets.randbelow(MAX_SEED + 1) if request.seed is None else request.seed
    return Plan(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        seeds=tuple((first + index) % (MAX_SEED + 1) for index in range(request.num_images)),
        steps=steps,
        guidance=float(guidance),
        width=width,
        height=height,
        target=target,
        init_image=init,
        strength=strength,
        upscaler=request.upscaler,
        init_sha256=digest,
    )
