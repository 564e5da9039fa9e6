"""The argument checks every module uses: each error names the argument, its value and what was expected.

Used by the layers, models, text pipelines and metrics (one copy of each check in the package).
"""

import math
from collections.abc import Iterable
from typing import Any

import numpy as np


def is_int(value: Any) -> bool:
    """A Python or numpy integer, not a bool."""
    return not isinstance(value, bool) and isinstance(value, int | np.integer)


def is_number(value: Any) -> bool:
    """A Python or numpy int or float, not a bool."""
    return not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)


def _bounds_text(minimum: Any, maximum: Any, exclusive_minimum: bool, exclusive_maximum: bool) -> str:
    if minimum is not None and maximum is not None:
        low = "(" if exclusive_minimum else "["
        high = ")" if exclusive_maximum else "]"
        return f" in {low}{minimum}, {maximum}{high}"
    if minimum is not None:
        return f" {'>' if exclusive_minimum else '>='} {minimum}"
    if maximum is not None:
        return f" {'<' if exclusive_maximum else '<='} {maximum}"
    return ""


def check_int(name: str, value: Any, *, minimum: int | None = None, allow_none: bool = False) -> None:
    """A Python or numpy integer (not a bool), at least ``minimum`` when given; ``None`` passes with ``allow_none``."""
    if value is None and allow_none:
        return
    if not is_int(value) or (minimum is not None and value < minimum):
        kind = {1: "a positive integer", 0: "a non-negative integer", None: "an integer"}.get(
            minimum, f"an integer >= {minimum}"
        )
        alternative = " or None" if allow_none else ""
        raise ValueError(f"`{name}` must be {kind}{alternative}; got {name}={value!r}.")


def check_positive_int(name: str, value: Any, *, allow_none: bool = False) -> None:
    """An integer >= 1 (``None`` passes with ``allow_none``)."""
    check_int(name, value, minimum=1, allow_none=allow_none)


def check_non_negative_int(name: str, value: Any, *, allow_none: bool = False) -> None:
    """An integer >= 0 (``None`` passes with ``allow_none``)."""
    check_int(name, value, minimum=0, allow_none=allow_none)


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    allow_none: bool = False,
    finite: bool = False,
    kind: str | None = None,
) -> None:
    """A Python or numpy int or float (not a bool, not NaN) within the given bounds.

    ``exclusive_minimum`` / ``exclusive_maximum`` open either end; ``finite`` also refuses +-inf; ``None`` passes
    with ``allow_none``; ``kind`` names what is expected in the message (e.g. ``"a float"``, ``"a number of
    seconds"``; default ``"a number"`` / ``"a finite number"``).
    """
    if value is None and allow_none:
        return
    ok = is_number(value) and value == value  # NaN is not equal to itself
    if ok and finite:
        ok = math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if exclusive_minimum else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if exclusive_maximum else value <= maximum
    if not ok:
        kind = kind or ("a finite number" if finite else "a number")
        bounds = _bounds_text(minimum, maximum, exclusive_minimum, exclusive_maximum)
        alternative = " or None" if allow_none else ""
        raise ValueError(f"`{name}` must be {kind}{bounds}{alternative}; got {name}={value!r}.")


def check_rate(name: str, value: Any) -> None:
    """A dropout-style rate in ``[0, 1)``."""
    check_number(name, value, minimum=0, maximum=1, exclusive_maximum=True, kind="a float")


def check_probability(
    name: str, value: Any, *, allow_zero: bool = True, allow_one: bool = True, allow_none: bool = False
) -> None:
    """A number in ``[0, 1]``; ``allow_zero`` / ``allow_one`` close or open either end."""
    check_number(
        name, value, minimum=0, maximum=1, exclusive_minimum=not allow_zero, exclusive_maximum=not allow_one,
        allow_none=allow_none,
    )


def check_bool(name: str, value: Any) -> None:
    """Exactly ``True`` or ``False`` (not 0/1, not None)."""
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be a bool (True or False); got {name}={value!r}.")


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
    """Raise ValueError naming ``feature`` unless Keras runs on TensorFlow.

    For the TensorFlow-only parts of the package (``tf.data`` pipelines, tensorflow-text graph ops,
    ``tf.distribute`` and the training loop built on them): they never fall back silently on another backend.
    Checked at call time, so importing the package works on every backend.

    Example:
        >>> require_tensorflow_backend("make_classification_dataset (tf.data)")  # on TensorFlow: no error
    """
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(
            f"{feature} is TensorFlow-only (TensorFlow backend only), but the Keras backend in use is "
            f"{backend!r}. Set KERAS_BACKEND=tensorflow (before Keras is imported) to use it; the layers and "
            "models themselves run on any backend."
        )
