"""The engine's modules form a DAG, and only ``pipeline.py`` calls a diffusion pipeline.

The import graph is read from the source with ``ast``: every import statement, at module level
or inside a function, so an import moved into a function to dodge a cycle is still an edge.
"""

from __future__ import annotations

import ast

from importgraph import PACKAGE, find_cycle, import_graph, imported, module_names

ENGINE = PACKAGE / "engine"
# What the engine may use from the rest of GemPix: it knows nothing of users or storage.
OUTSIDE_ALLOWED = {"gempix.errors", "gempix.images", "gempix.settings"}


def test_the_engine_imports_form_no_cycle():
    graph = import_graph(ENGINE)
    assert len(graph) > 20 and graph["gempix.engine.models"], "the graph was not read"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_a_cycle_through_a_lazy_import_is_found(tmp_path):
    """The checker itself: ``b`` imports ``a`` inside a function, as code dodging a cycle
    does; the graph still has the edge, and the cycle is reported."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from . import c\n")
    (package / "a.py").write_text("from .b import run\n")
    (package / "b.py").write_text("def run():\n    from . import a\n    return a\n")
    (package / "c.py").write_text("from . import a\n")
    graph = import_graph(package, package)
    assert graph["pkg.b"] == {"pkg.a"}  # its own package runs first anyway: no edge
    assert graph["pkg"] == {"pkg.c"}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]
    (package / "b.py").write_text("def run():\n    return 1\n")
    assert find_cycle(import_graph(package, package)) is None


def test_the_engine_uses_nothing_of_gempix_but_errors_images_and_settings():
    modules = module_names(ENGINE)
    outside = {
        (name, target)
        for name, path in modules.items()
        for target in imported(path)
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
