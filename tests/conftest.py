"""Shared pytest set-up: quiet TensorFlow, the Keras backend, cheap XLA compiles, and the path to the real datasets."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The tests' models are tiny and most XLA programs run a few steps once compiled, so LLVM's optimization passes
# cost more than they save: without them the XLA-heavy tests (GPT, the JAX backend process) take ~30% less CPU
# time. They are the same programs, less optimized: results are checked with tolerances or against reruns under
# the same flags, never against numbers from a default-flags build. Subprocesses and notebook kernels
# inherit it; set XLA_FLAGS yourself to test with other flags.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data_dir():
    """The real datasets (read-only). Tests marked `data` use it; CI always has it."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA_DIR}")
    return SHARED_DATA_DIR


# The longest test files (CPU time on 2 cores, heaviest first), started first: pytest-xdist hands out whole files
# (`--dist loadfile`) in collection order, so a long file collected last would run alone at the end while the
# other worker idles. Every other file keeps its place after them.
_LONG_FILES_FIRST = (
    "test_reproducibility.py", "test_notebooks.py", "test_backends.py", "test_experiments_news_writing.py",
    "test_models_gpt.py", "test_experiments_summarization.py", "test_experiments_news.py",
    "test_experiments_shakespeare.py",
)


def pytest_collection_modifyitems(session, config, items):
    rank = {name: position for position, name in enumerate(_LONG_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own tests keep their order
