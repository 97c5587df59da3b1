"""The engine's modules form a DAG, and only ``pipeline.py`` calls a diffusion pipeline.

The import graph is read from the source with ``ast``: every import statement, at module level
or inside a function, so an import moved into a function to dodge a cycle is still an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gempix.engine

ENGINE = Path(gempix.engine.__file__).parent
# What the engine may use from the rest of GemPix: it knows nothing of users or storage.
OUTSIDE_ALLOWED = {"gempix.errors", "gempix.images", "gempix.settings"}


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root`` (the package ``package``)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imported(name: str, path: Path) -> set[str]:
    """Every dotted name an import statement in ``path`` may load (a module or a name in it)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    modules = module_names(root, package)
    return {
        name: {target for target in imported(name, path) if target in modules and target != name}
        for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None for a DAG."""
    done: set[str] = set()
    for start in sorted(graph):
        path: list[str] = []
        stack = [(start, iter(sorted(graph[start])))]
        on_path = {start}
        path.append(start)
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


def test_the_engine_imports_form_no_cycle():
    graph = import_graph(ENGINE, "gempix.engine")
    assert len(graph) > 20 and graph["gempix.engine.models"], "the graph was not read"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_a_cycle_through_a_lazy_import_is_found(tmp_path):
    """The checker itself: ``b`` imports ``a`` inside a function, as code dodging a cycle
    does; the graph still has the edge, and the cycle is reported."""
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "a.py").write_text("from .b import run\n")
    (tmp_path / "b.py").write_text("def run():\n    from . import a\n    return a\n")
    (tmp_path / "c.py").write_text("from . import a\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.b"] == {"pkg", "pkg.a"}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]
    (tmp_path / "b.py").write_text("def run():\n    return 1\n")
    assert find_cycle(import_graph(tmp_path, "pkg")) is None


def test_the_engine_uses_nothing_of_gempix_but_errors_images_and_settings():
    modules = module_names(ENGINE, "gempix.engine")
    outside = {
        (name, target)
        for name, path in modules.items()
        for target in imported(name, path)
        if target.startswith("gempix.")
        and not target.startswith("gempix.engine")
        and not {target, target.rpartition(".")[0]} & OUTSIDE_ALLOWED
    }
    assert not outside, f"the engine imports from outside it: {sorted(outside)}"


def calls_a_pipeline(node: ast.AST) -> bool:
    """``pipe(...)``, ``loaded.pipe(...)``, ``loaded.img2img(...)``: a direct pipeline call."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id in ("pipe", "pipeline")) or (
        isinstance(func, ast.Attribute) and func.attr in ("pipe", "img2img")
    )


def test_only_the_guarded_call_calls_a_pipeline():
    direct = {
        f"{path.relative_to(ENGINE)}:{node.lineno}"
        for path in ENGINE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if calls_a_pipeline(node)
    }
    assert direct, "the check finds nothing, not even call_pipeline's own calls"
    outside = sorted(entry for entry in direct if not entry.startswith("pipeline.py:"))
    assert not outside, f"pipelines called outside pipeline.call_pipeline: {outside}"
