"""The layers of docs/architecture.md hold, read from the source's own imports (ast): front
doors reach the core only, the engine knows nothing of users, stores or doors, the store
nothing of torch."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gempix"
RULES = {  # package -> modules (and their submodules) it must never import
    "cli": ("gempix.store", "gempix.engine"),
    "api": ("gempix.store", "gempix.engine"),
    "ui": ("gempix.store", "gempix.engine"),
    "engine": ("gempix.store", "gempix.privacy", "gempix.service", "gempix.api", "gempix.ui"),
    "store": ("gempix.engine", "torch", "diffusers", "gempix.service"),
}


def imported(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every module ``path`` imports, relative imports resolved, wherever the import is."""
    package = ".".join(path.relative_to(root.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join(base + [node.module] if node.module else base)
            if node.level == 0:
                module = node.module
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


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
