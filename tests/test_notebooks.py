"""Executes every notebook top to bottom with a real Jupyter kernel.

A failing cell raises ``CellExecutionError`` (and so fails the test). Each notebook must end in a code
cell that *asserts* what the notebook computed, so a notebook that runs but computes the wrong thing fails too.
The selected notebooks run two at a time, each in its own process with its own kernel (the kernels are small
single-process jobs; two of them keep both cores of a 2-core machine busy); each test waits for its own.
"""

import ast
import concurrent.futures
import os
import pathlib
import subprocess
import sys

import nbformat
import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
CONCURRENT_NOTEBOOKS = 2

# Runs one notebook in a kernel (started by this process) and writes the executed notebook to argv[3].
_EXECUTE_SCRIPT = """
import sys
import nbformat
from nbclient import NotebookClient
notebook = nbformat.read(sys.argv[1], as_version=4)
client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}})
try:
    client.execute()  # raises CellExecutionError on the first failing cell, including a failed assert
finally:
    nbformat.write(notebook, sys.argv[3])
"""


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


def _execute(path, directory, repo_root):
    """Executes the notebook at `path` in `directory`: (exit status, output, path of the executed notebook)."""
    directory.mkdir(parents=True)
    executed = directory / f"executed_{path.name}"
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo_root), os.environ.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, "-c", _EXECUTE_SCRIPT, str(path), str(directory), str(executed)],
        env=environment, capture_output=True, text=True, timeout=1800,
    )
    return completed.returncode, completed.stdout[-3000:] + completed.stderr[-6000:], executed


@pytest.fixture(scope="module")
def notebook_runs(request, tmp_path_factory, repo_root):
    """The executions of the notebooks this session selected, started together (see the module docstring)."""
    selected = [
        item.callspec.params["path"]
        for item in request.session.items
        if item.originalname == "test_notebook_runs_and_its_checks_pass"
    ]
    base = tmp_path_factory.mktemp("notebooks")
    with concurrent.futures.ThreadPoolExecutor(CONCURRENT_NOTEBOOKS) as executor:
        yield {path: executor.submit(_execute, path, base / path.stem, repo_root) for path in selected}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_and_its_checks_pass(path, notebook_runs):
    returncode, output, executed = notebook_runs[path].result()
    assert returncode == 0, f"{path.name} failed:\n{output}"
    notebook = nbformat.read(executed, as_version=4)
    last = _last_code_cell(notebook)
    assert last.get("execution_count") is not None, f"{path.name}: the last code cell did not run"
