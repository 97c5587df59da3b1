"""The attacks of issue 17, performed against the real server, each shown to fail now.

The whole app (web app at /, API at /api/v1) is built as ``gempix serve`` builds it
(``build_server``: the web app *mounted*, not launched) and started on a free port; attacks go
over raw HTTP where a well-behaved client would not let them through (``gradio_client``
uploads any local file it is given, which would hide a path-read attack). Every refusal has a
control next to it that shows the same request succeeding where it should, so a test cannot
pass because its payload was malformed. docs/security.md lists which test proves which
defence.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from conftest import png_bytes, tiny_settings
from test_app import DEFAULTS

from gempix.analytics import (
    LATENCY_BUCKETS_MS,
    TOTAL,
    VisitorHasher,
    make_event,
    style_trends,
)
from gempix.api import API_PREFIX, ApiConfig
from gempix.errors import BudgetExceeded, UserLockedError
from gempix.params import GenerationRequest
from gempix.privacy.identity import LOCAL_USER, new_user_key, server_secret, user_id_for
from gempix.server import build_server, private_serving, start_server
from gempix.service import Studio
from gempix.settings import Settings
from gempix.store import Store
from gempix.store.values import as_utc

HOUR = timedelta(hours=1)

# The Create tab's /generate inputs in order (ui/create.py: the key, the prompt, then the
# fields test_app sends), for raw calls; one denoising step where a test needs no more.
GENERATE_DEFAULTS = {**DEFAULTS, "steps": 1}
GENERATE_INPUTS = ["user_key", "prompt", *GENERATE_DEFAULTS]


@pytest.fixture(scope="module")
def data(tmp_path_factory, tiny_folder):
    """One data dir and Gradio cache for the module's servers."""
    root = tmp_path_factory.mktemp("security")
    settings = tiny_settings(root / "data", tiny_folder)
    return SimpleNamespace(root=root, settings=settings, cache=root / "gradio-cache")


@pytest.fixture(autouse=True)
def same_cache(data, monkeypatch):
    """Gradio reads GRADIO_TEMP_DIR at request time: keep the servers' own."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(data.cache))


@pytest.fixture(scope="module")
def studio(data, tiny_models):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(data.cache))
        with Studio(data.settings, models=tiny_models) as made:
            yield made


@contextlib.contextmanager
def serving(studio, config: ApiConfig | None = None, **options):
    """The whole app as ``gempix serve`` builds it, on a free port."""
    server = start_server(build_server(studio, config=config), **options)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def app(studio):
    with serving(studio) as url:
        yield url


def web_user(studio, url: str) -> tuple[str, str]:
    """A new web app user who confirmed their age: (user key, user id)."""
    key = new_user_key()
    assert call(url, "confirm_age", [key, True])[0] == "complete"
    return key, user_id_for(server_secret(studio.settings), key)


def file_data(path: str) -> dict:
    """A file input as the page sends it once uploaded: a path Gradio is to read."""
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def call(url: str, api_name: str, data: list, **options) -> tuple[str, object]:
    """Run ``api_name`` through the queue with raw HTTP (``/gradio_api/call``): the last SSE
    event's name (``complete`` or ``error``) and its data."""
    at = f"{url}/gradio_api/call/{api_name}"
    started = httpx.post(at, json={"data": data}, timeout=30, **options)
    started.raise_for_status()
    stream = httpx.get(f"{at}/{started.json()['event_id']}", timeout=120, **options)
    event, payload = "", None
    for line in stream.text.splitlines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            payload = json.loads(line.split(":", 1)[1].strip() or "null")
    return event, payload


def upload(url: str, content: bytes, name: str = "mine.png") -> str:
    """Upload a file the way the page does; the path Gradio keeps it under."""
    answer = httpx.post(f"{url}/gradio_api/upload", files={"files": (name, content)}, timeout=30)
    answer.raise_for_status()
    return answer.json()[0]


def generate_data(key: str, prompt: str, **changes) -> list:
    values = {"user_key": key, "prompt": prompt, **GENERATE_DEFAULTS, **changes}
    return [values[name] for name in GENERATE_INPUTS]


