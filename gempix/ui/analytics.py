"""The Analytics tab, for admins only: anonymous, k-suppressed aggregates as plots.

The tab is hidden for everyone else, and the core refuses the data to non-admins, whatever they
send (``studio.analytics``: one rule for who is an admin, docs/architecture.md; the operator
grants the role with ``gempix user role admin``). Suppressed cells (fewer than k people) are never
drawn as values: plots list them as "hidden" bars of height 0 and the tables say "hidden".
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from ..analytics import TOTAL
from .context import Ctx
from .errors import guarded

WINDOWS = [("Last 7 days", "7d"), ("Last 30 days", "30d"), ("Last 90 days", "90d")]
HIDDEN = "hidden (< k people)"
SHOWN = "shown"


def _day(value: Any) -> str:
    return value if isinstance(value, str) else pd.Timestamp(value).strftime("%Y-%m-%d")


def mix_plot(table: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """Bars of one mix table. A hidden cell keeps its place on the axis, labelled "hidden",
    drawn at 0 in the hidden colour: it is visibly there, its value is not."""
    rows = table[table[dimension] != TOTAL]
    return pd.DataFrame(
        {
            dimension: [
                f"{value} (hidden)" if hidden else str(value)
                for value, hidden in zip(rows[dimension], rows["suppressed"], strict=True)
            ],
            "events": rows["events"].fillna(0).astype(int),
            "cell": [HIDDEN if hidden else SHOWN for hidden in rows["suppressed"]],
        }
    )


def caption(table: pd.DataFrame) -> str:
    """Under each plot: how many of its cells are hidden."""
    hidden = int(table["suppressed"].sum()) if len(table) else 0
    if not len(table):
        return "No data in this window."
    return f"{hidden} of {len(table)} cells hidden (fewer than k people)." if hidden else ""


def trend_plot(table: pd.DataFrame, dimension: str, value: str = "events") -> pd.DataFrame:
    rows = table[(table["day"] != TOTAL) & (table[dimension] != TOTAL)]
    rows = rows[~rows["suppressed"]]
    return pd.DataFrame(
        {
            "day": [_day(day) for day in rows["day"]],
            dimension: rows[dimension].astype(str),
            value: rows[value].astype(float),
        }
    )


def latency_plot(table: pd.DataFrame) -> pd.DataFrame:
    rows = table[~table["suppressed"]]
    frames = [
        pd.DataFrame(
            {
                "day": [_day(day) for day in rows["day"]],
                "series": [f"{model} {name}" for model in rows["model"]],
                "ms": rows[column].astype(float),
            }
        )
        for name, column in (("p50", "p50_ms"), ("p95", "p95_ms"))
    ]
    return pd.concat(frames, ignore_index=True)


def uniques_plot(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "day": [
                f"{_day(day)} (hidden)" if hidden else _day(day)
                for day, hidden in zip(table["day"], table["suppressed"], strict=True)
            ],
            "visitors": table["visitors"].fillna(0).astype(int),
            "cell": [HIDDEN if hidden else SHOWN for hidden in table["suppressed"]],
        }
    )


def shown_table(table: pd.DataFrame) -> pd.DataFrame:
    """The table as text, every suppressed value written "hidden"."""
    out = table.copy()
    for column in out.columns:
        if column == "suppressed":
            continue
        out[column] = [
            "hidden" if hidden and pd.isna(value) else ("" if pd.isna(value) else str(value))
            for value, hidden in zip(out[column], table["suppressed"], strict=True)
        ]
    return out.drop(columns="suppressed")


def summary(report: dict[str, pd.DataFrame], k: int) -> str:
    hidden = sum(int(frame["suppressed"].sum()) for frame in report.values() if len(frame))
    return (
        f"Only cells with at least **k = {k}** distinct people are shown; **{hidden}** cells "
        "are hidden (plus any needed so that totals cannot reveal them). Hidden cells appear "
        "in the plots as grey bars labelled “(hidden)” drawn at 0, and as “hidden” in the "
        "tables."
    )


def build(ctx: Ctx) -> dict[str, Any]:
    c: dict[str, Any] = {}
    color = {SHOWN: "#4f46e5", HIDDEN: "#d1d5db"}
    with gr.Tab("Analytics", id="analytics", visible=False) as c["tab"]:
        with gr.Row(equal_height=False):
            c["window"] = gr.Dropdown(WINDOWS, value="30d", label="Window", scale=3)
            c["refresh"] = gr.Button("Refresh", size="sm", scale=0, min_width=100)
        c["summary"] = gr.Markdown("", label="Summary")
        plot: dict[str, Any] = {}
        bars = {"color": "cell", "color_map": color, "y_axis_format": "d"}
        c["styles"] = gr.BarPlot(
            x="day", y="events", color="style", label="Style trends", y_axis_format="d"
        )
        with gr.Row(equal_height=False):
            c["models"] = gr.BarPlot(x="model", y="events", label="Model mix", **bars)
            c["resolutions"] = gr.BarPlot(
                x="resolution_class", y="events", label="Resolution mix", **bars
            )
        with gr.Row(equal_height=False):
            c["uniques"] = gr.BarPlot(x="day", y="visitors", label="Daily unique visitors", **bars)
            c["errors"] = gr.BarPlot(
                x="day", y="rate", color="status", label="Error rate by status", **plot
            )
        c["latency"] = gr.ScatterPlot(
            x="day", y="ms", color="series", label="Latency p50 / p95 (ms)", **plot
        )
        with gr.Accordion("Tables (suppressed cells marked “hidden”)", open=False):
            c["table_name"] = gr.Dropdown([], label="Table")
            c["table"] = gr.Dataframe(value=[], label="Aggregate table", interactive=False)
        c["tables"] = gr.State({})
    _wire(ctx, c)
    return c


def _wire(ctx: Ctx, c: dict[str, Any]) -> None:
    outputs = [
        c["summary"],
        c["styles"],
        c["uniques"],
        c["models"],
        c["resolutions"],
        c["latency"],
        c["errors"],
        c["table_name"],
        c["table"],
        c["tables"],
    ]

    @guarded
    def refresh(profile: gr.OAuthProfile | None, key_value, window):
        _, report = ctx.studio.analytics.report(ctx.uid(key_value, profile), window or "30d")
        errors = report["error_rates"]
        errors = errors[(errors["day"] != TOTAL) & (errors["status"] != TOTAL)]
        errors = errors[~errors["suppressed"]]
        error_frame = pd.DataFrame(
            {
                "day": [_day(day) for day in errors["day"]],
                "status": errors["status"].astype(str),
                "rate": errors["rate"].astype(float),
            }
        )
        tables = {name: shown_table(frame) for name, frame in report.items()}
        first = next(iter(tables))
        return (
            summary(report, ctx.settings.analytics_k),
            gr.BarPlot(
                trend_plot(report["style_trends"], "style"),
                caption=caption(report["style_trends"]),
            ),
            gr.BarPlot(
                uniques_plot(report["daily_uniques"]), caption=caption(report["daily_uniques"])
            ),
            gr.BarPlot(
                mix_plot(report["mix_model"], "model"), caption=caption(report["mix_model"])
            ),
            gr.BarPlot(
                mix_plot(report["mix_resolution_class"], "resolution_class"),
                caption=caption(report["mix_resolution_class"]),
            ),
            gr.ScatterPlot(latency_plot(report["latency"]), caption=caption(report["latency"])),
            gr.BarPlot(error_frame, caption=caption(report["error_rates"])),
            gr.update(choices=list(tables), value=first),
            tables[first],
            tables,
        )

    c["refresh"].click(refresh, [ctx.key, c["window"]], outputs, api_name="analytics")
    c["tab"].select(refresh, [ctx.key, c["window"]], outputs, api_visibility="private")
    c["window"].input(refresh, [ctx.key, c["window"]], outputs, api_visibility="private")
    c["table_name"].input(
        lambda name, tables: (tables or {}).get(name, pd.DataFrame()),
        [c["table_name"], c["tables"]],
        c["table"],
        api_visibility="private",
    )
