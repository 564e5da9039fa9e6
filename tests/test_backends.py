"""The layers and models on the other Keras backends (JAX, PyTorch), in one fresh process per backend.

Per backend, one process (``tests/_backend_scripts/run_checks.py``) runs a model smoke
(``tests/_backend_scripts/model_smoke.py``: build, call, fit one step, save/load, cached GPT generation equal to
the uncached pass) and then the standard layer checks (``tests/layer_checks.py``: config round trip, symbolic
call, fresh-process save/load, fit step, nonzero gradients, mixed bfloat16, masks); each test below judges its
own part of that process's output. Marked slow: ``make test`` (CI) runs them, ``make test-fast`` does not.
"""

import os
import re
import subprocess
import sys

import pytest

BACKENDS = ("jax", "torch")

_runs = {}


def _backend_run(backend, repo_root, timeout=1200):
    """The output of `run_checks.py` on `backend` (run once per session): (return code, {part: (exit, text)})."""
    if backend not in _runs:
        environment = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(repo_root))
        result = subprocess.run(
            [sys.executable, str(repo_root / "tests" / "_backend_scripts" / "run_checks.py")],
            cwd=repo_root, env=environment, capture_output=True, text=True, timeout=timeout,
        )
        parts = {}
        for part in ("model smoke", "layer checks"):
            match = re.search(rf"^=== {part} ===\n(.*)^=== {part} exit (-?\d+) ===$", result.stdout, re.S | re.M)
            if match:
                parts[part] = (int(match.group(2)), match.group(1))
        _runs[backend] = (result.returncode, parts, result.stdout, result.stderr)
    return _runs[backend]


def _part(backend, repo_root, part):
    returncode, parts, stdout, stderr = _backend_run(backend, repo_root)
    assert part in parts, f"{part} did not finish on {backend} (exit {returncode}):\n{stdout[-4000:]}\n{stderr[-4000:]}"
    return parts[part], f"{stdout[-4000:]}\n{stderr[-4000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_checks_pass_on_backend(backend, repo_root):
    pytest.importorskip(backend)
    (exit_code, text), output = _part(backend, repo_root, "layer checks")
    assert exit_code == 0, f"layer checks failed on {backend}:\n{output}"
    summary = text.strip().split("\n")[-1]
    assert " passed" in summary and "skipped" not in summary, text[-500:]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_model_smoke_on_backend(backend, repo_root):
    pytest.importorskip(backend)
    (exit_code, text), output = _part(backend, repo_root, "model smoke")
    assert exit_code == 0, f"model smoke failed on {backend}:\n{output}"
    assert f"OK {backend}" in text
