"""All checks for one non-TensorFlow backend in one process (run by tests/test_backends.py with KERAS_BACKEND set).

Importing Keras with JAX or PyTorch, and llm_tf, is a large part of each check's cost, so one process runs both:
first the model smoke (``model_smoke.py``), then the standard layer checks (pytest ``-k standard_checks`` over
``tests/test_layers_*.py``). Each part's output sits between ``=== <part> ===`` and ``=== <part> exit <code> ===``
lines, so the two tests can each judge their own part; the exit status is nonzero when either part failed.
"""

import pathlib
import runpy
import sys
import traceback

HERE = pathlib.Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent

print("=== model smoke ===", flush=True)
try:
    runpy.run_path(str(HERE / "model_smoke.py"), run_name="__main__")
    smoke_exit = 0
except SystemExit as exit_info:
    smoke_exit = exit_info.code if isinstance(exit_info.code, int) else (0 if exit_info.code is None else 1)
except BaseException:
    traceback.print_exc(file=sys.stdout)
    smoke_exit = 1
print(f"=== model smoke exit {smoke_exit} ===", flush=True)

import pytest  # noqa: E402

layer_tests = sorted(str(path.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "tests").glob("test_layers_*.py"))
print("=== layer checks ===", flush=True)
layers_exit = int(pytest.main(["-q", "-p", "no:cacheprovider", "-k", "standard_checks", *layer_tests]))
print(f"=== layer checks exit {layers_exit} ===", flush=True)
sys.exit(1 if smoke_exit or layers_exit else 0)
