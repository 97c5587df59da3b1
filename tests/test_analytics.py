"""Visitor hashes, event shape, aggregates on a real store, snapshots, and the CLI."""

from __future__ import annotations

import json
import pickle
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from gempix import analytics
from gempix.cli.analytics import analytics as analytics_cli
from gempix.errors import ValidationError
from gempix.settings import Settings
from gempix.store import Store

DAY = datetime(2026, 11, 27, 10, 15)


@pytest.fixture
def settings(tmp_path):
    return Settings.load({}, data_dir=str(tmp_path / "data"))


@pytest.fixture
def store(settings):
    with Store.open(settings) as opened:
        yield opened


def event(visitor: str, when: datetime = DAY, hasher=None, **fields):
    hasher = hasher or analytics.VisitorHasher()
    defaults = dict(front_door="ui", model="sd-turbo", steps=2, latency_ms=100.0)
    return analytics.make_event(
        visitor_hash=hasher.visitor_hash(visitor, when), now=when, **{**defaults, **fields}
    )


def add_visitors(store, hasher, count, when=DAY, prefix="v", **fields):
    for n in range(count):
        store.record_event(event(f"{prefix}{n}", when, hasher, **fields))


# -- visitor hashes and events ------------------------------------------------------------


def test_visitor_hash_is_stable_within_a_day_and_unrelated_across_days():
    hasher = analytics.VisitorHasher()
    first = hasher.visitor_hash("alice", DAY)
    assert first == hasher.visitor_hash("alice", DAY.replace(hour=23))
    assert first != hasher.visitor_hash("bob", DAY)
    assert len(first) == 16 and int(first, 16) >= 0
    next_day = hasher.visitor_hash("alice", DAY + timedelta(days=1))
    assert next_day != first
    assert analytics.VisitorHasher().visitor_hash("alice", DAY) != first  # salts are random


def test_salts_live_at_most_two_days_and_never_leave_memory():
    hasher = analytics.VisitorHasher()
    hasher.visitor_hash("alice", DAY)
    hasher.visitor_hash("alice", DAY + timedelta(days=1))
    hasher.visitor_hash("alice", DAY)  # yesterday's salt is still there
    hasher.visitor_hash("alice", DAY + timedelta(days=2))
    with pytest.raises(ValidationError, match="forgotten"):
        hasher.visitor_hash("alice", DAY)
    assert len(hasher._salts) == 2  # noqa: SLF001 - the property under test
    with pytest.raises(TypeError):
        pickle.dumps(hasher)


def test_make_event_is_coarse():
    made = event("alice", styles=["noir", "noir", "watercolor"], resolution_class="4k")
    assert made["hour_bucket"] == datetime(2026, 11, 27)  # the day: an hour joins generations
    assert made["latency_ms"] == 250.0  # 100 ms, as its bucket
    assert [analytics.latency_bucket(ms) for ms in (0, 251, 999.9, 10**7)] == [250, 500, 1000, 3e5]
    assert made["styles"] == ["noir", "watercolor"]
    assert "alice" not in str(made)
    assert event("a", model="/home/alice/models/mine")["model"] == analytics.LOCAL_MODEL
    assert event("a", model="stabilityai/sd-turbo")["model"] == "stabilityai/sd-turbo"


@pytest.mark.parametrize(
    "fields",
    [
        {"front_door": "web"},
        {"styles": ["Alice's portrait"]},
        {"styles": ["a cat on a mat"]},
        {"status": "failed: prompt 'a cat' was rejected"},
        {"resolution_class": "8k"},
        {"num_images": 0},
        {"steps": True},
        {"latency_ms": float("nan")},
        {"used_character": "yes"},
    ],
)
def test_make_event_refuses_free_text_and_bad_values(fields):
    with pytest.raises(ValidationError):
        event("alice", **fields)


def test_store_refuses_events_not_made_by_make_event(store):
    good = event("alice")
    with pytest.raises(ValidationError):
        store.record_event({**good, "prompt": "a cat"})
    with pytest.raises(ValidationError):
        store.record_event({**good, "visitor_hash": "user-alice"})
    assert store.record_event(good)


