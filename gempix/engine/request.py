"""What a caller asks for, and its validation against a model: request in, plan out.

Validation happens before any computation and names the field, the rule and the value
received, the way diffusers' ``check_inputs`` does. A ``Plan`` is a request resolved against
one model: defaults filled, sizes computed, seeds drawn, the init image decoded.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from typing import Any

from PIL import Image

from ..errors import ValidationError
from ..images import ImageSource, load_image
from .adapters import MAX_REFERENCES, check_strength
from .presets import ModelPreset
from .sizes import (
    MAX_GENERATION_SIDE,
    MAX_OUTPUT_SIDE,
    MIN_SIDE,
    base_size,
    parse_aspect,
    parse_resolution,
    target_size,
)
from .upscale import CHOICES, check_backend

MAX_PROMPT_CHARS = 2000
MAX_IMAGES = 8
MAX_SEED = 2**32 - 1
MAX_GUIDANCE = 30.0
UPSCALERS = CHOICES  # ("auto", "lanczos", "esrgan", "detail"), declared in upscale.py
DEFAULT_STYLE_STRENGTH = 0.8
DEFAULT_CHARACTER_STRENGTH = 0.7


@dataclasses.dataclass
class GenerationRequest:
    """Everything a front door can ask for. ``None`` means "the model's default"."""

    prompt: str
    negative_prompt: str = ""
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    width: int | None = None
    height: int | None = None
    aspect: str | None = None
    resolution: str = "native"
    num_images: int = 1
    init_image: ImageSource | None = None
    strength: float = 0.6
    upscaler: str = "auto"
    styles: tuple[str, ...] = ()  # preset names, applied by the service before planning
    style_image: ImageSource | None = None  # its look, not its content, steers the result
    style_strength: float = DEFAULT_STYLE_STRENGTH
    character: str | None = None  # id or name of one of the caller's saved characters
    references: tuple[ImageSource, ...] = ()  # or a one-off character: 1-4 images, not saved
    character_strength: float | None = None  # None: the saved character's own, else the default
    character_face: bool = False  # the plus-face adapter weights, for a character that is a face


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

    @property
    def num_images(self) -> int:
        return len(self.seeds)

    @property
    def upscaled(self) -> bool:
        return self.target != (self.width, self.height)


def _text(value: Any, field: str, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError(f"{field}: expected text, got {type(value).__name__}.")
    if "\x00" in value:
        raise ValidationError(f"{field}: contains a NUL character.")
    if required and not value.strip():
        raise ValidationError(f"{field}: must not be empty.")
    if len(value) > MAX_PROMPT_CHARS:
        raise ValidationError(
            f"{field}: {len(value):,} characters; the limit is {MAX_PROMPT_CHARS:,}."
        )
    return value.strip()


def _integer(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValidationError(f"{field}: expected a whole number, got {value!r}.")
    if not low <= value <= high:
        raise ValidationError(f"{field}: {value} is out of range; allowed {low} to {high}.")
    return value


def _number(value: Any, field: str, low: float, high: float, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{field}: expected a number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValidationError(f"{field}: must be a finite number, got {value}.")
    too_low = value <= low if low_open else value < low
    if too_low or value > high:
        bracket = "(" if low_open else "["
        raise ValidationError(f"{field}: {value} is outside {bracket}{low}, {high}].")
    return value


def _side(value: Any, field: str, multiple: int) -> int:
    side = _integer(value, field, MIN_SIDE, MAX_OUTPUT_SIDE)
    if side % multiple:
        raise ValidationError(
            f"{field}: {side} is not a multiple of {multiple}, which this model needs "
            f"(try {side - side % multiple} or {side - side % multiple + multiple})."
        )
    return side


def _seeds(seed: Any, count: int) -> tuple[int, ...]:
    first = secrets.randbelow(MAX_SEED + 1) if seed is None else _integer(seed, "seed", 0, MAX_SEED)
    return tuple((first + index) % (MAX_SEED + 1) for index in range(count))


def _sizes(request: GenerationRequest, preset: ModelPreset) -> tuple[int, int, tuple[int, int]]:
    explicit = request.width is not None or request.height is not None
    if explicit and request.aspect:
        raise ValidationError("size: give either width/height or an aspect ratio, not both.")
    if explicit:
        if request.width is None or request.height is None:
            raise ValidationError("size: give both width and height.")
        if parse_resolution(request.resolution) != "native":
            raise ValidationError("resolution: 2k/4k go with an aspect ratio, not width/height.")
        width = _integer(request.width, "width", MIN_SIDE, MAX_OUTPUT_SIDE)
        height = _integer(request.height, "height", MIN_SIDE, MAX_OUTPUT_SIDE)
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


def check(request: GenerationRequest) -> None:
    """The checks that need no model, so a bad request fails before a model loads."""
    if not isinstance(request, GenerationRequest):
        raise ValidationError("request: expected a GenerationRequest.")
    _text(request.prompt, "prompt", required=True)
    _text(request.negative_prompt, "negative_prompt", required=False)
    _integer(request.num_images, "num_images", 1, MAX_IMAGES)
    if request.seed is not None:
        _integer(request.seed, "seed", 0, MAX_SEED)
    if request.aspect is not None:
        parse_aspect(request.aspect)
    parse_resolution(request.resolution)
    check_backend(request.upscaler)
    _check_references(request)


def _check_references(request: GenerationRequest) -> None:
    """Strengths, and a character given one way only; the images are read when used."""
    check_strength(request.style_strength, "style_strength")
    if request.character_strength is not None:
        check_strength(request.character_strength, "character_strength")
    if not isinstance(request.character_face, bool):
        raise ValidationError(
            f"character_face: expected true or false, got {request.character_face!r}."
        )
    if request.character is not None and not isinstance(request.character, str):
        raise ValidationError(f"character: expected a name or id, got {request.character!r}.")
    references = request.references
    if not isinstance(references, (tuple, list)):
        raise ValidationError("references: expected a list of 1 to 4 images.")
    if request.character and references:
        raise ValidationError("character: give a saved character or references, not both.")
    if len(references) > MAX_REFERENCES:
        raise ValidationError(
            f"references: {len(references)} images; a character has 1 to {MAX_REFERENCES}."
        )


def plan(request: GenerationRequest, preset: ModelPreset) -> Plan:
    """Validate ``request`` for ``preset`` and resolve every default; raise ValidationError."""
    check(request)
    prompt = _text(request.prompt, "prompt", required=True)
    negative = _text(request.negative_prompt, "negative_prompt", required=False)
    count = request.num_images
    steps = _integer(
        preset.steps if request.steps is None else request.steps, "steps", 1, preset.max_steps
    )
    guidance = _number(
        preset.guidance if request.guidance is None else request.guidance,
        "guidance",
        0.0,
        MAX_GUIDANCE,
    )
    width, height, target = _sizes(request, preset)
    init = None
    strength = 1.0
    if request.init_image is not None:
        strength = _number(request.strength, "strength", 0.0, 1.0, low_open=True)
        if steps * strength < 1:
            raise ValidationError(
                f"strength: steps x strength must be at least 1 so one denoising step runs; "
                f"got {steps} x {strength}. Raise steps or strength."
            )
        init = load_image(request.init_image, "init_image").resize((width, height))
    return Plan(
        prompt=prompt,
        negative_prompt=negative,
        seeds=_seeds(request.seed, count),
        steps=steps,
        guidance=guidance,
        width=width,
        height=height,
        target=target,
        init_image=init,
        strength=strength,
        upscaler=check_backend(request.upscaler),
    )
