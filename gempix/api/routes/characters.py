"""The caller's characters: a name plus 1-4 reference images (sent as base64).

Created and changed through ``studio.characters``, as in the web app: every reference passes
this server's upload limits and ``gempix.images.load_image`` before anything is stored.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path
from starlette.concurrency import run_in_threadpool

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
    rows = ctx.studio.characters.list(info.user_id)
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
        references = _references(ctx, body.references)
        return ctx.studio.characters.create(
            info.user_id, body.name, references, body.rights_confirmed, body.strength
        )

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
        character=character_out(ctx.studio.characters.get(info.user_id, character_id))
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
    ctx.studio.characters.get(info.user_id, character_id)  # not yours: 404 before decoding
    references = None if body.references is None else _references(ctx, body.references)
    row = ctx.studio.characters.update(
        info.user_id,
        character_id,
        name=body.name,
        references=references,
        rights_confirmed=body.rights_confirmed is True,
        strength=body.strength,
    )
    return CharacterOne(character=character_out(row))


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
    ctx.studio.characters.delete(info.user_id, character_id)
    return Deleted(deleted=character_id)
