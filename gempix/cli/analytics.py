"""`gempix analytics`: the k-suppressed usage report, and Parquet snapshots for notebooks.

Both open the data directory's store, beside the running app or without it: the events are
Parquet files that any process reads with DuckDB (docs/store.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd

from .. import analytics as usage
from ..errors import GemPixError
from ..settings import Settings
from ..store import Store
from ..store.core import DB_FILE
from ..store.legacy import LEGACY_FILE
from . import UserError, load_settings

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


def _open(settings: Settings) -> Store:
    if not any((settings.data_dir / name).is_file() for name in (DB_FILE, LEGACY_FILE)):
        raise UserError(f"No GemPix database in {settings.data_dir} yet: nothing to report.")
    try:
        return Store.open(settings)
    except GemPixError as error:
        raise UserError(error.message) from None


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


@click.group(invoke_without_command=True)
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
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data folder.")
@click.pass_context
def analytics(ctx: click.Context, since: str, fmt: str, data_dir: str | None) -> None:
    """Anonymized usage: style trends, mixes, latency, outcomes, daily uniques.

    Every cell counts at least k distinct visitors (GEMPIX_ANALYTICS_K, default 10); smaller
    cells, and enough others to stop them being worked out from totals, are hidden.

    Example: gempix analytics --since 7d --format json
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings(data_dir=data_dir)
    store = _open(settings)
    try:
        start = usage.parse_since(since)
        tables = usage.report(store, start)
    except GemPixError as error:
        raise UserError(error.message) from None
    finally:
        store.close()
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
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data folder.")
def snapshot(out: str, data_dir: str | None) -> None:
    """Write the anonymous usage events to a zstd Parquet file and print its path.

    Only usage_events is written: no prompts, no user ids, no per-user table. Open it with
    pandas, DuckDB, Polars, Spark or Ray.

    Example: gempix analytics snapshot -o snapshots/
    """
    store = _open(load_settings(data_dir=data_dir))
    try:
        path = usage.snapshot(store, Path(out))
    except GemPixError as error:
        raise UserError(error.message) from None
    finally:
        store.close()
    click.echo(str(path))
