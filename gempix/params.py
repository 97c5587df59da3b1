"""The one request model: every generation field, its default, its range and its error text.

Every front door is built from ``GenerationRequest``: the options of ``gempix generate``
(``cli/generate.py``), the HTTP API's body (``api/schemas.GenerateBody``, so OpenAPI carries
the ranges and choices), the web app's controls and its ``/generate`` endpoint, batch JSONL
lines, the MCP tool; and every image's ``gempix`` PNG metadata turns back into one
(``request_from_params``). Building one checks every rule that needs no model and raises
``ValidationError`` naming the field, the rule and the value (never a prompt's text); what
depends on the model (its step limit, sizes in multiples of 8 or 16) is checked when the engine
resolves the request into a ``Plan`` (``engine/request.py``). See docs/architecture.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticError

from .engine.adapters import MAX_REFERENCES, MAX_STRENGTH
from .engine.request import MAX_SEED
from .engine.sizes import ASPECTS, MAX_OUTPUT_SIDE, MIN_SIDE, RESOLUTIONS
from .engine.upscale import CHOICES as UPSCALERS
from .errors import ValidationError, out_of_range, short
from .images import ImageSource, load_image, pixel_digest

MAX_PROMPT_CHARS = 2000
MAX_IMAGES = 8
MAX_STEPS = 100
MAX_GUIDANCE = 30.0
MAX_STYLES = 5
MAX_CHARACTER_CHARS = 64  # a character's name (or id)
DEFAULT_STRENGTH = 0.6
DEFAULT_STYLE_STRENGTH = 0.8
DEFAULT_CHARACTER_STRENGTH = 0.7
IMAGE_FIELDS = ("init_image", "style_image", "references")  # pictures: kept by SHA-256 only
# The text rules as patterns too, so that OpenAPI and MCP schemas state them (no NUL; a prompt
# has a visible character); the validators below say them in words.
NO_NUL = r"^[^\x00]*$"
VISIBLE_TEXT = r"^[^\x00]*[^\x00\s][^\x00]*$"
# ``_together``'s rules in JSON Schema, so that OpenAPI and MCP clients see them: a size is
# width and height (then no aspect, and native resolution) or neither; a saved character or
# one-off references, not both. (steps x strength >= 1 with an init image is a product that
# JSON Schema cannot state; it is described on ``strength``.)
_NULL = {"type": "null"}
BETWEEN_FIELDS = [
    {
        "anyOf": [
            {"properties": {"width": _NULL, "height": _NULL}},
            {
                "required": ["width", "height"],
                "properties": {
                    "width": {"type": "integer"},
                    "height": {"type": "integer"},
                    "aspect": _NULL,
                    "resolution": {"const": "native"},
                },
            },
        ]
    },
    {
        "anyOf": [
            {"properties": {"character": _NULL}},
            {"properties": {"references": {"maxItems": 0}}},
        ]
    },
]


class GenerationRequest(BaseModel):
    """Everything a front door can ask for; left out means the model's default.

    ``GenerationRequest("a fox", seed=7)`` takes the prompt positionally. Images (init image,
    style image, references) are a path, bytes or a PIL image, read when the request is used.
    """

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [{"prompt": "a lighthouse on a cliff at dawn", "seed": 7}],
            "allOf": BETWEEN_FIELDS,
        },
    )

    prompt: str = Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        pattern=VISIBLE_TEXT,
        description="What to draw (not blank).",
    )
    negative_prompt: str = Field(
        "",
        max_length=MAX_PROMPT_CHARS,
        pattern=NO_NUL,
        description="What the image should not show (needs guidance above 1).",
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=MAX_SEED,
        description="Seed of the first image (image i of a batch gets seed + i); random when "
        "left out, and always reported.",
    )
    steps: int | None = Field(
        None, ge=1, le=MAX_STEPS, description="Denoising steps (default: the model's)."
    )
    guidance: float | None = Field(
        None,
        ge=0.0,
        le=MAX_GUIDANCE,
        description="Classifier-free guidance, 0 for turbo models (default: the model's).",
    )
    width: int | None = Field(
        None,
        ge=MIN_SIDE,
        le=MAX_OUTPUT_SIDE,
        description="Width in pixels, with height instead of an aspect; past 2048 the image "
        "is upscaled.",
    )
    height: int | None = Field(
        None,
        ge=MIN_SIDE,
        le=MAX_OUTPUT_SIDE,
        description="Height in pixels, with width.",
    )
    aspect: Literal[tuple(ASPECTS)] | None = Field(  # type: ignore[valid-type]
        None, description="Aspect ratio (1:1 unless width and height are given)."
    )
    resolution: Literal[tuple(RESOLUTIONS)] = Field(  # type: ignore[valid-type]
        "native", description="Output size class: 2k/4k upscale the native image."
    )
    num_images: int = Field(1, ge=1, le=MAX_IMAGES, description="Images in the batch.")
    init_image: Any = Field(None, description="Start from this image (image-to-image).")
    strength: float = Field(
        DEFAULT_STRENGTH,
        gt=0.0,
        le=1.0,
        description="How much the init image may change; steps x strength must be at least 1.",
    )
    upscaler: Literal[UPSCALERS] = Field(  # type: ignore[valid-type]
        "auto",
        description="How 2k/4k and large sizes are reached: esrgan (a model), lanczos, or "
        "detail (then a diffusion detail pass); auto is esrgan when its weights are here.",
    )
    styles: tuple[str, ...] = Field(
        (), max_length=MAX_STYLES, description="Style presets, applied in order."
    )
    style_image: Any = Field(
        None, description="A style reference image: its look, not its content, is followed."
    )
    style_strength: float = Field(
        DEFAULT_STYLE_STRENGTH,
        ge=0.0,
        le=MAX_STRENGTH,
        description="Style reference strength, 0 (off) to 2.",
    )
    character: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_CHARACTER_CHARS,
        description="Id or name of one of your saved characters.",
    )
    references: tuple[Any, ...] = Field(
        (),
        max_length=MAX_REFERENCES,
        description=f"Or a one-off character: 1 to {MAX_REFERENCES} reference images, not saved.",
    )
    character_strength: float | None = Field(
        None,
        ge=0.0,
        le=MAX_STRENGTH,
        description="Character strength, 0 (off) to 2; left out: the saved character's own, "
        f"else {DEFAULT_CHARACTER_STRENGTH}.",
    )
    character_face: bool = Field(
        False, description="The character is a face: the plus-face adapter weights."
    )

    def __init__(self, prompt: Any = None, /, **fields: Any):
        if prompt is not None:
            fields["prompt"] = prompt
        try:
            super().__init__(**fields)
        except PydanticError as error:
            raise ValidationError(describe(error.errors(), type(self))) from None

    @model_validator(mode="before")
    @classmethod
    def _from_any_door(cls, fields: Any) -> Any:
        """Integral floats as whole numbers (sliders send 4.0), lists as tuples (JSON)."""
        if not isinstance(fields, dict):
            return fields
        fields = dict(fields)
        for name, value in fields.items():
            if isinstance(value, float) and value.is_integer() and name in _WHOLE:
                fields[name] = int(value)
            elif isinstance(value, list):
                fields[name] = tuple(value)
        return fields

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _text(cls, value: str, info) -> str:
        """Trimmed; blank also by Python's idea of a space (the pattern's engine differs)."""
        if info.field_name == "prompt" and not value.strip():
            raise ValueError("prompt: must not be empty.")
        return value.strip()

    @model_validator(mode="after")
    def _together(self) -> GenerationRequest:
        """Rules between fields: one way to give a size, and one way to give a character."""
        sized = self.width is not None or self.height is not None
        if sized and self.aspect:
            raise ValueError("size: give either width/height or an aspect ratio, not both.")
        if sized and (self.width is None or self.height is None):
            raise ValueError("size: give both width and height.")
        if sized and self.resolution != "native":
            raise ValueError("resolution: 2k/4k go with an aspect ratio, not width/height.")
        if self.character and self.references:
            raise ValueError("character: give a saved character or references, not both.")
        return self

    def fields(self) -> dict[str, Any]:
        """The request as keyword arguments (``GenerationRequest(**request.fields())``)."""
        return {name: getattr(self, name) for name in type(self).model_fields}


_WHOLE = {
    name
    for name, field in GenerationRequest.model_fields.items()
    if int in (field.annotation, *getattr(field.annotation, "__args__", ()))
}


MAX_EDIT_REFERENCES = 3  # extra pictures an edit model reads beside the source
MAX_EXTEND = 1024  # outpainting: pixels added on one side at most
SIDES = ("left", "top", "right", "bottom")
EDIT_IMAGE_FIELDS = ("source", "mask", "references")  # kept by SHA-256 in the metadata


class EditRequest(GenerationRequest):
    """An edit of one picture: by instruction (the prompt), inside a mask (inpaint), or onto a
    larger canvas (outpaint); everything else as for a generation.

    The result has the source's shape (or the outpainted canvas'), so size, aspect and
    resolution are not asked; the source is an image (path, bytes, PIL) or ``source_id``, one
    of the user's own generations. Pixels outside the mask (and the whole original area of an
    outpaint) are the source's own (``editing.py``).
    """

    prompt: str = Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description='The instruction ("make the jacket red"), or what to draw in the mask.',
    )
    source: Any = Field(None, description="The image to edit.")
    source_id: str | None = Field(
        None, min_length=1, max_length=64, description="Or the id of one of your generations."
    )
    mask: Any = Field(
        None, description="Inpaint: white (or painted, on transparency) where it may change."
    )
    outpaint: Literal[tuple(ASPECTS)] | None = Field(  # type: ignore[valid-type]
        None, description="Outpaint: widen or heighten the canvas to this aspect ratio."
    )
    outpaint_pixels: tuple[Annotated[int, Field(ge=0, le=MAX_EXTEND)], ...] = Field(
        (),
        max_length=4,
        description=f"Or add pixels per side: left, top, right, bottom (0-{MAX_EXTEND} each).",
    )
    strength: float = Field(
        1.0, gt=0.0, le=1.0, description="How much the masked area may change (1: redraw it)."
    )
    references: tuple[Any, ...] = Field(
        (),
        max_length=MAX_EDIT_REFERENCES,
        description=f"Up to {MAX_EDIT_REFERENCES} more pictures to combine (model permitting).",
    )

    @model_validator(mode="after")
    def _an_edit(self) -> EditRequest:
        """One source; the source decides the size; one way to outpaint."""
        if (self.source is None) == (self.source_id is None):
            raise ValueError("source: give one source image (or source_id), not both or none.")
        for name in ("width", "height", "aspect", "init_image"):
            if getattr(self, name) is not None:
                raise ValueError(
                    f"{name}: an edit keeps the source's shape; use outpaint to change it."
                )
        if self.resolution != "native":
            raise ValueError("resolution: an edit is made at the source's size; upscale after.")
        if self.outpaint_pixels and len(self.outpaint_pixels) != 4:
            raise ValueError("outpaint_pixels: give four numbers, left, top, right, bottom.")
        if self.outpaint and self.outpaint_pixels:
            raise ValueError("outpaint: give an aspect ratio or pixels per side, not both.")
        return self

    @property
    def extends(self) -> bool:
        return bool(self.outpaint or any(self.outpaint_pixels))


def field_range(name: str) -> tuple[float, float]:
    """The (low, high) a numeric field allows, as the model declares it."""
    low = high = None
    for rule in GenerationRequest.model_fields[name].metadata:
        if isinstance(rule, (Ge, Gt)):
            low = rule.ge if isinstance(rule, Ge) else rule.gt
        elif isinstance(rule, Le):
            high = rule.le
    return low, high


def field_choices(name: str) -> tuple[str, ...]:
    """The values a choice field allows (aspect, resolution, upscaler, outpaint)."""
    model = GenerationRequest if name in GenerationRequest.model_fields else EditRequest
    annotation = model.model_fields[name].annotation
    for option in (annotation, *getattr(annotation, "__args__", ())):
        if getattr(option, "__origin__", None) is Literal:
            return option.__args__
    raise KeyError(name)


def field_default(name: str) -> Any:
    return GenerationRequest.model_fields[name].default


def field_help(name: str) -> str:
    return GenerationRequest.model_fields[name].description or ""


def _range_message(field: str, item: dict[str, Any]) -> str:
    """A range error with both bounds: the model's own, else what pydantic reports."""
    context = item.get("ctx") or {}
    model = GenerationRequest.model_fields.get(field)
    low, high = field_range(field) if model else (None, None)
    low = context.get("ge", context.get("gt", low))
    high = context.get("le", high)
    open_low = "gt" in context or any(
        isinstance(rule, Gt) for rule in getattr(model, "metadata", ())
    )
    value = item.get("input")
    if low is not None and high is not None:
        return out_of_range(field, value, low, high, open_low)
    if high is None:
        return f"{field}: {value} is below the minimum, {low}."
    return f"{field}: {value} is above the maximum, {high}."


