"""One deletion path through every door: a user of the web app, the real app started on a free
port, leaves served PNG copies in Gradio's cache, a JPEG download, a WebP conversion, live
previews, uploads (their PNG text holding the user's sentinel) and an export ZIP. An erasure
through the web app, the HTTP API (``DELETE /api/v1/me``) or the CLI (``gempix erase``, after
the app stopped: the list of copies outlives it), and ``gempix delete-image``, leave no file
anywhere the app wrote (the data dir and Gradio's temp dir) holding the sentinel, in UTF-8 or
in UTF-16 (as JPEG EXIF's UserComment keeps it)."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from conftest import files_holding, png_bytes, tiny_settings
from gradio_client import Client, handle_file

from gempix.api import API_PREFIX
from gempix.privacy.identity import new_user_key, server_secret, user_id_for
from gempix.server import build_server, start_server
from gempix.service import Studio


@pytest.fixture
def where(tmp_path, tiny_folder) -> SimpleNamespace:
    """The data dir and Gradio's temp dir of this test (conftest points GRADIO_TEMP_DIR here)."""
    gradio = Path(os.environ["GRADIO_TEMP_DIR"])
    return SimpleNamespace(settings=tiny_settings(tmp_path / "data", tiny_folder), gradio=gradio)


@contextlib.contextmanager
def running(where, tiny_models):
    """The whole app (web app at /, API at /api/v1) on a free port."""
    with Studio(where.settings, models=tiny_models) as studio:
        server = start_server(build_server(studio))
        web = Client(server.url, **QUIET)
        try:
            yield SimpleNamespace(studio=studio, url=server.url, web=web)
        finally:
            web.close()  # its heartbeat stream would hold the server's shutdown
            server.stop()


QUIET = {"verbose": False, "download_files": False}  # the test's client keeps no copies


def upload(folder: Path, name: str, text: str) -> dict:
    path = folder / name
    path.write_bytes(png_bytes((64, 64), "white", text))
    return handle_file(str(path))


def web_user(app, sentinel: str, folder: Path) -> SimpleNamespace:
    """A web app user whose every kind of copy exists: served images, a JPEG download, a WebP
    conversion, previews, uploads, an export ZIP. Returns their key, id and image ids."""
    web, key = app.web, new_user_key()
    web.predict(key, True, api_name="/confirm_age")
    reference = upload(folder, f"ref-{sentinel[-4:]}.png", f"reference of {sentinel}")
    web.predict(key, "Hero", [reference], True, api_name="/create_character")
    web.predict(
        user_key=key,
        prompt=f"a {sentinel} fox",
        init_image=upload(folder, f"init-{sentinel[-4:]}.png", f"start from {sentinel}"),
        seed=3,
        random_seed=False,
        steps=2,
        strength=0.6,
        num_images=2,
        api_name="/generate",
    )
    web.predict(key, 1, api_name="/history")  # the Gallery tab serves both
    ids = [item["id"] for item in web.predict(key, 1, api_name="/list_images")]
    web.predict(key, api_name="/export")
    user_id = user_id_for(server_secret(app.studio.settings), key)
    app.studio.images.download(user_id, ids[1], "webp", app.web_dir())
    return SimpleNamespace(key=key, user_id=user_id, ids=ids)


def written_holding(where, sentinel: str) -> list[str]:
    data = files_holding(where.settings.data_dir, sentinel)
    return data + [f"gradio:{name}" for name in files_holding(where.gradio, sentinel)]


def control(where, sentinel: str) -> None:
    """The search can fail: before the deletion the sentinel is in the database, the images,
    the served copies, the JPEG and WebP (UTF-16 only), the uploads and the export."""
    found = written_holding(where, sentinel)
    assert any(name.endswith(".png") for name in found if name.startswith("images/"))
    suffixes = {Path(name).suffix for name in found if name.startswith("gradio:")}
    assert {".png", ".jpg", ".webp", ".zip"} <= suffixes, found


@pytest.fixture
def app_factory(where, tiny_models):
    def start():
        context = running(where, tiny_models)
        app = context.__enter__()
        app.web_dir = lambda: _download_dir(where.gradio)
        app.close = lambda: context.__exit__(None, None, None)
        return app

    return start


@pytest.fixture
def app(app_factory):
    started = app_factory()
    yield started
    started.close()


def _download_dir(root: Path) -> Path:
    """A folder in Gradio's temp dir, as the web app makes one for each prepared download."""
    folder = root / f"gempix-{secrets.token_hex(8)}"
    folder.mkdir(parents=True)
    return folder


def sentinel() -> str:
    return f"SENTINEL{secrets.token_hex(6)}"


def test_erasure_through_the_web_app_or_the_api_leaves_nothing(where, app, tmp_path):
    """Two users of one running app: one erased in the web app, one with DELETE /me; the
    other's files are searched too, so an erasure that took too much would show."""
    through_web, through_api = sentinel(), sentinel()
    web_only = web_user(app, through_web, tmp_path)
    api_user = web_user(app, through_api, tmp_path)
    api_key, *_ = app.web.predict(api_user.key, "laptop", api_name="/create_api_key")
    control(where, through_web)
    control(where, through_api)

    report, *_ = app.web.predict(web_only.key, "DELETE", api_name="/erase")
    assert "Verified:** yes" in report
    assert written_holding(where, through_web) == []
    control(where, through_api)  # the other user's copies are all still there

    answer = httpx.delete(
        f"{app.url}{API_PREFIX}/me",
        params={"confirm": "true"},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=60,
    )
    assert answer.status_code == 200 and answer.json()["verified"] is True
    assert answer.json()["cached_copies"] >= 6  # PNG copies, the JPEG, the WebP, uploads...
    assert written_holding(where, through_api) == []


def test_delete_image_and_erasure_through_the_cli_leave_nothing(where, app_factory, cli, tmp_path):
    """The app is stopped first (Gradio removes some of its files then; the CLI finds the
    rest, such as the downloads, in the list of copies the app left)."""
    app, first, second = app_factory(), sentinel(), sentinel()
    try:
        user = web_user(app, first, tmp_path)
        control(where, first)
        _, later, *_ = app.web.predict(
            user_key=user.key,
            prompt=f"a {second} owl",
            seed=9,
            random_seed=False,
            steps=2,
            api_name="/generate",
        )
    finally:
        app.close()
    assert any(name.startswith("gradio:") for name in written_holding(where, second))
    data = ("--user-key", user.key, "--data-dir", where.settings.data_dir)
    code, out, err = cli("delete-image", later, *data)
    assert code == 0, err
    assert written_holding(where, second) == []
    assert written_holding(where, first)  # the other images are still there
    code, out, err = cli("erase", "--yes", *data)
    assert code == 0 and "verified" in out, err
    assert written_holding(where, first) == []
