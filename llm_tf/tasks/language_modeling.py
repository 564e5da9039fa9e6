"""Causal language modelling: the one LM-window sampler, the loss evaluator, interval evaluation, generation.

The pieces an LM experiment (character-level Tiny Shakespeare today; subword pretraining on Gutenberg books and
news-writing fine-tuning next) is made of:

- :class:`LMWindowSampler`: windows of ``block_size + 1`` tokens (inputs and the labels shifted by one) over one
  token stream or a list of documents (packed one after another, each optionally followed by a separator such
  as an end-of-text id). Windows may cross document boundaries (packed pretraining, GPT-2 style) or, with
  ``within_documents=True``, never do. Random windows at uniformly drawn starts (nanoGPT's ``get_batch``;
  stateless, so ``(seed, key)`` always gives the same windows and a resumed run sees the same batches), fixed
  seeded evaluation windows, every non-overlapping window, and ``tf.data`` pipelines of them.
  :func:`llm_tf.text.make_causal_lm_dataset` and ``benchmarks/train_throughput.py`` draw their windows here.
- :class:`LossEvaluator`: the mean next-token cross-entropy of a model over windows (one compiled function).
- :class:`IntervalEvaluation`: a Keras callback measuring the train and validation loss on fixed windows at
  iteration 0 and after every epoch (= evaluation interval), written to a CSV table.
- :func:`generate_continuation`: text longer than the model's context, by calling ``GPT.generate`` on a context
  that slides over the last ``max_sequence_length - 1`` tokens.
- :func:`load_character_data`, :func:`encode_characters`: a character corpus split by position, encoded fast.
- :func:`scale_residual_projections`: GPT-2's depth-scaled init of the residual output projections.
- :class:`CausalLMConfig`, :func:`build_causal_lm`, :func:`train_causal_lm`: one training run (nanoGPT's
  recipe by default): model, optimizer, random-window batches per epoch, interval evaluation, whole-split loss,
  sample, execution timing (``llm_tf.training.timing``).
- :func:`load_lm_run`: a finished run directory's model, tokenizer and config (refuses an incomplete one).

Example:
    >>> sampler = LMWindowSampler(np.arange(100), block_size=8)
    >>> inputs, labels = sampler.random_windows(4, seed=0)
    >>> inputs.shape, bool((labels[:, :-1] == inputs[:, 1:]).all())
    ((4, 8), True)
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from llm_tf.checks import check_int, check_non_negative_int, check_number, check_positive_int

EVAL_COLUMNS = ("iteration", "train_loss", "val_loss", "running_train_loss", "learning_rate", "elapsed_s")


def _check_int(name: str, value: Any, minimum: int) -> int:
    check_int(name, value, minimum=minimum)
    return int(value)


def _as_ids(values: Any, name: str) -> np.ndarray:
    ids = np.asarray(values)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise ValueError(f"`{name}` must be a 1-D sequence of ints; got shape {ids.shape}, dtype {ids.dtype}.")
    return ids.astype(np.int32)


# ------------------------------------------------------------------------------------------------------------
# Windows.


class LMWindowSampler:
    """Windows of ``block_size + 1`` consecutive tokens of a token stream or of packed documents.

    A window starting at ``s`` gives the inputs ``stream[s : s + block_size]`` and the labels
    ``stream[s + 1 : s + block_size + 1]``. The valid starts are numbered ``0 .. num_starts - 1``; random
    windows draw a number uniformly and map it to its start, so every valid window is equally likely.

    Args:
        token_ids: one 1-D sequence of ids (a stream), or a list of them (documents, packed in order).
        block_size: ``T``, the window length.
        within_documents: no window crosses a document boundary (each lies inside one document and its
            separator); documents shorter than ``block_size + 1`` tokens (with the separator) then give no
            window. False (packed sequences): windows run across boundaries, as in GPT-2 pretraining.
        separator_id: an id appended after every document when packing (e.g. end-of-text); None: none.

    Attributes:
        stream: the packed int32 ids. document_bounds: ``(num_documents, 2)`` start and end of each
        document's span in ``stream`` (separator included). num_starts: the number of valid window starts.

    Example:
        >>> sampler = LMWindowSampler([[1, 2, 3, 4], [5, 6, 7]], block_size=2, within_documents=True)
        >>> sampler.sequential_windows()[0].tolist()
        [[1, 2], [5, 6]]
    """

    def __init__(
        self,
        token_ids: Any,
        block_size: int,
        *,
        within_documents: bool = False,
        separator_id: int | None = None,
    ):
        self.block_size = _check_int("block_size", block_size, 1)
        if separator_id is not None:
            _check_int("separator_id", separator_id, 0)
        is_documents = isinstance(token_ids, list | tuple) and any(
            isinstance(item, list | tuple | np.ndarray) for item in token_ids
        )
        documents = [_as_ids(doc, f"token_ids[{i}]") for i, doc in enumerate(token_ids)] if is_documents else [
            _as_ids(token_ids, "token_ids")
        ]
        if separator_id is not None:
            documents = [np.append(doc, np.int32(separator_id)) for doc in documents]
        lengths = np.array([len(doc) for doc in documents], dtype=np.int64)
        ends = np.cumsum(lengths)
        self.document_bounds = np.stack([ends - lengths, ends], axis=1)
        self.stream = np.concatenate(documents) if documents else np.zeros(0, np.int32)
        self.within_documents = bool(within_documents)
        if self.within_documents:
            spans = self.document_bounds
        else:
            spans = np.array([[0, len(self.stream)]], dtype=np.int64)
        # Segment k holds the starts seg_begin[k] .. seg_begin[k] + seg_count[k] - 1.
        counts = np.maximum(spans[:, 1] - spans[:, 0] - self.block_size, 0)
        keep = counts > 0
        self._segment_begin = spans[keep, 0]
        self._segment_first_index = np.concatenate([[0], np.cumsum(counts[keep])[:-1]]).astype(np.int64)
        self.num_starts = int(counts.sum())
        if self.num_starts == 0:
            where = "in any document" if self.within_documents else "in `token_ids`"
            raise ValueError(
                f"no window of block_size + 1 = {self.block_size + 1} tokens fits {where} (longest: "
                f"{int(lengths.max()) if len(lengths) else 0} tokens); give more ids or lower `block_size`."
            )
        self._stream_tensor = None

    @property
    def num_tokens(self) -> int:
        """Length of the packed stream (separators included)."""
        return len(self.stream)

    @property
    def num_documents(self) -> int:
        """Number of documents (1 for a stream)."""
        return len(self.document_bounds)

    # Starts.

    def starts_from_indices(self, indices: Any) -> np.ndarray:
        """Map start numbers in ``[0, num_starts)`` to positions in :attr:`stream` (int64 numpy)."""
        indices = np.asarray(indices, dtype=np.int64)
        segment = np.searchsorted(self._segment_first_index, indices, side="right") - 1
        return self._segment_begin[segment] + indices - self._segment_first_index[segment]

    def tf_starts_from_random(self, values: tf.Tensor) -> tf.Tensor:
        """Graph version for ``tf.data``: random int64 values -> starts (``floormod`` by :attr:`num_starts`)."""
        indices = tf.math.floormod(tf.cast(values, tf.int64), self.num_starts)
        if len(self._segment_begin) == 1:
            return indices + int(self._segment_begin[0])
        first = tf.constant(self._segment_first_index)
        segment = tf.searchsorted(first, tf.reshape(indices, [-1]), side="right") - 1
        segment = tf.reshape(segment, tf.shape(indices))
        return tf.gather(tf.constant(self._segment_begin), segment) + indices - tf.gather(first, segment)

    def document_starts(self) -> np.ndarray:
        """The first token of every document that a window can start at (int64 numpy, in stream order)."""
        begins = self.document_bounds[:, 0]
        if self.within_documents:
            return begins[self.document_bounds[:, 1] - begins > self.block_size]
        return begins[begins + self.block_size < len(self.stream)]

    def random_starts(self, count: int, seed: int, key: int = 0, document_start_fraction: float = 0.0) -> np.ndarray:
        """``count`` uniformly random starts from the stateless seed ``(seed, key)`` (int64 numpy).

        The same ``(seed, key)`` always gives the same starts (a training run uses ``key`` = epoch, so a
        resumed run sees the same batches; evaluation windows use a fixed seed per split). With
        ``document_start_fraction`` > 0 each start is, with that probability, the first token of a uniformly
        drawn document (:meth:`document_starts`) instead: a document's opening (a header, a prompt) is then
        always in context, which a uniform start gives only to the windows that happen to cover it. 0 gives
        exactly the uniform starts of before.
        """
        count = _check_int("count", count, 1)
        check_number("document_start_fraction", document_start_fraction, minimum=0, maximum=1)
        indices = tf.random.stateless_uniform(
            (count,), seed=tf.constant((seed, key), tf.int64), minval=0, maxval=self.num_starts, dtype=tf.int32
        )
        starts = self.starts_from_indices(indices.numpy())
        if document_start_fraction > 0:
            document_starts = self.document_starts()
            if not len(document_starts):
                raise ValueError(f"no document is longer than block_size = {self.block_size} tokens, so no window "
                                 "can start at a document's first token; lower `document_start_fraction` to 0.")
            # A separate stream of the same (seed, key): the uniform starts above stay what they were.
            generator = np.random.default_rng([int(seed) % 2**63, int(key) % 2**63, 1])
            at_document = generator.random(count) < document_start_fraction
            picks = document_starts[generator.integers(0, len(document_starts), count)]
            starts = np.where(at_document, picks, starts)
        return starts

    def sequential_starts(self) -> np.ndarray:
        """Starts of every non-overlapping window, in order: ``0, T, 2T, ...`` of the stream or of each
        document (``within_documents``); the final ``< T + 1`` tokens that do not fill a window are left out."""
        spans = self.document_bounds if self.within_documents else np.array([[0, len(self.stream)]])
        parts = [np.arange(begin, begin + (end - begin - 1) // self.block_size * self.block_size, self.block_size)
                 for begin, end in spans if end - begin > self.block_size]
        return np.concatenate(parts).astype(np.int64)

    # Windows.

    def windows(self, starts: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(inputs, labels)`` int32 numpy arrays ``starts.shape + (block_size,)``."""
        starts = np.asarray(starts, dtype=np.int64)
        windows = self.stream[starts[..., None] + np.arange(self.block_size + 1)]
        return windows[..., :-1], windows[..., 1:]

    def random_windows(self, count: int, seed: int, key: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``count`` seeded random windows (fixed evaluation windows: one ``key`` per split)."""
        return self.windows(self.random_starts(count, seed, key))

    def sequential_windows(self) -> tuple[np.ndarray, np.ndarray]:
        """Every non-overlapping window (see :meth:`sequential_starts`): the whole-split evaluation."""
        return self.windows(self.sequential_starts())

    # tf.data.

    def tf_windows(self, starts: tf.Tensor, padding_mask: bool = False):
        """Graph version of :meth:`windows` for ``tf.data``: ``({"token_ids"[, "padding_mask"]}, labels)``."""
        if self._stream_tensor is None:
            with tf.init_scope():  # one eager tensor, captured by every traced function (not a graph constant)
                self._stream_tensor = tf.constant(self.stream)
        offsets = tf.range(self.block_size + 1, dtype=tf.int64)
        windows = tf.gather(self._stream_tensor, tf.cast(starts, tf.int64)[..., None] + offsets)
        inputs = {"token_ids": windows[..., :-1]}
        if padding_mask:
            inputs["padding_mask"] = tf.ones_like(windows[..., :-1], dtype=tf.bool)
        return inputs, windows[..., 1:]

    def dataset_from_starts(self, starts: Any, padding_mask: bool = False) -> tf.data.Dataset:
        """A ``tf.data`` pipeline of windows from a batched start source.

        Args:
            starts: ``(num_batches, batch_size)`` starts (array), or a ``tf.data.Dataset`` of start batches.
            padding_mask: add an all-True ``padding_mask`` (windows are never padded; a GPT fed none applies
                only its causal mask).

        Returns:
            A dataset of ``({"token_ids": int32 (B, T)[, "padding_mask": bool (B, T)]}, labels int32 (B, T))``.
        """
        if not isinstance(starts, tf.data.Dataset):
            starts = tf.data.Dataset.from_tensor_slices(np.asarray(starts, dtype=np.int64))
        # One gather per batch from the in-memory stream: microseconds, prefetched behind the train step.
        dataset = starts.map(lambda batch: self.tf_windows(batch, padding_mask), num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def epoch_batches(
        self, batch_size: int, steps: int, seed: int, padding_mask: bool = False, document_start_fraction: float = 0.0
    ) -> Callable[[int], tf.data.Dataset]:
        """``epoch -> tf.data.Dataset`` of ``steps`` random-window batches for :func:`llm_tf.training.train`.

        The batches of epoch ``e`` are :meth:`random_starts` ``(steps * batch_size, seed, key=e,
        document_start_fraction)``.
        """
        batch_size, steps = _check_int("batch_size", batch_size, 1), _check_int("steps", steps, 1)
        check_number("document_start_fraction", document_start_fraction, minimum=0, maximum=1)

        def batches_for_epoch(epoch: int) -> tf.data.Dataset:
            starts = self.random_starts(steps * batch_size, seed, epoch, document_start_fraction)
            starts = starts.reshape(steps, batch_size)
            return self.dataset_from_starts(starts, padding_mask)

        return batches_for_epoch


# ------------------------------------------------------------------------------------------------------------
# Evaluation.


class LossEvaluator:
    """Mean next-token cross-entropy of a model over windows, with one compiled forward function.

    Args:
        model: a causal LM called as ``model({"token_ids": ...})`` returning logits ``(B, T, V)``.
        jit_compile: compile the forward pass with XLA.
        batch_size: windows per forward call.

    Example:
        >>> LossEvaluator(model, jit_compile=False)(*sampler.sequential_windows())  # doctest: +SKIP
        1.83
    """

    def __init__(self, model, jit_compile: bool = True, batch_size: int = 256):
        self.model = model
        self.batch_size = _check_int("batch_size", batch_size, 1)

        def summed_loss(inputs, labels):
            logits = model({"token_ids": inputs}, training=False)
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            return tf.reduce_sum(tf.cast(losses, tf.float64))

        self._summed_loss = tf.function(summed_loss, jit_compile=jit_compile, reduce_retracing=True)

    def __call__(self, inputs, labels) -> float:
        """The mean loss per token over ``inputs``/``labels`` ``(windows, T)``."""
        inputs, labels = np.asarray(inputs), np.asarray(labels)
        if inputs.shape != labels.shape or inputs.ndim != 2 or not len(inputs):
            raise ValueError(
                f"`inputs` and `labels` must be non-empty (windows, T) arrays of one shape; got {inputs.shape} "
                f"and {labels.shape}."
            )
        total = 0.0
        for start in range(0, len(inputs), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            total += float(self._summed_loss(inputs[chunk], labels[chunk]))
        return total / inputs.size


def read_evaluation_rows(path: str) -> list[dict]:
    """The rows of an ``eval_losses.csv`` written by :class:`IntervalEvaluation` ([] when missing)."""
    if not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8") as file:
        return [
            {key: (float(value) if key != "iteration" else int(value)) for key, value in row.items() if value != ""}
            for row in csv.DictReader(file)
        ]


class IntervalEvaluation(keras.callbacks.Callback):
    """nanoGPT's ``estimate_loss``: train and validation loss on fixed windows before training and after every
    epoch (one evaluation interval of ``steps_per_epoch`` iterations).

    Both losses come from ``model.evaluate`` on one batch holding all of a split's fixed windows, so they reuse
    the compiled test step of ``fit``'s validation (nothing is compiled twice). After an epoch the validation
    loss is the ``val_loss`` that ``fit`` just computed on the same windows. Writes ``csv_path`` (columns
    :data:`EVAL_COLUMNS`, one row per evaluation; a resumed run replaces the rows from its first iteration on, and
    first adds the row of the interval it resumes at when a kill lost it),
    prints one line per evaluation and adds ``train_eval_loss`` to the epoch logs.

    Args:
        train_batches, val_batches: ``tf.data`` datasets of each split's fixed windows.
        steps_per_epoch: iterations per Keras epoch.
        csv_path: the table's path (rows already there are kept: resume).
        write: write the file (False on non-chief workers).

    Example:
        >>> evaluation = IntervalEvaluation(train_eval, val, 250, "runs/x/eval_losses.csv")  # doctest: +SKIP
    """

    def __init__(self, train_batches, val_batches, steps_per_epoch: int, csv_path: str, write: bool = True):
        super().__init__()
        self.train_batches = train_batches
        self.val_batches = val_batches
        self.steps_per_epoch = _check_int("steps_per_epoch", steps_per_epoch, 1)
        self.csv_path = csv_path
        self.write = write
        self.rows = read_evaluation_rows(csv_path)
        self._started = time.time()

    def _loss(self, batches) -> float:
        return float(self.model.evaluate(batches, verbose=0, return_dict=True)["loss"])

    def _evaluate(self, iteration, val_loss=None, running_train_loss=None) -> dict:
        from llm_tf.training import atomic_write_csv, current_learning_rate

        row = {
            "iteration": iteration,
            "train_loss": self._loss(self.train_batches),
            "val_loss": self._loss(self.val_batches) if val_loss is None else float(val_loss),
            "running_train_loss": running_train_loss,
            "learning_rate": current_learning_rate(self.model),
            "elapsed_s": round(time.time() - self._started, 3),
        }
        self.rows = [old for old in self.rows if old["iteration"] < iteration] + [row]
        print(f"step {iteration}: train loss {row['train_loss']:.4f}, val loss {row['val_loss']:.4f} "
              f"({row['elapsed_s']:.1f} s)", flush=True)
        if self.write:
            atomic_write_csv(self.csv_path, EVAL_COLUMNS, self.rows)
        return row

    def on_train_begin(self, logs=None):
        self._started = time.time()
        iteration = int(self.model.optimizer.iterations.numpy())
        # Before training; or resumed at an interval's end whose row was lost (killed between backup and row).
        if iteration == 0 or (iteration % self.steps_per_epoch == 0
                              and all(row["iteration"] != iteration for row in self.rows)):
            self._evaluate(iteration)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        running = logs.get("loss")
        row = self._evaluate((epoch + 1) * self.steps_per_epoch, val_loss=logs.get("val_loss"),
                             running_train_loss=None if running is None else float(running))
        logs["train_eval_loss"] = row["train_loss"]


# ------------------------------------------------------------------------------------------------------------
# Generation.


def generate_continuation(
    model,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    *,
    sampler: str = "temperature",
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    stride: int = 1,
) -> list[int]:
    """``max_new_tokens`` ids after ``prompt_ids`` from ``model.generate``, sliding past the model's context.

    While prompt and continuation fit in ``max_sequence_length`` (``L``) this is one ``GPT.generate`` call.
    Beyond, generation goes on in calls that each take the last ``L - n`` tokens as the prompt and add
    ``n <= stride`` tokens (every call then has the same total length ``L``: one compiled loop). With
    ``stride=1`` each token is predicted from the ``L - 1`` tokens before it (nanoGPT's ``sample.py`` crops to
    ``L``; ``GPT.generate`` needs one free position); a larger stride is faster and sees shorter contexts.
    Call ``i`` draws with its own seed derived from ``(seed, i)``, so a seed reproduces the text.

    Args:
        model: a ``llm_tf.models.GPT`` (anything with ``generate`` and ``config.max_sequence_length``).
        prompt_ids: the prompt's ids (at least one; only the last ``L - 1`` are seen).
        max_new_tokens: ids to generate.
        sampler, temperature, top_k, top_p: ``GPT.generate``'s sampler settings.
        seed: sampling seed.
        stride: ids added per call once the context is full (``1 <= stride < L``).

    Returns:
        The ``max_new_tokens`` generated ids (the prompt not included).

    Example:
        >>> ids = generate_continuation(model, tokenizer.encode("\\n"), 500, temperature=0.8)  # doctest: +SKIP
    """
    prompt = [int(token) for token in prompt_ids]
    if not prompt:
        raise ValueError("`prompt_ids` must hold at least one token id; got an empty prompt.")
    max_new_tokens = _check_int("max_new_tokens", max_new_tokens, 1)
    context = int(model.config.max_sequence_length)
    if context < 2:
        raise ValueError(f"the model's max_sequence_length must be at least 2; got {context}.")
    stride = _check_int("stride", stride, 1)
    if stride >= context:
        raise ValueError(f"`stride` must be below max_sequence_length={context}; got stride={stride}.")
    settings = dict(sampler=sampler, temperature=temperature, top_k=top_k, top_p=top_p)
    tokens, generated, call = list(prompt), [], 0
    while len(generated) < max_new_tokens:
        remaining = max_new_tokens - len(generated)
        if call == 0:
            window = tokens[-(context - 1):]
            count = min(remaining, context - len(window))
        else:
            count = min(remaining, stride)
            window = tokens[-(context - count):]
        call_seed = int(np.random.SeedSequence([int(seed) % 2**32, call]).generate_state(1)[0])
        output = model.generate([window], max_new_tokens=count, seed=call_seed, **settings)
        new = [int(token) for token in np.asarray(output)[0, len(window):]]
        tokens += new
        generated += new
        call += 1
    return generated


# ------------------------------------------------------------------------------------------------------------
# Data and model pieces.


def encode_characters(text: str, tokenizer) -> np.ndarray:
    """Encode ``text`` with a ``CharTokenizer`` through a table indexed by code point (a million characters in
    milliseconds); a character outside the vocabulary raises ``ValueError``.

    Example:
        >>> encode_characters("abba", CharTokenizer.train("ab", special_tokens=False)).tolist()  # doctest: +SKIP
        [0, 1, 1, 0]
    """
    if not text:
        return np.zeros(0, np.int32)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    table = np.full(int(codes.max()) + 1, -1, dtype=np.int32)
    for character in tokenizer.characters:
        if ord(character) < len(table):
            table[ord(character)] = tokenizer.token_to_id(character)
    ids = table[codes]
    if (ids < 0).any():
        unknown = sorted({chr(code) for code in codes[ids < 0]})[:5]
        raise ValueError(f"`text` holds characters outside the tokenizer's vocabulary: {unknown}.")
    return ids


def load_character_data(
    data_dir: str | None = None, *, train_fraction: float = 0.9, max_characters: int | None = None,
    block_size: int = 1,
):
    """Tiny Shakespeare as nanoGPT's ``prepare.py`` has it: character vocabulary of the whole file, split by
    position.

    Args:
        data_dir: the data directory (None: the loaders' default).
        train_fraction: leading share of the characters used for training.
        max_characters: use only the first this many characters (None: all); the vocabulary is always built
            from the whole file.
        block_size: each split must hold at least ``block_size + 1`` characters.

    Returns:
        ``(tokenizer, train_ids, validation_ids)``: a ``CharTokenizer`` without special tokens and two int32
        numpy arrays.

    Example:
        >>> tokenizer, train_ids, val_ids = load_character_data()  # doctest: +SKIP
        >>> tokenizer.vocabulary_size, len(train_ids), len(val_ids)  # doctest: +SKIP
        (65, 1003854, 111540)
    """
    from llm_tf.datasets import load_tiny_shakespeare
    from llm_tf.text import CharTokenizer

    splits = load_tiny_shakespeare(data_dir, train_fraction=train_fraction)
    text = splits.train + splits.validation
    tokenizer = CharTokenizer.train(text, special_tokens=False, progress=False)
    if max_characters is not None:
        text = text[:max_characters]
    ids = encode_characters(text, tokenizer)
    split_at = int(len(ids) * train_fraction)
    train_ids, validation_ids = ids[:split_at], ids[split_at:]
    for name, part in (("training", train_ids), ("validation", validation_ids)):
        if len(part) < block_size + 1:
            raise ValueError(
                f"the {name} split has {len(part)} characters, fewer than block_size + 1 = {block_size + 1}; "
                f"raise `max_characters` (got max_characters={max_characters}) or lower `block_size`."
            )
    return tokenizer, train_ids, validation_ids


def scale_residual_projections(model, seed: int = 0, base_stddev: float = 0.02) -> None:
    """Re-draw the residual-stream output kernels with std ``base_stddev / sqrt(2 * num_layers)`` (GPT-2 init).

    Each block adds two branches to the residual stream; scaling their output projections keeps the variance of
    the stream independent of the depth at initialisation.

    Args:
        model: a ``llm_tf.models.GPT``.
        seed: seed of the new draws.
        base_stddev: the model's initializer standard deviation.

    Example:
        >>> scale_residual_projections(model, seed=0)  # doctest: +SKIP
    """
    stddev = base_stddev / math.sqrt(2 * len(model.blocks))
    for index, block in enumerate(model.blocks):
        for offset, dense in enumerate((block.self_attention.output_dense, block.feed_forward.output_dense)):
            initializer = keras.initializers.RandomNormal(stddev=stddev, seed=seed * 1000 + 2 * index + offset)
            dense.kernel.assign(initializer(dense.kernel.shape, dtype=dense.kernel.dtype))


RUN_FILES = ("config.json", "tokenizer")


def load_lm_run(run_dir: str, checkpoint: str = "best", required: Sequence[str] = ()):
    """The model, tokenizer and config of a finished LM run directory.

    Args:
        run_dir: a run directory written by an LM experiment.
        checkpoint: ``"best"`` (``best.keras``, lowest validation loss) or ``"last"`` (``last.keras``).
        required: keys ``results.json`` must hold for the run to count as finished (the experiment's final
            fields: ``llm_tf.training.train`` writes ``results.json`` before the experiment adds them).

    Returns:
        ``(model, tokenizer, config dict)``.

    Raises:
        FileNotFoundError: ``run_dir`` is not a directory.
        ValueError: the run is incomplete (a missing file, no finished ``results.json``, a status other than
            completed), or a bad ``checkpoint``.

    Example:
        >>> model, tokenizer, config = load_lm_run("runs/gpt_shakespeare/20260101-000000")  # doctest: +SKIP
    """
    import llm_tf.models  # noqa: F401  (registers GPT and its layers for keras.saving.load_model)
    from llm_tf.tasks.runs import finished_results
    from llm_tf.text import load_tokenizer

    if checkpoint not in ("best", "last"):
        raise ValueError(f"`checkpoint` must be 'best' or 'last'; got checkpoint={checkpoint!r}.")
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"`run_dir` is not a directory: run_dir={run_dir!r}.")
    needed = RUN_FILES + (f"{checkpoint}.keras",)
    missing = [name for name in needed if not os.path.exists(os.path.join(run_dir, name))]
    results = finished_results(run_dir, required=required)
    status = None if results is None else results.get("status")
    if missing or results is None or status not in ("completed", "already_completed"):
        problem = f"missing {', '.join(missing)}" if missing else (
            "no finished results.json" if results is None else f"results.json has status={status!r}"
        )
        raise ValueError(
            f"run directory {run_dir!r} is incomplete ({problem}); a finished run has {', '.join(needed)} and a "
            "results.json with status 'completed'. Finish or resume the run first."
        )
    with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as file:
        config = json.load(file)
    # Not compiled: the model is for generation and scoring (and its training compile config may not apply here).
    model = keras.saving.load_model(os.path.join(run_dir, f"{checkpoint}.keras"), compile=False)
    return model, load_tokenizer(os.path.join(run_dir, "tokenizer")), config


# ------------------------------------------------------------------------------------------------------------
# Configuration, model and the training run.


@dataclasses.dataclass
class CausalLMConfig:
    """Everything that defines one causal-LM training run (saved as ``config.json``; round-trips through JSON).

    The defaults are nanoGPT's Tiny Shakespeare CPU recipe (``config/train_shakespeare_char.py`` with its
    README's CPU overrides) on characters; the untied output head is the one deliberate change (below).

    Args:
        preset: the name of the preset these values started from (a label, e.g. ``"full"`` or ``"smoke"``).
        data_dir: the data directory (None: the loaders' default).
        train_fraction: leading share of the characters used for training (nanoGPT: 0.9).
        max_characters: use only the first this many characters of the file (None: all; the smoke preset
            uses a prefix). The vocabulary is always built from the whole file.
        block_size: context length ``T`` in characters.
        batch_size: windows per training step.
        hidden_dim, num_layers, num_heads, intermediate_dim: model sizes.
        dropout: dropout rate (0 in the recipe).
        use_bias: biases in the attention and feed-forward projections (nanoGPT's CPU recipe has none).
        tie_embeddings: the output head reuses the token embedding, as nanoGPT and GPT-2 do. The default
            (False) gives the model a separate bias-free ``(128, 65)`` head: 8,320 more parameters, the same
            FLOPs, and about 0.035 lower validation loss at iteration 2000 (three seeds, paired).
        scale_residual_init: initialise the two projections that write into the residual stream (attention
            output, feed-forward output) with standard deviation ``0.02 / sqrt(2 * num_layers)`` instead of
            0.02, as GPT-2 and nanoGPT do.
        document_start_fraction: the share of training windows that start at a document's first token instead
            of a uniformly random position (:meth:`LMWindowSampler.random_starts`; documents only, e.g. news
            articles whose first line is a prompt the model should learn to follow). 0: uniform starts.
        max_iters: training iterations (optimizer steps).
        eval_interval: iterations between evaluations (one Keras epoch).
        eval_iters: batches of ``batch_size`` fixed windows per split in each evaluation.
        learning_rate: peak learning rate after warmup.
        min_learning_rate: the rate the cosine decay reaches at ``max_iters``.
        warmup_iters: linear warmup steps.
        beta_1, beta_2: AdamW's moment decays.
        weight_decay: decoupled weight decay of the weight matrices.
        decay_embeddings: also decay the token embedding (tied output head) and the position table, as
            nanoGPT does; False excludes them (the library default).
        grad_clip: global gradient-norm clip (0 disables it).
        jit_compile: compile the train and evaluation steps with XLA.
        steps_per_execution: training steps per compiled call; must divide ``eval_interval``.
        intra_op_threads, inter_op_threads: TensorFlow thread pools (None: TensorFlow's default, one
            intra-op thread per core). Only applied when TensorFlow has not started yet.
        sample_length: characters generated at the end (0 disables sampling).
        sample_prompt: the text the sample continues (nanoGPT: a newline).
        sample_temperature: softmax temperature of the sample.
        sample_top_k: sample among the ``k`` most likely characters only (None: all).
        seed: seed of the weights, the batch offsets and the sample.
        eval_seed: seed of the fixed evaluation windows (the same for every run, so runs compare).
        deterministic: TensorFlow op determinism (bit-exact reruns on one machine); Keras then trains without
            XLA, and evaluation and sampling run without it too, so it is slower.
        strategy, num_cpu_devices, precision: the ``--strategy``, ``--num-cpu-devices`` and ``--precision``.

    Example:
        >>> config = CausalLMConfig(max_iters=500)
        >>> CausalLMConfig.from_json(config.to_json()) == config
        True
    """

    preset: str = "full"
    data_dir: str | None = None
    train_fraction: float = 0.9
    max_characters: int | None = None
    block_size: int = 64
    batch_size: int = 12
    hidden_dim: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_dim: int = 512
    dropout: float = 0.0
    use_bias: bool = True
    tie_embeddings: bool = False
    scale_residual_init: bool = False
    document_start_fraction: float = 0.0
    max_iters: int = 2000
    eval_interval: int = 250
    eval_iters: int = 20
    learning_rate: float = 1e-3
    min_learning_rate: float = 1e-4
    warmup_iters: int = 100
    beta_1: float = 0.9
    beta_2: float = 0.99
    weight_decay: float = 0.1
    decay_embeddings: bool = True
    grad_clip: float = 1.0
    jit_compile: bool = True
    steps_per_execution: int = 250
    intra_op_threads: int | None = None
    inter_op_threads: int | None = None
    sample_length: int = 500
    sample_prompt: str = "\n"
    sample_temperature: float = 0.8
    sample_top_k: int | None = None
    seed: int = 0
    eval_seed: int = 1337
    deterministic: bool = False
    strategy: str = "auto"
    num_cpu_devices: int | None = None
    precision: str = "float32"
    optimizer_update: str = "fused"  # --optimizer-update: "per-variable" for Keras's AdamW update

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check every field; raises ``ValueError`` naming the field, its value and what was expected."""
        if not isinstance(self.preset, str) or not self.preset:
            raise ValueError(f"`preset` must be a non-empty string; got preset={self.preset!r}.")
        positive_ints = (
            "block_size", "batch_size", "hidden_dim", "num_layers", "num_heads", "intermediate_dim", "max_iters",
            "eval_interval", "eval_iters", "steps_per_execution",
        )
        for name in positive_ints:
            check_positive_int(name, getattr(self, name))
        optional_positive_ints = ("max_characters", "intra_op_threads", "inter_op_threads", "sample_top_k")
        for name in optional_positive_ints:
            check_positive_int(name, getattr(self, name), allow_none=True)
        non_negative_ints = ("warmup_iters", "sample_length", "seed", "eval_seed")
        for name in non_negative_ints:
            check_non_negative_int(name, getattr(self, name))
        if self.hidden_dim % self.num_heads:
            raise ValueError(
                f"`hidden_dim` must be divisible by `num_heads`; got hidden_dim={self.hidden_dim}, "
                f"num_heads={self.num_heads}."
            )
        if self.max_iters % self.eval_interval:
            raise ValueError(
                f"`max_iters` must be a multiple of `eval_interval` (evaluations end the Keras epochs); got "
                f"max_iters={self.max_iters}, eval_interval={self.eval_interval}."
            )
        if self.eval_interval % self.steps_per_execution:
            raise ValueError(
                f"`steps_per_execution` must divide `eval_interval`; got steps_per_execution="
                f"{self.steps_per_execution}, eval_interval={self.eval_interval}."
            )
        if self.warmup_iters > self.max_iters:
            raise ValueError(
                f"`warmup_iters` must not exceed `max_iters`; got warmup_iters={self.warmup_iters}, "
                f"max_iters={self.max_iters}."
            )
        checks = {
            "train_fraction": (self.train_fraction, 0.0, 1.0, False),
            "dropout": (self.dropout, 0.0, 1.0, True),
            "beta_1": (self.beta_1, 0.0, 1.0, True),
            "beta_2": (self.beta_2, 0.0, 1.0, True),
        }
        for name, (value, low, high, low_allowed) in checks.items():
            check_number(name, value, minimum=low, maximum=high, exclusive_minimum=not low_allowed,
                         exclusive_maximum=True)
        for name in ("learning_rate", "sample_temperature"):
            check_number(name, getattr(self, name), minimum=0, exclusive_minimum=True)
        for name in ("min_learning_rate", "weight_decay", "grad_clip"):
            check_number(name, getattr(self, name), minimum=0)
        check_number("document_start_fraction", self.document_start_fraction, minimum=0, maximum=1)
        if self.min_learning_rate > self.learning_rate:
            raise ValueError(
                f"`min_learning_rate` must not exceed `learning_rate`; got min_learning_rate="
                f"{self.min_learning_rate}, learning_rate={self.learning_rate}."
            )
        if not isinstance(self.sample_prompt, str) or not self.sample_prompt:
            raise ValueError(f"`sample_prompt` must be a non-empty string; got sample_prompt={self.sample_prompt!r}.")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain JSON-serializable dict."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """The config as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CausalLMConfig:
        """Rebuild from :meth:`to_json` output; unknown fields raise ``ValueError``."""
        from llm_tf.tasks.cli import config_from_dict

        return config_from_dict(cls, json.loads(text))

    @property
    def tokens_per_step(self) -> int:
        """Tokens (characters) processed per training step, ``batch_size * block_size``."""
        return self.batch_size * self.block_size

#: The fields that define the model, the data and the optimisation (not the seed, precision or speed settings).
RECIPE_FIELDS = (
    "train_fraction", "max_characters", "block_size", "batch_size", "hidden_dim", "num_layers", "num_heads",
    "intermediate_dim", "dropout", "max_iters", "learning_rate", "min_learning_rate", "warmup_iters", "beta_1",
    "beta_2", "weight_decay", "grad_clip", "eval_iters", "document_start_fraction",
)


def same_recipe(config: CausalLMConfig, reference: CausalLMConfig) -> bool:
    """Whether ``config`` trains ``reference``'s recipe (:data:`RECIPE_FIELDS` equal; seed, precision, strategy
    and speed settings may differ)."""
    return all(getattr(config, name) == getattr(reference, name) for name in RECIPE_FIELDS)


def set_thread_pools(intra_op_threads: int | None = None, inter_op_threads: int | None = None) -> list[str]:
    """Set TensorFlow's thread pools (None leaves one as it is).

    Returns:
        The settings that could not be applied because TensorFlow had already started (e.g. in a test process).
    """
    skipped = []
    for name, value, setter in (
        ("intra_op_threads", intra_op_threads, tf.config.threading.set_intra_op_parallelism_threads),
        ("inter_op_threads", inter_op_threads, tf.config.threading.set_inter_op_parallelism_threads),
    ):
        if value is None:
            continue
        try:
            setter(value)
        except RuntimeError:
            skipped.append(f"{name}={value}")
    return skipped


def causal_lm_optimizer(config: CausalLMConfig):
    """AdamW (``build_optimizer``) with ``WarmupCosineDecay`` and clipping as ``config`` says.

    Weight decay covers every weight matrix (the embeddings too with ``decay_embeddings``, as nanoGPT); biases
    and LayerNorm weights are never decayed.

    Example:
        >>> optimizer = causal_lm_optimizer(CausalLMConfig())  # doctest: +SKIP
    """
    from llm_tf import training

    schedule = training.WarmupCosineDecay(
        config.learning_rate, warmup_steps=config.warmup_iters, total_steps=config.max_iters,
        final_learning_rate=config.min_learning_rate,
    )
    exclusions = ("bias", "norm") if config.decay_embeddings else training.DEFAULT_WEIGHT_DECAY_EXCLUSIONS
    return training.build_optimizer(
        schedule, weight_decay=config.weight_decay, beta_1=config.beta_1, beta_2=config.beta_2,
        global_clipnorm=config.grad_clip or None, exclude_from_weight_decay=exclusions,
    )


def build_causal_lm(
    config: CausalLMConfig, vocabulary_size: int, jit_compile: bool | None = None,
    steps_per_execution: int | None = None, dtype: str | None = None,
):
    """The GPT of ``config``, compiled with :func:`causal_lm_optimizer` and sparse cross-entropy on logits.

    Args:
        config: the run's config.
        vocabulary_size: the tokenizer's vocabulary size.
        jit_compile, steps_per_execution: override the config's values (None: use them).
        dtype: the model's dtype policy (None: Keras's global policy, as ``setup_training`` set it).

    Returns:
        A compiled ``llm_tf.models.GPT``.

    Example:
        >>> build_causal_lm(CausalLMConfig(), 65).count_params()  # doctest: +SKIP
        818176
    """
    from llm_tf.models import GPT, GPTConfig

    model = GPT(
        GPTConfig(
            vocabulary_size=vocabulary_size, max_sequence_length=config.block_size, hidden_dim=config.hidden_dim,
            num_layers=config.num_layers, num_heads=config.num_heads, intermediate_dim=config.intermediate_dim,
            dropout=config.dropout, use_bias=config.use_bias, tie_embeddings=config.tie_embeddings,
        ),
        name="gpt",
        dtype=dtype,
    )
    if config.scale_residual_init:
        scale_residual_projections(model, seed=config.seed)
    model.compile(
        optimizer=causal_lm_optimizer(config),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=config.jit_compile if jit_compile is None else jit_compile,
        steps_per_execution=steps_per_execution or config.steps_per_execution,
    )
    return model


def sample_text(model, tokenizer, config: CausalLMConfig) -> str:
    """``config.sample_length`` tokens after ``config.sample_prompt`` (temperature, top-k when set), decoded."""
    if not config.sample_length:
        return ""
    ids = generate_continuation(
        model, tokenizer.encode(config.sample_prompt), config.sample_length,
        sampler="temperature" if config.sample_top_k is None else "top_k", temperature=config.sample_temperature,
        top_k=config.sample_top_k, seed=config.seed,
    )
    return tokenizer.decode(ids)


def train_causal_lm(
    config: CausalLMConfig, tokenizer, train_ids, val_ids, run, strategy, *, log_every_n_steps: int = 50,
    backup_every_n_steps: int | None = None, name: str = "causal_lm", separator_id: int | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (), initial_weights: Sequence[np.ndarray] | None = None,
    max_full_eval_windows: int | None = None,
) -> dict[str, Any]:
    """Train ``config``'s GPT on random windows of ``train_ids``, evaluating on fixed windows every interval.

    One Keras epoch is one evaluation interval (``eval_interval`` iterations, ``steps_per_execution`` per
    compiled call); batch ``e`` of the run comes from ``(seed, epoch)`` only, so a run killed at any point
    resumes from its backup (``llm_tf.training.train``) with the same data. Evaluation: at iteration 0 and after
    every interval, the mean loss over ``eval_iters * batch_size`` fixed windows per split (seed ``eval_seed``;
    the Keras ``val_loss`` is computed on the same validation windows) into ``eval_losses.csv``; at the end the
    loss over every non-overlapping validation window and a sample (:func:`sample_text`). Under several
    replicas training runs without XLA, one step per call (TensorFlow cannot XLA-compile a step whose
    variables live on several devices; Keras 3's multi-step loop fails under ``MirroredStrategy``).

    Args:
        config: the run's config.
        tokenizer: the tokenizer (for the sample).
        train_ids, val_ids: the splits' token ids (1-D) or documents (lists of ids).
        run: the ``llm_tf.training.RunDirectory``.
        strategy: the ``tf.distribute`` strategy (from ``llm_tf.training.setup_training``).
        log_every_n_steps, backup_every_n_steps: passed to ``llm_tf.training.train``.
        name: the prefix of printed lines.
        separator_id: appended after every document when ``train_ids``/``val_ids`` are documents (an
            end-of-text id: the model learns where a document ends); None packs them back to back.
        callbacks: more Keras callbacks, run after the interval evaluation (they may read its
            ``eval_losses.csv`` row of the interval that just ended).
        initial_weights: weights to start from (``GPT.get_weights()`` of a model of the same config, e.g. a
            pretrained one to fine-tune); None starts from the random initialisation. A resumed run restores its
            backup over them.
        max_full_eval_windows: the final whole-split loss covers at most this many non-overlapping validation
            windows, evenly spaced (None: every window).

    Returns:
        The results: ``metrics`` (``val_loss`` and ``train_loss`` on the fixed windows at the last evaluation,
        ``full_val_loss``, ``final_iteration``), ``status``, ``evaluations`` (the table's rows),
        ``num_parameters``, ``tokens_per_step``, ``train_time_s``, ``ms_per_step`` (median per compiled call
        after the first, per step), ``execution_seconds``, ``sample``, ``sample_prompt``, ``strategy``,
        ``num_replicas``, ``jit_compile``, ``steps_per_execution``, ``precision``, ``training_results``,
        ``eval_losses_png``.

    Example:
        >>> results = train_causal_lm(config, tokenizer, train_ids, val_ids, run, strategy)  # doctest: +SKIP
    """
    from llm_tf import training
    from llm_tf.training.timing import ExecutionTimer

    chief = training.is_chief(strategy)
    jit_compile = config.jit_compile and not config.deterministic
    steps_per_execution = config.steps_per_execution
    if strategy.num_replicas_in_sync > 1 and (jit_compile or steps_per_execution > 1):
        print(f"{name}: {strategy.num_replicas_in_sync} replicas: training without XLA, one step per call", flush=True)
        jit_compile, steps_per_execution = False, 1
    with strategy.scope():
        model = build_causal_lm(config, tokenizer.vocabulary_size, jit_compile, steps_per_execution)
        if initial_weights is not None:
            model.set_weights(list(initial_weights))
    train_windows = LMWindowSampler(train_ids, config.block_size, separator_id=separator_id)
    val_windows = LMWindowSampler(val_ids, config.block_size, separator_id=separator_id)
    count = config.eval_iters * config.batch_size
    train_eval_batches, val_batches = (
        tf.data.Dataset.from_tensor_slices(({"token_ids": inputs}, labels)).batch(count).cache()
        for inputs, labels in (train_windows.random_windows(count, config.eval_seed, 0),
                               val_windows.random_windows(count, config.eval_seed, 1))
    )
    evaluation = IntervalEvaluation(train_eval_batches, val_batches, config.eval_interval,
                                    run.file("eval_losses.csv"), write=chief)
    timer = ExecutionTimer()
    result = training.train(
        model, train_windows.epoch_batches(config.batch_size, config.eval_interval, config.seed,
                                           document_start_fraction=config.document_start_fraction), val_batches,
        epochs=config.max_iters // config.eval_interval, run_dir=run, steps_per_epoch=config.eval_interval,
        callbacks=[evaluation, timer, *callbacks], log_every_n_steps=log_every_n_steps,
        backup_every_n_steps=backup_every_n_steps, verbose=0, strategy=strategy,
    )
    rows = read_evaluation_rows(run.file("eval_losses.csv")) if chief else evaluation.rows
    final = rows[-1] if rows else {}
    # One pass over the whole split: a plain graph (compiling it with XLA would cost more than it saves).
    starts = val_windows.sequential_starts()
    if max_full_eval_windows is not None and len(starts) > max_full_eval_windows:
        starts = starts[np.linspace(0, len(starts) - 1, max_full_eval_windows).round().astype(int)]
    full_val_loss = LossEvaluator(model, jit_compile=False)(*val_windows.windows(starts))
    sample = sample_text(model, tokenizer, config)
    eval_png = None
    if chief and rows:
        from llm_tf.plots import plot_training_curves

        curves = {"step": [row["iteration"] for row in rows], "loss": [row["train_loss"] for row in rows],
                  "val_loss": [row["val_loss"] for row in rows]}
        eval_png = plot_training_curves(curves, run.file("eval_losses.png"), title=f"{name}: {run.path}")
    return {
        "metrics": {"val_loss": final.get("val_loss"), "train_loss": final.get("train_loss"),
                    "full_val_loss": full_val_loss, "full_val_windows": int(len(starts)),
                    "final_iteration": final.get("iteration")},
        "status": result.status,
        "evaluations": rows,
        "num_parameters": int(model.count_params()),
        "tokens_per_step": config.tokens_per_step,
        "train_time_s": round(result.wall_time_s, 3),
        "ms_per_step": timer.ms_per_step(steps_per_execution),
        "execution_seconds": [round(seconds, 4) for seconds in timer.seconds],
        "sample": sample,
        "sample_prompt": config.sample_prompt,
        "strategy": type(strategy).__name__,
        "num_replicas": strategy.num_replicas_in_sync,
        "jit_compile": jit_compile,
        "steps_per_execution": steps_per_execution,
        "precision": keras.config.dtype_policy().name,
        "training_results": result.final_metrics,
        "resumed_from": result.resumed_from,
        "eval_losses_png": eval_png,
    }


def self_attention_weights(model, token_ids) -> np.ndarray:
    """The last block's causal self-attention weights ``(heads, length, length)`` of a GPT over one sequence.

    Row ``t`` is how position ``t`` spreads its attention over positions ``0..t`` (each row sums to 1; the
    weights above the diagonal are 0). Dropout is off.

    Example:
        >>> self_attention_weights(model, tokenizer.encode("topic: sport\ntitle: A win"))[:, -1]  # doctest: +SKIP
    """
    from keras import ops

    ids = np.asarray([token_ids], "int32")
    if ids.ndim != 2 or not ids.shape[1] or ids.shape[1] > model.config.max_sequence_length:
        raise ValueError(f"`token_ids` must be 1..{model.config.max_sequence_length} ids; got shape {ids.shape[1:]}.")
    hidden = model.embedding(ids)
    for block in model.blocks[:-1]:
        hidden = block(hidden, training=False)
    block = model.blocks[-1]
    query = block.self_attention_norm(hidden) if block.norm_first else hidden
    _, scores = block.self_attention(query, use_causal_mask=True, return_attention_scores=True, training=False)
    return np.asarray(ops.convert_to_numpy(scores))[0]


__all__ = [
    "EVAL_COLUMNS",
    "RECIPE_FIELDS",
    "CausalLMConfig",
    "IntervalEvaluation",
    "LMWindowSampler",
    "LossEvaluator",
    "encode_characters",
    "generate_continuation",
    "load_character_data",
    "load_lm_run",
    "read_evaluation_rows",
    "same_recipe",
    "sample_text",
    "scale_residual_projections",
    "self_attention_weights",
    "set_thread_pools",
    "train_causal_lm",
    "build_causal_lm",
    "causal_lm_optimizer",
]
