"""One error of each class driven through a real API server: every answer has the one shape
``{"ok": false, "error": ..., "status": ...}``, the status of its class, no traceback, no
echoed prompt, and the request log names the class. Unexpected failures and store failures
(which name files) reach the client as one generic message.
"""

from __future__ import annotations

import dataclasses
import threading

import httpx
import pytest

from gempix.api import API_PREFIX, ApiConfig, create_app
from gempix.api.errors import INTERNAL_ERROR, ClientGone
from gempix.privacy.gate import confirm_age
from gempix.privacy.identity import LOCAL_USER, create_user
from gempix.server import start_server
from gempix.service import Studio
from gempix.settings import Settings

SENTINEL = "okapi-sentinel-51d2"
STRICT = ApiConfig(
    rate_requests="100000/hour",
    rate_generate="1/hour",  # each generation check below uses its own key
    rate_anonymous="100000/minute",
    max_body_bytes=4096,
    generate_timeout=0.5,
    max_queue=1,
    max_batch=1,  # one generation at a time in the studio: one blocker makes it busy
)


@dataclasses.dataclass
class Server:
    url: str
    app: object
    studio: Studio

    def call(self, method, path, key=None, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        headers.update(kwargs.pop("headers", {}))
        return httpx.request(
            method, f"{self.url}{API_PREFIX}{path}", headers=headers, timeout=30, **kwargs
        )


def new_key(studio: Studio, confirmed: bool = True, role: str = "user") -> tuple[str, str]:
    _, user_id = create_user(studio)
    if confirmed:
        confirm_age(studio.store, user_id)
    if role == "admin":  # an admin key needs an admin account
        studio.privacy.set_role(user_id, "admin")
    return studio.keys.create(user_id, role)[0], user_id


@pytest.fixture(scope="module")
def servers(tmp_path_factory, tiny_models):
    """The strict server, and two studios that fail: a broken store, a model that is not
    there."""
    root = tmp_path_factory.mktemp("api-errors")
    started, studios = [], []

    def make(data_dir, model="tiny", config=STRICT):
        settings = Settings.load({}, data_dir=str(data_dir), model=model)
        studio = Studio(settings, models=tiny_models if model == "tiny" else None)
        studios.append(studio)
        app = create_app(studio, config)
        server = start_server(app)
        started.append(server)
        assert httpx.get(f"{server.url}{API_PREFIX}/health", timeout=10).status_code == 200
        return Server(server.url, app, studio)

    try:
        main = make(root / "main")
        broken = root / "broken"
        (broken / "gempix.sqlite3").mkdir(parents=True)  # a folder where the database goes
        yield {
            "main": main,
            "broken": make(broken),
            "no-model": make(root / "no-model", model="nobody/not-a-model", config=ApiConfig()),
        }
    finally:
        for server in started:
            server.stop()
        for studio in studios:
            studio.close()


@pytest.fixture
def blocked(servers):
    """The strict server's one GPU worker busy until the test ends."""
    gpu = servers["main"].app.state.gempix.gpu
    release = threading.Event()
    job = gpu.submit(lambda job: release.wait(30), timeout=60)
    yield gpu
    release.set()
    job.future.result(timeout=30)


def generate(server, key, **body):
    return server.call("POST", "/generate", key, json={"prompt": SENTINEL, **body})


def trigger(name, servers, request):
    main = servers["main"]
    studio = main.studio
    if name == "ValidationError":
        return generate(main, new_key(studio)[0], aspect="5:4")
    if name == "ValidationError (schema)":
        return main.call("POST", "/generate", new_key(studio)[0], json={"prompt": 5, SENTINEL: 1})
    if name == "InvalidKeyError":
        well_formed_but_unknown = f"gpx_{'0' * 12}_{SENTINEL.ljust(43, 'A')}"
        return main.call("GET", "/images", well_formed_but_unknown)
    if name == "PermissionDenied":
        return main.call("GET", "/admin/analytics", new_key(studio)[0])
    if name == "AgeConfirmationRequired":
        return generate(main, new_key(studio, confirmed=False)[0])
    if name == "NotFoundError":
        return main.call("GET", f"/images/{'e' * 32}", new_key(studio)[0])
    if name == "MethodNotAllowed":
        return main.call("DELETE", "/health")
    if name == "NotAcceptable":
        body = {"prompt": SENTINEL, "num_images": 2}
        return main.call(
            "POST", "/generate", new_key(studio)[0], json=body, headers={"Accept": "image/png"}
        )
    if name == "UserLockedError":
        key, user_id = new_key(studio)
        studio.store.update_user(user_id, locked=True)
        return generate(main, key)
    if name == "PayloadTooLarge":
        return generate(main, new_key(studio)[0], negative_prompt="x" * 5000)
    if name == "RateLimited":
        key = new_key(studio)[0]
        generate(main, key, aspect="5:4")
        return generate(main, key, aspect="5:4")
    if name == "StoreError":
        return servers["broken"].call("GET", "/images", f"gpx_{'0' * 12}_{'A' * 43}")
    if name == "ModelUnavailableError":
        no_model = servers["no-model"].studio
        key = no_model.keys.create(LOCAL_USER, "user")[0]
        return generate(servers["no-model"], key)
    if name == "Busy":
        gpu = request.getfixturevalue("blocked")
        release = threading.Event()
        waiting = gpu.submit(lambda job: release.wait(30), timeout=60)  # the one queue slot
        try:
            return generate(main, new_key(studio)[0])
        finally:
            release.set()
            waiting.cancel(ClientGone)
    if name == "GenerationTimeout":
        request.getfixturevalue("blocked")
        return generate(main, new_key(studio)[0])
    if name == "InternalError":
        monkeypatch = request.getfixturevalue("monkeypatch")

        def boom(*args, **kwargs):
            raise RuntimeError(f"secret detail {SENTINEL}")

        monkeypatch.setattr(studio.images, "rows", boom)
        return main.call("GET", "/images", new_key(studio)[0])
    raise AssertionError(name)


CASES = [  # (name, status, class in the request log, server whose log holds it)
    ("ValidationError", 400, "ValidationError", "main"),
    ("ValidationError (schema)", 400, "ValidationError", "main"),
    ("InvalidKeyError", 401, "InvalidKeyError", "main"),
    ("PermissionDenied", 403, "PermissionDenied", "main"),
    ("AgeConfirmationRequired", 403, "AgeConfirmationRequired", "main"),
    ("NotFoundError", 404, "NotFoundError", "main"),
    ("MethodNotAllowed", 405, "MethodNotAllowed", "main"),
    ("NotAcceptable", 406, "NotAcceptable", "main"),
    ("UserLockedError", 409, "UserLockedError", "main"),
    ("PayloadTooLarge", 413, "PayloadTooLarge", "main"),
    ("RateLimited", 429, "RateLimited", "main"),
    ("StoreError", 500, None, None),  # the broken store: nothing can be logged there
    ("Busy", 503, "Busy", "main"),
    ("ModelUnavailableError", 503, "ModelUnavailableError", "no-model"),
    ("GenerationTimeout", 504, "GenerationTimeout", "main"),
    ("InternalError", 500, "InternalError", "main"),
]


@pytest.mark.parametrize(("name", "status", "logged", "log_of"), CASES, ids=[c[0] for c in CASES])
def test_each_error_class_has_the_one_shape(servers, request, name, status, logged, log_of):
    store = servers[log_of].studio.store if log_of else None
    if store is not None:
        store.flush()
        before = len(store.list_api_requests(1000))
    response = trigger(name, servers, request)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"ok", "error", "status"}
    assert body["ok"] is False and body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in response.text and SENTINEL not in response.text
    if status == 500:
        assert body["error"] == INTERNAL_ERROR  # no path, no database detail
    if status == 429:
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["x-ratelimit-remaining"] == "0"
    if store is not None:
        row = logged_after(store, before, status)
        assert (row["error_class"], row["status"]) == (logged, status)


def logged_after(store, before: int, status: int, timeout: float = 10.0) -> dict:
    """The first row logged after the ``before`` rows with this ``status``. Each row is
    written just after its response is sent, so the test may read first, and a trigger that
    sends two requests may see the first one's row alone; bounded wait."""
    pause = threading.Event()
    for _ in range(int(timeout / 0.05)):
        rows = store.list_api_requests(1000)
        new = [row for row in rows[: len(rows) - before] if row["status"] == status]
        if new:
            return new[-1]
        pause.wait(0.05)
    raise AssertionError(f"no request log row with status {status} appeared")
