"""``GET /styles``: the preset library and the caller's saved styles."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ...keys import KeyInfo
from ...styles import Style, categories, load_presets
from ..auth import caller
from ..context import API_PREFIX, ApiContext, context
from ..schemas import StyleOut, StylesOut
from .common import AUTHED, errors

router = APIRouter(prefix=API_PREFIX, tags=["styles"])


def style_out(style: Style) -> StyleOut:
    return StyleOut(
        name=style.name,
        label=style.label,
        category=style.category,
        prompt=style.prompt,
        negative=style.negative,
        recommended=dict(style.recommended),
        user=style.user,
    )


@router.get(
    "/styles", response_model=StylesOut, responses=errors(*AUTHED), summary="List style presets"
)
def list_styles(info: KeyInfo = Depends(caller), ctx: ApiContext = Depends(context)) -> StylesOut:
    """Every preset (``{prompt}`` marks where your text goes), then your own saved styles."""
    presets = load_presets()
    own = ctx.studio.user_styles(info.user_id)
    return StylesOut(
        categories=categories(presets) + (["user"] if own else []),
        styles=[style_out(style) for style in [*presets.values(), *own.values()]],
    )
