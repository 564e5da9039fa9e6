"""`tf.data` pipelines that turn texts (or a token stream) into model-ready batches.

TensorFlow backend only: every builder raises ValueError when the Keras backend is not TensorFlow (checked at
call time, so this module still imports on JAX / PyTorch).

Every builder returns a batched, prefetched (`AUTOTUNE`) `tf.data.Dataset` whose options set the
auto-shard policy to `DATA` explicitly (the datasets are built from in-memory tensors, so FILE sharding
cannot apply under `tf.distribute`; with DATA every worker runs the same seeded pipeline and keeps its own
batches). Shuffling is seeded and reshuffles every epoch, deterministically.

No Python runs per example: with a graph-mode tokenizer (`WordPieceTokenizer`, `CharTokenizer`) the strings
are shuffled, batched and tokenized by TensorFlow ops inside `Dataset.map`; with `BPETokenizer` (or
`pretokenize=True`) the texts are encoded once up front with the tokenizer's batched `encode` (the fast
path for Hugging Face tokenizers) and the dataset slices the resulting ragged ids.

Outputs (B = batch, T = sequence length, P = max selections per sequence):

- classification: `({"token_ids": int32 (B, T), "padding_mask": bool (B, T)}, labels int32 (B,))`
- causal LM: `({"token_ids": int32 (B, T), "padding_mask": bool (B, T)}, labels int32 (B, T))`
- masked LM: `({"token_ids", "padding_mask", "mask_positions": int32 (B, P)}, mask_ids int32 (B, P),
  mask_weights float32 (B, P))`
- seq2seq: `({"encoder_token_ids", "encoder_padding_mask", "decoder_token_ids", "decoder_padding_mask"},
  labels int32 (B, T_dec), sample_weight float32 (B, T_dec))`

`padding_mask` is True on real tokens. `pad_to_max_length=False` pads each batch to its longest sequence;
True pads to the fixed maximum (static shapes, what XLA wants; add `drop_remainder=True` for a static batch).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from llm_tf.checks import check_int, require_tensorflow_backend
from llm_tf.text._common import check_positive_int, check_probability, to_text_list
from llm_tf.text.tokenizer import Tokenizer, truncate_and_wrap

AUTOTUNE = tf.data.AUTOTUNE


# --------------------------------------------------------------------------------------------------
# Shared pieces.


def with_data_sharding(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Sets `AutoShardPolicy.DATA` on `dataset`: each worker runs the whole pipeline and keeps every n-th batch.

    TensorFlow backend only (``tf.data``): raises ValueError under another Keras backend.

    The shards are disjoint because every random choice in these pipelines comes from `seed`, which is the
    same on every worker.

    Args:
        dataset: any dataset.

    Returns:
        The dataset with the option set.

    Example:
        >>> dataset = with_data_sharding(tf.data.Dataset.range(8))
    """
    require_tensorflow_backend("with_data_sharding (tf.data)")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _check_tokenizer(tokenizer: Any) -> None:
    if not isinstance(tokenizer, Tokenizer):
        raise ValueError(
            f"`tokenizer` must be an llm_tf.text.Tokenizer (WordPieceTokenizer, BPETokenizer, CharTokenizer); "
            f"got {type(tokenizer).__name__}."
        )


def _check_common(batch_size: Any, seed: Any) -> None:
    check_positive_int("batch_size", batch_size)
    check_int("seed", seed)


def _ragged_from_lists(sequences: list[list[int]]) -> tf.RaggedTensor:
    lengths = np.fromiter((len(ids) for ids in sequences), dtype=np.int64, count=len(sequences))
    flat = np.fromiter((i for ids in sequences for i in ids), dtype=np.int32, count=int(lengths.sum()))
    return tf.RaggedTensor.from_row_lengths(flat, lengths)


