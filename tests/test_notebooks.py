"""The notebooks run top to bottom with the tiny model and no network, ship without outputs,
show their plots inline (a plot cell with no image is a failure), print no tqdm widget
warning, and each ends with a "What you can do next" cell."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    book = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in book.cells if cell.cell_type == "code"), (
        f"{path.name} is committed with outputs"
    )
    monkeypatch.setenv("GEMPIX_MODEL", "tiny")
    NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [
        out
        for cell in book.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    stderr = [
        out["text"]
        for cell in book.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream" and out.get("name") == "stderr"
    ]
    assert not any("IProgress" in text for text in stderr), stderr
    assert book.cells[-1].cell_type == "markdown"
    assert book.cells[-1].source.startswith("## What you can do next")
    for cell in book.cells:
        if cell.cell_type == "code" and "plt." in cell.source:
            pictures = [
                out["data"]["image/png"]
                for out in cell.get("outputs", [])
                if "image/png" in out.get("data", {})
            ]
            assert pictures and all(pictures), f"{path.name}: a plot cell shows no image"
    if path.name == "analytics.ipynb":
        assert stderr == []
