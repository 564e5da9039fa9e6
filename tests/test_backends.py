"""The layers and models on the other Keras backends (JAX, PyTorch), each in a fresh process.

Per backend: the standard layer checks (``tests/layer_checks.py``: config round trip, symbolic call, fresh
-process save/load, fit step, nonzero gradients, mixed bfloat16, masks) and a model smoke
(``tests/_backend_scripts/model_smoke.py``: build, call, fit one step, save/load, cached GPT generation equal to
the uncached pass). Marked slow: ``make test`` (CI) runs them, ``make test-fast`` does not.
"""

import os
import subprocess
import sys

import pytest

BACKENDS = ("jax", "torch")


def _run(backend, arguments, repo_root, timeout=900):
    environment = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(repo_root))
    result = subprocess.run(
        [sys.executable, *arguments], cwd=repo_root, env=environment, capture_output=True, text=True,
        timeout=timeout,
    )
    return result


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_checks_pass_on_backend(backend, repo_root):
    pytest.importorskip(backend)
    layer_tests = sorted(str(p.relative_to(repo_root)) for p in (repo_root / "tests").glob("test_layers_*.py"))
    result = _run(backend, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "standard_checks", *layer_tests],
                  repo_root)
    assert result.returncode == 0, f"layer checks failed on {backend}:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    assert " passed" in result.stdout and "skipped" not in result.stdout.split("\n")[-2], result.stdout[-500:]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_model_smoke_on_backend(backend, repo_root):
    pytest.importorskip(backend)
    result = _run(backend, [str(repo_root / "tests" / "_backend_scripts" / "model_smoke.py")], repo_root)
    assert result.returncode == 0, f"model smoke failed on {backend}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    assert f"OK {backend}" in result.stdout
