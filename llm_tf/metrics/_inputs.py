"""Normalisation and checks of metric inputs; every error names the argument, its value and what was expected."""

import numpy as np

from llm_tf.checks import check_positive_int, check_probability  # noqa: F401  (used by the metrics modules)


def _short_repr(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _to_python_list(name, values):
    """Turn a list, tuple, numpy array or eager tensor of items into a plain Python list."""
    if isinstance(values, str | bytes):
        raise ValueError(
            f"`{name}` must be a sequence of strings, not a single string; got {name}={_short_repr(values)}. "
            "Wrap a single sentence in a list."
        )
    if hasattr(values, "numpy") and callable(values.numpy):
        values = values.numpy()  # an eager tf.Tensor, e.g. detokenized bytes
    if isinstance(values, np.ndarray):
        return values.reshape(-1).tolist() if values.ndim <= 1 else values.tolist()
    try:
        return list(values)
    except TypeError:
        raise ValueError(
            f"`{name}` must be a sequence of strings; got {name} of type {type(values).__name__}."
        ) from None


def _to_text(name, index, item):
    if isinstance(item, bytes | np.bytes_):
        return bytes(item).decode("utf-8")
    if isinstance(item, str | np.str_):
        return str(item)
    raise ValueError(f"`{name}[{index}]` must be a string; got {_short_repr(item)} of type {type(item).__name__}.")


def as_text_list(name, values, allow_empty_list=False):
    """Return ``values`` as a list of ``str`` (bytes are decoded as UTF-8).

    Empty strings are valid items; an empty list is not unless ``allow_empty_list``.
    """
    items = _to_python_list(name, values)
    if not items and not allow_empty_list:
        raise ValueError(f"`{name}` is empty; expected at least one string.")
    return [_to_text(name, index, item) for index, item in enumerate(items)]


def as_reference_lists(name, references, expected_length, length_name):
    """Return the references as one list of reference strings per hypothesis.

    Each item of ``references`` is either a string (one reference) or a non-empty sequence of strings
    (several references for the same hypothesis; their number may vary from item to item).
    """
    items = _to_python_list(name, references)
    if len(items) != expected_length:
        raise ValueError(
            f"`{name}` must hold one entry per item of `{length_name}`: len({length_name})={expected_length} "
            f"but len({name})={len(items)}."
        )
    reference_lists = []
    for index, item in enumerate(items):
        if isinstance(item, str | bytes | np.str_ | np.bytes_):
            reference_lists.append([_to_text(name, index, item)])
            continue
        if not isinstance(item, list | tuple | np.ndarray) and not hasattr(item, "numpy"):
            raise ValueError(
                f"`{name}[{index}]` must be a reference string or a list of reference strings; got "
                f"{_short_repr(item)} of type {type(item).__name__}."
            )
        alternatives = _to_python_list(f"{name}[{index}]", item)
        if not alternatives:
            raise ValueError(f"`{name}[{index}]` is an empty list; expected at least one reference string.")
        reference_lists.append([_to_text(f"{name}[{index}]", j, alt) for j, alt in enumerate(alternatives)])
    return reference_lists


def check_same_length(name_a, values_a, name_b, values_b):
    if len(values_a) != len(values_b):
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same length; got len({name_a})={len(values_a)} and "
            f"len({name_b})={len(values_b)}."
        )
