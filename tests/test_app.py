"""The web app, really launched on a free localhost port and driven over HTTP."""

from __future__ import annotations

import socket

import httpx
import pytest
from gradio_client import Client
from PIL import Image

from gempix.metadata import AI_SOURCE_TYPE, XMP_KEY
from gempix.ui.app import build_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def app_url(studio):
    app = build_app(studio).queue(max_size=8)
    _, url, _ = app.launch(
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        quiet=True,
        run_history=False,
    )
    try:
        yield url
    finally:
        app.close()


def test_generate_over_http_keeps_png_metadata(app_url):
    client = Client(app_url, verbose=False)
    path, seed, details = client.predict("a red fox", 5, 2, api_name="/generate")
    assert seed == 5
    assert "Seed 5" in details and "model tiny" in details
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (64, 64)
        assert "a red fox" in image.info["parameters"]
        assert AI_SOURCE_TYPE in image.info[XMP_KEY]


def test_empty_prompt_is_a_readable_error(app_url):
    client = Client(app_url, verbose=False)
    with pytest.raises(Exception) as caught:
        client.predict("   ", -1, 2, api_name="/generate")
    assert "prompt: must not be empty." in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_page_serves_and_shows_tiny_banner(app_url):
    page = httpx.get(app_url, timeout=30)
    assert page.status_code == 200
    config = httpx.get(app_url.rstrip("/") + "/config", timeout=30).json()
    texts = [c.get("props", {}).get("value") for c in config["components"]]
    assert any(isinstance(t, str) and "Offline demo model" in t for t in texts)
    assert config.get("analytics_enabled") is False
