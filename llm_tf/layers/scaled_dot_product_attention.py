"""Scaled dot-product attention: ``softmax(Q·Kᵀ/√d_k + mask)·V``."""

import math

import keras
from keras import ops

from llm_tf.checks import check_rate


def causal_attention_mask(query_length, key_length, query_start_index=None):
    """Boolean mask ``(query_length, key_length)``: True where query i may attend to key j.

    Query ``i`` sits at absolute position ``query_start_index + i`` and may see every key at a
    position ``<= query_start_index + i``. By default the queries are the *last* ``query_length``
    positions of the keys (``query_start_index = key_length - query_length``), which is what a full
    causal pass and a prefill both need. A fixed-size key/value cache passes the index it writes at,
    so that the empty slots after it are masked too.
    """
    if query_start_index is None:
        query_start_index = key_length - query_length
    query_positions = ops.arange(query_length, dtype="int32") + ops.cast(query_start_index, "int32")
    key_positions = ops.arange(key_length, dtype="int32")
    return ops.expand_dims(query_positions, 1) >= ops.expand_dims(key_positions, 0)


def merge_attention_masks(padding_mask=None, attention_mask=None, causal_mask=None):
    """Combine the three kinds of mask into one boolean mask broadcastable to ``(batch, heads, q, k)``.

    Args:
        padding_mask: ``(batch, key_length)``, 1/True for real keys.
        attention_mask: ``(batch, query_length, key_length)`` or ``(batch, heads, query_length,
            key_length)``, 1/True where attention is allowed.
        causal_mask: ``(query_length, key_length)`` boolean.

    Returns:
        ``None`` when no mask is given, else a boolean tensor of rank 4. A key is attended only when
        every mask given allows it (logical AND).
    """
    merged = None
    if padding_mask is not None:
        merged = ops.cast(padding_mask, "bool")[:, None, None, :]
    if attention_mask is not None:
        attention_mask = ops.cast(attention_mask, "bool")
        if len(attention_mask.shape) == 3:
            attention_mask = attention_mask[:, None, :, :]
        merged = attention_mask if merged is None else ops.logical_and(merged, attention_mask)
    if causal_mask is not None:
        causal_mask = ops.cast(causal_mask, "bool")[None, None, :, :]
        merged = causal_mask if merged is None else ops.logical_and(merged, causal_mask)
    return merged


@keras.saving.register_keras_serializable(package="llm_tf")
class ScaledDotProductAttention(keras.layers.Layer):
    """Scaled dot-product attention, the core of every Transformer layer.

    Implements

        Attention(Q, K, V) = softmax(Q·Kᵀ / √d_k + M) · V

    where ``M`` is 0 where attention is allowed and -∞ where it is not. The mask ``M`` is the
    logical AND of a key padding mask, an optional causal mask and an optional explicit attention
    mask. The softmax runs in float32 even under mixed precision, and a query whose keys are all
    masked gets all-zero weights (and so a zero output) instead of NaN.

    The layer has no weights: it is the parameter-free part of attention that
    :class:`~llm_tf.layers.MultiHeadAttention` wraps with the projections ``W_Q``, ``W_K``, ``W_V``
    and ``W_O``.

    Args:
        dropout: Dropout rate applied to the attention weights during training, in ``[0, 1)``.
        **kwargs: Standard layer arguments (``name``, ``dtype``, ...).

    Call arguments:
        query: ``(batch, query_length, heads, head_dim)``, or ``(batch, query_length, head_dim)``
            for a single head.
        key: ``(batch, key_length, heads, head_dim)`` (or rank 3 for a single head).
        value: ``(batch, key_length, heads, value_dim)`` (or rank 3 for a single head).
        padding_mask: optional ``(batch, key_length)``, 1/True for real keys, 0/False for padding.
        attention_mask: optional ``(batch, query_length, key_length)`` or
            ``(batch, heads, query_length, key_length)``, 1/True where attention is allowed.
        causal: if True, query ``i`` attends only to keys at positions ``<= query_start_index + i``.
        query_start_index: absolute position of the first query (default: the queries are the last
            ``query_length`` key positions). Used with a fixed-size key/value cache.
        return_attention_scores: if True, also return the attention weights
            ``(batch, heads, query_length, key_length)``.
        training: whether dropout is active.

    Returns:
        The attended values, same layout as ``value`` with ``query_length`` rows; plus the weights
        when ``return_attention_scores=True``.

    Example:

    >>> attention = ScaledDotProductAttention()
    >>> q = k = v = keras.random.normal((2, 5, 4, 8))
    >>> attention(q, k, v, causal=True).shape
    (2, 5, 4, 8)
    """

    def __init__(self, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        check_rate("dropout", dropout)
        self.dropout = dropout
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.supports_masking = True

    def call(
        self,
        query,
        key,
        value,
        padding_mask=None,
        attention_mask=None,
        causal=False,
        query_start_index=None,
        return_attention_scores=False,
        training=None,
    ):
        single_head = len(query.shape) == 3
        if single_head:
            query, key, value = (ops.expand_dims(t, 2) for t in (query, key, value))
        if query.shape[-1] is not None and key.shape[-1] is not None and query.shape[-1] != key.shape[-1]:
            raise ValueError(
                f"query and key must have the same head_dim; got query {tuple(query.shape)} "
                f"and key {tuple(key.shape)}."
            )
        head_dim = query.shape[-1]
        # Scale the queries rather than the scores: same result, fewer multiplications.
        query = ops.multiply(query, ops.cast(1.0 / math.sqrt(head_dim), query.dtype))
        scores = ops.einsum("bqhd,bkhd->bhqk", query, key)

        causal_mask = None
        if causal:
            causal_mask = causal_attention_mask(ops.shape(query)[1], ops.shape(key)[1], query_start_index)
        mask = merge_attention_masks(padding_mask, attention_mask, causal_mask)

        weights = masked_softmax(scores, mask)
        weights = ops.cast(weights, self.compute_dtype)
        dropped = self.dropout_layer(weights, training=training)
        output = ops.einsum("bhqk,bkhd->bqhd", dropped, value)
        if single_head:
            output = ops.squeeze(output, 2)
        if return_attention_scores:
            return output, weights
        return output

    def compute_mask(self, query, mask=None):
        # Keras passes the mask of the first argument (the query): one output row per query, so it carries over.
        return mask

    def compute_output_shape(self, query_shape, key_shape=None, value_shape=None, **kwargs):
        value_shape = value_shape if value_shape is not None else query_shape
        return tuple(query_shape[:-1]) + (value_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update({"dropout": self.dropout})
        return config


def masked_softmax(scores, mask=None):
    """Softmax over the last axis in float32; rows with no allowed key come out all zero.

    Masked scores are replaced by a large negative number (not -inf, which would give NaN for a
    fully masked row), and the weights of such rows are then zeroed explicitly.
    """
    scores = ops.cast(scores, "float32")
    if mask is None:
        return ops.softmax(scores, axis=-1)
    scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
    weights = ops.softmax(scores, axis=-1)
    any_allowed = ops.any(mask, axis=-1, keepdims=True)
    return ops.where(any_allowed, weights, ops.zeros_like(weights))