class _TextColumn:
    """One column of texts, tokenized in graph mode or pre-tokenized with the batched `encode`.

    `source` goes into `Dataset.from_tensor_slices`; after batching, `ids(batch)` returns the (B, None)
    ragged int32 ids, truncated to `max_length` and wrapped with special tokens as asked.
    """

    def __init__(
        self,
        texts: Any,
        tokenizer: Tokenizer,
        *,
        add_special_tokens: bool,
        max_length: int | None,
        pretokenize: bool | None,
        argument: str,
    ):
        text_list = to_text_list(texts, argument=argument)
        self.size = len(text_list)
        self.tokenizer = tokenizer
        self.add_special_tokens = add_special_tokens
        self.max_length = max_length
        # Fails early (before any tracing) when special tokens are asked for but missing.
        tokenizer._special_wrappers(add_special_tokens, max_length)
        self.graph_mode = tokenizer.supports_graph_mode and not pretokenize
        if self.graph_mode:
            self.source = tf.constant([text.encode("utf-8") for text in text_list], dtype=tf.string)
        else:
            encoded = tokenizer.encode(
                text_list, add_special_tokens=add_special_tokens, max_length=max_length
            )
            self.source = _ragged_from_lists(encoded)

    def ids(self, batch: Any) -> tf.RaggedTensor:
        if self.graph_mode:
            return self.tokenizer.tf_encode(
                batch, add_special_tokens=self.add_special_tokens, max_length=self.max_length
            )
        return batch


def _batch(dataset: tf.data.Dataset, batch_size: int, drop_remainder: bool, ragged: bool) -> tf.data.Dataset:
    if ragged:
        return dataset.ragged_batch(batch_size, drop_remainder=drop_remainder)
    return dataset.batch(batch_size, drop_remainder=drop_remainder)


def _pad(ids: tf.RaggedTensor, pad_id: int, length: int | None, batch: Any) -> tuple[tf.Tensor, tf.Tensor]:
    """Dense (B, T) ids padded with `pad_id` and the bool mask of real tokens; T = `length` or the longest.

    `batch` is the batched input; its static batch size (known with `drop_remainder=True`) is restored on
    the outputs, which tokenization loses.
    """
    ids = tf.cast(ids, tf.int32)
    token_ids = ids.to_tensor(default_value=pad_id, shape=None if length is None else [None, length])
    padding_mask = tf.sequence_mask(ids.row_lengths(), maxlen=tf.shape(token_ids)[1])
    static_shape = [batch.shape[0], length]
    token_ids.set_shape(static_shape)
    padding_mask.set_shape(static_shape)
    return token_ids, padding_mask


def _finish(dataset: tf.data.Dataset) -> tf.data.Dataset:
    return with_data_sharding(dataset.prefetch(AUTOTUNE))


