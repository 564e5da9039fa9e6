"""Executes every notebook top to bottom with a real Jupyter kernel.

A failing cell raises ``CellExecutionError`` (and so fails the test). Each notebook must end in a code
cell that *asserts* what the notebook computed, so a notebook that runs but computes the wrong thing fails too.
"""

import ast
import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def _last_code_cell(notebook):
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells, "notebook has no code cell"
    return code_cells[-1]


def _has_assert(source):
    return any(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(source)))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_last_cell_of_each_notebook_asserts_its_result(path):
    last = _last_code_cell(nbformat.read(path, as_version=4))
    assert _has_assert(last.source), f"{path.name}: the last code cell has no assert:\n{last.source}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_and_its_checks_pass(path, tmp_path, repo_root):
    notebook = nbformat.read(path, as_version=4)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo_root), os.environ.get("PYTHONPATH")]))
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell, including a failed assert
    last = _last_code_cell(notebook)
    assert last.get("execution_count") is not None, f"{path.name}: the last code cell did not run"
