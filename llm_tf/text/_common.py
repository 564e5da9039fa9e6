"""Helpers shared by the tokenizers and pipelines: argument checks, text coercion, progress bars.

Every error names the argument, the value received and what was expected.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from llm_tf.checks import check_choice, check_positive_int, check_probability, is_int  # noqa: F401  (used by the text modules)

# Lone UTF-16 surrogates can sit in a Python `str` (for example after `bytes.decode(errors="surrogateescape")`)
# but cannot be encoded as UTF-8; they are treated like invalid UTF-8 bytes.
_SURROGATES = re.compile("[\ud800-\udfff]")
REPLACEMENT_CHARACTER = "\ufffd"
ERROR_POLICIES = ("replace", "strict")


def to_text(value: Any, *, errors: str = "replace", argument: str = "text") -> str:
    """Returns `value` as a `str` that is safe to encode as UTF-8.

    Args:
        value: a `str`, or `bytes` holding UTF-8 text (numpy string scalars work too).
        errors: "replace" turns invalid UTF-8 bytes and lone surrogates into U+FFFD; "strict" raises.
        argument: the argument name used in error messages.

    Returns:
        The text as a `str` without lone surrogates.

    Raises:
        ValueError: on a non-text value, or on invalid UTF-8 when `errors="strict"`.
    """
    check_choice("errors", errors, ERROR_POLICIES)
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("utf-8", errors="strict")
        except UnicodeDecodeError as error:
            if errors == "strict":
                raise ValueError(
                    f"`{argument}` holds bytes that are not valid UTF-8 ({error.reason} at byte {error.start}); "
                    "expected UTF-8 text, or pass errors='replace' to substitute U+FFFD."
                ) from None
            return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        if _SURROGATES.search(value) is None:
            return value
        if errors == "strict":
            raise ValueError(
                f"`{argument}` contains lone surrogate code points that cannot be encoded as UTF-8; "
                "expected valid text, or pass errors='replace' to substitute U+FFFD."
            )
        return _SURROGATES.sub(REPLACEMENT_CHARACTER, value)
    raise ValueError(f"`{argument}` must be a str or UTF-8 bytes; got {type(value).__name__}: {value!r:.80}.")


def is_single_text(texts: Any) -> bool:
    """True when `texts` is one text (str / bytes) rather than a collection of texts."""
    if isinstance(texts, str | bytes | bytearray):
        return True
    # numpy string scalars (np.str_ subclasses str; np.bytes_ subclasses bytes) are covered above;
    # a 0-d numpy array of strings also counts as one text.
    return getattr(texts, "ndim", None) == 0


def to_text_list(texts: Any, *, errors: str = "replace", argument: str = "texts") -> list[str]:
    """Returns a list of `str` from one text or any iterable of texts (list, numpy array, generator)."""
    if is_single_text(texts):
        return [to_text(texts.item() if hasattr(texts, "item") else texts, errors=errors, argument=argument)]
    if not isinstance(texts, Iterable):
        raise ValueError(
            f"`{argument}` must be a str or an iterable of str; got {type(texts).__name__}: {texts!r:.80}."
        )
    return [to_text(text, errors=errors, argument=argument) for text in texts]


def iterate_texts(texts: Any, *, argument: str = "texts") -> Iterator[str]:
    """Yields texts one by one from one text or an iterable of texts, without materialising them."""
    if is_single_text(texts):
        yield to_text(texts.item() if hasattr(texts, "item") else texts, argument=argument)
        return
    if not isinstance(texts, Iterable):
        raise ValueError(
            f"`{argument}` must be a str or an iterable of str; got {type(texts).__name__}: {texts!r:.80}."
        )
    for text in texts:
        yield to_text(text, argument=argument)


def known_length(texts: Any) -> int | None:
    if is_single_text(texts):
        return 1
    try:
        return len(texts)
    except TypeError:
        return None


# Corpora with at least this many texts get a progress bar by default (when stderr is a terminal).
PROGRESS_MIN_TEXTS = 1000


def want_progress(progress: bool | None, texts: Any) -> bool:
    """Resolves the `progress` argument: None means "on for large corpora when stderr is a terminal"."""
    if progress is not None:
        return bool(progress)
    if not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return False
    length = known_length(texts)
    return length is None or length >= PROGRESS_MIN_TEXTS


def batched(iterable: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in iterable:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def as_id_list(ids: Any, *, argument: str = "ids") -> list[int]:
    """Returns `ids` (list, tuple, numpy array, tf.Tensor) as a flat list of Python ints."""
    if hasattr(ids, "numpy"):
        ids = ids.numpy()
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if is_int(ids):
        return [int(ids)]
    if not isinstance(ids, list | tuple):
        raise ValueError(f"`{argument}` must be a sequence of int token ids; got {type(ids).__name__}.")
    result = []
    for value in ids:
        if not is_int(value):
            raise ValueError(
                f"`{argument}` must be a flat sequence of int token ids; got an element {value!r} "
                f"of type {type(value).__name__}."
            )
        result.append(int(value))
    return result