# -- 1. file inputs only from this request's uploads ---------------------------------------------


def test_a_user_cannot_read_the_operators_image_by_its_path(studio, app):
    """User B names the operator's image (``<data>/images/local/<id>.png``) as a character
    reference and as init_image, through the queue and through POST /gradio_api/api/generate:
    all refused, nothing created for B. The same calls with B's own upload succeed."""
    operator = studio.generate(GenerationRequest("the operator's secret", steps=1))
    target = str(operator.images[0].path)
    assert Path(target).is_relative_to(studio.settings.images_dir / LOCAL_USER)
    key, user_id = web_user(studio, app)

    event, _ = call(app, "create_character", [key, "Thief", [file_data(target)], True])
    assert event == "error"
    assert studio.characters.list(user_id) == []
    event, _ = call(app, "generate", generate_data(key, "x", init_image=file_data(target), steps=2))
    assert event == "error"
    direct = httpx.post(
        f"{app}/gradio_api/api/generate",
        json={"data": generate_data(key, "x", init_image=file_data(target), steps=2)},
        timeout=60,
    )
    assert direct.status_code >= 400
    assert studio.images.rows(user_id, 100) == []

    own = upload(app, png_bytes((64, 64), "white"))  # control: an upload of B's own is read
    event, _ = call(app, "create_character", [key, "Mine", [file_data(own)], True])
    assert event == "complete"
    assert [row["name"] for row in studio.characters.list(user_id)] == ["Mine"]
    event, answer = call(
        app, "generate", generate_data(key, "x", init_image=file_data(own), steps=2)
    )
    assert event == "complete", answer
    assert len(studio.images.rows(user_id, 100)) == 1


# -- 2. an erasure stops the user's running generation -------------------------------------------


def confirmed(studio) -> str:
    _key, user_id = studio.privacy.create_user()
    studio.privacy.confirm_age(user_id)
    return user_id


@pytest.mark.parametrize("erase_at", [1, 6])
def test_an_erasure_stops_a_running_generation_and_it_answers_409(studio, erase_at):
    """The user is erased while their 6-step generation runs (from its own preview callback,
    so the timing is exact). It stops at its next step: no preview after the erasure, no
    image, nothing of the user left, and the error is UserLockedError (HTTP 409). Erased at
    the last step, the records are refused and the answer is 409 too (it was 404)."""
    user_id = confirmed(studio)
    steps: list[int] = []

    def on_preview(step: int, total: int, image) -> None:
        steps.append(step)
        if step == erase_at:
            assert studio.privacy.erase(user_id).verified

    with pytest.raises(UserLockedError) as caught:
        studio.generate(
            GenerationRequest("a long walk", steps=6), user_id=user_id, on_preview=on_preview
        )
    assert caught.value.status == 409
    assert steps == list(range(1, erase_at + 1))  # no step, no preview, after the erasure
    assert not (studio.settings.images_dir / user_id).exists()
    assert studio.privacy.user(user_id) is None


# -- 5. no route runs a function past the queue and the web rate limit ---------------------------


def test_direct_gradio_posts_are_closed_and_rate_limited(studio):
    """150 POSTs to /gradio_api/api/generate (and /run/): before, 150 x 200 past the queue and
    the web limit. Now none runs (the queue is the only way in) and the web limit counts them
    (120/minute: the rest are 429)."""
    key = new_user_key()
    with serving(studio, ApiConfig(rate_web="120/minute")) as url:
        assert call(url, "confirm_age", [key, True])[0] == "complete"  # control: queue works
        user_id = user_id_for(server_secret(studio.settings), key)
        with httpx.Client(base_url=url, timeout=30) as client:
            codes = [
                client.post(
                    f"/gradio_api/{route}/generate", json={"data": generate_data(key, "x")}
                ).status_code
                for route in ("api", "run")
                for _ in range(75)
            ]
    assert 200 not in codes
    assert codes.count(429) >= 150 - 120 + 1  # the confirm_age call above counted too
    assert studio.images.rows(user_id, 100) == []


# -- 7. no access log with client addresses ------------------------------------------------------


