"""Admin-only routes: the anonymized, k-suppressed usage analytics."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Query

from ...keys import KeyInfo
from ..auth import admin
from ..context import API_PREFIX, ApiContext, context
from ..schemas import AnalyticsOut
from .common import AUTHED, errors

# analytics.parse_since's forms: a count of hours, days or weeks, or a calendar date.
_DAY = r"(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31"
SINCE = rf"^\s*(\d{{1,5}}\s*[hdw]|[1-9]\d{{3}}-((0[1-9]|1[0-2])-{_DAY}))\s*$"

router = APIRouter(prefix=API_PREFIX, tags=["admin"])


@router.get(
    "/admin/analytics",
    response_model=AnalyticsOut,
    responses=errors(*AUTHED, 403),
    summary="Usage analytics (admin)",
)
def usage_analytics(
    since: str = Query(
        "30d",
        max_length=32,
        pattern=SINCE,
        description="12h, 30d, 2w or a date (2026-11-01).",
        examples=["30d", "12h", "2026-11-01"],
    ),
    info: KeyInfo = Depends(admin),
    ctx: ApiContext = Depends(context),
) -> AnalyticsOut:
    """Style trends, mixes, latency, outcomes, daily uniques. Cells counting fewer than k
    distinct visitors, and the cells that would let them be worked out, are null."""
    start, tables = ctx.studio.analytics.report(info.user_id, since)
    return AnalyticsOut(
        since=start.isoformat(),
        k=ctx.studio.settings.analytics_k,
        reports={
            name: json.loads(frame.to_json(orient="records", date_format="iso"))
            for name, frame in tables.items()
        },
    )
