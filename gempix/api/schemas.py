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
    BETWEEN_FIELDS,
    MAX_CHARACTER_CHARS,
    MAX_EDIT_REFERENCES,
    MAX_REFERENCES,
    EditRequest,
    GenerationRequest,
    field_range,
)
from ..styles import load_presets

BASE64 = "base64 (PNG, JPEG, WebP; a data: URL is accepted too)"
STRENGTH = field_range("character_strength")
SIZE_MULTIPLE = 8
# A character's name as the store checks it (store/generations._check_name): 1-64 printable
# characters, not all spaces.
NAME_PATTERN = r"^[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f\s][^\x00-\x1f\x7f]*$"
TRUE_ONLY = {"const": True}  # a confirmation: false is not a choice, it is a missing confirmation
# A 1x1 PNG, so that every example in the schema is a request the server accepts.
EXAMPLE_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC"
)
IMAGE_ID = "4f72a6b0c3d94e1f8a2b7c6d5e4f3a21"
CHARACTER_ID = "9c1e0d2b4a6f48e3b5c7d9e1f3a5b7c9"
WHEN = "2026-11-30T09:15:00+00:00"


def examples(*values: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(values)})


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


IMAGE_EXAMPLE = {
    "id": IMAGE_ID,
    "url": f"http://127.0.0.1:7860/api/v1/images/{IMAGE_ID}",
    "seed": 7,
    "width": 512,
    "height": 512,
    "created_at": WHEN,
    "consistency": None,
    "params": {"prompt": "a lighthouse on a cliff at dawn", "seed": 7, "steps": 1},
}


def serve_limits(properties: dict[str, Any], max_images: int) -> dict[str, Any]:
    """What one server adds to the generate and edit bodies' schemas (OpenAPI and the MCP
    tool): its own image-count limit, the names of its style presets (each at most once), and
    sides in multiples of 8, which every model needs (the model checks it: engine/request.py;
    some need 16, said in the description)."""
    properties["num_images"]["maximum"] = max_images
    for side in ("width", "height") if "width" in properties else ():
        properties[side]["anyOf"][0]["multipleOf"] = SIZE_MULTIPLE
    properties["styles"]["items"] = {"type": "string", "enum": list(load_presets())}
    properties["styles"]["uniqueItems"] = True
    return properties


def body_schema(body: type[BaseModel], max_images: int) -> dict[str, Any]:
    """The generate or edit body's schema as this server serves it (``serve_limits``)."""
    schema = body.model_json_schema()
    serve_limits(schema["properties"], max_images)
    return schema


def _edit_schema(schema: dict[str, Any]) -> None:
    """The edit body's schema leaves out what an edit refuses (the source decides the size),
    so the documented body is the accepted one; a character or references, not both."""
    for name in ("width", "height", "aspect", "resolution", "init_image"):
        schema["properties"].pop(name, None)
    schema["allOf"] = BETWEEN_FIELDS[1:]
    schema["properties"]["outpaint_pixels"]["oneOf"] = [{"maxItems": 0}, {"minItems": 4}]
    schema["examples"] = [{"prompt": "make the sky stormy", "source_id": IMAGE_ID, "seed": 7}]


class EditBody(EditRequest):
    """Everything ``gempix edit`` can ask for: a source (or ``source_id``), an instruction in
    ``prompt``, a mask to inpaint, an outpaint; left out means the model's default."""

    model_config = ConfigDict(json_schema_extra=_edit_schema)

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
    model_config = examples({"image": EXAMPLE_PNG})

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
    model_config = examples(IMAGE_EXAMPLE)

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
    model_config = examples(
        {
            "ok": True,
            "model": "sd-turbo",
            "notice": "",
            "warnings": [],
            "duration_ms": 812.4,
            "images": [IMAGE_EXAMPLE],
        }
    )

    ok: Literal[True] = True
    model: str
    notice: str = Field(description="Non-empty when the server serves something else than asked.")
    warnings: list[str]
    duration_ms: float
    images: list[ImageOut]


class ImagesPage(BaseModel):
    model_config = examples(
        {"ok": True, "items": [IMAGE_EXAMPLE], "limit": 24, "offset": 0, "has_more": False}
    )

    ok: Literal[True] = True
    items: list[ImageOut]
    limit: int
    offset: int
    has_more: bool


class Deleted(BaseModel):
    model_config = examples({"ok": True, "deleted": IMAGE_ID})

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
    model_config = examples(
        {
            "ok": True,
            "categories": ["art"],
            "styles": [
                {
                    "name": "watercolor",
                    "label": "Watercolor",
                    "category": "art",
                    "prompt": "watercolor painting of {prompt}, soft washes",
                    "negative": "photo, 3d render",
                    "recommended": {},
                }
            ],
        }
    )

    ok: Literal[True] = True
    categories: list[str]
    styles: list[StyleOut]


