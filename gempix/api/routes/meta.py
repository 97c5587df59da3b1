"""``/health`` (no key) and the self-contained docs page (no CDN: nothing third-party loads)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from ... import __version__
from ..auth import anonymous
from ..context import API_PREFIX
from ..docs_page import render_docs
from ..schemas import Health
from .common import errors

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


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def docs(request: Request) -> HTMLResponse:
    return HTMLResponse(render_docs(request.app.openapi()))
