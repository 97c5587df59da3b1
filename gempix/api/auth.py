"""Who is calling: the bearer key, checked on every request, and the rate limits that follow.

Dependencies (sync, so FastAPI runs them in its thread pool and the store read never blocks
the event loop): ``caller`` for any key, ``admin`` for admin keys, ``generation_budget`` for
routes that generate, ``anonymous`` for routes without a key. A missing or bad key counts
against the anonymous budget of the client before it is refused, so guessing costs as much
as calling.
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..keys import InvalidKeyError, KeyInfo, require_role
from . import context as keys_of
from .context import ApiContext, context
from .ratelimit import Decision

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key: `Authorization: Bearer gpx_<prefix>_<secret>`. Create one in the "
    "web app's API tab or with `gempix keys create`.",
)


def _remember(request: Request, decision: Decision | None) -> None:
    """Keep the tightest budget's headers for the response (none for a budget that is off)."""
    if decision is None:
        return
    current = request.scope.get(keys_of.RATE_HEADERS)
    if current is None or int(current["X-RateLimit-Remaining"]) >= decision.remaining:
        request.scope[keys_of.RATE_HEADERS] = decision.headers()


def anonymous(request: Request, ctx: ApiContext = Depends(context)) -> None:
    """Count a request without a key against its client's budget (address kept in memory)."""
    client = request.client.host if request.client else None
    _remember(request, ctx.limits.check("anonymous", ctx.limits.client_id(client)))


def caller(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    ctx: ApiContext = Depends(context),
) -> KeyInfo:
    """The verified key of the request (401 otherwise), counted against its request budget."""
    token = credentials.credentials if credentials else None
    try:
        info = ctx.studio.keys.verify(token)
    except InvalidKeyError as error:
        if error.prefix:
            request.scope[keys_of.CLAIMED_PREFIX] = error.prefix
        anonymous(request, ctx)
        raise
    request.scope[keys_of.KEY] = info
    _remember(request, ctx.limits.check("requests", info.prefix))
    ctx.touch(info.prefix)
    return info


async def admin(info: KeyInfo = Depends(caller)) -> KeyInfo:
    """An admin key (403 for a user key)."""
    return require_role(info, "admin")


def generation_budget(
    request: Request, info: KeyInfo = Depends(caller), ctx: ApiContext = Depends(context)
) -> KeyInfo:
    """A key with generations left in its window (429 otherwise)."""
    _remember(request, ctx.limits.check("generate", info.prefix))
    return info
