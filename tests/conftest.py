"""Shared fixtures and helpers: every test runs on its own data dir, offline, with Gradio
analytics off; the tiny model is built once and loaded once, and every studio a fixture opens
is closed again."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import services

# Before anything imports huggingface_hub or gradio: nothing in the suite reaches the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"


def pytest_report_header(config):
    import sqlite3

    import diffusers
    import duckdb
    import torch

    return (
        f"torch {torch.__version__}, diffusers {diffusers.__version__}, "
        f"SQLite {sqlite3.sqlite_version}, duckdb {duckdb.__version__}"
    )


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Data, Hugging Face cache and Gradio temp files all under this test's tmp_path."""
    monkeypatch.setenv("GEMPIX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for var in (
        "GEMPIX_MODEL",
        "GEMPIX_DEVICE",
        "GEMPIX_DTYPE",
        "GEMPIX_DATABASE_URL",
        "GEMPIX_REDIS_URL",
        "PORT",
        "GRADIO_SERVER_PORT",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(params=services.BACKENDS)
def database_url(request, monkeypatch):
    """Each test that asks for it runs twice: on SQLite in its data dir (``""``) and on a
    fresh schema of the test PostgreSQL server (skipped, or failed in CI, without one, see
    ``tests/services.py``). Processes the test starts inherit it as GEMPIX_DATABASE_URL."""
    with services.database(request.param) as url:
        if url:
            monkeypatch.setenv("GEMPIX_DATABASE_URL", url)
        yield url


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    """The tiny model, built once per session; tests copy it instead of rebuilding."""
    from gempix.engine.tiny import ensure_tiny

    return ensure_tiny(tmp_path_factory.mktemp("tiny-build") / "tiny")


def tiny_settings(data: Path, tiny_folder: Path, **overrides):
    """Settings for the tiny model on the data dir ``data``, with the tiny model in place."""
    from gempix.settings import Settings

    if not (data / "models" / "tiny").exists():
        shutil.copytree(tiny_folder, data / "models" / "tiny")
    return Settings.load({}, data_dir=str(data), model="tiny", **overrides)


@pytest.fixture(scope="session")
def family_folders(tmp_path_factory):
    """Each tiny family (``gempix.engine.families``) built once per session, by family name."""
    from gempix.engine import families

    root = tmp_path_factory.mktemp("tiny-families")
    return {name: families.build_tiny_family(name, root / name) for name in families.FAMILIES}


def family_settings(data: Path, family_folders: dict, model: str, **overrides):
    """Settings for the tiny preset ``model`` (e.g. ``tiny-flux2-klein``) on the data dir
    ``data``, with the session's build of its family copied in (no rebuild)."""
    from gempix.engine.presets import PRESETS
    from gempix.settings import Settings

    folder = data / "models" / model
    if not folder.exists():
        shutil.copytree(family_folders[PRESETS[model].tiny_of], folder)
    return Settings.load({}, data_dir=str(data), model=model, **overrides)


@pytest.fixture(scope="session")
def family_models(tmp_path_factory, family_folders):
    """``family_models(preset)``: one ModelManager per tiny family preset for the session,
    loaded on first use and shared by every studio that asks (like ``tiny_models``)."""
    from gempix.engine.models import ModelManager

    managers = {}

    def get(model: str) -> ModelManager:
        if model not in managers:
            data = tmp_path_factory.mktemp(f"models-{model}")
            managers[model] = ModelManager(family_settings(data, family_folders, model))
        return managers[model]

    return get


@pytest.fixture
def family_studio(tmp_path, family_folders, family_models):
    """``family_studio(model)``: a studio on this test's data dir sharing the loaded model."""
    from gempix.service import Studio

    opened = []

    def open_(model: str) -> Studio:
        settings = family_settings(tmp_path / "data", family_folders, model)
        opened.append(Studio(settings, models=family_models(model)))
        return opened[-1]

    yield open_
    for studio in opened:
        studio.close()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, tiny_folder):
    """The tiny model loaded once for the whole session: every studio of the fixtures below
    shares it (``Studio(settings, models=...)``), so a test pays for its data dir, not for a
    model load. Tests that change the loaded pipeline build a studio of their own."""
    from gempix.engine.models import ModelManager

    return ModelManager(tiny_settings(tmp_path_factory.mktemp("models"), tiny_folder))


