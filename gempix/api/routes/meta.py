"""``/health`` (no key), ``/models`` (the catalogue) and the self-contained docs page (no CDN:
nothing third-party loads)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from ... import __version__
from ...keys import KeyInfo
from ..auth import anonymous, caller
from ..context import API_PREFIX, ApiContext, context
from ..docs_page import render_docs
from ..schemas import Health, ModelsOut
from .common import AUTHED, errors

router = APIRouter(prefix=API_PREFIX, tags=["meta"])


@router.get(
    "/health",
    response_model=Health,
    dependencies=[Depends(anonymous)],
    responses=errors(429),
    summary="Is the server up? (no key)",
)
def health() -> Health:
    """Answers without a key and without touching the model or the database."""
    return Health(version=__version__)


@router.get(
    "/models", response_model=ModelsOut, responses=errors(*AUTHED), summary="List model presets"
)
def list_models(info: KeyInfo = Depends(caller), ctx: ApiContext = Depends(context)) -> ModelsOut:
    """Every preset: size, memory per mode, license, whether it edits or reads reference
    images, its live previews, whether it is on the server; and what ``auto`` picks."""
    pick = ctx.studio.auto_pick()
    return ModelsOut(
        auto=pick.name,
        auto_reason=pick.reason,
        models=ctx.studio.catalogue(),
    )


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def docs(request: Request) -> HTMLResponse:
    return HTMLResponse(render_docs(request.app.openapi()))
