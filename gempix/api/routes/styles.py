"""``GET /styles``: the preset library."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ...keys import KeyInfo
from ...styles import Style, categories, load_presets
from ..auth import caller
from ..context import API_PREFIX
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
    )


@router.get(
    "/styles", response_model=StylesOut, responses=errors(*AUTHED), summary="List style presets"
)
def list_styles(info: KeyInfo = Depends(caller)) -> StylesOut:
    """Every preset; ``{prompt}`` marks where your text goes."""
    presets = load_presets()
    return StylesOut(
        categories=categories(presets), styles=[style_out(s) for s in presets.values()]
    )
