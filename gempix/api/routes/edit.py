"""``POST /edit`` (the service's edit, queued like a generation) and ``POST /info`` (the
parameters a picture carries)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from ...keys import KeyInfo
from ...params import EditRequest
from ..auth import caller, generation_budget
from ..context import API_PREFIX, ApiContext, context
from ..errors import NotAcceptable
from ..schemas import EditBody, GenerateOut, InfoBody, InfoOut
from .common import AUTHED, decode_image, errors
from .generate import PNG, check_batch, respond, wants_png

router = APIRouter(prefix=API_PREFIX, tags=["edit"])


def build_edit(body: EditBody, ctx: ApiContext) -> EditRequest:
    """The edit request, its pictures decoded and checked against the API's limits. The mask
    goes on as bytes, so a painted layer keeps its transparency."""
    check_batch(body.num_images, ctx)
    limits = (ctx.config.max_upload_bytes, ctx.config.max_upload_pixels)

    def image(data: str | None, field: str, raw: bool = False):
        if data is None:
            return None
        decoded = decode_image(data, field, *limits)
        return decoded[0] if raw else decoded[1]

    return EditRequest(
        **{
            **body.fields(),
            "source": image(body.source, "source"),
            "mask": image(body.mask, "mask", raw=True),
            "style_image": image(body.style_image, "style_image"),
            "references": tuple(
                image(data, f"references[{n}]") for n, data in enumerate(body.references)
            ),
        }
    )


def prepare(body: EditBody, ctx: ApiContext, user_id: str) -> EditRequest:
    """Check everything that needs no model before queueing, so bad requests never wait."""
    request = build_edit(body, ctx)
    ctx.studio.admit(request, user_id)
    return request


def run_edit(ctx: ApiContext, request: EditRequest, user_id: str, job):
    """Queue one edit in ``user_id``'s name (admitted by ``prepare``); ``job.check`` runs
    between steps."""
    return ctx.studio.edit(
        request, user_id=user_id, front_door="api", progress=job.check, admitted=True
    )


@router.post(
    "/edit",
    response_model=GenerateOut,
    summary="Edit an image",
    responses={
        200: {
            "description": "The edited images (JSON), or with `Accept: image/png` and one "
            "image, the PNG itself (headers X-GemPix-Image-Id, X-GemPix-Seed).",
            "content": {PNG: {"schema": {"type": "string", "format": "binary"}}},
        },
        **errors(*AUTHED, 403, 404, 409, 413, 503, 504),
        406: {"description": "Accept: image/png with num_images > 1."},
    },
)
async def edit(
    request: Request,
    body: EditBody,
    info: KeyInfo = Depends(generation_budget),
    ctx: ApiContext = Depends(context),
):
    """Edit a picture by instruction, inside a mask (inpaint) or onto a larger canvas
    (outpaint); the results are saved to your gallery with their sources. Queued, cancelled
    and counted like ``POST /generate``."""
    png = wants_png(request.headers.get("accept", ""))
    if png and body.num_images != 1:
        raise NotAcceptable("Accept: image/png returns one image; set num_images to 1.")
    prepared = await run_in_threadpool(prepare, body, ctx, info.user_id)
    job = ctx.gpu.submit(
        lambda job: run_edit(ctx, prepared, info.user_id, job), ctx.config.generate_timeout
    )
    return respond(request, await ctx.gpu.wait(job, request.is_disconnected), png)


@router.post("/info", response_model=InfoOut, responses=errors(*AUTHED, 413), summary="PNG info")
def image_info(
    body: InfoBody, info: KeyInfo = Depends(caller), ctx: ApiContext = Depends(context)
) -> InfoOut:
    """The generation parameters a picture carries: GemPix's, A1111/Forge/Fooocus' infotext or
    ComfyUI's embedded prompt; ``kind`` is null (with a message) when it has none."""
    limits = (ctx.config.max_upload_bytes, ctx.config.max_upload_pixels)
    data, _ = decode_image(body.image, "image", *limits)
    return InfoOut(**ctx.studio.image_info(data).as_dict())
