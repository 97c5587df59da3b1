"""The store on real files: records, ownership, threads, crashes, several processes at once.

Every test taking ``settings`` runs on SQLite and on PostgreSQL (``database_url`` in
tests/conftest.py); the SQLite file's own properties are tested on ``sqlite_settings``.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import services

from gempix.analytics import make_event
from gempix.errors import GemPixError, NotFoundError, ValidationError
from gempix.settings import Settings
from gempix.store import Store, UserLockedError
from gempix.store.values import utcnow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def settings(tmp_path, database_url):
    return Settings.load({}, data_dir=str(tmp_path / "data"), database_url=database_url or None)


@pytest.fixture
def sqlite_settings(tmp_path):
    return Settings.load({}, data_dir=str(tmp_path / "data"))


@pytest.fixture
def store(settings):
    with Store.open(settings) as opened:
        opened.ensure_user("alice")
        opened.ensure_user("bob")
        yield opened


def event(**overrides):
    fields = dict(visitor_hash="0123456789abcdef", front_door="ui", model="tiny", steps=2)
    return make_event(latency_ms=12.5, **{**fields, **overrides})


def wait_until(condition, timeout=5.0, what="condition"):
    """Poll ``condition`` until true; fail after ``timeout`` seconds (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        threading.Event().wait(0.02)


def python(script: str, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env, text=True, **kwargs)


# -- records and ownership ----------------------------------------------------------------


def test_generation_round_trip_keeps_every_field(store):
    record = {
        "user_id": "alice",
        "front_door": "api",
        "prompt": "a lighthouse at dawn",
        "negative_prompt": "fog",
        "model": "sd-turbo",
        "seed": 2**32 - 1,
        "steps": 4,
        "guidance": 0.0,
        "width": 768,
        "height": 512,
        "params": {"aspect": "3:2", "upscaled": False},
        "styles": ["watercolor", "noir"],
        "character_id": "c1",
        "consistency": 0.83,
        "source_id": "g0",
        "file_path": "/data/images/alice/x.png",
        "status": "ok",
        "duration_ms": 310.5,
    }
    generation_id = store.record_generation(record)
    stored = store.get_generation("alice", generation_id)
    assert {key: stored[key] for key in record} == record
    assert stored["id"] == generation_id and isinstance(stored["created_at"], datetime)


def test_another_users_generation_looks_missing(store):
    generation_id = store.record_generation({"user_id": "alice", "prompt": "mine"})
    with pytest.raises(NotFoundError) as theirs:
        store.get_generation("bob", generation_id)
    with pytest.raises(NotFoundError) as missing:
        store.get_generation("bob", "no-such-id")
    assert str(theirs.value).replace(generation_id, "X") == str(missing.value).replace(
        "no-such-id", "X"
    )
    with pytest.raises(NotFoundError):
        store.delete_generation("bob", generation_id)
    assert store.get_generation("alice", generation_id)["prompt"] == "mine"


def test_list_is_newest_first_and_paged(store):
    ids = [store.record_generation({"user_id": "alice", "seed": n}) for n in range(5)]
    store.record_generation({"user_id": "bob"})
    listed = [row["id"] for row in store.list_generations("alice", limit=3)]
    assert listed == ids[::-1][:3]
    assert [row["id"] for row in store.list_generations("alice", limit=3, offset=3)] == ids[1::-1]
    with pytest.raises(ValidationError):
        store.list_generations("alice", limit=0)


def test_delete_generation_returns_its_file(store):
    generation_id = store.record_generation({"user_id": "alice", "file_path": "/x/1.png"})
    assert store.delete_generation("alice", generation_id) == "/x/1.png"
    with pytest.raises(NotFoundError):
        store.get_generation("alice", generation_id)


@pytest.mark.parametrize(
    "record",
    [{"user_id": "alice", "ip_address": "10.0.0.1"}, {"prompt": "no user"}, {"user_id": 7}],
)
def test_bad_generation_records_are_refused(store, record):
    with pytest.raises(ValidationError):
        store.record_generation(record)


@pytest.mark.parametrize(
    "field",
    [
        {"seed": "SECRET-not-a-number"},
        {"steps": 2.5},
        {"guidance": "SECRET"},
        {"seed": 2**80},
        {"params": {"SECRET": object()}},
        {"params": "{SECRET: not json"},
        {"prompt": "SECRET \udc80 lone surrogate"},
        {"prompt": ["SECRET"]},
        {"created_at": "SECRET o'clock"},
        {"front_door": "SECRET"},
    ],
)
def test_values_that_do_not_fit_their_column_are_refused_without_echo(store, field):
    with pytest.raises(ValidationError) as raised:
        store.record_generation({"user_id": "alice", **field})
    assert "SECRET" not in str(raised.value)
    assert str(raised.value).strip()
    assert store.list_generations("alice") == []


def test_records_need_a_known_unlocked_user(store):
    with pytest.raises(NotFoundError):
        store.record_generation({"user_id": "carol"})
    store.update_user("alice", locked=True)
    for attempt in (
        lambda: store.record_generation({"user_id": "alice"}),
        lambda: store.create_character("alice", "Ada", ["/a.png"]),
        lambda: store.add_consent("alice", "training", True, "2026-11", "ui-toggle"),
    ):
        with pytest.raises(UserLockedError):
            attempt()


def test_users_flags_and_roles(store):
    assert store.get_user("alice")["role"] == "user"
    assert store.ensure_user("alice", role="admin")["role"] == "user"  # existing keeps role
    updated = store.update_user("alice", role="admin", analytics_objection=True)
    assert updated["role"] == "admin" and updated["analytics_objection"] is True
    for bad in ({"role": "root"}, {"locked": "yes"}, {"prompt": "x"}, {}):
        with pytest.raises(ValidationError):
            store.update_user("alice", **bad)
    with pytest.raises(NotFoundError):
        store.update_user("carol", restricted=True)
    with pytest.raises(ValidationError):
        store.ensure_user("../etc")


def test_characters_crud_and_unique_names(store):
    character_id = store.create_character(
        "alice", " Ada ", ["/r/1.png"], embeddings=b"\x00\x01", strength=0.6
    )
    assert store.get_character("alice", character_id)["embeddings"] == b"\x00\x01"
    assert [c["name"] for c in store.list_characters("alice")] == ["Ada"]
    assert "embeddings" not in store.list_characters("alice")[0]
    with pytest.raises(ValidationError, match="already have"):
        store.create_character("alice", "Ada", ["/r/2.png"])
    store.create_character("bob", "Ada", ["/r/3.png"])  # names are per user
    other = store.create_character("alice", "Bea", ["/r/4.png"])
    with pytest.raises(ValidationError, match="already have"):
        store.update_character("alice", other, name="Ada")
    renamed = store.update_character("alice", character_id, name="Ada L.", strength=0.9)
    assert (renamed["name"], renamed["strength"]) == ("Ada L.", 0.9)
    with pytest.raises(NotFoundError):
        store.get_character("bob", character_id)
    assert store.delete_character("alice", character_id) == ["/r/1.png"]
    with pytest.raises(NotFoundError):
        store.delete_character("alice", character_id)


def test_consent_ledger_keeps_every_change_in_order(store):
    assert store.current_consent("alice", "training") is None
    store.add_consent("alice", "training", True, "2026-11", "ui-toggle")
    store.add_consent("alice", "training", False, "2026-11", "ui-toggle")
    store.add_consent("alice", "newsletter", True, "2026-11", "api")
    history = store.consent_history("alice", "training")
    assert [row["granted"] for row in history] == [True, False]
    assert store.current_consent("alice", "training")["granted"] is False
    assert len(store.consent_history("alice")) == 3
    with pytest.raises(ValidationError):
        store.add_consent("alice", "Training Data!", True, "2026-11", "ui")


def test_api_keys(store):
    store.create_api_key_row("gpx_ab12", "alice", "laptop", "user", "h" * 64)
    assert store.get_api_key("gpx_ab12")["secret_hash"] == "h" * 64
    assert store.get_api_key("gpx_none") is None
    assert "secret_hash" not in store.list_api_keys("alice")[0]
    assert store.list_api_keys("bob") == []
    with pytest.raises(ValidationError):
        store.create_api_key_row("gpx_ab12", "bob", "dup", "user", "h" * 64)
    store.touch_api_key("gpx_ab12")
    assert store.get_api_key("gpx_ab12")["last_used_at"] is not None
    with pytest.raises(NotFoundError):
        store.revoke_api_key("gpx_ab12", user_id="bob")
    store.revoke_api_key("gpx_ab12", user_id="alice")
    assert store.get_api_key("gpx_ab12")["revoked_at"] is not None


def test_user_styles(store):
    store.save_user_style("alice", "my ink", "{prompt}, ink", "colour")
    store.save_user_style("alice", "my ink", "{prompt}, ink wash")
    assert [(s["name"], s["template"]) for s in store.list_user_styles("alice")] == [
        ("my ink", "{prompt}, ink wash")
    ]
    store.delete_user_style("alice", "my ink")
    with pytest.raises(NotFoundError):
        store.delete_user_style("alice", "my ink")


def test_privacy_requests_hold_counts_only(store):
    request_id = store.add_privacy_request("ab" * 16, "erasure")
    store.complete_privacy_request(request_id, {"generations": 3})
    (row,) = store.list_privacy_requests()
    assert row["counts"] == {"generations": 3} and row["completed_at"] is not None
    with pytest.raises(ValidationError):
        store.complete_privacy_request(request_id, {"generations": "a prompt"})
    with pytest.raises(ValidationError):
        store.add_privacy_request("alice", "erasure")  # a raw id, not a hash


# -- usage events and the request log -------------------------------------------------------


def test_events_of_objecting_restricted_or_locked_users_are_dropped(store):
    store.ensure_user("carol")
    store.update_user("alice", analytics_objection=True)
    store.update_user("bob", restricted=True)
    store.ensure_user("dave")
    store.update_user("dave", locked=True)
    assert not store.record_event(event(), user_id="alice")
    assert not store.record_event(event(), user_id="bob")
    assert not store.record_event(event(), user_id="dave")
    assert store.record_event(event(), user_id="carol")
    store.update_user("alice", analytics_objection=False)
    assert store.record_event(event(), user_id="alice")
    store.flush()
    assert store.table_counts()["usage_events"] == 2


def test_flags_survive_reopening(settings):
    with Store.open(settings) as store:
        store.ensure_user("alice")
        store.update_user("alice", analytics_objection=True)
    with Store.open(settings) as store:
        assert not store.record_event(event(), user_id="alice")


def test_buffered_events_reach_the_file_without_a_close(store):
    store.record_event(event())
    wait_until(lambda: store.table_counts()["usage_events"] == 1, what="the flusher")


def test_close_flushes_buffers(settings):
    store = Store.open(settings)
    for _ in range(10):
        store.record_event(event())
    store.record_api_request("/v1/generations", "POST", 200, 5.0)
    store.close()
    store.close()  # twice is fine
    with Store.open(settings) as reopened:
        counts = reopened.table_counts()
    assert (counts["usage_events"], counts["api_requests"]) == (10, 1)


def test_closed_store_refuses_work(settings):
    store = Store.open(settings)
    store.close()
    with pytest.raises(GemPixError):
        store.record_event(event())
    with pytest.raises(GemPixError):
        store.get_user("alice")


def test_api_request_log_takes_templates_not_paths(store):
    store.record_api_request(
        "/v1/generations/{id}", "GET", 404, 3.2, key_prefix="gpx_ab12", error_class="NotFoundError"
    )
    (row,) = store.list_api_requests()
    assert (row["route"], row["status"], row["error_class"]) == (
        "/v1/generations/{id}",
        404,
        "NotFoundError",
    )
    for route in ("/v1/generations/1?prompt=a cat", "v1", "/v1/users/alice smith"):
        with pytest.raises(ValidationError):
            store.record_api_request(route, "GET", 200, 1.0)
    with pytest.raises(ValidationError):
        store.record_api_request("/v1", "BREW", 200, 1.0)


def test_retention_purge_at_open_and_on_demand(settings):
    now = utcnow()
    with Store.open(settings) as store:
        for age in (40, 31, 29, 1):
            store.record_api_request("/v1/x", "GET", 200, 1.0, created_at=now - timedelta(days=age))
    with Store.open(settings) as store:  # retention_days=30, purged at open
        assert store.table_counts()["api_requests"] == 2
        assert store.purge_api_requests(2) == 1
        assert store.table_counts()["api_requests"] == 1
        with pytest.raises(ValidationError):
            store.purge_api_requests(0)


def test_flusher_purges_daily(store):
    store.record_api_request("/v1/x", "GET", 200, 1.0, created_at=utcnow() - timedelta(days=29))
    store.record_api_request("/v1/x", "GET", 200, 1.0)
    store.flush()
    assert store.table_counts()["api_requests"] == 2
    store.clock.source = lambda: utcnow() + timedelta(days=2)  # a day later: purge is due
    wait_until(lambda: store.table_counts()["api_requests"] == 1, what="the daily purge")


# -- threads, crashes, processes --------------------------------------------------------------


def test_eight_threads_write_exact_counts(store):
    users = [f"user{n}" for n in range(8)]
    for user in users:
        store.ensure_user(user)
    errors: list[BaseException] = []
    start = threading.Barrier(len(users))

    def work(user: str) -> None:
        start.wait()
        try:
            for n in range(500):
                store.record_generation({"user_id": user, "seed": n, "prompt": f"{user} {n}"})
                store.record_event(event())
                if n % 100 == 0:
                    store.list_generations(user, limit=5)
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store.flush()
    assert store.table_counts()["generations"] == 4000
    assert store.table_counts()["usage_events"] == 4000
    for user in users:
        seeds = {row["seed"] for row in store.rows_for_user("generations", user)}
        assert seeds == set(range(500))


CRASH_WRITER = """
import sys
from gempix.settings import Settings
from gempix.store import Store
from gempix.analytics import make_event
store = Store.open(Settings.load(data_dir=sys.argv[1]))
store.ensure_user("writer")
n = 0
while True:
    generation_id = store.record_generation({"user_id": "writer", "seed": n})
    store.record_event(make_event(visitor_hash="0" * 16, front_door="cli", model="tiny",
                                  steps=1, latency_ms=1.0))
    print(generation_id, flush=True)
    n += 1
"""


def test_acknowledged_generations_survive_sigkill(settings):
    writer = python(CRASH_WRITER, str(settings.data_dir), stdout=subprocess.PIPE)
    acknowledged = []
    try:
        while len(acknowledged) < 300:
            line = writer.stdout.readline()
            assert line, f"writer stopped early with exit code {writer.poll()}"
            acknowledged.append(line.strip())
        os.kill(writer.pid, signal.SIGKILL)
        acknowledged += [line.strip() for line in writer.stdout.read().splitlines()]
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    with Store.open(settings) as store:
        stored = {row["id"] for row in store.rows_for_user("generations", "writer")}
    assert set(acknowledged) <= stored


SECOND_PROCESS = """
import sys
from gempix.analytics import make_event
from gempix.settings import Settings
from gempix.store import Store
with Store.open(Settings.load(data_dir=sys.argv[1])) as store:
    print(store.list_generations("alice")[0]["prompt"])
    store.ensure_user("carol")
    print(store.record_generation({"user_id": "carol", "prompt": "from the second process"}))
    store.record_event(make_event(visitor_hash="f" * 16, front_door="cli", model="tiny",
                                  steps=1, latency_ms=1.0), user_id="carol")
"""


def test_a_second_process_reads_and_writes_while_the_store_is_open(store, settings):
    store.record_generation({"user_id": "alice", "prompt": "from the first process"})
    probe = python(SECOND_PROCESS, str(settings.data_dir), stdout=subprocess.PIPE)
    output, _ = probe.communicate(timeout=120)
    assert probe.returncode == 0
    seen, generation_id = output.splitlines()
    assert seen == "from the first process"
    assert store.get_generation("carol", generation_id)["prompt"] == "from the second process"
    events = store.usage_events()
    assert list(events["visitor_hash"]) == ["f" * 16]  # written by the other process's close
    store.record_generation({"user_id": "carol", "prompt": "and back"})  # still writable


WRITER = """
import sys
from gempix.settings import Settings
from gempix.store import Store
with Store.open(Settings.load(data_dir=sys.argv[1])) as store:
    store.ensure_user(sys.argv[2])
    print("ready", flush=True)
    sys.stdin.readline()
    for n in range(300):
        store.record_generation({"user_id": sys.argv[2], "seed": n})
"""


def test_processes_and_threads_writing_at_once_lose_nothing(store, settings):
    writers = [
        python(WRITER, str(settings.data_dir), user, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        for user in ("proc-a", "proc-b")
    ]
    try:
        for writer in writers:
            assert writer.stdout.readline().strip() == "ready"
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()
        for n in range(300):  # this process writes meanwhile
            store.record_generation({"user_id": "alice", "seed": n})
        for writer in writers:
            assert writer.wait(timeout=120) == 0
    finally:
        for writer in writers:
            writer.kill()
            writer.wait()
    for user in ("proc-a", "proc-b", "alice"):
        seeds = sorted(row["seed"] for row in store.rows_for_user("generations", user))
        assert seeds == list(range(300)), user


ERASER = """
import sys
from gempix.settings import Settings
from gempix.store import Store
with Store.open(Settings.load(data_dir=sys.argv[1])) as store:
    print(store.delete_user_rows("alice"))
"""


def test_an_erasure_by_another_process_stops_records_here(store, settings):
    store.record_generation({"user_id": "alice"})
    assert store.record_event(event(), user_id="alice")
    eraser = python(ERASER, str(settings.data_dir), stdout=subprocess.PIPE)
    assert eraser.communicate(timeout=120)[0] and eraser.returncode == 0
    with pytest.raises(NotFoundError):
        store.record_generation({"user_id": "alice"})
    assert not store.record_event(event(), user_id="alice")
    store.record_api_request("/v1/x", "GET", 200, 1.0, user_id="alice")
    assert store.list_api_requests(1)[0]["user_id"] is None


def test_two_stores_in_one_process_share_the_files(store, settings):
    with Store.open(settings) as second:
        generation_id = second.record_generation({"user_id": "bob", "prompt": "second"})
        assert store.get_generation("bob", generation_id)["prompt"] == "second"


def test_files_are_private_and_the_database_is_in_wal_mode(sqlite_settings):
    old = os.umask(0o022)
    try:
        with Store.open(sqlite_settings) as store:
            store.ensure_user("alice")
            store.record_generation({"user_id": "alice", "prompt": "private"})
            files = [store.path, *(Path(f"{store.path}{side}") for side in ("-wal", "-shm"))]
            assert all(path.is_file() for path in files)
            modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in files}
            pragmas = {
                name: store._connection().execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("secure_delete", "foreign_keys", "synchronous", "busy_timeout")
            }
            with store._write("a durable write", durable=True) as connection:
                durable = connection.execute("PRAGMA synchronous").fetchone()[0]
            after = store._connection().execute("PRAGMA synchronous").fetchone()[0]
    finally:
        os.umask(old)
    assert set(modes.values()) == {0o600}, modes
    assert pragmas["secure_delete"] == 1 and pragmas["foreign_keys"] == 1
    assert pragmas["synchronous"] == after == 1 and durable == 2  # NORMAL; FULL when durable
    assert pragmas["busy_timeout"] >= 1000
    assert not files[1].exists()  # closed: the WAL was folded into the file and removed
    plain = sqlite3.connect(store.path)
    try:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        plain.close()


def test_a_looser_existing_file_is_tightened(sqlite_settings):
    sqlite_settings.data_dir.mkdir(parents=True)
    path = sqlite_settings.data_dir / "gempix.sqlite3"
    path.touch(mode=0o644)
    path.chmod(0o644)
    Store.open(sqlite_settings).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_batch_is_stored_whole_or_not_at_all(store):
    ids = store.record_generations([{"user_id": "alice", "seed": n} for n in range(4)])
    assert len(set(ids)) == 4
    assert {row["id"] for row in store.list_generations("alice")} == set(ids)
    with pytest.raises(NotFoundError):
        store.record_generations([{"user_id": "alice"}, {"user_id": "carol"}])
    assert len(store.list_generations("alice")) == 4  # nothing of the failed batch


def test_concurrent_callers_each_get_their_own_outcome(store):
    store.ensure_user("gone")
    store.update_user("gone", locked=True)
    outcomes: dict[str, list] = {"alice": [], "gone": []}
    start = threading.Barrier(4)

    def work(user: str) -> None:
        start.wait()
        for _ in range(100):
            try:
                outcomes[user].append(store.record_generation({"user_id": user}))
            except UserLockedError as error:
                outcomes[user].append(error)

    threads = [threading.Thread(target=work, args=(u,)) for u in ("alice",) * 3 + ("gone",)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(outcome, str) for outcome in outcomes["alice"])
    assert len(outcomes["alice"]) == 300
    assert all(isinstance(outcome, UserLockedError) for outcome in outcomes["gone"])
    assert {row["id"] for row in store.rows_for_user("generations", "alice")} == set(
        outcomes["alice"]
    )


def test_a_damaged_file_gives_a_store_error(sqlite_settings):
    sqlite_settings.data_dir.mkdir(parents=True)
    (sqlite_settings.data_dir / "gempix.sqlite3").write_bytes(b"not a database" * 500)
    with pytest.raises(GemPixError, match="Could not open the GemPix database"):
        Store.open(sqlite_settings)


def test_an_unreachable_server_gives_a_store_error_without_the_password(tmp_path):
    url = "postgresql://gempix:SECRET-password@127.0.0.1:9/nowhere"
    settings = Settings.load({}, data_dir=str(tmp_path / "data"), database_url=url)
    pytest.importorskip("psycopg")
    with pytest.raises(GemPixError, match="Could not open the GemPix database") as raised:
        Store.open(settings)
    assert "postgresql://gempix@127.0.0.1:9/nowhere" in str(raised.value)
    assert "SECRET" not in str(raised.value)


def test_postgres_commits_wait_for_the_wal_flush_only_when_durable(tmp_path):
    """As SQLite's NORMAL/FULL: ordinary writes survive a crash of the app (the server has
    them), durable ones (consent, keys, an erasure's lock) a crash of the server too."""
    with services.postgres_schema() as url:
        settings = Settings.load({}, data_dir=str(tmp_path / "data"), database_url=url)
        with Store.open(settings) as store:
            with store._write("an ordinary write") as connection:
                ordinary = connection.execute("SHOW synchronous_commit").fetchone()[0]
            with store._write("a durable write", durable=True) as connection:
                durable = connection.execute("SHOW synchronous_commit").fetchone()[0]
            after = store._connection().execute("SHOW synchronous_commit").fetchone()[0]
    assert (ordinary, durable, after) == ("off", "on", "on")
