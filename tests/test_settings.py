"""Settings: one source, every value checked at start with a message naming the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gempix.errors import SettingsError
from gempix.settings import SETTINGS, Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults():
    settings = Settings.load({})
    assert (settings.model, settings.device, settings.port) == ("auto", "auto", 7860)
    assert settings.data_dir == Path("gempix-data")


@pytest.mark.parametrize(
    "environ,expected",
    [
        ({"PORT": "8080"}, 8080),
        ({"GRADIO_SERVER_PORT": "9000", "PORT": "8080"}, 9000),
        ({"GRADIO_SERVER_PORT": "", "PORT": "8080"}, 8080),
    ],
)
def test_port_sources(environ, expected):
    assert Settings.load(environ).port == expected


@pytest.mark.parametrize(
    "environ,message",
    [
        ({"GEMPIX_DEVICE": "tpu"}, "GEMPIX_DEVICE: allowed values: auto, cpu, cuda, mps"),
        ({"GEMPIX_DTYPE": "int8"}, "GEMPIX_DTYPE: allowed values: auto, float32"),
        ({"PORT": "http"}, "PORT: expected a whole number from 1 to 65535"),
        ({"GRADIO_SERVER_PORT": "70000"}, "GRADIO_SERVER_PORT: expected a whole number"),
        ({"GEMPIX_METADATA_PROMPT": "maybe"}, "GEMPIX_METADATA_PROMPT: allowed values: true"),
        ({"GEMPIX_ANALYTICS_K": "2"}, "GEMPIX_ANALYTICS_K: expected a whole number from 5"),
        ({"GEMPIX_MODEL": "   "}, None),  # blank counts as unset
    ],
)
def test_invalid_values_name_the_variable(environ, message):
    if message is None:
        assert Settings.load(environ).model == "auto"
        return
    with pytest.raises(SettingsError) as caught:
        Settings.load(environ)
    assert message in caught.value.message


def test_overrides_win_and_are_checked():
    assert Settings.load({"GEMPIX_MODEL": "sdxl"}, model="tiny").model == "tiny"
    with pytest.raises(SettingsError, match="--device"):
        Settings.load({}, device="quantum")
    with pytest.raises(SettingsError, match="Unknown setting"):
        Settings.load({}, colour="blue")


def shown(default) -> str:
    """A default as README's settings table writes it."""
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, Path):
        return f"./{default}"
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def readme_settings() -> dict[tuple[str, ...], str]:
    """README's settings table: (env vars of a row) -> its documented default."""
    section = README.read_text().split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            rows[tuple(re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]))] = cells[1].strip("`")
    return rows


def test_every_setting_is_in_the_readme_table_with_its_default_and_nothing_else_is():
    documented = readme_settings()
    declared = {setting.env: setting for setting in SETTINGS}
    assert set(documented) == set(declared)
    for env, setting in declared.items():
        if setting.default != "":  # empty ones say what empty means ("generated", "empty")
            assert documented[env] == shown(setting.default), env


def test_the_api_limits_are_the_settings_own():
    """One declaration: ApiConfig is made from the settings marked api (max_batch included)."""
    from dataclasses import fields

    from gempix.api.config import ApiConfig

    settings = Settings.load({"GEMPIX_MAX_BATCH": "3", "GEMPIX_RATE_WEB": "off"})
    config = ApiConfig.from_settings(settings)
    assert {field.name for field in fields(ApiConfig)} == {s.name for s in SETTINGS if s.api}
    assert (config.max_batch, config.rate_web) == (3, "off") and not config.limited("web")
    assert ApiConfig().max_batch == Settings.load({}).max_batch == 4
    with pytest.raises(SettingsError, match="max_batch"):
        ApiConfig(max_batch=0)
