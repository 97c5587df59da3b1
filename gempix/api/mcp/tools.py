"""GemPix's MCP tools: each one an argument model and a translation to the core.

- ``generate_image``: the arguments are the HTTP API's generate body, i.e. the one request
  model (``gempix/params.py``) with images as base64, so every field, range and choice of
  ``POST /api/v1/generate`` is in the tool's schema, and the same checks, age gate, GPU queue
  and gallery apply (``routes/generate.prepare`` and ``run_generation``).
- ``edit_image``: the same for ``POST /api/v1/edit`` (the edit body; ``routes/edit.prepare``
  and ``run_edit``): instruction, inpaint, outpaint, of an image sent or one of the caller's.
- ``list_images``: a page of the caller's gallery (``studio.images``).
- ``verify_image``: the provenance report of ``studio.provenance.verify``, for one of the
  caller's images or any image sent as base64.

Images come back as MCP image content, capped per image at ``IMAGE_CONTENT_MAX_BYTES``: the
PNG itself when it fits, else a JPEG preview (longest side ``PREVIEW_SIDE``); the full PNG is
always at the image's absolute ``url`` (GET it with the same key).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp import types
from PIL import Image
from pydantic import BaseModel, Field, model_validator
from pydantic import ValidationError as PydanticError

from ...errors import ValidationError
from ...keys import KeyInfo
from ..config import ApiConfig
from ..context import API_PREFIX, ApiContext
from ..errors import describe_validation
from ..routes import edit as edit_route
from ..routes import generate as generate_route
from ..routes.common import decode_image
from ..schemas import BASE64, Body, EditBody, GenerateBody, body_schema

IMAGE_CONTENT_MAX_BYTES = 1024 * 1024  # one image's inline content (documented in docs/api.md)
PREVIEW_SIDE = 1024
Content = list[types.TextContent | types.ImageContent]


@dataclasses.dataclass(frozen=True)
class Call:
    """Who calls, and where they reached this server (for absolute URLs)."""

    ctx: ApiContext
    key: KeyInfo
    base_url: str

    def image_url(self, image_id: str) -> str:
        return f"{self.base_url}{API_PREFIX}/images/{image_id}"


@dataclasses.dataclass(frozen=True)
class Tool:
    name: str
    title: str
    description: str
    arguments: type[BaseModel]
    run: Callable[[Call, Any], tuple[Content, dict[str, Any]]]
    read_only: bool = True
    budget: str | None = None  # a rate-limit budget besides "requests" (ratelimit.py)
    schema: Callable[[ApiConfig], dict[str, Any]] | None = None  # default: the model's

    def definition(self, config: ApiConfig) -> types.Tool:
        return types.Tool(
            name=self.name,
            title=self.title,
            description=self.description,
            inputSchema=self.schema(config) if self.schema else self.arguments.model_json_schema(),
            annotations=types.ToolAnnotations(
                title=self.title, readOnlyHint=self.read_only, openWorldHint=False
            ),
        )

    def __call__(self, call: Call, arguments: dict[str, Any]) -> tuple[Content, dict[str, Any]]:
        try:
            parsed = self.arguments.model_validate(arguments)
        except PydanticError as error:
            raise ValidationError(describe_validation(error.errors())) from None
        return self.run(call, parsed)


def image_content(path: str | Path) -> types.ImageContent:
    """The image as MCP image content: the PNG when it fits the cap, else a JPEG preview."""
    data = Path(path).read_bytes()
    if len(data) <= IMAGE_CONTENT_MAX_BYTES:
        return types.ImageContent(
            type="image", data=base64.b64encode(data).decode(), mimeType="image/png"
        )
    with Image.open(io.BytesIO(data)) as image:
        preview = image.convert("RGB")
    preview.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    buffer = io.BytesIO()
    preview.save(buffer, format="JPEG", quality=85)
    return types.ImageContent(
        type="image", data=base64.b64encode(buffer.getvalue()).decode(), mimeType="image/jpeg"
    )


def _text(data: dict[str, Any]) -> types.TextContent:
    return types.TextContent(type="text", text=json.dumps(data))


def generate(call: Call, body: GenerateBody) -> tuple[Content, dict[str, Any]]:
    return _queued(call, body, generate_route.prepare, generate_route.run_generation)


def edit(call: Call, body: EditBody) -> tuple[Content, dict[str, Any]]:
    return _queued(call, body, edit_route.prepare, edit_route.run_edit)


def _queued(call: Call, body: Any, prepare: Callable, run: Callable) -> tuple[Content, dict]:
    """What the HTTP route does: check and admit, queue on the GPU line, wait; the images
    as content with their absolute URLs."""
    ctx, user_id = call.ctx, call.key.user_id
    request = prepare(body, ctx, user_id)
    job = ctx.gpu.submit(lambda job: run(ctx, request, user_id, job), ctx.config.generate_timeout)
    result = ctx.gpu.result(job)
    made = {
        "model": result.model,
        "notice": result.notice,
        "warnings": result.warnings,
        "images": [
            {
                "id": image.id,
                "url": call.image_url(image.id),
                "seed": image.seed,
                "width": image.width,
                "height": image.height,
            }
            for image in result.images
        ],
    }
    return [_text(made), *(image_content(image.path) for image in result.images)], made


class ListArgs(Body):
    limit: int = Field(10, ge=1, le=100, description="Images per page.")
    offset: int = Field(0, ge=0, le=10_000_000, description="Images to skip (newest first).")


def list_images(call: Call, args: ListArgs) -> tuple[Content, dict[str, Any]]:
    rows = call.ctx.studio.images.rows(call.key.user_id, limit=args.limit + 1, offset=args.offset)
    page = {
        "items": [
            {
                "id": row["id"],
                "url": call.image_url(row["id"]),
                "seed": int(row["seed"]),
                "width": int(row["width"]),
                "height": int(row["height"]),
                "prompt": (row.get("params") or {}).get("prompt"),
            }
            for row in rows[: args.limit]
        ],
        "has_more": len(rows) > args.limit,
    }
    return [_text(page)], page


class VerifyArgs(Body):
    image_id: str | None = Field(
        None, min_length=1, max_length=64, description="One of your images (list_images)."
    )
    image: str | None = Field(None, description=f"Or any image, {BASE64}.")

    @model_validator(mode="after")
    def _one(self) -> VerifyArgs:
        if (self.image_id is None) == (self.image is None):
            raise ValueError("image: give either image_id or image.")
        return self


def verify(call: Call, args: VerifyArgs) -> tuple[Content, dict[str, Any]]:
    ctx = call.ctx
    if args.image_id is not None:
        path = ctx.studio.images.get(call.key.user_id, args.image_id)["file_path"]
        report = ctx.studio.provenance.verify(Path(path).read_bytes())
    else:
        limits = (ctx.config.max_upload_bytes, ctx.config.max_upload_pixels)
        data = decode_image(args.image, "image", *limits)[0]
        report = ctx.studio.provenance.verify(data, max_bytes=limits[0], max_pixels=limits[1])
    found = {**report.to_dict(), "summary": report.lines()}
    return [types.TextContent(type="text", text="\n".join(report.lines()))], found


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            "generate_image",
            "Generate images",
            "Generate 1 to 8 images with GemPix from a text prompt (every option of "
            "POST /api/v1/generate: size or aspect, guidance, steps, count, styles, a saved "
            "character, negative prompt, seed...). They are saved to your gallery and returned "
            "as image content (PNG up to 1 MiB each, else a JPEG preview) with the absolute "
            "URL of each PNG (GET it with the same API key).",
            GenerateBody,
            generate,
            read_only=False,
            budget="generate",
            schema=lambda config: body_schema(GenerateBody, config.max_images),
        ),
        Tool(
            "edit_image",
            "Edit an image",
            "Edit a picture with GemPix (every option of POST /api/v1/edit): by instruction "
            "(models that edit), inside a mask (inpaint: white where it may change) or onto a "
            "larger canvas (outpaint to an aspect ratio or by pixels per side). Give the source "
            "as base64 or one of your images by source_id. The results are saved to your "
            "gallery, with their sources, and returned like generate_image's.",
            EditBody,
            edit,
            read_only=False,
            budget="generate",
            schema=lambda config: body_schema(EditBody, config.max_images),
        ),
        Tool(
            "list_images",
            "List my images",
            "Your GemPix gallery, newest first: id, absolute URL, seed, size and prompt of "
            "each image; has_more says whether another page exists.",
            ListArgs,
            list_images,
        ),
        Tool(
            "verify_image",
            "Verify an image's provenance",
            "Which provenance marks an image carries: C2PA content credentials, the IPTC "
            "'made by AI' label, GemPix's invisible watermark and its parameters. Give one of "
            "your images by id, or any image as base64. Absence proves nothing.",
            VerifyArgs,
            verify,
        ),
    )
}