def test_the_server_keeps_no_access_log_by_default(studio, capfd):
    """At uvicorn's info level, as ``gempix serve`` runs: requests leave no line with the
    client address and path; the control (GEMPIX_ACCESS_LOG=true) shows there would be."""
    for access_log in (False, True):
        with serving(studio, log_level="info", access_log=access_log) as url:
            httpx.get(f"{url}{API_PREFIX}/health", timeout=10)
            httpx.get(f"{url}/gradio_api/info", timeout=10)
        logged = "".join(capfd.readouterr())
        if access_log:
            assert "127.0.0.1" in logged and "/health" in logged  # control
        else:
            assert "127.0.0.1:" not in logged.replace(url, "") and "/health" not in logged


# -- 8. X-Forwarded-For only from trusted proxies ------------------------------------------------


def bad_key_requests(url: str, count: int) -> list[int]:
    with httpx.Client(base_url=url, timeout=30) as client:
        return [
            client.get(
                f"{API_PREFIX}/images",
                headers={"Authorization": "Bearer gpx_bad", "X-Forwarded-For": f"10.0.0.{n}"},
            ).status_code
            for n in range(count)
        ]


def test_a_forged_forwarded_address_does_not_escape_the_anonymous_limit(studio):
    """150 bad-key requests, each naming another X-Forwarded-For: 0 x 429 before. Now the
    header is ignored (no trusted proxy), so the one client is limited at 30/minute; the
    control trusts 127.0.0.1 as a proxy and the same requests are each a new client."""
    config = ApiConfig(rate_anonymous="30/minute")
    with serving(studio, config) as url:
        codes = bad_key_requests(url, 150)
    assert codes.count(429) == 120 and codes.count(401) == 30
    with serving(studio, config, trusted_proxies="127.0.0.1") as url:
        assert set(bad_key_requests(url, 150)) == {401}  # control: a proxy's header believed


# -- 9. one generation budget per user, and a cap on keys ---------------------------------------


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory, tiny_folder, tiny_models, data):
    """A server whose users may make 3 generations a minute and hold 2 keys."""
    settings = tiny_settings(
        tmp_path_factory.mktemp("budget") / "data",
        tiny_folder,
        rate_user_generate="3/minute",
        max_keys_per_user=2,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(data.cache))
        with Studio(settings, models=tiny_models) as made, serving(made) as url:
            yield SimpleNamespace(studio=made, url=url)


def test_more_keys_buy_no_more_generations(budgeted):
    """A user with two keys (each allowed 10/minute by the API) and the web app: their 4th
    generation in a minute is refused whichever way it comes (429 over HTTP); the local
    operator's own generations are not counted."""
    url = budgeted.url
    key, user_id = web_user(budgeted.studio, url)
    api_keys = [call(url, "create_api_key", [key, name])[1][0] for name in ("a", "b")]
    assert all(k.startswith("gpx_") for k in api_keys)

    def over_http(api_key: str) -> int:
        return httpx.post(
            f"{url}{API_PREFIX}/generate",
            json={"prompt": "x", "steps": 1},
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=60,
        ).status_code

    assert [over_http(api_keys[0]), over_http(api_keys[1])] == [200, 200]
    assert call(url, "generate", generate_data(key, "x"))[0] == "complete"
    answers = [over_http(api_keys[0]), over_http(api_keys[1])]
    event, message = call(url, "generate", generate_data(key, "x"))
    assert answers == [429, 429] and event == "error"
    assert len(budgeted.studio.images.rows(user_id, 100)) == 3
    with pytest.raises(BudgetExceeded):
        budgeted.studio.budget.spend(user_id)
    for _ in range(5):  # control: the operator is not counted
        budgeted.studio.budget.spend(LOCAL_USER)


def test_a_user_cannot_make_keys_without_end(budgeted):
    """25 keys through the web app before; now the third is refused, and after revoking one
    there is room again."""
    key, user_id = web_user(budgeted.studio, budgeted.url)
    made = [call(budgeted.url, "create_api_key", [key, f"k{n}"]) for n in range(3)]
    assert [event for event, _ in made] == ["complete", "complete", "error"]
    keys = budgeted.studio.keys.list(user_id)
    assert len(keys) == 2
    budgeted.studio.keys.revoke(user_id, keys[0]["prefix"])
    assert call(budgeted.url, "create_api_key", [key, "again"])[0] == "complete"