def _pattern_message(field: str, value: Any) -> str:
    if isinstance(value, str) and "\x00" in value:
        return f"{field}: contains a NUL character."
    return f"{field}: must not be empty." if not str(value).strip() else f"{field}: invalid text."


def _one(item: dict[str, Any], model: type[BaseModel]) -> str:
    field = ".".join(str(part) for part in item.get("loc", ())) or "request"
    kind, value = item.get("type", ""), item.get("input")
    context = item.get("ctx") or {}
    if kind == "value_error":
        return str(context.get("error", item.get("msg")))
    if kind == "missing":
        return f"{field}: required."
    if kind == "extra_forbidden":  # a name like the fields' is named; any other text is not
        shown = field if re.fullmatch(r"[a-z_]{1,30}", field) else "request: a field"
        return f"{shown}: unknown field; allowed: {', '.join(model.model_fields)}."
    if kind == "string_type":
        return f"{field}: expected text, got {type(value).__name__}."
    if kind == "string_too_short":
        return f"{field}: must not be empty."
    if kind == "string_pattern_mismatch":
        return _pattern_message(field, value)
    if kind == "string_too_long":
        return f"{field}: {len(value):,} characters; the limit is {context['max_length']:,}."
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{field}: expected a whole number, got {short(value)}."
    if kind in ("float_type", "float_parsing"):
        return f"{field}: expected a number, got {short(value)}."
    if kind == "finite_number":
        return f"{field}: must be a finite number, got {value}."
    if kind in ("greater_than", "greater_than_equal", "less_than_equal"):
        return _range_message(field, item)
    if kind == "literal_error":
        choices = field_choices(field) if field in GenerationRequest.model_fields else ()
        allowed = ", ".join(choices) or context.get("expected", "")
        return f"{field}: {short(value)} is not supported; choose one of {allowed}."
    if kind == "bool_type":
        return f"{field}: expected true or false, got {short(value)}."
    if kind == "too_long":
        return f"{field}: {context['actual_length']} given; at most {context['max_length']}."
    if kind in ("tuple_type", "list_type"):
        return f"{field}: expected a list, got {type(value).__name__}."
    return f"{field}: {item.get('msg', 'invalid value')}."


