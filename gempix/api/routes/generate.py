"""``POST /generate``: the service's generate, queued on the one GPU worker."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from ...errors import ValidationError
from ...keys import KeyInfo
from ...params import GenerationRequest
from ...service import GenerationResult
from ..auth import generation_budget
from ..context import API_PREFIX, ApiContext, context
from ..errors import NotAcceptable
from ..schemas import GenerateBody, GenerateOut
from .common import AUTHED, decode_image, errors, image_out

router = APIRouter(prefix=API_PREFIX, tags=["generate"])
PNG = "image/png"


def wants_png(accept: str) -> bool:
    """True when the Accept header prefers image/png over JSON (``*/*`` means JSON)."""
    png = json = 0.0
    for part in accept.split(","):
        kind, _, rest = part.strip().partition(";")
        quality = 1.0
        for parameter in rest.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        kind = kind.strip().lower()
        if kind in (PNG, "image/*"):
            png = max(png, quality if kind == PNG else quality * 0.99)
        elif kind in ("application/json", "application/*", "*/*"):
            json = max(json, quality if kind == "application/json" else quality * 0.99)
    return png > json


def check_batch(num_images: int, ctx: ApiContext) -> None:
    if num_images > ctx.config.max_images:
        raise ValidationError(
            f"num_images: {num_images} is more than this server allows per request "
            f"({ctx.config.max_images})."
        )


def build_request(body: GenerateBody, ctx: ApiContext) -> GenerationRequest:
    """The request, with its images decoded and checked against the API's limits."""
    check_batch(body.num_images, ctx)
    limits = (ctx.config.max_upload_bytes, ctx.config.max_upload_pixels)

    def image(data: str | None, field: str):
        """The checked upload's bytes as sent: a source's own C2PA manifest stays readable,
        so the new image's manifest can chain to it (``studio.provenance``)."""
        return None if data is None else decode_image(data, field, *limits)[0]

    references = [image(data, f"references[{n}]") for n, data in enumerate(body.references)]
    return GenerationRequest(
        **{
            **body.fields(),
            "init_image": image(body.init_image, "init_image"),
            "style_image": image(body.style_image, "style_image"),
            "references": tuple(references),
        }
    )


def prepare(body: GenerateBody, ctx: ApiContext, user_id: str) -> GenerationRequest:
    """Check everything that needs no model before queueing, so bad requests never wait."""
    request = build_request(body, ctx)
    ctx.studio.admit(request, user_id)
    return request


def run_generation(ctx: ApiContext, request: GenerationRequest, user_id: str, job):
    """Queue one generation in ``user_id``'s name; ``job.check`` runs between steps."""
    return ctx.studio.generate(
        request, user_id=user_id, front_door="api", progress=job.check, admitted=True
    )


@router.post(
    "/generate",
    response_model=GenerateOut,
    summary="Generate images",
    responses={
        200: {
            "description": "The images (JSON), or with `Accept: image/png` and one image, "
            "the PNG itself (headers X-GemPix-Image-Id, X-GemPix-Seed).",
            "content": {PNG: {"schema": {"type": "string", "format": "binary"}}},
        },
        **errors(*AUTHED, 403, 404, 409, 413, 503, 504),
        406: {"description": "Accept: image/png with num_images > 1."},
    },
)
async def generate(
    request: Request,
    body: GenerateBody,
    info: KeyInfo = Depends(generation_budget),
    ctx: ApiContext = Depends(context),
):
    """Generate 1 to 8 images; they are saved to your gallery (GET /images).

    The work waits for the server's one generation worker; if your client disconnects while
    it waits, the generation is cancelled. Counted against your key's generation budget.
    """
    png = wants_png(request.headers.get("accept", ""))
    if png and body.num_images != 1:
        raise NotAcceptable("Accept: image/png returns one image; set num_images to 1.")
    prepared = await run_in_threadpool(prepare, body, ctx, info.user_id)
    job = ctx.gpu.submit(
        lambda job: run_generation(ctx, prepared, info.user_id, job),
        ctx.config.generate_timeout,
    )
    result: GenerationResult = await ctx.gpu.wait(job, request.is_disconnected)
    return respond(request, result, png)


def respond(request: Request, result: GenerationResult, png: bool):
    """The result as JSON, or (``png``) its one image with its id and seed in headers."""
    if png:
        image = result.images[0]
        return FileResponse(
            image.path,
            media_type=PNG,
            headers={"X-GemPix-Image-Id": image.id, "X-GemPix-Seed": str(image.seed)},
        )
    return GenerateOut(
        model=result.model,
        notice=result.notice,
        warnings=result.warnings,
        duration_ms=round(result.duration_ms, 1),
        images=[
            image_out(
                request,
                {
                    "id": image.id,
                    "seed": image.seed,
                    "width": image.width,
                    "height": image.height,
                    "params": image.params,
                },
            )
            for image in result.images
        ],
    )
