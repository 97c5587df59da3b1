"""`gempix analytics`: the k-suppressed usage report, and Parquet snapshots for notebooks.

Both run as the local operator (an admin) through ``studio.analytics``, as the admin Analytics
tab and ``/api/v1/admin/analytics`` do, beside the running app or without it: the events are
Parquet files that any process reads with DuckDB (docs/store.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd

from ..privacy.identity import LOCAL_USER
from ..service import Studio
from ..settings import Settings
from . import cli, data_dir_option

TITLES = {
    "style_trends": "Style trends (uses per day)",
    "mix_style": "Style mix",
    "mix_model": "Model mix",
    "mix_resolution_class": "Resolution mix",
    "mix_front_door": "Front door mix",
    "latency": "Latency of successful generations (ms)",
    "error_rates": "Outcomes per day",
    "daily_uniques": "Daily unique visitors",
}


def _render(tables: dict[str, pd.DataFrame], fmt: str, since: str, k: int) -> str:
    if fmt == "json":
        reports = {
            name: json.loads(frame.to_json(orient="records")) for name, frame in tables.items()
        }
        return json.dumps({"since": since, "k": k, "reports": reports}, indent=2)
    if fmt == "csv":
        frames = [frame.assign(report=name) for name, frame in tables.items() if len(frame)]
        if not frames:
            return "report\n"
        combined = pd.concat(frames, ignore_index=True)
        return combined[["report", *combined.columns.drop("report")]].to_csv(index=False)
    lines = [f"Usage since {since} UTC; cells with fewer than {k} visitors show '-'."]
    for name, frame in tables.items():
        shown = frame.astype(object).where(frame.notna(), "-")
        body = shown.to_string(index=False) if len(frame) else "(no events)"
        lines += ["", TITLES[name], body]
    return "\n".join(lines)


@cli.group(invoke_without_command=True)
@click.option(
    "--since",
    default="30d",
    show_default=True,
    help="Window: 12h, 30d, 2w (whole UTC days including today) or a date like 2026-11-01.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="Output format; csv is one table with a 'report' column.",
)
@data_dir_option
@click.pass_context
def analytics(ctx: click.Context, since: str, fmt: str, data_dir: str | None) -> None:
    """Anonymized usage: style trends, mixes, latency, outcomes, daily uniques.

    Every cell counts at least k distinct visitors (GEMPIX_ANALYTICS_K, default 10); smaller
    cells, and enough others to stop them being worked out from totals, are hidden.

    Example: gempix analytics --since 7d --format json
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = Settings.load(data_dir=data_dir)
    with Studio(settings) as studio:
        start, tables = studio.analytics.report(LOCAL_USER, since)
    click.echo(_render(tables, fmt, start.isoformat(sep=" "), settings.analytics_k))


@analytics.command()
@click.option(
    "--output",
    "-o",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for the Parquet file (created if missing).",
)
@data_dir_option
def snapshot(out: str, data_dir: str | None) -> None:
    """Write the anonymous usage events to a zstd Parquet file and print its path.

    Only usage_events is written: no prompts, no user ids, no per-user table. Open it with
    pandas, DuckDB, Polars, Spark or Ray.

    Example: gempix analytics snapshot -o snapshots/
    """
    with Studio(Settings.load(data_dir=data_dir)) as studio:
        click.echo(str(studio.analytics.snapshot(LOCAL_USER, Path(out))))