def _shuffle(dataset: tf.data.Dataset, size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    if not shuffle:
        return dataset
    # A full-size buffer gives a uniform permutation; the data is already in memory.
    return dataset.shuffle(max(size, 1), seed=seed, reshuffle_each_iteration=True)


# --------------------------------------------------------------------------------------------------
# Classification.


def make_classification_dataset(
    texts: Any,
    labels: Any,
    tokenizer: Tokenizer,
    *,
    batch_size: int = 32,
    max_sequence_length: int = 128,
    add_special_tokens: bool = True,
    pad_to_max_length: bool = False,
    shuffle: bool = False,
    seed: int = 0,
    drop_remainder: bool = False,
    pretokenize: bool | None = None,
) -> tf.data.Dataset:
    """(text, label) pairs -> `({"token_ids", "padding_mask"}, label)` batches.

    TensorFlow backend only (``tf.data``): raises ValueError under another Keras backend.

    Args:
        texts: the texts (list / numpy array of str).
        labels: one int class id per text.
        tokenizer: any llm_tf tokenizer.
        batch_size: examples per batch.
        max_sequence_length: T; longer texts are truncated (special tokens kept).
        add_special_tokens: wrap as `[CLS] ... [SEP]` (`<s> ... </s>` for BPE).
        pad_to_max_length: pad every batch to T (static shape for XLA) instead of its longest sequence.
        shuffle: shuffle the examples each epoch (seeded by `seed`).
        seed: shuffling seed.
        drop_remainder: drop the last incomplete batch (static batch size).
        pretokenize: encode all texts up front with the batched `encode`. Tokenizers without graph mode
            (BPE) are always pre-tokenized; for the others None/False tokenizes inside `Dataset.map`.

    Returns:
        A dataset of `({"token_ids": int32 (B, T), "padding_mask": bool (B, T)}, labels int32 (B,))`.

    Example:
        >>> data = load_bbc_news()  # doctest: +SKIP
        >>> tokenizer = WordPieceTokenizer.train(data.train.texts, vocabulary_size=8000)  # doctest: +SKIP
        >>> train = make_classification_dataset(data.train.texts, data.train.labels, tokenizer,
        ...                                     batch_size=32, max_sequence_length=256, shuffle=True)  # doctest: +SKIP
    """
    require_tensorflow_backend("make_classification_dataset (tf.data)")
    _check_tokenizer(tokenizer)
    _check_common(batch_size, seed)
    check_positive_int("max_sequence_length", max_sequence_length)
    column = _TextColumn(
        texts,
        tokenizer,
        add_special_tokens=add_special_tokens,
        max_length=max_sequence_length,
        pretokenize=pretokenize,
        argument="texts",
    )
    label_array = _int_labels(labels, column.size)
    if column.size == 0:
        raise ValueError("`texts` is empty; expected at least one example.")
    dataset = tf.data.Dataset.from_tensor_slices((column.source, label_array))
    dataset = _shuffle(dataset, column.size, shuffle, seed)
    dataset = _batch(dataset, batch_size, drop_remainder, ragged=not column.graph_mode)
    length = max_sequence_length if pad_to_max_length else None
    pad_id = tokenizer.pad_id

    def to_model_inputs(batch, batch_labels):
        token_ids, padding_mask = _pad(column.ids(batch), pad_id, length, batch)
        return {"token_ids": token_ids, "padding_mask": padding_mask}, batch_labels

    return _finish(dataset.map(to_model_inputs, num_parallel_calls=AUTOTUNE))


def _int_labels(labels: Any, size: int) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1 or len(array) != size:
        raise ValueError(f"`labels` must be 1-D with one label per text ({size}); got shape {array.shape}.")
    if size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"`labels` must be integer class ids; got dtype {array.dtype}.")
    return array.astype(np.int32)


# --------------------------------------------------------------------------------------------------
# Causal language modelling.


