"""The caller's characters: a name plus 1-4 reference images (sent as base64).

Created and changed through ``gempix.gallery``, as in the web app: every reference passes
``gempix.images.load_image`` (and this server's upload limits) before anything is stored.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path
from starlette.concurrency import run_in_threadpool

from ... import gallery
from ...errors import ValidationError
from ...keys import KeyInfo
from ..auth import caller
from ..context import API_PREFIX, ApiContext, context
from ..schemas import (
    CharacterCreate,
    CharacterOne,
    CharacterOut,
    CharacterPatch,
    CharactersOut,
    Deleted,
    iso,
)
from .common import AUTHED, decode_image, errors

router = APIRouter(prefix=API_PREFIX, tags=["characters"])
CharacterId = Path(max_length=64, description="A character id from GET /characters.")


def character_out(row: dict) -> CharacterOut:
    return CharacterOut(
        id=row["id"],
        name=row["name"],
        created_at=iso(row.get("created_at")),
        references=len(row.get("reference_paths") or []),
        strength=row.get("strength"),
        rights_confirmed_at=iso(row.get("rights_confirmed_at")),
    )


def _references(ctx: ApiContext, images: list[str]) -> list[bytes]:
    return [
        decode_image(
            text, f"references[{n}]", ctx.config.max_upload_bytes, ctx.config.max_upload_pixels
        )[0]
        for n, text in enumerate(images)
    ]


@router.get(
    "/characters",
    response_model=CharactersOut,
    responses=errors(*AUTHED),
    summary="List your characters",
)
def list_characters(
    info: KeyInfo = Depends(caller), ctx: ApiContext = Depends(context)
) -> CharactersOut:
    rows = gallery.list_characters(ctx.studio, info.user_id)
    return CharactersOut(characters=[character_out(row) for row in rows])


@router.post(
    "/characters",
    response_model=CharacterOne,
    status_code=201,
    responses=errors(*AUTHED, 409, 413),
    summary="Create a character",
)
async def create_character(
    body: CharacterCreate, info: KeyInfo = Depends(caller), ctx: ApiContext = Depends(context)
) -> CharacterOne:
    """A name and 1-4 reference images; ``rights_confirmed`` must be true."""

    def create() -> dict:
        if body.rights_confirmed is not True:
            raise ValidationError(
                "rights_confirmed: confirm that you have the rights to use these images."
            )
        references = _references(ctx, body.references)
        character_id = gallery.create_character(
            ctx.studio, info.user_id, body.name, references, True, strength=body.strength
        )
        return ctx.studio.store.get_character(info.user_id, character_id)

    return CharacterOne(character=character_out(await run_in_threadpool(create)))


@router.get(
    "/characters/{character_id}",
    response_model=CharacterOne,
    responses=errors(*AUTHED, 404),
    summary="Get one of your characters",
)
def get_character(
    character_id: str = CharacterId,
    info: KeyInfo = Depends(caller),
    ctx: ApiContext = Depends(context),
) -> CharacterOne:
    return CharacterOne(
        character=character_out(ctx.studio.store.get_character(info.user_id, character_id))
    )


@router.patch(
    "/characters/{character_id}",
    response_model=CharacterOne,
    responses=errors(*AUTHED, 404, 409, 413),
    summary="Change a character",
)
def patch_character(
    body: CharacterPatch,
    character_id: str = CharacterId,
    info: KeyInfo = Depends(caller),
    ctx: ApiContext = Depends(context),
) -> CharacterOne:
    """Rename it, replace its references (with ``rights_confirmed``: true), or set strength."""
    if body.name is None and body.references is None and body.strength is None:
        raise ValidationError("body: give at least one of name, references, strength.")
    ctx.studio.store.get_character(info.user_id, character_id)  # not yours: 404 first
    references = None
    if body.references is not None:
        if body.rights_confirmed is not True:
            raise ValidationError(
                "rights_confirmed: confirm that you have the rights to use these images."
            )
        references = _references(ctx, body.references)  # all checked before any change
    if body.name is not None:
        gallery.rename_character(ctx.studio, info.user_id, character_id, body.name)
    if body.strength is not None:
        ctx.studio.store.update_character(info.user_id, character_id, strength=body.strength)
    if references is not None:
        gallery.replace_references(ctx.studio, info.user_id, character_id, references, True)
    return CharacterOne(
        character=character_out(ctx.studio.store.get_character(info.user_id, character_id))
    )


@router.delete(
    "/characters/{character_id}",
    response_model=Deleted,
    responses=errors(*AUTHED, 404),
    summary="Delete a character",
)
def delete_character(
    character_id: str = CharacterId,
    info: KeyInfo = Depends(caller),
    ctx: ApiContext = Depends(context),
) -> Deleted:
    """Deletes the character and its reference images."""
    gallery.delete_character(ctx.studio, info.user_id, character_id)
    return Deleted(deleted=character_id)
