"""The request log keeps metadata only: a sentinel sent in bodies, paths, queries and keys is
in no file of the data dir (SQLite stores text as plain bytes), while the route templates the
log does keep are found there."""

from __future__ import annotations

import threading

import httpx

from gempix.api import API_PREFIX, ApiConfig, create_app
from gempix.privacy.gate import confirm_age
from gempix.privacy.identity import create_user
from gempix.server import start_server
from gempix.service import Studio
from gempix.settings import Settings
from gempix.store import Store

SENTINEL = "quokka-sentinel-93be0d"


def test_database_file_never_holds_what_clients_sent(tmp_path):
    settings = Settings.load({}, data_dir=str(tmp_path / "data"), model="tiny")  # never loaded
    store = Store.open(settings)
    studio = Studio(settings, store=store)
    _, user_id = create_user(studio)
    confirm_age(store, user_id)
    key = studio.keys.create(user_id)[0]
    auth = {"Authorization": f"Bearer {key}"}
    server = start_server(create_app(studio, ApiConfig(max_body_bytes=64 * 1024)))
    try:
        sent = [
            ("POST", "/generate", auth, {"json": {"prompt": SENTINEL, "aspect": SENTINEL}}),
            ("POST", "/generate", auth, {"json": {"prompt": SENTINEL, SENTINEL: 1}}),
            ("POST", "/generate", auth, {"json": {"prompt": SENTINEL * 100}}),
            (
                "POST",
                "/generate",
                auth,
                {
                    "content": SENTINEL.encode() * 4000,
                    "headers": {"Content-Type": "application/json"},
                },
            ),
            (
                "POST",
                "/characters",
                auth,
                {"json": {"name": SENTINEL, "references": [SENTINEL], "rights_confirmed": True}},
            ),
            ("PUT", "/me/consent", auth, {"json": {SENTINEL: True}}),
            ("GET", f"/images/{SENTINEL}", auth, {"params": {"q": SENTINEL}}),
            ("GET", f"/{SENTINEL}", {"Authorization": f"Bearer gpx_{SENTINEL}"}, {}),
        ]
        for method, path, headers, kwargs in sent:
            extra = kwargs.pop("headers", {})
            response = httpx.request(
                method,
                f"{server.url}{API_PREFIX}{path}",
                headers={**headers, **extra},
                timeout=30,
                **kwargs,
            )
            assert 400 <= response.status_code < 500, response.text
        pause = threading.Event()
        for _ in range(200):  # bounded: the last row is written just after its response
            if len(store.list_api_requests(100)) >= len(sent):
                break
            pause.wait(0.05)
        rows = store.list_api_requests(100)
        assert len(rows) == len(sent)
        assert SENTINEL not in repr(rows)
    finally:
        server.stop()
        studio.close()  # flushes and closes: everything is in the file now
    content = b"".join(p.read_bytes() for p in settings.data_dir.rglob("*") if p.is_file())
    assert f"{API_PREFIX}/generate".encode() in content  # the grep can see stored text
    assert f"{API_PREFIX}/images/{{image_id}}".encode() in content
    assert SENTINEL.encode() not in content
