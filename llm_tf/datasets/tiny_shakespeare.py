"""Tiny Shakespeare (char-rnn): 1,115,394 characters of Shakespeare, the corpus of nanoGPT's char-level model.

Split as nanoGPT does: the first 90% of the characters train, the last 10% validate (by position, no
shuffling): 1,003,854 / 111,540 characters.
"""

from __future__ import annotations

import os

from llm_tf.checks import check_probability
from llm_tf.datasets._files import RemoteFile, ensure_dataset
from llm_tf.datasets.types import TextSplits

TINY_SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/"
    "data/tinyshakespeare/input.txt"
)
_TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def load_tiny_shakespeare(
    data_dir: str | os.PathLike | None = None,
    *,
    train_fraction: float = 0.9,
    download: bool = True,
) -> TextSplits:
    """Loads Tiny Shakespeare as train / validation strings, split by position.

    Args:
        data_dir: the data directory; the file is `<data_dir>/tiny_shakespeare/input.txt`.
        train_fraction: the leading share of characters used for training (nanoGPT: 0.9); the split point is
            `int(len(text) * train_fraction)`.
        download: fetch input.txt from karpathy/char-rnn when missing (sha256-verified).

    Returns:
        `TextSplits(train, validation)`; `train + validation` is the whole file.

    Example:
        >>> train, validation = load_tiny_shakespeare()  # doctest: +SKIP
        >>> len(train), len(validation)  # doctest: +SKIP
        (1003854, 111540)
    """
    check_probability("train_fraction", train_fraction, allow_zero=False, allow_one=False)
    dataset_dir = ensure_dataset(
        name="Tiny Shakespeare",
        data_dir=data_dir,
        folder="tiny_shakespeare",
        required=["input.txt"],
        files=[RemoteFile(TINY_SHAKESPEARE_URL, "input.txt", _TINY_SHAKESPEARE_SHA256)],
        download=download,
    )
    # Read exactly as nanoGPT does (UTF-8, newlines untouched: the file has no CR).
    text = (dataset_dir / "input.txt").read_text(encoding="utf-8")
    split_at = int(len(text) * train_fraction)
    return TextSplits(train=text[:split_at], validation=text[split_at:])
