"""The OpenAPI schema holds: schemathesis, with every check, finds nothing against a real
server (schema-valid requests accepted, invalid ones refused, every status and response as
documented, no 5xx, 405 for unsupported methods), and every route is in docs/api.md."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gempix.api import API_PREFIX, ApiConfig, create_app
from gempix.privacy.gate import confirm_age
from gempix.privacy.identity import LOCAL_USER, create_user
from gempix.server import start_server
from gempix.service import Studio
from gempix.settings import Settings

TESTS = Path(__file__).resolve().parent
DOCS = TESTS.parent / "docs" / "api.md"


def operations(schema: dict) -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in schema["paths"].items() for method in item]


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_folder, tiny_models):
    root = tmp_path_factory.mktemp("schema")
    shutil.copytree(tiny_folder, root / "data" / "models" / "tiny")
    settings = Settings.load({}, data_dir=str(root / "data"), model="tiny")
    studio = Studio(settings, models=tiny_models)
    _, user_id = create_user(studio)
    confirm_age(studio.store, user_id)
    keys = {
        "admin": studio.keys.create(LOCAL_USER, role="admin")[0],  # every route, admin's too
        "user": studio.keys.create(user_id)[0],  # erased by DELETE /me, fuzzed last
    }
    config = ApiConfig(
        rate_requests="100000/hour",
        rate_generate="10000/minute",
        rate_anonymous="100000/minute",
        max_images=2,
    )
    server = start_server(create_app(studio, config))
    try:
        assert httpx.get(f"{server.url}{API_PREFIX}/health", timeout=10).status_code == 200
        yield server.url, keys
    finally:
        server.stop()
        studio.close()


def schemathesis(url: str, key: str, *selection: str) -> subprocess.CompletedProcess:
    """The schemathesis CLI, every check, settings in tests/schemathesis.toml."""
    command = [
        *(sys.executable, "-m", "schemathesis.cli"),
        *("--config-file", str(TESTS / "schemathesis.toml")),
        *("run", f"{url}{API_PREFIX}/openapi.json", "--checks", "all", "--no-color"),
        *("--header", f"Authorization: Bearer {key}", *selection),
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_schemathesis_finds_nothing(served):
    url, keys = served
    everything = schemathesis(url, keys["admin"], "--exclude-operation-id", "erase")
    assert everything.returncode == 0, everything.stdout[-6000:]
    assert "No issues found" in everything.stdout
    count = len(operations(httpx.get(f"{url}{API_PREFIX}/openapi.json", timeout=10).json()))
    assert f"Tested: {count - 1}" in everything.stdout  # every operation but erase, probed
    erase = schemathesis(url, keys["user"], "--include-operation-id", "erase")
    assert erase.returncode == 0, erase.stdout[-6000:]


def test_every_route_is_documented(tmp_path):
    studio = Studio(Settings.load({}, data_dir=str(tmp_path / "data"), model="tiny"))
    schema = create_app(studio).openapi()
    text = DOCS.read_text(encoding="utf-8")
    missing = [f"{m} {p}" for m, p in operations(schema) if f"{m} {p}" not in text]
    assert missing == []
    studio.close()
