"""Fixed-length model windows over long encoded documents, and window-averaged prediction.

A document is encoded once, without special tokens or truncation (:class:`EncodedSplit`); the model sees
windows ``[CLS] + W document tokens + [SEP]`` padded with id 0 to ``T = max_sequence_length`` (``W = T - 2``),
so every batch has the same static shape. The window kinds:

- ``"first"``: the document's first ``W`` tokens (plain truncation);
- ``"head_tail"``: its first ``W // 2`` and last ``W - W // 2`` tokens (Sun et al., 2019, "How to fine-tune
  BERT for text classification?"); documents that fit are kept whole;
- ``"random"``: one window at a uniformly random start (training augmentation; a new one each epoch);
- ``"all"``: ``ceil(length / W)`` evenly spaced, overlapping full windows covering the whole document, whose
  class probabilities are averaged (:func:`average_by_document`).

Example:
    >>> import numpy as np
    >>> split = EncodedSplit(np.arange(10, 16, dtype=np.int32), np.array([0, 2, 6]), np.array([0, 1]), 2, 3)
    >>> split.head_tail_windows(5).tolist()
    [[2, 10, 11, 3, 0], [2, 12, 14, 15, 3]]
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from llm_tf.checks import check_choice, check_int

#: Window kinds for training (one window per document and epoch).
TRAIN_WINDOWS = ("first", "head_tail", "random")
#: Window kinds for evaluation and prediction ("all": average over covering windows).
EVAL_WINDOWS = ("first", "head_tail", "all")


def _check_length(max_sequence_length: int) -> int:
    check_int("max_sequence_length", max_sequence_length)
    if max_sequence_length < 3:
        raise ValueError(
            "`max_sequence_length` must leave room for [CLS], [SEP] and a token (>= 3); "
            f"got max_sequence_length={max_sequence_length}."
        )
    return int(max_sequence_length)


@dataclasses.dataclass
class EncodedSplit:
    """One split's documents as token ids (no special tokens, not truncated), cut into model windows on demand.

    Attributes:
        ids: every document's ids, concatenated (int32).
        offsets: document i is ``ids[offsets[i]:offsets[i + 1]]`` (int64, length n + 1).
        labels: int32 class ids (n,) (zeros when unknown, e.g. for prediction).
        cls_id, sep_id: the special tokens wrapped around each window.
    """

    ids: Any
    offsets: Any
    labels: Any
    cls_id: int
    sep_id: int

    def __post_init__(self):
        self.ids = np.asarray(self.ids, np.int32).reshape(-1)
        self.offsets = np.asarray(self.offsets, np.int64).reshape(-1)
        self.labels = np.asarray(self.labels, np.int32).reshape(-1)
        if len(self.offsets) != len(self.labels) + 1 or self.offsets[0] != 0 or self.offsets[-1] != len(self.ids):
            raise ValueError(
                f"`offsets` must run from 0 to len(ids)={len(self.ids)} with one entry per document plus one "
                f"({len(self.labels) + 1}); got {len(self.offsets)} offsets from {self.offsets[:1].tolist()} to "
                f"{self.offsets[-1:].tolist()}."
            )
        if np.any(np.diff(self.offsets) < 0):
            raise ValueError("`offsets` must be non-decreasing.")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per document (int64, (n,))."""
        return np.diff(self.offsets)

    def windows(self, starts, documents, max_sequence_length: int) -> np.ndarray:
        """Windows ``(len(starts), T)`` int32 of ``documents[k]`` from token ``starts[k]``."""
        max_sequence_length = _check_length(max_sequence_length)
        body = max_sequence_length - 2
        token_ids = np.zeros((len(starts), max_sequence_length), np.int32)
        for row, (document, start) in enumerate(zip(documents, starts)):
            begin = self.offsets[document] + start
            piece = self.ids[begin : min(begin + body, self.offsets[document + 1])]
            token_ids[row, 0] = self.cls_id
            token_ids[row, 1 : 1 + len(piece)] = piece
            token_ids[row, 1 + len(piece)] = self.sep_id
        return token_ids

    def first_windows(self, max_sequence_length: int) -> np.ndarray:
        """Each document's first window, ``(n, T)``."""
        return self.windows(np.zeros(len(self), np.int64), np.arange(len(self)), max_sequence_length)

    def head_tail_windows(self, max_sequence_length: int) -> np.ndarray:
        """Each document's first half-window of tokens followed by its last ones, ``(n, T)``.

        With ``W = T - 2`` document tokens per window, documents that fit are kept whole; longer ones keep
        ``W // 2`` head tokens and ``W - W // 2`` tail tokens, so the window is always full.
        """
        body = _check_length(max_sequence_length) - 2
        head = body // 2
        token_ids = self.first_windows(max_sequence_length)
        for document in np.flatnonzero(self.lengths > body):
            end = self.offsets[document + 1]
            token_ids[document, 1 + head : 1 + body] = self.ids[end - (body - head) : end]
        return token_ids

    def random_windows(self, max_sequence_length: int, rng: np.random.Generator) -> np.ndarray:
        """One window per document at a uniformly random start (``rng``: a NumPy Generator), ``(n, T)``."""
        room = np.maximum(self.lengths - (_check_length(max_sequence_length) - 2), 0)
        starts = rng.integers(0, room + 1)
        return self.windows(starts, np.arange(len(self)), max_sequence_length)

    def covering_windows(self, max_sequence_length: int) -> tuple[np.ndarray, np.ndarray]:
        """Windows covering every document: ``ceil(length / W)`` full windows, evenly spaced, overlapping.

        Returns:
            ``(token_ids (m, T), document index (m,))`` with m >= n.
        """
        body = _check_length(max_sequence_length) - 2
        starts, documents = [], []
        for document, length in enumerate(self.lengths):
            count = max(1, -(-int(length) // body))
            last_start = max(int(length) - body, 0)
            starts.extend(np.round(np.linspace(0, last_start, count)).astype(np.int64).tolist())
            documents.extend([document] * count)
        documents = np.asarray(documents, np.int64)
        return self.windows(np.asarray(starts, np.int64), documents, max_sequence_length), documents

    def document_windows(
        self, kind: str, max_sequence_length: int, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The windows of one kind (see the module docstring) and the document each belongs to.

        Args:
            kind: ``"first"``, ``"head_tail"``, ``"random"`` (needs ``rng``) or ``"all"``.
            max_sequence_length: ``T``.
            rng: a NumPy Generator for ``"random"``.

        Returns:
            ``(token_ids (m, T) int32, document index (m,) int64)``; m = n except for ``"all"``.
        """
        check_choice("kind", kind, TRAIN_WINDOWS + ("all",))
        if kind == "all":
            return self.covering_windows(max_sequence_length)
        if kind == "first":
            token_ids = self.first_windows(max_sequence_length)
        elif kind == "head_tail":
            token_ids = self.head_tail_windows(max_sequence_length)
        else:  # "random"
            if rng is None:
                raise ValueError("kind='random' needs `rng` (a numpy.random.Generator); got rng=None.")
            token_ids = self.random_windows(max_sequence_length, rng)
        return token_ids, np.arange(len(self), dtype=np.int64)

    def windows_per_document(self, max_sequence_length: int) -> np.ndarray:
        """How many covering windows each document needs (>= 1), ``(n,)``."""
        body = _check_length(max_sequence_length) - 2
        return np.maximum(1, -(-self.lengths // body))


def model_inputs(token_ids: np.ndarray) -> dict[str, np.ndarray]:
    """The model's input dict for windows: ``{"token_ids", "padding_mask"}`` (pad id 0)."""
    token_ids = np.asarray(token_ids)
    return {"token_ids": token_ids, "padding_mask": token_ids != 0}


def average_by_document(probabilities: np.ndarray, documents: np.ndarray, num_documents: int) -> np.ndarray:
    """Average per-window rows into per-document rows.

    Args:
        probabilities: ``(m, C)`` per window.
        documents: ``(m,)`` the document of each window (every document in ``[0, num_documents)`` at least once).
        num_documents: n.

    Returns:
        float64 ``(n, C)``.

    Example:
        >>> average_by_document(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]), np.array([0, 0, 1]), 2).tolist()
        [[0.5, 0.5], [0.5, 0.5]]
    """
    probabilities = np.asarray(probabilities, np.float64)
    documents = np.asarray(documents, np.int64)
    counts = np.bincount(documents, minlength=num_documents)
    if len(counts) != num_documents or np.any(counts == 0):
        raise ValueError(
            f"`documents` must name every document in [0, {num_documents}) at least once; got counts {counts.tolist()}."
        )
    totals = np.zeros((num_documents, probabilities.shape[-1]))
    np.add.at(totals, documents, probabilities)
    return totals / counts[:, None]


def predict_window_probabilities(
    model, split: EncodedSplit, kind: str, max_sequence_length: int, batch_size: int = 32
) -> np.ndarray:
    """Class probabilities per document ``(n, C)``: of one window each, or averaged over covering windows.

    Args:
        model: a classifier taking ``{"token_ids", "padding_mask"}`` and returning logits.
        split: the documents.
        kind: ``"first"``, ``"head_tail"`` or ``"all"`` (see the module docstring).
        max_sequence_length: ``T``.
        batch_size: prediction batch size.

    Returns:
        float64 probabilities, one row per document (an empty split gives ``(0, 0)``).
    """
    import keras

    check_choice("kind", kind, EVAL_WINDOWS)
    if not len(split):
        return np.zeros((0, 0))
    token_ids, documents = split.document_windows(kind, max_sequence_length)
    logits = model.predict(model_inputs(token_ids), batch_size=batch_size, verbose=0)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(np.asarray(logits, np.float32), axis=-1))
    return average_by_document(probabilities, documents, len(split))


__all__ = [
    "EVAL_WINDOWS",
    "TRAIN_WINDOWS",
    "EncodedSplit",
    "average_by_document",
    "model_inputs",
    "predict_window_probabilities",
]
