"""The caller's own images: a page of them, one as PNG, deleting one."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse

from ...keys import KeyInfo
from ..auth import caller
from ..context import API_PREFIX, ApiContext, context
from ..schemas import Deleted, ImagesPage
from .common import AUTHED, errors, image_out

router = APIRouter(prefix=API_PREFIX, tags=["images"])
ImageId = Path(max_length=64, description="An image id from POST /generate or GET /images.")


@router.get(
    "/images", response_model=ImagesPage, responses=errors(*AUTHED), summary="List your images"
)
def list_images(
    request: Request,
    limit: int = Query(24, ge=1, le=100, description="Images per page."),
    offset: int = Query(0, ge=0, le=10_000_000, description="Images to skip (newest first)."),
    info: KeyInfo = Depends(caller),
    ctx: ApiContext = Depends(context),
) -> ImagesPage:
    """Your images, newest first, with every parameter; ``has_more`` says if a next page exists."""
    rows = ctx.studio.images.rows(info.user_id, limit=limit + 1, offset=offset)
    return ImagesPage(
        items=[image_out(request, row) for row in rows[:limit]],
        limit=limit,
        offset=offset,
        has_more=len(rows) > limit,
    )


@router.get(
    "/images/{image_id}",
    name="get_image",
    response_class=FileResponse,
    summary="Download one of your images (PNG)",
    responses={
        200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
        **errors(*AUTHED, 404),
    },
)
def get_image(
    image_id: str = ImageId,
    info: KeyInfo = Depends(caller),
    ctx: ApiContext = Depends(context),
) -> FileResponse:
    """The PNG with its metadata (parameters, AI-generated disclosure). Another user's id is
    "not found", exactly like an id that does not exist."""
    row = ctx.studio.images.get(info.user_id, image_id)  # only files in the user's own folder
    return FileResponse(row["file_path"], media_type="image/png", filename=f"{row['id']}.png")


@router.delete(
    "/images/{image_id}",
    response_model=Deleted,
    responses=errors(*AUTHED, 404),
    summary="Delete one of your images",
)
def delete_image(
    image_id: str = ImageId,
    info: KeyInfo = Depends(caller),
    ctx: ApiContext = Depends(context),
) -> Deleted:
    """Deletes the record, the file and every copy the web app served of it."""
    ctx.studio.images.delete(info.user_id, image_id)
    return Deleted(deleted=image_id)
