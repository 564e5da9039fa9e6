"""``llm_tf.checks``: the shared argument checks and the TensorFlow-only guard.

The guard is tested in process (by faking ``keras.backend.backend``) and, marked slow, for real under
``KERAS_BACKEND=jax`` in a subprocess (``tests/_backend_scripts/tensorflow_only.py``).
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from llm_tf import checks


def test_require_tensorflow_backend_passes_on_tensorflow():
    assert keras.backend.backend() == "tensorflow"
    checks.require_tensorflow_backend("make_classification_dataset (tf.data)")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_require_tensorflow_backend_names_feature_backend_and_fix(monkeypatch, backend):
    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    with pytest.raises(ValueError) as raised:
        checks.require_tensorflow_backend("get_strategy (tf.distribute)")
    message = str(raised.value)
    for part in ("get_strategy (tf.distribute)", "TensorFlow-only", repr(backend), "KERAS_BACKEND=tensorflow",
                 "the layers and models themselves run on any backend"):
        assert part in message, message


def test_tensorflow_only_entry_points_check_at_call_time(monkeypatch):
    """The guard runs first, before any argument check or TensorFlow op."""
    from llm_tf.text.pipelines import make_classification_dataset
    from llm_tf.training.loop import setup_training
    from llm_tf.training.strategy import get_strategy

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    for name, call in (
        ("make_classification_dataset", lambda: make_classification_dataset(["a"], [0], None)),
        ("get_strategy", lambda: get_strategy("no such strategy")),
        ("setup_training", lambda: setup_training(seed="not an int")),
    ):
        with pytest.raises(ValueError, match=rf"^{name} \(.*TensorFlow-only.*'jax'"):
            call()


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (lambda v: checks.check_positive_int("n", v), 0, r"^`n` must be a positive integer; got n=0\.$"),
        (lambda v: checks.check_positive_int("n", v), True, r"`n` must be a positive integer; got n=True"),
        (lambda v: checks.check_positive_int("n", v, allow_none=True), 1.0,
         r"`n` must be a positive integer or None; got n=1\.0"),
        (lambda v: checks.check_non_negative_int("n", v), -1, r"`n` must be a non-negative integer; got n=-1"),
        (lambda v: checks.check_int("n", v, minimum=2), 1, r"`n` must be an integer >= 2; got n=1"),
        (lambda v: checks.check_int("seed", v), "1", r"`seed` must be an integer; got seed='1'"),
        (lambda v: checks.check_rate("dropout", v), 1.0, r"`dropout` must be a float in \[0, 1\); got dropout=1\.0"),
        (lambda v: checks.check_probability("p", v, allow_zero=False), 0.0, r"`p` must be a number in \(0, 1\]"),
        (lambda v: checks.check_number("lr", v, minimum=0, exclusive_minimum=True), 0, r"`lr` must be a number > 0"),
        (lambda v: checks.check_number("x", v, minimum=0), float("nan"), r"`x` must be a number >= 0; got x=nan"),
        (lambda v: checks.check_number("x", v), "1", r"`x` must be a number; got x='1'"),
        (lambda v: checks.check_bool("flag", v), 1, r"`flag` must be a bool \(True or False\); got flag=1"),
        (lambda v: checks.check_choice("mode", v, ("min", "max")), "avg",
         r"`mode` must be one of \['min', 'max'\]; got mode='avg'"),
    ],
)
def test_checks_name_argument_value_and_expectation(check, value, message):
    with pytest.raises(ValueError, match=message):
        check(value)


def test_checks_accept_valid_values():
    checks.check_positive_int("n", np.int64(3))
    checks.check_positive_int("n", None, allow_none=True)
    checks.check_non_negative_int("n", 0)
    checks.check_rate("dropout", 0)
    checks.check_probability("p", 1.0)
    checks.check_number("x", 0.5, minimum=0, maximum=1, exclusive_maximum=True)
    checks.check_bool("flag", False)
    checks.check_choice("mode", "min", {"min", "max"})


@pytest.mark.slow
def test_tensorflow_only_features_raise_under_jax(repo_root):
    pytest.importorskip("jax")
    environment = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(repo_root))
    result = subprocess.run(
        [sys.executable, str(repo_root / "tests" / "_backend_scripts" / "tensorflow_only.py")],
        cwd=repo_root, env=environment, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "raises: make_classification_dataset" in result.stdout and "raises: get_strategy" in result.stdout
    assert "OK jax" in result.stdout
