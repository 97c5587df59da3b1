"""Request and response bodies, as the OpenAPI schema shows them.

The generate body is the request model itself (``gempix.params.GenerationRequest``: every
field's default, range, choices and rule), with images as base64 text; so OpenAPI carries the
real constraints and the API says exactly what the CLI and the web app say. Other bodies
check types strictly (``"5"`` is not a number) and forbid unknown fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..catalogue import ModelInfo
from ..params import (
    MAX_CHARACTER_CHARS,
    MAX_EDIT_REFERENCES,
    MAX_REFERENCES,
    EditRequest,
    GenerationRequest,
    field_range,
)

BASE64 = "base64 (PNG, JPEG, WebP; a data: URL is accepted too)"
STRENGTH = field_range("character_strength")


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class GenerateBody(GenerationRequest):
    """Everything ``gempix generate`` can ask for; left out means the model's default."""

    init_image: str | None = Field(None, description=f"A start image (image-to-image), {BASE64}.")
    style_image: str | None = Field(
        None, description=f"A style reference image, {BASE64}: its look, not its content."
    )
    references: tuple[str, ...] = Field(
        (),
        max_length=MAX_REFERENCES,
        description=f"Or a one-off character: 1 to {MAX_REFERENCES} reference images, "
        f"{BASE64}; not saved.",
    )


class EditBody(EditRequest):
    """Everything ``gempix edit`` can ask for: a source (or ``source_id``), an instruction in
    ``prompt``, a mask to inpaint, an outpaint; left out means the model's default."""

    source: str | None = Field(None, description=f"The image to edit, {BASE64}.")
    mask: str | None = Field(
        None,
        description=f"Inpaint: {BASE64}, the source's size; white (or painted on "
        "transparency) where it may change.",
    )
    style_image: str | None = Field(
        None, description=f"A style reference image, {BASE64}: its look, not its content."
    )
    references: tuple[str, ...] = Field(
        (),
        max_length=MAX_EDIT_REFERENCES,
        description=f"Up to {MAX_EDIT_REFERENCES} more pictures to combine, {BASE64}.",
    )


class InfoBody(Body):
    image: str = Field(description=f"A PNG or JPEG, {BASE64}.")


class InfoOut(BaseModel):
    ok: Literal[True] = True
    kind: Literal["gempix", "a1111", "fooocus", "comfyui"] | None = Field(
        description="Who wrote the parameters; null when none were found."
    )
    message: str
    model: str | None
    fields: dict[str, Any] = Field(
        description="In the generate body's names (prompt, seed, steps, guidance, width...)."
    )
    raw: Any = Field(description="What the image carries, as found.")


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


class StylesOut(BaseModel):
    ok: Literal[True] = True
    categories: list[str]
    styles: list[StyleOut]


class CharacterCreate(Body):
    name: str = Field(
        max_length=MAX_CHARACTER_CHARS, description="1 to 64 printable characters, unique per user."
    )
    references: list[str] = Field(
        min_length=1,
        max_length=MAX_REFERENCES,
        description=f"1 to {MAX_REFERENCES} reference images, {BASE64}.",
    )
    rights_confirmed: bool = Field(
        description="Must be true: you have the rights to use these images."
    )
    strength: float | None = Field(
        None, ge=STRENGTH[0], le=STRENGTH[1], description="How strongly generations follow it."
    )


class CharacterPatch(Body):
    name: str | None = Field(None, max_length=MAX_CHARACTER_CHARS)
    references: list[str] | None = Field(
        None,
        min_length=1,
        max_length=MAX_REFERENCES,
        description="New reference images (replace the old).",
    )
    rights_confirmed: bool | None = Field(None, description="Required with new references.")
    strength: float | None = Field(None, ge=STRENGTH[0], le=STRENGTH[1])


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


class VerifyBody(Body):
    image: str = Field(description=f"The image to check, {BASE64}; any image, not only GemPix's.")


class C2paOut(BaseModel):
    status: Literal["absent", "invalid", "untrusted", "valid"] = Field(
        description="absent: no manifest; invalid: changed after signing; untrusted: intact, "
        "signer on no trust list (GemPix's local CA); valid: intact and trusted."
    )
    codes: list[str] = Field(description="C2PA failure codes, e.g. signingCredential.untrusted.")
    message: str
    chain: list[dict[str, Any]] = Field(
        description="The active manifest, then those of its ingredients: title, claim "
        "generator, signer, actions, digital source types, ingredients, training-mining."
    )


class WatermarkOut(BaseModel):
    found: bool = Field(description="A mark in GemPix's layout was decoded.")
    gempix: bool = Field(description="It is GemPix's own identifier (GPX1).")
    identifier: str | None = Field(description="The decoded 32-bit identifier, hex.")
    score: float = Field(description="Sync peak in standard deviations; found needs >= 6.")


class VerifyOut(BaseModel):
    ok: Literal[True] = True
    format: str
    width: int
    height: int
    c2pa: C2paOut
    iptc_source_type: str | None = Field(description="IPTC DigitalSourceType in XMP, if any.")
    ai_disclosed: bool = Field(description="The XMP says trainedAlgorithmicMedia.")
    watermark: WatermarkOut
    gempix_params: dict[str, Any] | None = Field(description="GemPix's parameters chunk, if any.")
    marks: list[str] = Field(description="Marks present (c2pa, iptc, watermark, gempix_params).")
    lines: list[str] = Field(description="The report in plain sentences.")


class ModelsOut(BaseModel):
    ok: Literal[True] = True
    auto: str = Field(description="What model=auto picks on this server.")
    auto_reason: str
    models: list[ModelInfo] = Field(
        description="Each preset (gempix/catalogue.py): previews is the live-preview decoder "
        'or "none"; memory_gib is per memory mode on a GPU.'
    )


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
