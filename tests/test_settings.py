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


def test_every_setting_is_a_field_and_documented():
    fields = {field for field in Settings.__dataclass_fields__}
    readme = README.read_text()
    for setting in SETTINGS:
        assert setting.name in fields
        for var in setting.env:
            assert re.search(rf"`{var}`", readme), f"{var} is not documented in README.md"
