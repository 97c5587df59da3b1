"""The caller's account: who the key is, the age confirmation, consent, export and erasure.

Export, erasure and consent are ``studio.privacy``'s, the same the web app and the CLI call;
this module only translates.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from ...errors import ValidationError
from ...keys import KeyInfo
from ...privacy.identity import LOCAL_USER
from .. import context as keys_of
from ..auth import caller
from ..context import API_PREFIX, ApiContext, context
from ..schemas import (
    TRUE_ONLY,
    ConfirmAge,
    ConsentOut,
    ConsentPut,
    ConsentState,
    ErasureOut,
    MeOut,
    iso,
)
from .common import AUTHED, errors

router = APIRouter(prefix=API_PREFIX, tags=["me"])


def me_out(ctx: ApiContext, info: KeyInfo) -> MeOut:
    user = ctx.studio.privacy.user(info.user_id) or {}
    confirmed = info.user_id == LOCAL_USER or user.get("age_confirmed_at") is not None
    return MeOut(key_prefix=info.prefix, role=info.role, age_confirmed=confirmed)


@router.get("/me", response_model=MeOut, responses=errors(*AUTHED), summary="Who your key is")
def me(info: KeyInfo = Depends(caller), ctx: ApiContext = Depends(context)) -> MeOut:
    """Your key's prefix and role, and whether your account has confirmed its age."""
    return me_out(ctx, info)


@router.post(
    "/me/confirm-age",
    response_model=MeOut,
    responses=errors(*AUTHED, 409),
    summary="Confirm your age",
)
def confirm_age(
    body: ConfirmAge, info: KeyInfo = Depends(caller), ctx: ApiContext = Depends(context)
) -> MeOut:
    """Confirm that you are at least the minimum age (``GEMPIX_MIN_AGE``), as the web app asks
    before a first image; kept once, the first time. Generating answers 403 until then."""
    if body.confirm is not True:
        raise ValidationError(
            f"confirm: send true to confirm that you are at least "
            f"{ctx.studio.settings.min_age} years old."
        )
    ctx.studio.privacy.confirm_age(info.user_id)
    return me_out(ctx, info)


def consent_out(ctx: ApiContext, user_id: str) -> ConsentOut:
    return ConsentOut(
        consent={
            purpose: ConsentState(
                granted=state.granted,
                default=state.default,
                since=iso(state.since),
                policy_version=state.policy_version,
                method=state.method,
            )
            for purpose, state in ctx.studio.privacy.consent(user_id).items()
        }
    )


@router.get(
    "/me/consent",
    response_model=ConsentOut,
    responses=errors(*AUTHED),
    summary="Your consent choices",
)
def get_consent(info: KeyInfo = Depends(caller), ctx: ApiContext = Depends(context)) -> ConsentOut:
    """``training`` (default off) and ``analytics`` (default on, objectable)."""
    return consent_out(ctx, info.user_id)


@router.put(
    "/me/consent",
    response_model=ConsentOut,
    responses=errors(*AUTHED, 409),
    summary="Change your consent",
)
def put_consent(
    body: ConsentPut, info: KeyInfo = Depends(caller), ctx: ApiContext = Depends(context)
) -> ConsentOut:
    """Grant (true) or withdraw (false) each purpose you name; every change is kept in your
    consent ledger with the policy version in force."""
    changes = {name: value for name, value in body.model_dump().items() if value is not None}
    if not changes:
        raise ValidationError("body: name at least one purpose: training, analytics.")
    for purpose, granted in changes.items():
        ctx.studio.privacy.set_consent(info.user_id, purpose, granted, "api")
    return consent_out(ctx, info.user_id)


@router.get(
    "/me/export",
    response_class=FileResponse,
    summary="Export all your data (ZIP)",
    responses={
        200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}},
        **errors(*AUTHED, 409),
    },
)
def export(info: KeyInfo = Depends(caller), ctx: ApiContext = Depends(context)) -> FileResponse:
    """Everything stored about you: JSON data, your images and references, and a SHA-256
    manifest. The file is made for this response and deleted once sent."""
    folder = Path(tempfile.mkdtemp(prefix="gempix-export-"))
    try:
        name = ctx.studio.privacy.export_filename(info.user_id)
        result = ctx.studio.privacy.export(info.user_id, folder / name)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        result.path,
        media_type="application/zip",
        filename=name,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


@router.delete(
    "/me",
    response_model=ErasureOut,
    responses=errors(*AUTHED, 409),
    summary="Delete your account and all your data",
)
def erase(
    request: Request,
    confirm: bool = Query(
        description="Must be true: this cannot be undone.", json_schema_extra=TRUE_ONLY
    ),
    info: KeyInfo = Depends(caller),
    ctx: ApiContext = Depends(context),
) -> ErasureOut:
    """Erases every record and file of yours (this key and your other keys included) and
    verifies it; the answer counts what was removed. The request itself is logged without
    your key or id."""
    if confirm is not True:
        raise ValidationError("confirm: add ?confirm=true to delete your account; it is final.")
    request.scope[keys_of.ANONYMOUS_LOG] = True
    ctx.forget(info.user_id)  # requests still in flight are logged without key or id
    report = ctx.studio.privacy.erase(info.user_id)
    return ErasureOut(
        erased=True,
        verified=report.verified,
        rows=report.rows,
        files=report.files,
        bytes=report.bytes,
        cached_copies=report.cached_copies,
        usage_events=report.usage_events,
        seconds=round(report.seconds, 3),
    )
