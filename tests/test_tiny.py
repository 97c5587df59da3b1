"""The tiny model: deterministic, local, and loaded through the real from_pretrained path."""

from __future__ import annotations

import hashlib
import json

from gempix.engine import tiny
from gempix.engine.models import ModelManager


def tree_digest(folder):
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_built_identically_twice(tmp_path, tiny_folder):
    again = tiny.ensure_tiny(tmp_path / "again")
    first, second = tree_digest(tiny_folder), tree_digest(again)
    assert any(name.endswith(".safetensors") for name in first)
    assert first == second


def test_tokenizer_is_written_locally(tiny_folder):
    files = {path.name for path in (tiny_folder / "tokenizer").iterdir()}
    assert "tokenizer.json" in files
    config = json.loads((tiny_folder / "tokenizer" / "tokenizer_config.json").read_text())
    assert config["model_max_length"] == 77


def test_loads_through_from_pretrained(settings):
    loaded = ModelManager(settings).get()
    assert loaded.name == "tiny"
    assert type(loaded.pipe).__name__ == "StableDiffusionPipeline"
    # from_pretrained records where it loaded from: the folder in the data dir, not the Hub.
    assert loaded.pipe.name_or_path == str(settings.models_dir / "tiny")
    assert loaded.pipe.vae_scale_factor == 8


def test_stale_recipe_is_rebuilt(tmp_path, tiny_folder):
    import shutil

    folder = tmp_path / "tiny"
    shutil.copytree(tiny_folder, folder)
    (folder / tiny.MARKER).write_text(json.dumps({"recipe": tiny.RECIPE_VERSION - 1}))
    (folder / "unet" / "config.json").write_text("{broken")
    assert not tiny.is_built(folder)
    tiny.ensure_tiny(folder)
    assert tree_digest(folder) == tree_digest(tiny_folder)


def test_model_manager_loads_once_and_releases_on_switch(settings, tmp_path):
    manager = ModelManager(settings)
    first = manager.get()
    assert manager.get() is first
    assert manager.get("tiny") is first
    other = tmp_path / "other-tiny"
    import shutil

    shutil.copytree(settings.models_dir / "tiny", other)
    switched = manager.get(str(other))
    assert switched is not first
    assert manager._loaded is switched  # the old pipeline is no longer held
