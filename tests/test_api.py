"""The HTTP API against a real server: uvicorn on a free localhost port, driven with httpx.

Covers the authorization matrix (anonymous/user/admin x every route, checked against the
OpenAPI schema so a new route cannot skip it), generation (JSON and PNG), the gallery, other
users' ids, characters, styles, the account routes, cancellation of queued work, and the
request log (one row per request, never a body).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import threading
import zipfile
from pathlib import Path

import httpx
import pytest
from conftest import tiny_settings
from PIL import Image

from gempix import keys
from gempix.api import API_PREFIX, ApiConfig, create_app
from gempix.privacy.gate import confirm_age
from gempix.privacy.identity import create_user
from gempix.server import start_server
from gempix.service import Studio

SENTINEL = "zebra-sentinel-7f3a9c"
MISSING = "0" * 32
GENEROUS = ApiConfig(
    rate_requests="100000/hour", rate_generate="10000/minute", rate_anonymous="100000/minute"
)


@dataclasses.dataclass
class Caller:
    key: str | None
    user_id: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}


def new_caller(studio: Studio, role: str = "user", confirmed: bool = True) -> Caller:
    _, user_id = create_user(studio)
    if confirmed:
        confirm_age(studio.store, user_id)
    if role == "admin":  # an admin key needs an admin account
        studio.privacy.set_role(user_id, "admin")
    key, _ = studio.keys.create(user_id, role, f"test {role}")
    return Caller(key, user_id)


def png_base64(color=(200, 30, 30), size=(32, 32)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@dataclasses.dataclass
class Api:
    url: str
    app: object
    studio: Studio
    client: httpx.Client

    def request(self, method: str, path: str, caller: Caller | None = None, **kwargs):
        headers = {**(caller.headers if caller else {}), **kwargs.pop("headers", {})}
        return self.client.request(method, API_PREFIX + path, headers=headers, **kwargs)

    @property
    def ctx(self):
        return self.app.state.gempix


@pytest.fixture(scope="module")
def api_studio(tmp_path_factory, tiny_folder, tiny_models):
    settings = tiny_settings(tmp_path_factory.mktemp("api") / "data", tiny_folder)
    with Studio(settings, models=tiny_models) as studio:
        yield studio


def serve_app(app):
    """Start ``app``; the bounded wait is in start_server, and the server must answer."""
    server = start_server(app)
    response = httpx.get(f"{server.url}{API_PREFIX}/health", timeout=10)
    assert response.status_code == 200, response.text
    return server


@pytest.fixture(scope="module")
def api(api_studio):
    app = create_app(api_studio, GENEROUS)
    server = serve_app(app)
    client = httpx.Client(base_url=server.url, timeout=60)
    try:
        yield Api(server.url, app, api_studio, client)
    finally:
        client.close()
        server.stop()


@pytest.fixture(scope="module")
def people(api_studio):
    return {
        "anonymous": Caller(None, None),
        "user": new_caller(api_studio),
        "admin": new_caller(api_studio, "admin"),
    }


@pytest.fixture(scope="module")
def made(api, people):
    """Two images made once by the matrix user (seed 7 and 8), shared by the tests below."""
    response = api.request(
        "POST",
        "/generate",
        people["user"],
        json={"prompt": f"a red fox {SENTINEL}", "seed": 7, "num_images": 2},
    )
    assert response.status_code == 200, response.text
    return response.json()


# -- authorization matrix ----------------------------------------------------------------------

# (method, path, request kwargs, status for a user key, status for an admin key).
# Anonymous callers get 401 everywhere except the routes marked None (no key needed: 200).
# Probes change nothing that later rows need: bodies fail validation after authorization,
# ids do not exist, DELETE /me lacks its confirmation.
MATRIX = [
    ("GET", "/health", {}, 200, 200),
    ("POST", "/generate", {"json": {"prompt": SENTINEL, "aspect": "5:4"}}, 400, 400),
    ("POST", "/edit", {"json": {"prompt": SENTINEL}}, 400, 400),
    ("POST", "/info", {"json": {"image": "!"}}, 400, 400),
    ("GET", "/images", {}, 200, 200),
    ("GET", f"/images/{MISSING}", {}, 404, 404),
    ("DELETE", f"/images/{MISSING}", {}, 404, 404),
    ("POST", "/verify", {"json": {"image": "not base64!"}}, 400, 400),
    ("GET", "/styles", {}, 200, 200),
    ("GET", "/models", {}, 200, 200),
    ("GET", "/characters", {}, 200, 200),
    (
        "POST",
        "/characters",
        {"json": {"name": "x", "references": [], "rights_confirmed": True}},
        400,
        400,
    ),
    ("GET", f"/characters/{MISSING}", {}, 404, 404),
    ("PATCH", f"/characters/{MISSING}", {"json": {"name": "y"}}, 404, 404),
    ("DELETE", f"/characters/{MISSING}", {}, 404, 404),
    ("GET", "/me", {}, 200, 200),
    ("POST", "/me/confirm-age", {"json": {"confirm": False}}, 400, 400),
    ("GET", "/me/consent", {}, 200, 200),
    ("PUT", "/me/consent", {"json": {}}, 400, 400),
    ("GET", "/me/export", {}, 200, 200),
    ("DELETE", "/me", {}, 400, 400),
    ("GET", "/admin/analytics", {}, 403, 200),
]
NO_KEY = {("GET", "/health")}


def _template(path: str) -> str:
    return path.replace(MISSING, "{id}")


def test_matrix_covers_every_route_of_the_schema(api):
    schema = api.client.get(f"{API_PREFIX}/openapi.json").json()
    documented = {
        (
            method.upper(),
            _template(path.removeprefix(API_PREFIX))
            .replace("{image_id}", "{id}")
            .replace("{character_id}", "{id}"),
        )
        for path, item in schema["paths"].items()
        for method in item
    }
    tested = {(method, _template(path)) for method, path, *_ in MATRIX}
    assert documented == tested


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "user", "admin"),
    MATRIX,
    ids=[f"{m} {_template(p)}" for m, p, *_ in MATRIX],
)
def test_authorization_matrix(api, people, method, path, kwargs, user, admin):
    expected = {
        "anonymous": 200 if (method, path) in NO_KEY else 401,
        "user": user,
        "admin": admin,
    }
    got = {
        who: api.request(method, path, caller, **kwargs).status_code
        for who, caller in people.items()
    }
    assert got == expected


@pytest.mark.parametrize(
    "header",
    [
        "Bearer gpx_000000000000_" + "A" * 43,  # well-formed, unknown
        "Bearer not-a-key",
        "Basic dXNlcjpwYXNz",
        "Bearer",
    ],
)
def test_unknown_and_malformed_keys_get_401(api, header):
    response = api.request("GET", "/images", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["error"].startswith("Missing, unknown or revoked API key")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_revoked_key_gets_401_at_once(api, api_studio):
    caller = new_caller(api_studio)
    assert api.request("GET", "/me", caller).status_code == 200
    api_studio.keys.revoke(caller.user_id, keys.parse_key(caller.key)[0])
    assert api.request("GET", "/me", caller).status_code == 401


# -- generation and the gallery ----------------------------------------------------------------


def test_generate_returns_ids_seeds_urls_and_metadata(api, people, made):
    assert [image["seed"] for image in made["images"]] == [7, 8]
    assert made["model"] == "tiny"
    for image in made["images"]:
        assert image["url"] == f"{api.url}{API_PREFIX}/images/{image['id']}"
        assert image["params"]["seed"] == image["seed"]
        assert image["params"]["ai_generated"] is True
        png = api.client.get(image["url"], headers=people["user"].headers)
        assert png.status_code == 200
        assert png.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(png.content)).size == (image["width"], image["height"])
    listed = api.request("GET", "/images", people["user"], params={"limit": 1}).json()
    assert listed["has_more"] is True and len(listed["items"]) == 1
    ids = {item["id"] for item in api.request("GET", "/images", people["user"]).json()["items"]}
    assert {image["id"] for image in made["images"]} <= ids


def test_accept_png_returns_the_image_itself(api, people):
    response = api.request(
        "POST",
        "/generate",
        people["user"],
        json={"prompt": "a lighthouse", "seed": 11},
        headers={"Accept": "image/png"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-gempix-seed"] == "11"
    Image.open(io.BytesIO(response.content)).verify()
    again = api.request("GET", f"/images/{response.headers['x-gempix-image-id']}", people["user"])
    assert again.content == response.content


def test_other_users_image_answers_exactly_like_a_missing_one(api, people, made, api_studio):
    stranger = new_caller(api_studio)
    image_id = made["images"][0]["id"]
    absent = "f" * len(image_id)
    for method in ("GET", "DELETE"):
        theirs = api.request(method, f"/images/{image_id}", stranger)
        missing = api.request(method, f"/images/{absent}", stranger)
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["error"].replace(image_id, "ID") == missing.json()["error"].replace(
            absent, "ID"
        )
    assert api.request("GET", f"/images/{image_id}", people["user"]).status_code == 200


def test_delete_image_removes_record_and_file(api, api_studio):
    owner = new_caller(api_studio)
    made = api.request("POST", "/generate", owner, json={"prompt": "a boat", "seed": 3}).json()
    image_id = made["images"][0]["id"]
    path = api_studio.store.get_generation(owner.user_id, image_id)["file_path"]
    assert api.request("DELETE", f"/images/{image_id}", owner).json() == {
        "ok": True,
        "deleted": image_id,
    }
    assert not (api_studio.settings.images_dir / owner.user_id / f"{image_id}.png").exists()
    assert path and not Path(path).exists()
    assert api.request("GET", f"/images/{image_id}", owner).status_code == 404
    assert api.request("DELETE", f"/images/{image_id}", owner).status_code == 404


def test_styles_lists_the_presets(api, people):
    body = api.request("GET", "/styles", people["user"]).json()
    names = {style["name"] for style in body["styles"]}
    assert "watercolor" in names or len(names) > 10
    assert all("{prompt}" in style["prompt"] for style in body["styles"])
    assert body["categories"]


def test_models_lists_the_catalogue_over_http(api, people):
    body = api.request("GET", "/models", people["user"]).json()
    models = {model["name"]: model for model in body["models"]}
    assert {"flux2-klein", "z-image-turbo", "qwen-image-edit", "tiny-flux2-klein"} <= set(models)
    assert models["qwen-image-edit"]["can_edit"] and models["qwen-image-edit"]["references"] == 3
    assert models["flux2-klein"]["previews"] == "none"
    assert body["auto"] == "sd-turbo" and body["auto_reason"].startswith("cpu")


# -- characters ---------------------------------------------------------------------------------


def test_characters_crud_and_ownership(api, api_studio):
    owner, stranger = new_caller(api_studio), new_caller(api_studio)
    created = api.request(
        "POST",
        "/characters",
        owner,
        json={
            "name": "Ada",
            "references": [png_base64(), png_base64((0, 90, 200))],
            "rights_confirmed": True,
        },
    )
    assert created.status_code == 201, created.text
    character = created.json()["character"]
    assert character["name"] == "Ada" and character["references"] == 2
    character_id = character["id"]
    listed = api.request("GET", "/characters", owner).json()["characters"]
    assert [c["id"] for c in listed] == [character_id]
    assert api.request("GET", "/characters", stranger).json()["characters"] == []
    assert api.request("GET", f"/characters/{character_id}", stranger).status_code == 404
    assert api.request("DELETE", f"/characters/{character_id}", stranger).status_code == 404

    renamed = api.request("PATCH", f"/characters/{character_id}", owner, json={"name": "Ada L."})
    assert renamed.json()["character"]["name"] == "Ada L."
    refused = api.request(
        "PATCH", f"/characters/{character_id}", owner, json={"references": [png_base64()]}
    )
    assert refused.status_code == 400 and "rights_confirmed" in refused.json()["error"]
    replaced = api.request(
        "PATCH",
        f"/characters/{character_id}",
        owner,
        json={"references": [png_base64((1, 2, 3))], "rights_confirmed": True},
    )
    assert replaced.json()["character"]["references"] == 1

    assert api.request("DELETE", f"/characters/{character_id}", owner).status_code == 200
    assert api.request("GET", f"/characters/{character_id}", owner).status_code == 404
    folder = api_studio.settings.data_dir / "references" / owner.user_id / character_id
    assert not folder.exists()


def test_generate_with_a_character_or_references(api, api_studio):
    owner, stranger = new_caller(api_studio), new_caller(api_studio)
    created = api.request(
        "POST",
        "/characters",
        owner,
        json={"name": "Ada", "references": [png_base64()], "rights_confirmed": True},
    )
    character_id = created.json()["character"]["id"]
    body = {"prompt": "a portrait", "seed": 3}
    saved = api.request("POST", "/generate", owner, json={**body, "character": "Ada"})
    assert saved.status_code == 200, saved.text
    image = saved.json()["images"][0]
    assert -1 <= image["consistency"] <= 1
    assert image["params"]["character"]["id"] == character_id
    one_off = api.request(
        "POST",
        "/generate",
        stranger,
        json={**body, "references": [png_base64()], "style_image": png_base64((9, 9, 9))},
    )
    assert one_off.status_code == 200, one_off.text
    assert one_off.json()["images"][0]["params"]["style_reference"]["strength"] == 0.8
    theirs = api.request("POST", "/generate", stranger, json={**body, "character": character_id})
    assert theirs.status_code == 404 and "no character named" in theirs.json()["error"]
    five = api.request("POST", "/generate", owner, json={**body, "references": [png_base64()] * 5})
    assert five.status_code == 400 and "references" in five.json()["error"]
    broken = api.request("POST", "/generate", owner, json={**body, "style_image": "%%%"})
    assert broken.status_code == 400 and "style_image" in broken.json()["error"]
    assert api_studio.store.list_generations(stranger.user_id, limit=10)[0]["character_id"] is None


@pytest.mark.parametrize(
    ("reference", "status", "words"),
    [
        (base64.b64encode(b"not an image at all").decode(), 400, "not a readable image"),
        ("%%%not-base64%%%", 400, "not valid base64"),
        (png_base64(size=(4097, 4097)), 400, "too large"),
    ],
    ids=["non-image", "bad-base64", "too-many-pixels"],
)
def test_bad_references_are_refused_and_nothing_is_stored(
    api, api_studio, reference, status, words
):
    owner = new_caller(api_studio)
    response = api.request(
        "POST",
        "/characters",
        owner,
        json={"name": "Bad", "references": [reference], "rights_confirmed": True},
    )
    assert response.status_code == status
    assert words in response.json()["error"]
    assert api_studio.store.list_characters(owner.user_id) == []


# -- account: age gate, consent, export, erasure ------------------------------------------------


def test_unconfirmed_user_confirms_age_through_the_api(api, api_studio):
    caller = new_caller(api_studio, confirmed=False)
    assert api.request("GET", "/me", caller).json()["age_confirmed"] is False
    refused = api.request("POST", "/generate", caller, json={"prompt": "x"})
    assert refused.status_code == 403 and "confirm" in refused.json()["error"]
    confirmed = api.request("POST", "/me/confirm-age", caller, json={"confirm": True})
    assert confirmed.status_code == 200 and confirmed.json()["age_confirmed"] is True


def test_consent_is_read_and_changed(api, api_studio):
    caller = new_caller(api_studio)
    before = api.request("GET", "/me/consent", caller).json()["consent"]
    assert before["training"]["granted"] is False and before["training"]["default"] is True
    after = api.request("PUT", "/me/consent", caller, json={"training": True, "analytics": False})
    consent = after.json()["consent"]
    assert consent["training"]["granted"] is True and consent["training"]["method"] == "api"
    assert consent["analytics"]["granted"] is False
    assert api.request("GET", "/me/consent", caller).json()["consent"] == consent


def test_export_is_a_zip_of_the_callers_data(api, people, made):
    response = api.request("GET", "/me/export", people["user"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = archive.namelist()
    assert "manifest.json" in names
    assert {f"images/{image['id']}.png" for image in made["images"]} <= set(names)


def test_delete_me_erases_the_account_and_its_keys(api, api_studio):
    caller = new_caller(api_studio)
    api.request("PUT", "/me/consent", caller, json={"training": True})
    erased = api.request("DELETE", "/me", caller, params={"confirm": "true"})
    assert erased.status_code == 200, erased.text
    assert erased.json()["verified"] is True and erased.json()["rows"]["api_keys"] == 1
    assert api.request("GET", "/me", caller).status_code == 401
    api_studio.store.flush()
    prefix = keys.parse_key(caller.key)[0]
    erasures = [
        r
        for r in api_studio.store.list_api_requests(1000)
        if (r["route"], r["method"], r["status"]) == (f"{API_PREFIX}/me", "DELETE", 200)
    ]
    assert len(erasures) == 1
    assert erasures[0]["key_prefix"] is None and erasures[0]["user_id"] is None
    assert not any(
        r["user_id"] == caller.user_id or r["key_prefix"] == prefix
        for r in api_studio.store.list_api_requests(1000)
    )


# -- cancellation ------------------------------------------------------------------------------


def wait_until(condition, timeout: float = 15.0) -> bool:
    """Poll ``condition`` until true or ``timeout`` seconds passed (bounded, event-driven)."""
    done = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if condition():
            return True
        done.wait(0.05)
    return condition()


def test_client_that_disconnects_cancels_its_queued_generation(api, api_studio):
    caller = new_caller(api_studio)
    gpu = api.ctx.gpu
    release = threading.Event()
    workers = api.ctx.config.max_batch  # generations let into the studio at once: all busy
    blockers = [gpu.submit(lambda job: release.wait(30), timeout=60) for _ in range(workers)]
    cancelled_before = gpu.stats.cancelled_waiting
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{api.url}{API_PREFIX}/generate",
                headers=caller.headers,
                json={"prompt": "never made"},
                timeout=httpx.Timeout(1.0),
            )
        assert wait_until(lambda: gpu.stats.cancelled_waiting == cancelled_before + 1)
    finally:
        release.set()
    assert all(blocker.future.result(timeout=30) is True for blocker in blockers)
    assert api_studio.store.list_generations(caller.user_id) == []


# -- request log ---------------------------------------------------------------------------------


def logged(studio: Studio) -> int:
    studio.store.flush()
    return len(studio.store.list_api_requests(1000))


def test_every_request_leaves_one_row_with_the_route_template_and_no_body(api, people, made):
    user = people["user"]
    api_studio = api.studio
    api_studio.store.flush()
    before = len(api_studio.store.list_api_requests(1000))
    image_id = made["images"][0]["id"]
    sent = [
        ("GET", f"/images/{image_id}", user, {}),
        ("GET", f"/images/{SENTINEL}", user, {}),
        ("POST", "/generate", user, {"json": {"prompt": SENTINEL, "aspect": SENTINEL}}),
        ("POST", "/generate", user, {"json": {"prompt": SENTINEL * 200}}),
        ("GET", "/images", user, {"params": {"limit": SENTINEL}}),
        ("GET", f"/{SENTINEL}", None, {}),
        ("GET", "/health", None, {}),
    ]
    statuses = [api.request(m, p, c, **kw).status_code for m, p, c, kw in sent]
    assert statuses == [200, 404, 400, 400, 400, 404, 200]
    assert wait_until(lambda: logged(api_studio) >= before + len(sent))
    rows_all = api_studio.store.list_api_requests(1000)
    assert len(rows_all) - before == len(sent)
    rows = sorted(rows_all[: len(sent)], key=lambda r: r["created_at"])
    assert [r["route"] for r in rows] == [
        f"{API_PREFIX}/images/{{image_id}}",
        f"{API_PREFIX}/images/{{image_id}}",
        f"{API_PREFIX}/generate",
        f"{API_PREFIX}/generate",
        f"{API_PREFIX}/images",
        f"{API_PREFIX}/{{unmatched}}",
        f"{API_PREFIX}/health",
    ]
    assert [r["status"] for r in rows] == statuses
    prefix = keys.parse_key(user.key)[0]
    assert [r["key_prefix"] for r in rows] == [prefix] * 5 + [None, None]
    assert [r["error_class"] for r in rows] == [
        None,
        "NotFoundError",
        "ValidationError",
        "ValidationError",
        "ValidationError",
        "NotFoundError",
        None,
    ]
    assert all(r["latency_ms"] >= 0 for r in rows)
    everything = json.dumps([{k: str(v) for k, v in r.items()} for r in rows_all])
    assert SENTINEL not in everything
    assert image_id not in everything
    assert user.key not in everything


# -- edit and PNG info --------------------------------------------------------------------------


def test_edit_inpaints_inside_the_mask_only(api, people):
    from test_edit import TOLERANCE, mask_png, pixels, source_png

    source, mask = source_png(), mask_png()
    body = {
        "prompt": "a red door",
        "seed": 4,
        "source": base64.b64encode(source).decode(),
        "mask": base64.b64encode(mask).decode(),
    }
    response = api.request("POST", "/edit", people["user"], json=body)
    assert response.status_code == 200, response.text
    made = response.json()["images"][0]
    assert made["params"]["edit"]["mask_sha256"]
    png = api.request("GET", f"/images/{made['id']}", people["user"]).content
    inside = pixels(mask)[..., 0] > 0
    assert abs(pixels(png) - pixels(source))[~inside].max() <= TOLERANCE
    again = api.request(
        "POST",
        "/edit",
        people["user"],
        json={**body, "source": None, "source_id": made["id"], "outpaint": "16:9"},
    )
    assert again.status_code == 200, again.text
    assert again.json()["images"][0]["params"]["edit"]["source"]["generation_id"] == made["id"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"mask": png_base64(size=(32, 32))}, "mask: 32x32 does not match the source's 64x64"),
        ({"mask": png_base64((0, 0, 0), size=(64, 64))}, "mask: the mask is empty"),
        ({"source": base64.b64encode(b"not an image").decode()}, "source: not a readable"),
        ({"references": [png_base64()] * 4}, "references: 4 given; at most 3"),
        ({}, "model: tiny cannot edit by instruction"),
    ],
)
def test_bad_edits_are_400_naming_the_field(api, extra, message):
    caller = new_caller(api.studio)
    body = {"prompt": "x", "source": png_base64(size=(64, 64)), **extra}
    response = api.request("POST", "/edit", caller, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(message)
    assert api.studio.store.count_generations(caller.user_id) == 0


def test_info_reads_parameters(api, people):
    from test_pnginfo import A1111, png

    body = {"image": base64.b64encode(png(parameters=A1111)).decode()}
    found = api.request("POST", "/info", people["user"], json=body).json()
    assert found["kind"] == "a1111" and found["fields"]["seed"] == 1234
    body = {"image": png_base64()}
    nothing = api.request("POST", "/info", people["user"], json=body).json()
    assert nothing["kind"] is None and nothing["message"].startswith("image: no generation")
