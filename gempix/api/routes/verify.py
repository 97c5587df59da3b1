"""``POST /verify``: the content credentials of any image (``studio.provenance.verify``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from ...keys import KeyInfo
from ..auth import caller
from ..context import API_PREFIX, ApiContext, context
from ..schemas import VerifyBody, VerifyOut
from .common import AUTHED, decode_image, errors

router = APIRouter(prefix=API_PREFIX, tags=["verify"])


def verify_report(ctx: ApiContext, data: str) -> VerifyOut:
    """Decode and check the upload against the API's limits, then read every mark."""
    limits = (ctx.config.max_upload_bytes, ctx.config.max_upload_pixels)
    raw, _ = decode_image(data, "image", *limits)
    report = ctx.studio.provenance.verify(raw, max_bytes=limits[0], max_pixels=limits[1])
    return VerifyOut(**report.to_dict(), lines=report.lines())


@router.post(
    "/verify",
    response_model=VerifyOut,
    responses=errors(*AUTHED, 413),
    summary="Check an image's content credentials",
)
async def verify(
    body: VerifyBody,
    info: KeyInfo = Depends(caller),
    ctx: ApiContext = Depends(context),
) -> VerifyOut:
    """Reports the C2PA manifest (valid, untrusted, invalid or absent) and its chain, the
    IPTC "made by AI" disclosure, GemPix's invisible watermark and GemPix's parameters.
    Works on any image; one with none of these says so. Nothing is stored."""
    return await run_in_threadpool(verify_report, ctx, body.image)