@pytest.fixture
def settings(tmp_path, tiny_folder):
    """Settings for the tiny model on this test's data dir, with the tiny model in place."""
    return tiny_settings(tmp_path / "data", tiny_folder)


@pytest.fixture(scope="session")
def shared_studio(tmp_path_factory, tiny_folder, tiny_models):
    """One studio for read-mostly tests."""
    from gempix.service import Studio

    settings = tiny_settings(tmp_path_factory.mktemp("shared-data"), tiny_folder)
    with Studio(settings, models=tiny_models) as studio:
        yield studio


@pytest.fixture
def studio(settings, tiny_models):
    """A studio on this test's data dir, sharing the session's loaded tiny model."""
    from gempix.service import Studio

    with Studio(settings, models=tiny_models) as studio:
        yield studio


@pytest.fixture
def fresh_studio(settings):
    """A studio that loads its own tiny model (for tests of what loading does)."""
    from gempix.service import Studio

    with Studio(settings) as studio:
        yield studio


@pytest.fixture
def connections(monkeypatch) -> list:
    """The address of every network connection the code under test opens (still really
    opened): "fails fast offline" is asserted as "tried at most once" or "never", not by a
    clock."""
    opened: list = []
    real = socket.socket.connect

    def connect(sock, address):
        opened.append(address)
        return real(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return opened


@pytest.fixture
def cli():
    """``cli("generate", "a fox", ...)`` runs ``gempix`` with click's CliRunner and returns
    (exit code, stdout, stderr); ``input=`` feeds standard input."""
    from click.testing import CliRunner

    from gempix.cli import cli as command

    def run(*args, input: str | None = None) -> tuple[int, str, str]:
        result = CliRunner().invoke(command, [str(arg) for arg in args], input=input)
        return result.exit_code, result.stdout, result.stderr

    return run


def confirmed_user(studio) -> tuple[str, str]:
    """A new account that confirmed its age: (user key, user id)."""
    key, user_id = studio.privacy.create_user()
    studio.privacy.confirm_age(user_id)
    return key, user_id


def png_bytes(size=(64, 64), color="white", text: str | None = None) -> bytes:
    """A PNG in memory; ``text`` goes into a tEXt chunk, as plain bytes."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if text is not None:
        info.add_text("comment", text)
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def files_holding(root: Path, needle: str) -> list[str]:
    """Every file below ``root`` whose bytes hold ``needle`` in UTF-8 or UTF-16 (as JPEG
    EXIF's UserComment keeps text), or whose path names it."""
    encodings = [needle.encode(e) for e in ("utf-8", "utf-16-be", "utf-16-le")]
    found = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        data = path.read_bytes()
        if needle in str(path) or any(raw in data for raw in encodings):
            found.append(str(path.relative_to(root)))
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_app(data: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    """``gempix serve`` of the tiny model on ``data`` in its own process (``env`` added to
    this one's); ``wait_up`` waits until it answers."""
    command = [sys.executable, "-m", "gempix", "serve", "--port", str(port), "--model", "tiny"]
    return subprocess.Popen(
        [*command, "--data-dir", str(data)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_up(app: subprocess.Popen, url: str, timeout: float = 240) -> None:
    """Until ``url`` answers its health check; fails if the process stops or ``timeout``
    seconds pass (a bound that is never reached when things work)."""
    import httpx

    from gempix.api import API_PREFIX

    deadline, pause = time.monotonic() + timeout, threading.Event()
    while True:
        assert app.poll() is None, "the app stopped while starting"
        assert time.monotonic() < deadline, "the app did not start in time"
        try:
            if httpx.get(f"{url}{API_PREFIX}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pause.wait(0.2)
