"""Offline rules: auto falls back to tiny loudly; a named model fails fast with a how-to."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from huggingface_hub import constants

from gempix.engine.hub import hub_reachable
from gempix.engine.models import ModelManager, choose_model
from gempix.errors import ModelUnavailableError
from gempix.settings import Settings


@pytest.fixture
def hub_down(monkeypatch):
    """Not offline mode, but the Hub endpoint refuses connections (a closed loopback port)."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")


def test_offline_mode_counts_as_unreachable(monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert hub_reachable(timeout=1) is False


def test_refused_connection_counts_as_unreachable(hub_down):
    assert hub_reachable(timeout=1) is False


def test_auto_falls_back_to_tiny_with_a_notice(tmp_path, hub_down, caplog):
    settings = Settings.load({}, data_dir=str(tmp_path / "data"), model="auto")
    loaded = ModelManager(settings).get()
    assert loaded.name == "tiny"
    assert "Offline" in loaded.notice and "gempix download sd-turbo" in loaded.notice
    assert any("serving the tiny offline model" in record.message for record in caplog.records)


@pytest.mark.parametrize("model", ["sd-turbo", "sdxl", "someone/their-model"])
def test_named_model_fails_fast_with_download_hint(tmp_path, hub_down, model):
    settings = Settings.load({}, data_dir=str(tmp_path / "data"), model=model)
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError) as caught:
        choose_model(settings, "cpu")
    assert time.monotonic() - started < 30
    assert f"gempix download {model}" in caught.value.message
    assert "\n" not in caught.value.message


def test_cli_offline_named_model_is_one_line_no_traceback(tmp_path):
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "empty-cache"),
        GEMPIX_DATA_DIR=str(tmp_path / "data"),
    )
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "gempix", "generate", "a cat", "--model", "sd-turbo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert time.monotonic() - started < 60
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: Model 'sd-turbo' is not downloaded and the Hugging Face Hub is unreachable. "
        "Download it once while online with: gempix download sd-turbo"
    ]