def test_parse_since():
    now = datetime(2026, 11, 29, 14, 40)
    assert analytics.parse_since("1d", now) == datetime(2026, 11, 28)  # whole days, to yesterday
    assert analytics.parse_since("30d", now) == datetime(2026, 10, 30)
    assert analytics.parse_since("2w", now) == datetime(2026, 11, 15)
    assert analytics.parse_since("3h", now) == datetime(2026, 11, 28)  # widened to a whole day
    assert analytics.parse_since("25h", now) == datetime(2026, 11, 27)
    assert analytics.parse_since(datetime(2026, 11, 2, 13), now) == datetime(2026, 11, 2)
    assert analytics.parse_since("2026-11-01", now) == datetime(2026, 11, 1)
    with pytest.raises(ValidationError, match="30d"):
        analytics.parse_since("last month", now)


# -- aggregates ----------------------------------------------------------------------------


def test_style_trends_hide_small_cells_and_their_complements(store):
    hasher = analytics.VisitorHasher()
    add_visitors(store, hasher, 12, prefix="w", styles=["watercolor"])
    add_visitors(store, hasher, 3, prefix="r", styles=["rare"])
    add_visitors(store, hasher, 15, prefix="a", styles=["anime"])
    trends = analytics.style_trends(store, since="2026-11-01")
    hidden = trends[trends["suppressed"]]
    assert set(zip(hidden["day"], hidden["style"], strict=True)) == {
        ("2026-11-27", "rare"),
        ("2026-11-27", "watercolor"),
        (analytics.TOTAL, "rare"),
        (analytics.TOTAL, "watercolor"),
    }
    assert hidden["events"].isna().all() and hidden["visitors"].isna().all()
    shown = trends[~trends["suppressed"]].set_index(["day", "style"])
    assert shown.loc[("2026-11-27", "anime"), "events"] == 15
    assert shown.loc[("2026-11-27", analytics.TOTAL), "visitors"] == 30
    assert (shown["visitors"] >= 10).all()


def test_mix_agrees_with_trends_and_shares_add_up(store):
    hasher = analytics.VisitorHasher()
    add_visitors(store, hasher, 12, prefix="w", styles=["watercolor"], model="sd-turbo")
    add_visitors(store, hasher, 20, prefix="n", styles=[], model="sdxl-turbo")
    styles = analytics.mix(store, "style", since="2026-11-01")
    assert list(styles.columns) == ["style", "events", "visitors", "share", "suppressed"]
    shares = styles.set_index("style")["share"]
    assert shares["(none)"] == pytest.approx(20 / 32) and shares[analytics.TOTAL] == 1
    models = analytics.mix(store, "model", since="2026-11-01", k=15)
    assert models.set_index("model")["suppressed"].to_dict() == {
        "sd-turbo": True,
        "sdxl-turbo": True,  # the complement: otherwise the total gives sd-turbo away
        analytics.TOTAL: False,
    }
    with pytest.raises(ValidationError):
        analytics.mix(store, "prompt")


def test_visitors_over_several_days_count_the_best_day_not_the_sum(store):
    hasher = analytics.VisitorHasher()
    for day in range(5):  # the same 4 people for 5 days: 20 visitor-days, never 10 people
        add_visitors(store, hasher, 4, when=DAY + timedelta(days=day), styles=["noir"])
    row = analytics.mix(store, "style", since="2026-11-01").set_index("style").loc["noir"]
    assert row["suppressed"]


def test_k_comes_from_settings_and_cannot_go_below_five(tmp_path):
    settings = Settings.load({}, data_dir=str(tmp_path / "d"), analytics_k=5)
    with Store.open(settings) as store:
        add_visitors(store, analytics.VisitorHasher(), 6)
        assert not analytics.daily_uniques(store, "2026-11-01")["suppressed"].any()
        assert analytics.daily_uniques(store, "2026-11-01", k=7)["suppressed"].all()
        with pytest.raises(ValidationError, match="at least 5"):
            analytics.daily_uniques(store, "2026-11-01", k=4)