# -- 6. personal files are private under umask 022 -----------------------------------------------


def modes_below(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every folder and file below ``root`` (``root`` included): ``d700``, ``f600``..."""

    def mode(path: Path) -> str:
        info = path.stat()
        return f"{'d' if stat.S_ISDIR(info.st_mode) else 'f'}{stat.S_IMODE(info.st_mode):o}"

    found = {".": mode(root)}
    for path in root.rglob("*"):
        name = str(path.relative_to(root))
        if not name.startswith(skip):
            found[name] = mode(path)
    return found


def test_a_server_writes_personal_files_for_its_owner_only(tmp_path, tiny_folder, tiny_models):
    """Under umask 022, before: data dir 0755, database and WAL 0644, images 0644, Gradio's
    cache /tmp/gradio 0755 with exports. Now, as ``gempix serve`` prepares its process
    (``private_serving``), every folder is 0700 and every file 0600: data dir, database,
    images, usage files, the cache under the data dir with served copies, uploads, export."""
    settings = tiny_settings(tmp_path / "data", tiny_folder)  # models: not personal, skipped
    assert settings.cache_dir == settings.data_dir / "cache"
    old = os.umask(0o022)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("GRADIO_TEMP_DIR", "")
            private_serving(settings)
            assert os.environ["GRADIO_TEMP_DIR"] == str(settings.cache_dir)
            with Studio(settings, models=tiny_models) as studio, serving(studio) as url:
                key, _ = web_user(studio, url)
                own = upload(url, png_bytes((64, 64), "white"))
                assert call(url, "create_character", [key, "Me", [file_data(own)], True])[0] == (
                    "complete"
                )
                assert call(url, "generate", generate_data(key, "x"))[0] == "complete"
                assert call(url, "export", [key])[0] == "complete"
                studio.record_usage(GenerationRequest("x"), LOCAL_USER, "cli", 0.0)
                running = modes_below(settings.data_dir, skip=("models",))  # the ZIP, the WAL
    finally:
        os.umask(old)
    modes = {**running, **modes_below(settings.data_dir, skip=("models",))}  # usage files
    kinds = {Path(name).suffix for name in modes}
    assert {".sqlite3", ".png", ".parquet", ".zip", ".jsonl"} <= kinds, sorted(modes)
    assert any(name.startswith("cache/") for name in modes)
    loose = {name: mode for name, mode in modes.items() if mode not in ("d700", "f600")}
    assert loose == {}


def test_the_data_dir_is_private_from_any_door(tmp_path, tiny_folder, tiny_models):
    """A CLI or notebook studio (no server umask): the data dir it opens is made 0700, so
    nothing below it is reachable by another account whatever its own mode."""
    settings = tiny_settings(tmp_path / "data", tiny_folder)
    settings.data_dir.chmod(0o755)  # as an earlier release left it
    old = os.umask(0o022)
    try:
        with Studio(settings, models=tiny_models) as studio:
            studio.generate(GenerationRequest("x", steps=1))
    finally:
        os.umask(old)
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700


# -- 3. overlapping analytics windows reveal no one ----------------------------------------------


def watercolor(store, hasher, visitors: list[str], when: datetime, styles=("watercolor",)):
    for visitor in visitors:
        store.record_event(
            make_event(
                visitor_hash=hasher.visitor_hash(visitor, when),
                front_door="ui",
                model="sd-turbo",
                steps=2,
                latency_ms=100.0,
                styles=styles,
                now=when,
            )
        )


def test_subtracting_two_analytics_windows_reveals_no_visitor(tmp_path):
    """12 visitors make watercolor events in one hour; the target makes 3 in the hour before.
    Before, since=1h gave 12 events / 12 visitors and since=2h 15 / 13: the difference was the
    target's 3 events. Now both windows are the same whole day, so they are equal; and over
    days, a day's hidden cells never reach the window's totals."""
    settings = Settings.load({}, data_dir=str(tmp_path / "data"))
    hasher = VisitorHasher()
    now = datetime.now(timezone.utc).replace(minute=30, second=0, microsecond=0)
    yesterday = (now - timedelta(days=1)).replace(hour=12)  # target and crowd: same day
    crowd = [f"crowd{n}" for n in range(12)]
    with Store.open(settings) as store:
        watercolor(store, hasher, crowd, yesterday)
        watercolor(store, hasher, ["target"] * 3, yesterday - timedelta(hours=1))
        # Control: the raw events keep only the day, so no hourly window of them separates
        # the crowd's 12 from the target's 3 (the attack needed exactly that).
        midnight = yesterday.replace(hour=0, minute=0)
        raw = {
            (int(r.events.sum()), int(r.visitors.sum()))
            for r in (
                store.usage_counts("style", midnight + hour * HOUR).query("value == 'watercolor'")
                for hour in range(24)
            )
        }
        assert raw == {(15, 13), (0, 0)}
        watercolor(store, hasher, crowd, now)  # today: not published at all yet
        one_hour, two_hours = (style_trends(store, since) for since in ("1h", "2h"))
        assert one_hour.equals(two_hours)
        by_start = [
            style_trends(store, start) for start in (yesterday, yesterday - timedelta(hours=1))
        ]
        assert by_start[0].equals(by_start[1])
        assert today_iso(now) not in set(one_hour["day"])

        # Over days: the day before, 3 rare-style visitors hide (with a complement) there.
        before, hasher = yesterday - timedelta(days=1), VisitorHasher()  # that day's salts
        watercolor(store, hasher, [f"early{n}" for n in range(12)], before)
        watercolor(store, hasher, ["rare1", "rare2", "rare3"], before, styles=["rare"])
        short, long = (
            style_trends(store, day.date()).query("day == @TOTAL").set_index("style")
            for day in (yesterday, before)
        )
    assert (
        long.loc["rare", "suppressed"]
        and long.loc["watercolor", "events"]
        == (
            short.loc["watercolor", "events"]  # the early watercolor cell hid as the complement
        )
    )
    assert long.loc[TOTAL, "events"] - short.loc[TOTAL, "events"] == 15  # the day's own total


def today_iso(now: datetime) -> str:
    return now.date().isoformat()


# -- 4. usage events do not join generations -----------------------------------------------------


def test_usage_events_cannot_be_joined_to_generations(studio):
    """Before: joining usage_events.latency_ms to generations.duration_ms (within 5 ms, same
    hour) gave each event's user and prompt. Now events keep the day and a latency bucket:
    the join links no event to a generation (a duration that happens to lie within 5 ms of a
    bucket's bound is left out: it would match every event of that bucket alike)."""
    users = [confirmed(studio) for _ in range(4)]
    for n, user_id in enumerate(users):
        studio.generate(GenerationRequest(f"secret {n}", steps=1 + n % 2), user_id=user_id)
    generations = [row for user in users for row in studio.images.rows(user, 100)]
    events = studio.store.usage_events()
    assert len(generations) == 4 and len(events) >= 4
    assert set(events["latency_ms"]) <= set(map(float, LATENCY_BUCKETS_MS))
    assert {(t.hour, t.minute) for t in events["hour_bucket"]} == {(0, 0)}

    def hour(row) -> datetime:
        return as_utc(row["created_at"], "created_at").replace(minute=0, second=0, microsecond=0)

    joinable = [
        row
        for row in generations
        if min(abs(row["duration_ms"] - bound) for bound in LATENCY_BUCKETS_MS) > 5
    ]
    links = [
        (event.Index, row["id"])
        for event in events.itertuples()
        for row in joinable
        if event.hour_bucket.to_pydatetime() == hour(row)
        and abs(event.latency_ms - row["duration_ms"]) <= 5
    ]
    assert links == []
    same_day = [  # control: the times compare (a day joins, an hour no longer does)
        row
        for event in events.itertuples()
        for row in generations
        if event.hour_bucket.to_pydatetime() == hour(row).replace(hour=0)
    ]
    assert len(same_day) >= len(generations)
