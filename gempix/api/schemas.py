"""Request and response bodies, as the OpenAPI schema shows them.

The bodies check types only (strictly: ``"5"`` is not a number); the rules (sizes, ranges,
known styles...) are the service's, so the API says exactly what the CLI and the web app say.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..engine.adapters import MAX_REFERENCES
from ..engine.request import (
    DEFAULT_CHARACTER_STRENGTH,
    DEFAULT_STYLE_STRENGTH,
    MAX_IMAGES,
    MAX_PROMPT_CHARS,
)
from ..engine.sizes import ASPECTS, RESOLUTIONS
from ..engine.upscale import CHOICES as UPSCALERS


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class GenerateBody(Body):
    """Everything ``gempix generate`` can ask for; left out means the model's default."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"prompt": "a lighthouse on a cliff at dawn", "seed": 7}]}
    )

    prompt: str = Field(max_length=MAX_PROMPT_CHARS, description="What to draw.")
    negative_prompt: str = Field("", max_length=MAX_PROMPT_CHARS, description="What to avoid.")
    seed: int | None = Field(
        None, description="Seed of the first image (0 to 2^32-1); image i gets seed + i."
    )
    steps: int | None = Field(None, description="Denoising steps (the model's default if null).")
    guidance: float | None = Field(
        None, description="Classifier-free guidance, 0 to 30 (turbo models use 0)."
    )
    width: int | None = Field(None, description="Width in pixels (give height too, not aspect).")
    height: int | None = Field(None, description="Height in pixels.")
    aspect: str | None = Field(None, description=f"Aspect ratio: {', '.join(ASPECTS)}.")
    resolution: str = Field(
        "native", description=f"Output size class: {', '.join(RESOLUTIONS)} (2k/4k upscale)."
    )
    num_images: int = Field(1, description=f"Images to make, 1 to {MAX_IMAGES}.")
    init_image: str | None = Field(
        None,
        description="A start image (image-to-image), base64 (PNG, JPEG, WebP); a data: URL "
        "is accepted too.",
    )
    strength: float = Field(0.6, description="How much the init image may change, (0, 1].")
    upscaler: str = Field("auto", description=f"Upscaler for 2k/4k: {', '.join(UPSCALERS)}.")
    styles: list[str] = Field(
        [], max_length=16, description="Style preset names (GET /styles), applied in order."
    )
    style_image: str | None = Field(
        None, description="A style reference image, base64: its look, not its content, is used."
    )
    style_strength: float = Field(
        DEFAULT_STYLE_STRENGTH, description="Style reference strength, 0 (off) to 2."
    )
    character: str | None = Field(
        None, description="Id or name of one of your characters (GET /characters)."
    )
    references: list[str] = Field(
        [],
        max_length=MAX_REFERENCES,
        description="Or a one-off character: 1 to 4 reference images, base64 (not saved).",
    )
    character_strength: float | None = Field(
        None,
        description="Character strength, 0 (off) to 2; null: the character's own, else "
        f"{DEFAULT_CHARACTER_STRENGTH}.",
    )
    character_face: bool = Field(
        False, description="The character is a face: use the plus-face adapter weights."
    )


class ImageOut(BaseModel):
    id: str
    url: str = Field(description="GET this URL with your key for the PNG.")
    seed: int
    width: int
    height: int
    created_at: str | None = None
    consistency: float | None = Field(
        None, description="With a character: cosine similarity to its references, -1 to 1."
    )
    params: dict[str, Any] = Field(description="Every parameter needed to make it again.")


class GenerateOut(BaseModel):
    ok: Literal[True] = True
    model: str
    notice: str = Field(description="Non-empty when the server serves something else than asked.")
    warnings: list[str]
    duration_ms: float
    images: list[ImageOut]


class ImagesPage(BaseModel):
    ok: Literal[True] = True
    items: list[ImageOut]
    limit: int
    offset: int
    has_more: bool


class Deleted(BaseModel):
    ok: Literal[True] = True
    deleted: str


class StyleOut(BaseModel):
    name: str
    label: str
    category: str
    prompt: str
    negative: str
    recommended: dict[str, Any] = {}
    user: bool = False


class StylesOut(BaseModel):
    ok: Literal[True] = True
    categories: list[str]
    styles: list[StyleOut]


class CharacterCreate(Body):
    name: str = Field(max_length=64, description="1 to 64 printable characters, unique per user.")
    references: list[str] = Field(
        min_length=1, max_length=4, description="1 to 4 reference images, base64 each."
    )
    rights_confirmed: bool = Field(
        description="Must be true: you have the rights to use these images."
    )
    strength: float | None = Field(None, description="How strongly generations follow it.")


class CharacterPatch(Body):
    name: str | None = Field(None, max_length=64)
    references: list[str] | None = Field(
        None, min_length=1, max_length=4, description="New reference images (replace the old)."
    )
    rights_confirmed: bool | None = Field(None, description="Required with new references.")
    strength: float | None = None


class CharacterOut(BaseModel):
    id: str
    name: str
    created_at: str | None = None
    references: int = Field(description="How many reference images it has.")
    strength: float | None = None
    rights_confirmed_at: str | None = None


class CharacterOne(BaseModel):
    ok: Literal[True] = True
    character: CharacterOut


class CharactersOut(BaseModel):
    ok: Literal[True] = True
    characters: list[CharacterOut]


class MeOut(BaseModel):
    ok: Literal[True] = True
    key_prefix: str
    role: str
    age_confirmed: bool


class ConfirmAge(Body):
    confirm: bool = Field(
        description="true: I confirm that I am at least the minimum age this server requires."
    )


class ConsentState(BaseModel):
    granted: bool
    default: bool = Field(description="True while you never chose (the purpose's default).")
    since: str | None = None
    policy_version: str | None = None
    method: str | None = None


class ConsentOut(BaseModel):
    ok: Literal[True] = True
    consent: dict[str, ConsentState]


class ConsentPut(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"training": False}]})

    training: bool | None = Field(None, description="Allow training on your prompts and images.")
    analytics: bool | None = Field(
        None, description="Be counted in anonymous usage statistics (false objects)."
    )


class ErasureOut(BaseModel):
    ok: Literal[True] = True
    erased: bool
    verified: bool
    rows: dict[str, int]
    files: int
    bytes: int
    cached_copies: int
    usage_events: int
    seconds: float


class AnalyticsOut(BaseModel):
    ok: Literal[True] = True
    since: str
    k: int = Field(description="Cells with fewer distinct visitors are null (suppressed).")
    reports: dict[str, list[dict[str, Any]]]


class Health(BaseModel):
    ok: Literal[True] = True
    status: Literal["ok"] = "ok"
    version: str


class ErrorOut(BaseModel):
    """The one error shape of every route."""

    ok: Literal[False] = False
    error: str
    status: int


def iso(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()
