"""Turning service results into what the page shows: captions, parameter tables, reports."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..gallery import Page

EMPTY_DETAILS = "Select an image to see its parameters."


def _cell(value: Any) -> str:
    """Markdown-safe table cell: pipes and newlines would break the table."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def caption(row: Mapping[str, Any]) -> str:
    """A gallery caption: size and seed, plus the consistency score when there is one."""
    parts = [f"{row.get('width')}×{row.get('height')}", f"seed {row.get('seed')}"]
    score = row.get("consistency")
    if score is None:
        score = (row.get("params") or {}).get("consistency")
    if score is not None:
        parts.append(f"consistency {float(score):.2f}")
    return " · ".join(parts)


def when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value or "")


def _strength(reference: Mapping[str, Any] | None) -> str | None:
    return None if not reference else f"strength {reference.get('strength')}"


def _character(character: Mapping[str, Any] | None) -> str | None:
    """Shown as: Mira · 2 references · strength 0.7 (a one-off character has no name)."""
    if not character:
        return None
    count = character.get("references")
    name = character.get("name") or "one-off references"
    face = " · face" if character.get("face") else ""
    return f"{name} · {count} reference{'s' if count != 1 else ''} · {_strength(character)}{face}"


def details(row: Mapping[str, Any]) -> str:
    """Every parameter of one image as a Markdown table, the seed and score first."""
    params = dict(row.get("params") or {})
    score = row.get("consistency")
    if score is None:
        score = params.get("consistency")
    lines = [
        f"**Image** `{row.get('id')}` · {row.get('width')}×{row.get('height')} · "
        f"seed **{row.get('seed', params.get('seed'))}**"
        + (f" · consistency **{float(score):.3f}**" if score is not None else ""),
        "",
        "| parameter | value |",
        "| --- | --- |",
    ]
    shown = [
        ("prompt", params.get("prompt", row.get("prompt"))),
        ("negative prompt", params.get("negative_prompt") or ""),
        ("styles", ", ".join(params.get("styles") or []) or "none"),
        ("model", params.get("model", row.get("model"))),
        ("steps", params.get("steps")),
        ("guidance", params.get("guidance")),
        ("sampler", params.get("sampler")),
        ("aspect", params.get("aspect") or "custom size"),
        ("resolution", params.get("resolution")),
        ("generated at", f"{params.get('base_width')}×{params.get('base_height')}"),
        ("upscaler", params.get("upscaler") if params.get("upscaled") else "none"),
        ("image-to-image strength", params.get("strength") if params.get("img2img") else None),
        ("character", _character(params.get("character"))),
        ("style reference", _strength(params.get("style_reference"))),
        ("upscaled from", params.get("source_id")),
        ("created", params.get("created_at") or when(row.get("created_at"))),
    ]
    lines += [f"| {name} | {_cell(value)} |" for name, value in shown if value not in (None, "")]
    return "\n".join(lines)


def page_label(page: Page) -> str:
    if not page.items:
        return "No images yet." if page.page == 1 else f"Page {page.page} is empty."
    return f"Page {page.page} · images {page.first}–{page.last} of {page.total}"


def erasure_report(report: Any) -> str:
    """The erasure report (``privacy.erasure.ErasureReport``): counts only, never the data."""
    rows = dict(getattr(report, "rows", {}) or {})
    per_table = ", ".join(f"{table} {count}" for table, count in rows.items() if count)
    verified = getattr(report, "verified", False)
    lines = [
        "### Erasure report",
        "",
        f"- **Records deleted:** {sum(rows.values())}" + (f" ({per_table})" if per_table else ""),
        f"- **Files deleted:** {getattr(report, 'files', 0)} "
        f"({getattr(report, 'cached_copies', 0)} cached copies, "
        f"{getattr(report, 'bytes', 0) / 1e6:.1f} MB)",
        f"- **Linkable usage events deleted:** {getattr(report, 'usage_events', 0)}",
        "- **Verified:** "
        + (
            "yes: nothing of yours is left in the database, its file or on disk."
            if verified
            else "no"
        ),
    ]
    if getattr(report, "seconds", None) is not None:
        lines.append(f"- **Took:** {report.seconds:.1f} s")
    lines += ["", "This browser now has a new, empty identity."]
    return "\n".join(lines)
