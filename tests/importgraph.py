"""Reading GemPix's imports from its source (``ast``), for the layer and DAG tests.

Every import statement counts, at module level or inside a function, so an import moved into
a function to dodge a cycle or a layer rule is still seen.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gempix"


def imported(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every dotted name an import in ``path`` may load (a module, or a name in one), relative
    imports resolved against ``path``'s place under ``root`` (the package's folder)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    package = parts[:-1]  # an __init__.py's package is its folder, like any module's
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                module = ".".join(anchor + [node.module] if node.module else anchor)
            else:
                module = node.module
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def module_names(folder: Path, root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``folder`` (inside the package
    folder ``root``)."""
    names = {}
    for path in sorted(folder.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def import_graph(folder: Path, root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the modules under ``folder`` it imports. A module's own packages are left
    out: Python runs them before the module anyway, so such an edge is never a cycle."""
    modules = module_names(folder, root)
    return {
        name: {
            target
            for target in imported(path, root)
            if target in modules and not (name == target or name.startswith(target + "."))
        }
        for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None for a DAG."""
    done: set[str] = set()
    for start in sorted(graph):
        path: list[str] = [start]
        stack = [(start, iter(sorted(graph[start])))]
        on_path = {start}
        while stack:
            node, targets = stack[-1]
            target = next(targets, None)
            if target is None:
                stack.pop()
                on_path.discard(path.pop())
                done.add(node)
            elif target in on_path:
                return [*path[path.index(target) :], target]
            elif target not in done:
                stack.append((target, iter(sorted(graph[target]))))
                on_path.add(target)
                path.append(target)
    return None
