"""The caller's own images: a page of them, one as PNG, deleting one."""

from __future__ import annotations

from pathlib import Path as FilePath

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse

from ... import gallery
from ...errors import NotFoundError
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
    rows = ctx.studio.store.list_generations(info.user_id, limit=limit + 1, offset=offset)
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
    row = gallery.get_image(ctx.studio, info.user_id, image_id)
    path = FilePath(row["file_path"]).resolve()
    own = (FilePath(ctx.studio.settings.images_dir) / info.user_id).resolve()
    if not path.is_relative_to(own):  # rows are written by the service; never serve elsewhere
        raise NotFoundError(f"No generation with id {image_id!r}.")
    return FileResponse(path, media_type="image/png", filename=f"{row['id']}.png")


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
    """Deletes the record, the file and copies the web app cached."""
    gallery.delete_image(ctx.studio, info.user_id, image_id, cache_dirs=ctx.cache_dirs)
    return Deleted(deleted=image_id)
