"""The layers of docs/architecture.md hold, read from the source's own imports (ast): front
doors reach the core only and the store knows nothing of torch."""

from __future__ import annotations

from pathlib import Path

import pytest
from importgraph import PACKAGE, imported

RULES = {  # package -> modules (and their submodules) it must never import
    "cli": ("gempix.store", "gempix.engine"),
    "api": ("gempix.store", "gempix.engine"),
    "ui": ("gempix.store", "gempix.engine"),
    "store": ("gempix.engine", "torch", "diffusers", "gempix.service"),
}  # the engine's own rule, an allowlist, is in test_engine_imports.py


def breaks(path: Path, forbidden: tuple[str, ...], root: Path = PACKAGE) -> list[str]:
    return sorted(
        name
        for name in imported(path, root)
        if any(name == bad or name.startswith(bad + ".") for bad in forbidden)
    )


@pytest.mark.parametrize("layer", sorted(RULES))
def test_each_layer_imports_only_what_it_may(layer):
    offences = {
        str(path.relative_to(PACKAGE)): found
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        if (found := breaks(path, RULES[layer]))
    }
    assert offences == {}


def test_the_import_reader_sees_every_form_of_import(tmp_path):
    """The check can fail: each way of importing the store or the engine is caught."""
    door = PACKAGE / "ui" / "create.py"
    for source in (
        "import gempix.store\n",
        "from gempix.store import Store\n",
        "from ..store.users import ROLES\n",
        "def f():\n    from ..engine import models\n",
        "from .. import engine\n",
    ):
        fake = tmp_path / "gempix" / "ui" / "create.py"
        fake.parent.mkdir(parents=True, exist_ok=True)
        fake.write_text(source)
        assert breaks(fake, RULES["ui"], tmp_path / "gempix"), source
    assert not breaks(door, RULES["ui"])
