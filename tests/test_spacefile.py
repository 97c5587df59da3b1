"""The Spacefile (Deta Space manifest v0) stays structurally valid and names real settings."""

from __future__ import annotations

from pathlib import Path

import yaml

from gempix.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[1]


def test_spacefile_structure():
    manifest = yaml.safe_load((ROOT / "Spacefile").read_text())
    assert manifest["v"] == 0
    (micro,) = manifest["micros"]
    assert micro["engine"] == "custom" and micro["primary"] is True
    assert micro["run"] == micro["dev"] == "python app.py"
    assert (ROOT / micro["src"] / "app.py").is_file()
    assert all(isinstance(route, str) and route.startswith("/") for route in micro["public_routes"])
    for path in micro["include"]:
        assert (ROOT / path).exists(), f"Spacefile includes missing {path}"
    known = {var for setting in SETTINGS for var in setting.env}
    for variable in micro["presets"]["env"]:
        assert variable["name"] in known, f"{variable['name']} is not a GemPix setting"
        assert variable["description"].strip()
        assert "default" not in variable or isinstance(variable["default"], str)


def test_readme_starts_with_a_space_header():
    import gradio

    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n")
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["sdk"] == "gradio" and header["app_file"] == "app.py"
    assert header["sdk_version"].split(".")[0] == gradio.__version__.split(".")[0]
    assert isinstance(header["python_version"], str) and header["hf_oauth"] is True
    assert len(header["short_description"]) <= 60