def test_latency_and_error_rates(store):
    hasher = analytics.VisitorHasher()
    add_visitors(store, hasher, 10, prefix="a", model="sd-turbo", latency_ms=100.0)
    add_visitors(store, hasher, 10, prefix="b", model="sd-turbo", latency_ms=300.0)
    add_visitors(store, hasher, 4, prefix="c", model="flux-schnell", latency_ms=900.0)
    add_visitors(store, hasher, 10, prefix="d", model="sd-turbo", status="OutOfMemoryError")
    latency = analytics.latency(store, "2026-11-01").set_index("model")
    assert list(latency.columns) == ["day", "p50_ms", "p95_ms", "suppressed"]
    # 100 and 300 ms are kept as their buckets, 250 and 500; failures are not timed
    assert latency.loc["sd-turbo", "p50_ms"] == pytest.approx(375.0)
    assert latency.loc["sd-turbo", "p95_ms"] == pytest.approx(500.0)
    assert latency.loc["flux-schnell", "suppressed"]
    assert latency["p95_ms"].isna().tolist() == [True, False]
    rates = analytics.error_rates(store, "2026-11-01").set_index(["day", "status"])
    assert rates.loc[("2026-11-27", "OutOfMemoryError"), "rate"] == pytest.approx(10 / 34)


def test_empty_store_gives_empty_tables(store):
    for name, table in analytics.report(store, "30d").items():
        assert table.empty, name


def test_snapshot_is_zstd_parquet_of_usage_events_only(store, tmp_path):
    store.ensure_user("alice")
    store.record_generation({"user_id": "alice", "prompt": "SENTINEL-snapshot-prompt"})
    add_visitors(store, analytics.VisitorHasher(), 3)
    path = analytics.snapshot(store, tmp_path / "out")
    assert path.parent == tmp_path / "out" and path.suffix == ".parquet"
    metadata = pq.ParquetFile(path).metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    assert metadata.num_rows == 3
    assert b"SENTINEL-snapshot-prompt" not in path.read_bytes()
    assert "SENTINEL" not in str(pq.read_table(path).to_pylist())
    assert not list((tmp_path / "out").glob("*.partial"))


# -- CLI -----------------------------------------------------------------------------------


def filled_data_dir(settings, visitors=12):
    with Store.open(settings) as store:
        hasher = analytics.VisitorHasher()
        yesterday = datetime.now(timezone.utc) - timedelta(days=1)  # today is not published
        add_visitors(store, hasher, visitors, when=yesterday, styles=["watercolor"])
    return str(settings.data_dir)


def test_cli_json_report(settings):
    data_dir = filled_data_dir(settings)
    result = CliRunner().invoke(
        analytics_cli, ["--since", "7d", "--format", "json", "--data-dir", data_dir]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["k"] == 10 and set(report["reports"]) >= {"style_trends", "daily_uniques"}
    (uniques,) = report["reports"]["daily_uniques"]
    assert (uniques["visitors"], uniques["suppressed"]) == (12, False)


def test_cli_table_and_csv(settings):
    data_dir = filled_data_dir(settings, visitors=3)
    table = CliRunner().invoke(analytics_cli, ["--data-dir", data_dir])
    assert table.exit_code == 0, table.output
    assert "Style trends" in table.output and "fewer than 10 visitors" in table.output
    csv = CliRunner().invoke(analytics_cli, ["--format", "csv", "--data-dir", data_dir])
    assert csv.exit_code == 0, csv.output
    assert csv.output.splitlines()[0].startswith("report,")
    assert "daily_uniques" in csv.output


def test_cli_snapshot(settings, tmp_path):
    data_dir = filled_data_dir(settings)
    result = CliRunner().invoke(
        analytics_cli, ["snapshot", "-o", str(tmp_path / "snaps"), "--data-dir", data_dir]
    )
    assert result.exit_code == 0, result.output
    assert pq.read_metadata(result.output.strip()).num_rows == 12


def test_cli_user_errors_exit_2(settings, tmp_path):
    missing = CliRunner().invoke(analytics_cli, ["--data-dir", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "No GemPix data in" in missing.output
    data_dir = filled_data_dir(settings)
    bad = CliRunner().invoke(analytics_cli, ["--since", "forever", "--data-dir", data_dir])
    assert bad.exit_code == 2 and "since" in bad.output
    with Store.open(settings):  # the app has the store open: the snapshot works beside it
        out = str(tmp_path / "x")
        beside = CliRunner().invoke(analytics_cli, ["snapshot", "-o", out, "--data-dir", data_dir])
    assert beside.exit_code == 0 and Path(beside.output.strip()).is_file()