def describe(errors: Sequence[dict[str, Any]], model: type[BaseModel] = GenerationRequest) -> str:
    """The errors pydantic found, in GemPix's words (at most three); every door shows this."""
    parts = [_one(item, model) for item in errors[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return " ".join(parts) + more


# -- the round trip through PNG metadata -----------------------------------------------------


def digest_of(source: ImageSource, field: str) -> str:
    """SHA-256 of an image's upright RGB pixels: the same picture as a file, bytes or a PIL
    image gives the same digest, which is what image metadata keeps instead of the picture."""
    return pixel_digest(load_image(source, field))


def _supplied(field: str, wanted: Any, images: Mapping[str, Any]) -> Any:
    """The caller's image(s) for ``field`` when they match the recorded digest(s)."""
    wanted = list(wanted) if isinstance(wanted, (list, tuple)) else [wanted]
    given = images.get(field)
    given = list(given) if isinstance(given, (list, tuple)) else [given] if given else []
    label = "this start image" if field == "init_image" else f"its {field.replace('_', ' ')}"
    if not given:
        raise ValidationError(
            f"{field}: the image was made with {label} (sha256 {wanted[0][:12]}…), which is not "
            "kept; pass the same file to make it again."
        )
    digests = [digest_of(source, field) for source in given]
    if digests != wanted:
        raise ValidationError(
            f"{field}: the image you passed is not the one this image was made with "
            f"(sha256 {wanted[0][:12]}…)."
        )
    return tuple(given) if field == "references" else given[0]


def request_from_params(
    params: Mapping[str, Any], images: Mapping[str, Any] | None = None
) -> GenerationRequest:
    """The request that makes one image again from the ``gempix`` metadata it carries.

    Every field that changes pixels is in the metadata except the pictures a request brought
    (init image, style image, one-off references): those are kept as SHA-256 digests, so the
    caller passes the same files in ``images`` (``{"init_image": path, ...}``) and a missing or
    different one is a ValidationError, never silently another image. An edit's parameters
    give an ``EditRequest`` (its source, mask and references the same way).
    """
    images = images or {}
    if params.get("edit"):
        return _edit_from_params(params, images)
    return GenerationRequest(**_common_fields(params, images))


def _common_fields(params: Mapping[str, Any], images: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a generation and an edit share, from an image's parameters."""
    if not params.get("prompt"):
        raise ValidationError(
            "prompt: this image carries no prompt (written with GEMPIX_METADATA_PROMPT=false), "
            "so it cannot be made again from its metadata."
        )
    sized = params.get("aspect") is None
    character = params.get("character") or {}
    style = params.get("style_reference") or {}
    fields: dict[str, Any] = {
        "prompt": params["prompt"],
        "negative_prompt": params.get("negative_prompt", ""),
        "seed": params["seed"],
        "steps": params["steps"],
        "guidance": params["guidance"],
        "width": params["base_width"] if sized else None,
        "height": params["base_height"] if sized else None,
        "aspect": params.get("aspect"),
        "resolution": params.get("resolution", "native"),
        "upscaler": params.get("upscaler") or "auto",
        "character": character.get("id"),
        "character_strength": character.get("strength"),
        "character_face": bool(character.get("face")),
    }
    if params.get("img2img"):
        fields["init_image"] = _supplied("init_image", params["init_sha256"], images)
        fields["strength"] = params["strength"]
    if style:
        fields["style_image"] = _supplied("style_image", style["sha256"], images)
        fields["style_strength"] = style["strength"]
    if character and character.get("id") is None:
        fields["references"] = _supplied("references", character["sha256"], images)
    return fields


def _edit_from_params(params: Mapping[str, Any], images: Mapping[str, Any]) -> EditRequest:
    """An edit again: the same source (given, or still in the user's gallery by id), mask and
    references, each checked against its recorded SHA-256."""
    edit = params["edit"]
    fields = _common_fields({**params, "img2img": False}, images)
    for name in ("width", "height", "aspect", "resolution"):
        fields.pop(name)
    source = edit["source"]
    if images.get("source") is None and source.get("generation_id"):
        fields["source_id"] = source["generation_id"]
    else:
        fields["source"] = _supplied("source", source["sha256"], images)
    if edit.get("mask_sha256"):
        fields["mask"] = _supplied("mask", edit["mask_sha256"], images)
    if edit.get("references_sha256") and not fields.get("references"):
        fields["references"] = _supplied("references", edit["references_sha256"], images)
    outpaint_pixels = edit.get("outpaint_pixels") or ()
    fields.update(
        strength=edit["strength"],
        outpaint=edit.get("outpaint"),
        outpaint_pixels=() if edit.get("outpaint") else tuple(outpaint_pixels),
    )
    return EditRequest(**fields)
