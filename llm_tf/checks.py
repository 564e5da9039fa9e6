"""The argument checks every module uses: each error names the argument, its value and what was expected.

Used by the layers, models, text pipelines and metrics (one copy of each check in the package).
"""

from collections.abc import Iterable
from typing import Any

import numpy as np


def is_int(value: Any) -> bool:
    """A Python or numpy integer, not a bool."""
    return not isinstance(value, bool) and isinstance(value, int | np.integer)


def is_number(value: Any) -> bool:
    """A Python or numpy int or float, not a bool."""
    return not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)


def check_positive_int(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not is_int(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer; got {name}={value!r}.")


def check_rate(name: str, value: Any) -> None:
    """A dropout-style rate in ``[0, 1)``."""
    if not is_number(value) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1); got {name}={value!r}.")


def check_probability(name: str, value: Any, *, allow_zero: bool = True, allow_one: bool = True) -> None:
    """A number in ``[0, 1]``; ``allow_zero`` / ``allow_one`` close or open either end."""
    ok = is_number(value)
    if ok:
        ok = (value >= 0.0 if allow_zero else value > 0.0) and (value <= 1.0 if allow_one else value < 1.0)
    if not ok:
        low = "[0" if allow_zero else "(0"
        high = "1]" if allow_one else "1)"
        raise ValueError(f"`{name}` must be a number in {low}, {high}; got {name}={value!r}.")


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """``value`` is one of ``choices`` (a set is listed sorted, a sequence in its order)."""
    listed = sorted(choices, key=str) if isinstance(choices, set | frozenset) else list(choices)
    if value not in listed:
        raise ValueError(f"`{name}` must be one of {listed}; got {name}={value!r}.")


def check_token_ids(token_ids, vocabulary_size, argument="token_ids"):
    """Raise ValueError for ids outside ``[0, vocabulary_size)`` (XLA's gather would clamp them silently)."""
    values = np.asarray(token_ids)
    if values.size == 0:
        return
    if not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"`{argument}` must hold integer token ids; got dtype {values.dtype}.")
    low, high = int(values.min()), int(values.max())
    if low < 0 or high >= vocabulary_size:
        bad = low if low < 0 else high
        raise ValueError(
            f"`{argument}` must hold ids in [0, vocabulary_size={vocabulary_size}); got a token id {bad}."
        )


def require_tensorflow_backend(feature: str) -> None:
    """Raise ValueError naming ``feature`` unless Keras runs on TensorFlow (TensorFlow-only features never fall back)."""
    import keras

    backend = keras.config.backend()
    if backend != "tensorflow":
        raise ValueError(
            f"{feature} is TensorFlow-only and needs KERAS_BACKEND=tensorflow; the Keras backend is {backend!r}."
        )
