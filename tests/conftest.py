"""Shared fixtures: every test runs on its own data dir, offline, with Gradio analytics off."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

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
    for var in ("GEMPIX_MODEL", "GEMPIX_DEVICE", "GEMPIX_DTYPE", "PORT", "GRADIO_SERVER_PORT"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    """The tiny model, built once per session; tests copy it instead of rebuilding."""
    from gempix.engine.tiny import ensure_tiny

    return ensure_tiny(tmp_path_factory.mktemp("tiny-build") / "tiny")


@pytest.fixture
def settings(tmp_path, tiny_folder):
    """Settings for the tiny model on this test's data dir, with the tiny model in place."""
    from gempix.settings import Settings

    data = tmp_path / "data"
    shutil.copytree(tiny_folder, data / "models" / "tiny")
    return Settings.load({}, data_dir=str(data), model="tiny")


@pytest.fixture(scope="session")
def shared_studio(tmp_path_factory, tiny_folder):
    """One studio for read-mostly tests: loading once keeps the suite fast."""
    from gempix.service import Studio
    from gempix.settings import Settings

    data = tmp_path_factory.mktemp("shared-data")
    shutil.copytree(tiny_folder, data / "models" / "tiny")
    return Studio(Settings.load({}, data_dir=str(data), model="tiny"))


@pytest.fixture
def studio(settings):
    from gempix.service import Studio

    return Studio(settings)