def make_causal_lm_dataset(
    token_ids: Any,
    block_size: int,
    *,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = False,
    windows_per_epoch: int | None = None,
    within_documents: bool = False,
    separator_id: int | None = None,
) -> tf.data.Dataset:
    """A 1-D token stream (or a list of documents) -> `(x, y)` windows of `block_size`, y = x shifted by one.

    TensorFlow backend only (``tf.data``): raises ValueError under another Keras backend.

    The windows come from `llm_tf.tasks.language_modeling.LMWindowSampler` (the one LM-window sampler). Two
    modes:

    - `shuffle=True` (training): each window starts at a uniformly random offset, like nanoGPT's
      `get_batch`; offsets come from `tf.data.Dataset.random(seed)`, so they are reproducible and change
      every epoch. An epoch holds `windows_per_epoch` windows (default: as many as fit without overlap).
    - `shuffle=False` (evaluation): consecutive non-overlapping windows from the start; the final
      `< block_size + 1` tokens that do not fill a window are left out.

    Args:
        token_ids: 1-D integer ids (list, numpy array); at least `block_size + 1` of them. Or a list of
            documents (1-D id sequences), packed one after another.
        block_size: T, the window length.
        batch_size: windows per batch.
        shuffle: random offsets (training) or sequential windows (evaluation), see above.
        seed: seed for the random offsets.
        drop_remainder: drop the last incomplete batch.
        windows_per_epoch: windows per epoch with `shuffle=True`; None = `(num_tokens - 1) // block_size`.
        within_documents: with a list of documents, no window crosses a document boundary.
        separator_id: with a list of documents, an id appended after each (e.g. end-of-text).

    Returns:
        A dataset of `({"token_ids": int32 (B, T), "padding_mask": bool (B, T)}, labels int32 (B, T))`;
        the padding mask is all True (windows are never padded).

    Example:
        >>> ids = CharTokenizer.train(text, special_tokens=False).encode(text)  # doctest: +SKIP
        >>> train = make_causal_lm_dataset(ids, block_size=256, batch_size=64, shuffle=True, seed=1337)  # doctest: +SKIP
    """
    require_tensorflow_backend("make_causal_lm_dataset (tf.data)")
    from llm_tf.tasks.language_modeling import LMWindowSampler

    _check_common(batch_size, seed)
    check_positive_int("block_size", block_size)
    check_positive_int("windows_per_epoch", windows_per_epoch, allow_none=True)
    is_documents = isinstance(token_ids, list | tuple) and any(
        isinstance(item, list | tuple | np.ndarray) for item in token_ids
    )
    if not is_documents:
        ids = np.asarray(token_ids)
        if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise ValueError(
                f"`token_ids` must be a 1-D sequence of ints; got shape {ids.shape}, dtype {ids.dtype}."
            )
        if len(ids) < block_size + 1:
            raise ValueError(
                f"`token_ids` must hold at least block_size + 1 = {block_size + 1} ids; got {len(ids)}."
            )
        token_ids = ids
    sampler = LMWindowSampler(
        token_ids, block_size, within_documents=within_documents, separator_id=separator_id
    )
    if shuffle:
        count = windows_per_epoch or max(1, (sampler.num_tokens - 1) // block_size)
        starts = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(count)
        starts = starts.map(sampler.tf_starts_from_random)
    else:
        starts = tf.data.Dataset.from_tensor_slices(sampler.sequential_starts())
    dataset = starts.batch(batch_size, drop_remainder=drop_remainder)
    windows = dataset.map(lambda batch: sampler.tf_windows(batch, padding_mask=True), num_parallel_calls=AUTOTUNE)
    return _finish(windows)


# --------------------------------------------------------------------------------------------------
# Masked language modelling.


class _StatelessMaskValuesChooser(tf_text.MaskValuesChooser):
    """tensorflow-text's 80/10/10 rule with stateless random numbers, so a seed reproduces the masking.

    The stock chooser draws from the global stateful generator, which cannot be seeded per pipeline.
    """

    def __init__(self, vocab_size, mask_token, mask_token_rate, random_token_rate, seed):
        super().__init__(
            vocab_size, mask_token, mask_token_rate=mask_token_rate, random_token_rate=random_token_rate
        )
        self._seed = seed

    def get_mask_values(self, masked_lm_ids):
        flat = masked_lm_ids.flat_values
        draw_seeds = tf.random.experimental.stateless_split(self._seed, num=2)
        uniform = tf.random.stateless_uniform(tf.shape(flat), seed=draw_seeds[0])
        random_ids = tf.random.stateless_uniform(
            tf.shape(flat), seed=draw_seeds[1], minval=0, maxval=self.vocab_size, dtype=tf.int64
        )
        mask_value = tf.constant(self.mask_token, flat.dtype)
        values = tf.where(
            uniform < self._mask_token_rate,
            mask_value,
            tf.where(
                uniform < self._mask_token_rate + self.random_token_rate,
                tf.cast(random_ids, flat.dtype),
                flat,
            ),
        )
        return masked_lm_ids.with_flat_values(values)


def _stateless_shuffle_fn(seed):
    """A `shuffle_fn` for `RandomItemSelector`: a seeded permutation that differs per row.

    The selector calls it once per sequence with that sequence's selectable positions (flat indices into
    the batch, so disjoint between rows); their sum makes each row's permutation seed distinct.
    """

    def shuffle(values):
        row_seed = tf.stack([seed[0], seed[1] + tf.cast(tf.reduce_sum(values), tf.int64)])
        keys = tf.random.stateless_uniform(tf.shape(values), seed=row_seed)
        return tf.gather(values, tf.argsort(keys))

    return shuffle


def make_masked_lm_dataset(
    texts: Any,
    tokenizer: Tokenizer,
    *,
    batch_size: int = 32,
    max_sequence_length: int = 128,
    max_selections_per_sequence: int | None = None,
    selection_rate: float = 0.15,
    mask_token_rate: float = 0.8,
    random_token_rate: float = 0.1,
    add_special_tokens: bool = True,
    pad_to_max_length: bool = False,
    shuffle: bool = False,
    seed: int = 0,
    drop_remainder: bool = False,
    pretokenize: bool | None = None,
) -> tf.data.Dataset:
    """Texts -> BERT masked-LM batches, masked with tensorflow-text's `mask_language_model`.

    TensorFlow backend only (``tf.data``, tensorflow-text): raises ValueError under another Keras backend.

    Per sequence, `ceil(selection_rate * n)` of its n non-special tokens are selected (at most
    `max_selections_per_sequence`); of those, `mask_token_rate` become [MASK], `random_token_rate` a random
    id, the rest stay. Special tokens (pad, unk, cls, sep, mask) are never selected. Masking is redone every
    epoch and is reproducible from `seed` (stateless random ops keyed by a seeded per-batch stream).

    Args:
        texts: the texts.
        tokenizer: a tokenizer with a mask token.
        batch_size, max_sequence_length, add_special_tokens, pad_to_max_length, shuffle, seed,
            drop_remainder, pretokenize: as in `make_classification_dataset`.
        max_selections_per_sequence: P; None = `ceil(selection_rate * max_sequence_length)`.
        selection_rate: fraction of tokens selected (0.15).
        mask_token_rate: fraction of selected tokens replaced by [MASK] (0.8).
        random_token_rate: fraction replaced by a random id (0.1).

    Returns:
        A dataset of `({"token_ids": int32 (B, T) masked, "padding_mask": bool (B, T),
        "mask_positions": int32 (B, P)}, mask_ids int32 (B, P), mask_weights float32 (B, P))`; unused
        selection slots have position 0, id 0 and weight 0.

    Example:
        >>> mlm = make_masked_lm_dataset(texts, tokenizer, batch_size=16, max_sequence_length=128)  # doctest: +SKIP
    """
    require_tensorflow_backend("make_masked_lm_dataset (tf.data, tensorflow-text)")
    _check_tokenizer(tokenizer)
    _check_common(batch_size, seed)
    check_positive_int("max_sequence_length", max_sequence_length)
    check_probability("selection_rate", selection_rate, allow_zero=False)
    check_probability("mask_token_rate", mask_token_rate)
    check_probability("random_token_rate", random_token_rate)
    if mask_token_rate + random_token_rate > 1.0:
        raise ValueError(
            f"`mask_token_rate` + `random_token_rate` must be <= 1; got {mask_token_rate} + {random_token_rate}."
        )
    if tokenizer.mask_id is None:
        raise ValueError(
            f"`tokenizer` has no mask token (special tokens {tokenizer.special_tokens}); expected one."
        )
    if max_selections_per_sequence is None:
        max_selections_per_sequence = max(1, math.ceil(selection_rate * max_sequence_length))
    check_positive_int("max_selections_per_sequence", max_selections_per_sequence)
    column = _TextColumn(
        texts,
        tokenizer,
        add_special_tokens=add_special_tokens,
        max_length=max_sequence_length,
        pretokenize=pretokenize,
        argument="texts",
    )
    if column.size == 0:
        raise ValueError("`texts` is empty; expected at least one text.")
    dataset = tf.data.Dataset.from_tensor_slices(column.source)
    dataset = _shuffle(dataset, column.size, shuffle, seed)
    dataset = _batch(dataset, batch_size, drop_remainder, ragged=not column.graph_mode)
    # One seeded random int64 per batch keys all random draws for that batch.
    batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    dataset = tf.data.Dataset.zip((dataset, batch_seeds))

    length = max_sequence_length if pad_to_max_length else None
    selections = max_selections_per_sequence
    pad_id = tokenizer.pad_id
    unselectable = tokenizer.special_ids
    vocabulary_size = tokenizer.vocabulary_size
    mask_id = tokenizer.mask_id

    def mask(batch, batch_seed):
        ids = tf.cast(column.ids(batch), tf.int64)
        seeds = tf.random.experimental.stateless_split(
            tf.stack([batch_seed, tf.constant(seed, tf.int64)]), num=2
        )
        selector = tf_text.RandomItemSelector(
            max_selections_per_batch=selections,
            selection_rate=selection_rate,
            unselectable_ids=list(unselectable),
            shuffle_fn=_stateless_shuffle_fn(seeds[0]),
        )
        chooser = _StatelessMaskValuesChooser(
            vocabulary_size, mask_id, mask_token_rate, random_token_rate, seeds[1]
        )
        masked_ids, positions, original_ids = tf_text.mask_language_model(ids, selector, chooser)
        token_ids, padding_mask = _pad(masked_ids, pad_id, length, batch)
        mask_positions = tf.cast(positions.to_tensor(default_value=0, shape=[None, selections]), tf.int32)
        mask_ids = tf.cast(original_ids.to_tensor(default_value=0, shape=[None, selections]), tf.int32)
        mask_weights = tf.cast(tf.sequence_mask(positions.row_lengths(), maxlen=selections), tf.float32)
        for tensor in (mask_positions, mask_ids, mask_weights):
            tensor.set_shape([batch.shape[0], selections])
        inputs = {"token_ids": token_ids, "padding_mask": padding_mask, "mask_positions": mask_positions}
        return inputs, mask_ids, mask_weights

    return _finish(dataset.map(mask, num_parallel_calls=AUTOTUNE))


# --------------------------------------------------------------------------------------------------
# Sequence to sequence.


def make_seq2seq_dataset(
    sources: Any,
    targets: Any,
    source_tokenizer: Tokenizer,
    target_tokenizer: Tokenizer | None = None,
    *,
    batch_size: int = 32,
    max_source_length: int = 128,
    max_target_length: int = 128,
    add_source_special_tokens: bool = False,
    pad_to_max_length: bool = False,
    shuffle: bool = False,
    seed: int = 0,
    drop_remainder: bool = False,
    pretokenize: bool | None = None,
) -> tf.data.Dataset:
    """(source, target) pairs -> encoder ids, decoder inputs `[start] + target`, labels `target + [end]`.

    TensorFlow backend only (``tf.data``): raises ValueError under another Keras backend.

    The target is cut to `max_target_length - 1` tokens so that both the decoder inputs and the labels fit
    in `max_target_length`; the start/end ids are the target tokenizer's bos/cls and eos/sep.

    Args:
        sources, targets: parallel lists of texts.
        source_tokenizer: tokenizer for the sources.
        target_tokenizer: tokenizer for the targets (needs bos and eos); None uses `source_tokenizer`.
        batch_size, shuffle, seed, drop_remainder, pretokenize: as in `make_classification_dataset`.
        max_source_length: encoder length; longer sources are truncated.
        max_target_length: decoder length T_dec.
        add_source_special_tokens: wrap sources with the source tokenizer's bos/eos.
        pad_to_max_length: pad to the fixed maximum lengths instead of each batch's longest.

    Returns:
        A dataset of `({"encoder_token_ids": int32 (B, T_enc), "encoder_padding_mask": bool (B, T_enc),
        "decoder_token_ids": int32 (B, T_dec), "decoder_padding_mask": bool (B, T_dec)},
        labels int32 (B, T_dec), sample_weight float32 (B, T_dec))`; padded label positions weigh 0.

    Example:
        >>> pairs = load_multi30k().train  # doctest: +SKIP
        >>> dataset = make_seq2seq_dataset(pairs.sources, pairs.targets, en_tokenizer, de_tokenizer)  # doctest: +SKIP
    """
    require_tensorflow_backend("make_seq2seq_dataset (tf.data)")
    target_tokenizer = source_tokenizer if target_tokenizer is None else target_tokenizer
    _check_tokenizer(source_tokenizer)
    _check_tokenizer(target_tokenizer)
    _check_common(batch_size, seed)
    check_positive_int("max_source_length", max_source_length)
    check_positive_int("max_target_length", max_target_length)
    if max_target_length < 2:
        raise ValueError(
            f"`max_target_length` must be at least 2 (start or end token plus one); got {max_target_length}."
        )
    start_id, end_id = target_tokenizer.bos_id, target_tokenizer.eos_id
    if start_id is None or end_id is None:
        raise ValueError(
            "`target_tokenizer` needs bos/cls and eos/sep tokens for decoder inputs and labels; "
            f"it has special tokens {target_tokenizer.special_tokens}."
        )
    both_graph = source_tokenizer.supports_graph_mode and target_tokenizer.supports_graph_mode
    # Both columns must be in the same form to batch together; tokenizers without graph mode force pretokenizing.
    use_pretokenize = True if not both_graph else bool(pretokenize)
    source_column = _TextColumn(
        sources,
        source_tokenizer,
        add_special_tokens=add_source_special_tokens,
        max_length=max_source_length,
        pretokenize=use_pretokenize,
        argument="sources",
    )
    target_column = _TextColumn(
        targets,
        target_tokenizer,
        add_special_tokens=False,
        max_length=max_target_length - 1,
        pretokenize=use_pretokenize,
        argument="targets",
    )
    if source_column.size != target_column.size:
        raise ValueError(
            f"`sources` and `targets` must be parallel; got {source_column.size} sources and "
            f"{target_column.size} targets."
        )
    if source_column.size == 0:
        raise ValueError("`sources` is empty; expected at least one pair.")
    dataset = tf.data.Dataset.from_tensor_slices((source_column.source, target_column.source))
    dataset = _shuffle(dataset, source_column.size, shuffle, seed)
    dataset = _batch(dataset, batch_size, drop_remainder, ragged=not source_column.graph_mode)
    encoder_length = max_source_length if pad_to_max_length else None
    decoder_length = max_target_length if pad_to_max_length else None
    source_pad, target_pad = source_tokenizer.pad_id, target_tokenizer.pad_id

    def to_model_inputs(source_batch, target_batch):
        encoder_ids, encoder_mask = _pad(
            source_column.ids(source_batch), source_pad, encoder_length, source_batch
        )
        target_ids = tf.cast(target_column.ids(target_batch), tf.int32)
        decoder_inputs = truncate_and_wrap(
            target_ids, start=[start_id], end=[], max_length=None, truncation_side="right"
        )
        labels = truncate_and_wrap(
            target_ids, start=[], end=[end_id], max_length=None, truncation_side="right"
        )
        decoder_ids, decoder_mask = _pad(decoder_inputs, target_pad, decoder_length, target_batch)
        label_ids, label_mask = _pad(labels, target_pad, decoder_length, target_batch)
        inputs = {
            "encoder_token_ids": encoder_ids,
            "encoder_padding_mask": encoder_mask,
            "decoder_token_ids": decoder_ids,
            "decoder_padding_mask": decoder_mask,
        }
        return inputs, label_ids, tf.cast(label_mask, tf.float32)

    return _finish(dataset.map(to_model_inputs, num_parallel_calls=AUTOTUNE))


__all__ = [
    "make_causal_lm_dataset",
    "make_classification_dataset",
    "make_masked_lm_dataset",
    "make_seq2seq_dataset",
    "with_data_sharding",
]
