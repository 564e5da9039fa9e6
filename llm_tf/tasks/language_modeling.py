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
- :func:`load_lm_run`: a finished run directory's model, tokenizer and config (refuses an incomplete one).

Example:
    >>> sampler = LMWindowSampler(np.arange(100), block_size=8)
    >>> inputs, labels = sampler.random_windows(4, seed=0)
    >>> inputs.shape, bool((labels[:, :-1] == inputs[:, 1:]).all())
    ((4, 8), True)
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

EVAL_COLUMNS = ("iteration", "train_loss", "val_loss", "running_train_loss", "learning_rate", "elapsed_s")


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"`{name}` must be {kind}; got {name}={value!r}.")
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
        document's span in ``stream`` (separator included). num_starts: the number of valid windows starts.

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

    def random_starts(self, count: int, seed: int, key: int = 0) -> np.ndarray:
        """``count`` uniformly random starts from the stateless seed ``(seed, key)`` (int64 numpy).

        The same ``(seed, key)`` always gives the same starts (a training run uses ``key`` = epoch, so a
        resumed run sees the same batches; evaluation windows use a fixed seed per split).
        """
        count = _check_int("count", count, 1)
        indices = tf.random.stateless_uniform(
            (count,), seed=tf.constant((seed, key), tf.int64), minval=0, maxval=self.num_starts, dtype=tf.int32
        )
        return self.starts_from_indices(indices.numpy())

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
        self, batch_size: int, steps: int, seed: int, padding_mask: bool = False
    ) -> Callable[[int], tf.data.Dataset]:
        """``epoch -> tf.data.Dataset`` of ``steps`` random-window batches for :func:`llm_tf.training.train`.

        The batches of epoch ``e`` are :meth:`random_starts` ``(steps * batch_size, seed, key=e)``.
        """
        batch_size, steps = _check_int("batch_size", batch_size, 1), _check_int("steps", steps, 1)

        def batches_for_epoch(epoch: int) -> tf.data.Dataset:
            starts = self.random_starts(steps * batch_size, seed, epoch).reshape(steps, batch_size)
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
    :data:`EVAL_COLUMNS`, one row per evaluation; a resumed run replaces the rows from its first iteration on),
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
        from llm_tf.training import atomic_write_bytes, current_learning_rate

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
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(EVAL_COLUMNS)
            for values in self.rows:
                writer.writerow(["" if values.get(name) is None else values[name] for name in EVAL_COLUMNS])
            atomic_write_bytes(self.csv_path, buffer.getvalue().encode("utf-8"))
        return row

    def on_train_begin(self, logs=None):
        self._started = time.time()
        if int(self.model.optimizer.iterations.numpy()) == 0:
            self._evaluate(0)

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
    model = keras.saving.load_model(os.path.join(run_dir, f"{checkpoint}.keras"))
    return model, load_tokenizer(os.path.join(run_dir, "tokenizer")), config


__all__ = [
    "EVAL_COLUMNS",
    "IntervalEvaluation",
    "LMWindowSampler",
    "LossEvaluator",
    "encode_characters",
    "generate_continuation",
    "load_character_data",
    "load_lm_run",
    "read_evaluation_rows",
    "scale_residual_projections",
]