class CharacterCreate(Body):
    model_config = examples(
        {"name": "Ada", "references": [EXAMPLE_PNG], "rights_confirmed": True, "strength": 0.7}
    )

    name: str = Field(
        min_length=1,
        max_length=MAX_CHARACTER_CHARS,
        pattern=NAME_PATTERN,
        description="1 to 64 printable characters, unique per user.",
    )
    references: list[str] = Field(
        min_length=1,
        max_length=MAX_REFERENCES,
        description=f"1 to {MAX_REFERENCES} reference images, {BASE64}.",
    )
    rights_confirmed: bool = Field(
        description="Must be true: you have the rights to use these images.",
        json_schema_extra=TRUE_ONLY,
    )
    strength: float | None = Field(
        None, ge=STRENGTH[0], le=STRENGTH[1], description="How strongly generations follow it."
    )


class CharacterPatch(Body):
    """At least one of name, references, strength; new references need rights_confirmed."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Ada L."}, {"strength": 0.9}],
            "anyOf": [{"required": [name]} for name in ("name", "references", "strength")],
            "dependentRequired": {"references": ["rights_confirmed"]},
        }
    )

    # Left out means unchanged; null is not a value (a field is given or not).
    name: str = Field(None, min_length=1, max_length=MAX_CHARACTER_CHARS, pattern=NAME_PATTERN)  # type: ignore[assignment]
    references: list[str] = Field(
        None,
        min_length=1,
        max_length=MAX_REFERENCES,
        description="New reference images (replace the old).",
    )  # type: ignore[assignment]
    rights_confirmed: bool = Field(
        None, description="Required (true) with new references.", json_schema_extra=TRUE_ONLY
    )  # type: ignore[assignment]
    strength: float = Field(None, ge=STRENGTH[0], le=STRENGTH[1])  # type: ignore[assignment]


CHARACTER_EXAMPLE = {
    "id": CHARACTER_ID,
    "name": "Ada",
    "created_at": WHEN,
    "references": 1,
    "strength": 0.7,
    "rights_confirmed_at": WHEN,
}


class CharacterOut(BaseModel):
    model_config = examples(CHARACTER_EXAMPLE)

    id: str
    name: str
    created_at: str | None = None
    references: int = Field(description="How many reference images it has.")
    strength: float | None = None
    rights_confirmed_at: str | None = None


class CharacterOne(BaseModel):
    model_config = examples({"ok": True, "character": CHARACTER_EXAMPLE})

    ok: Literal[True] = True
    character: CharacterOut


class CharactersOut(BaseModel):
    model_config = examples({"ok": True, "characters": [CHARACTER_EXAMPLE]})

    ok: Literal[True] = True
    characters: list[CharacterOut]


class MeOut(BaseModel):
    model_config = examples(
        {"ok": True, "key_prefix": "3f9a1c0b7d2e", "role": "user", "age_confirmed": True}
    )

    ok: Literal[True] = True
    key_prefix: str
    role: str
    age_confirmed: bool


class ConfirmAge(Body):
    model_config = examples({"confirm": True})

    confirm: bool = Field(
        description="true: I confirm that I am at least the minimum age this server requires.",
        json_schema_extra=TRUE_ONLY,
    )


class ConsentState(BaseModel):
    granted: bool
    default: bool = Field(description="True while you never chose (the purpose's default).")
    since: str | None = None
    policy_version: str | None = None
    method: str | None = None


CONSENT_EXAMPLE = {
    "training": {"granted": False, "default": True, "since": None, "policy_version": None,
                 "method": None},
    "analytics": {"granted": True, "default": False, "since": WHEN, "policy_version": "1",
                  "method": "api"},
}  # fmt: skip


class ConsentOut(BaseModel):
    model_config = examples({"ok": True, "consent": CONSENT_EXAMPLE})

    ok: Literal[True] = True
    consent: dict[str, ConsentState]


class ConsentPut(Body):
    """At least one purpose; left out means unchanged."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"training": False}, {"analytics": False}],
            "anyOf": [{"required": ["training"]}, {"required": ["analytics"]}],
        }
    )

    training: bool = Field(None, description="Allow training on your prompts and images.")  # type: ignore[assignment]
    analytics: bool = Field(
        None, description="Be counted in anonymous usage statistics (false objects)."
    )  # type: ignore[assignment]


class ErasureOut(BaseModel):
    model_config = examples(
        {
            "ok": True,
            "erased": True,
            "verified": True,
            "rows": {"generations": 12, "characters": 1},
            "files": 14,
            "bytes": 5242880,
            "cached_copies": 3,
            "usage_events": 20,
            "seconds": 0.412,
        }
    )

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
    model_config = examples(
        {
            "ok": True,
            "since": "2026-11-01T00:00:00+00:00",
            "k": 5,
            "reports": {"style_trends": [{"day": "2026-11-30", "style": "watercolor", "uses": 17}]},
        }
    )

    ok: Literal[True] = True
    since: str
    k: int = Field(description="Cells with fewer distinct visitors are null (suppressed).")
    reports: dict[str, list[dict[str, Any]]]


class VerifyBody(Body):
    model_config = examples({"image": EXAMPLE_PNG})

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
    model_config = examples({"ok": True, "status": "ok", "version": "0.1.0"})

    ok: Literal[True] = True
    status: Literal["ok"] = "ok"
    version: str


class ErrorOut(BaseModel):
    """The one error shape of every route."""

    model_config = examples(
        {"ok": False, "error": "steps: 0 is out of range 1-100.", "status": 400}
    )

    ok: Literal[False] = False
    error: str
    status: int


def iso(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()
