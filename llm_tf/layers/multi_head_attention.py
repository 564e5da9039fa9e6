"""Multi-head attention with an optional fixed-size key/value cache for incremental decoding."""

import keras
from keras import ops

from llm_tf.checks import check_positive_int, check_rate
from llm_tf.layers.fast_paths import FlatProjection, fused_projection
from llm_tf.layers.scaled_dot_product_attention import ScaledDotProductAttention


@keras.saving.register_keras_serializable(package="llm_tf")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention: several scaled dot-product attentions side by side.

    Implements

        head_i = Attention(Q·W_Q,i , K·W_K,i , V·W_V,i)
        MultiHead(Q, K, V) = Concat(head_1, ..., head_h) · W_O

    with ``Attention(Q, K, V) = softmax(Q·Kᵀ/√d_k + M)·V`` (see
    :class:`~llm_tf.layers.ScaledDotProductAttention`). The projections are stored per head, with
    the same shapes as ``keras.layers.MultiHeadAttention`` (query kernel ``(features, heads,
    key_dim)``, output kernel ``(heads, value_dim, output_dim)``), so weights move between the two.

    Self-attention is ``layer(x)``; cross-attention is ``layer(x, encoder_output)``.

    For incremental decoding the layer reads and writes a fixed-size key/value cache of shape
    ``(batch, 2, max_length, heads, key_dim)`` (keys at index 0, values at index 1): the keys and
    values of the new tokens are written at ``cache_index`` and the queries attend causally to
    every slot up to their own position. Shapes never change from step to step, so a compiled
    generation loop traces once.

    Args:
        num_heads: number of attention heads ``h``.
        key_dim: size of each query/key head ``d_k``.
        value_dim: size of each value head ``d_v`` (default ``key_dim``).
        dropout: dropout rate on the attention weights, in ``[0, 1)``.
        use_bias: whether the projections have biases.
        output_dim: size of the output features (default: the query's feature size).
        kernel_initializer: initializer of the projection kernels.
        bias_initializer: initializer of the projection biases.
        **kwargs: standard layer arguments.

    Call arguments:
        query: ``(batch, query_length, features)``.
        value: ``(batch, key_length, features)``; default ``query`` (self-attention).
        key: ``(batch, key_length, features)``; default ``value``.
        padding_mask: ``(batch, key_length)`` (or ``(batch, max_length)`` with a cache), 1/True
            for real keys. Taken from the Keras mask of ``value`` when not given.
        attention_mask: ``(batch, query_length, key_length)``, 1/True where attention is allowed.
        use_causal_mask: whether query ``i`` may only see keys up to position ``i``.
        cache: optional ``(batch, 2, max_length, heads, key_dim)`` key/value cache.
        cache_index: position at which the new keys/values are written into ``cache``. With a cache
            and no index, the cache is a fixed, precomputed one (cross-attention over an encoder
            output, see :meth:`compute_key_value_cache`) and is not updated.
        return_attention_scores: also return the per-head weights ``(batch, heads, q, k)``.
        training: whether dropout is active.

    Returns:
        ``output`` of shape ``(batch, query_length, output_dim)``, followed by the attention
        weights if ``return_attention_scores``, followed by the updated cache if ``cache`` was given.

    Example:

    >>> mha = MultiHeadAttention(num_heads=4, key_dim=16)
    >>> x = keras.random.normal((2, 10, 64))
    >>> mha(x, use_causal_mask=True).shape
    (2, 10, 64)
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_dim=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("num_heads", num_heads)
        check_positive_int("key_dim", key_dim)
        check_positive_int("value_dim", value_dim, allow_none=True)
        check_positive_int("output_dim", output_dim, allow_none=True)
        check_rate("dropout", dropout)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim
        self.dropout = dropout
        self.use_bias = use_bias
        self.output_dim = output_dim
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True
        self.attention = ScaledDotProductAttention(dropout=dropout, dtype=self.dtype_policy, name="attention")

    @property
    def _value_dim(self):
        return self.value_dim or self.key_dim

    def _projection(self, name, input_shape, output_shape):
        return FlatProjection(
            input_shape,
            output_shape,
            use_bias=self.use_bias,
            # A fresh initializer per projection, so a seeded one does not repeat its values.
            kernel_initializer=keras.initializers.get(keras.initializers.serialize(self.kernel_initializer)),
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        for name, shape in (("query", query_shape), ("key", key_shape), ("value", value_shape)):
            if len(shape) != 3:
                raise ValueError(
                    f"MultiHeadAttention expects `{name}` of shape (batch, sequence, features); "
                    f"got {name} shape {tuple(shape)}."
                )
        if key_shape[1] is not None and value_shape[1] is not None and key_shape[1] != value_shape[1]:
            raise ValueError(
                f"`key` and `value` must have the same sequence length; got key shape {tuple(key_shape)} "
                f"and value shape {tuple(value_shape)}."
            )
        heads, output_dim = self.num_heads, self.output_dim or query_shape[-1]
        # Kernels keep keras.layers.MultiHeadAttention's per-head shapes: W_Q (features, heads, key_dim), ...
        self.query_dense = self._projection("query", (query_shape[-1],), (heads, self.key_dim))
        self.key_dense = self._projection("key", (key_shape[-1],), (heads, self.key_dim))
        self.value_dense = self._projection("value", (value_shape[-1],), (heads, self._value_dim))
        # ... and W_O (heads, value_dim, output_dim).
        self.output_dense = self._projection("attention_output", (heads, self._value_dim), (output_dim,))
        for layer in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
            layer.build()
        self.built = True

    def split_heads(self, x):
        """``(batch, length, heads·dim)`` → ``(batch, length, heads, dim)``."""
        # The head size as a Python int keeps it static when batch and length are not (symbolic builds).
        return ops.reshape(x, (ops.shape(x)[0], ops.shape(x)[1], self.num_heads, x.shape[-1] // self.num_heads))

    def merge_heads(self, x):
        """``(batch, length, heads, dim)`` → ``(batch, length, heads·dim)``: Concat(head_1, ..., head_h)."""
        return ops.reshape(x, (ops.shape(x)[0], ops.shape(x)[1], -1))

    def compute_key_value_cache(self, key_value, key=None):
        """Project an encoder output once into a fixed ``(batch, 2, length, heads, key_dim)`` cache."""
        key = key_value if key is None else key
        self._check_cacheable()
        key_heads = self.split_heads(self.key_dense(key))
        value_heads = self.split_heads(self.value_dense(key_value))
        return ops.stack([key_heads, value_heads], axis=1)

    def _check_cacheable(self):
        if self._value_dim != self.key_dim:
            raise ValueError(
                f"a key/value cache needs value_dim == key_dim; got key_dim={self.key_dim}, "
                f"value_dim={self._value_dim}."
            )

    def call(self, query, value=None, key=None, padding_mask=None, attention_mask=None, use_causal_mask=False,
             cache=None, cache_index=None, return_attention_scores=False, training=None):
        value = query if value is None else value
        key = value if key is None else key
        if padding_mask is None and cache is None:
            # With a cache the keys are cache slots, not `value`'s tokens: the mask must be explicit.
            padding_mask = getattr(value, "_keras_mask", None)
        causal, query_start_index = use_causal_mask, None
        # 1. Project: Q·W_Q, K·W_K, V·W_V (self-attention: one GEMM for the three, see fast_paths);
        # 2. split heads: (batch, length, heads·dim) -> (batch, length, heads, dim).
        if cache is not None and cache_index is None:  # a precomputed cross-attention cache: K, V fixed
            q, k, v = self.split_heads(self.query_dense(query)), cache[:, 0], cache[:, 1]
        else:
            if query is key and key is value and cache is None:
                q, k, v = fused_projection(query, (self.query_dense, self.key_dense, self.value_dense))
            else:
                q, k, v = self.query_dense(query), self.key_dense(key), self.value_dense(value)
            q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)
        if cache is not None and cache_index is not None:  # write new keys/values, attend to every slot so far
            self._check_cacheable()
            cache = ops.slice_update(cache, [0, 0, cache_index, 0, 0], ops.cast(ops.stack([k, v], 1), cache.dtype))
            k, v = cache[:, 0], cache[:, 1]
            causal, query_start_index = True, cache_index  # the empty slots after the new tokens stay hidden
        # 3. Attention per head: softmax(Q·Kᵀ/√d_k + M)·V.
        heads = self.attention(
            q, k, v, padding_mask=padding_mask, attention_mask=attention_mask, causal=causal,
            query_start_index=query_start_index, return_attention_scores=return_attention_scores,
            training=training,
        )
        heads, scores = heads if return_attention_scores else (heads, None)
        # 4. Merge heads and project: Concat(head_1, ..., head_h)·W_O.
        output = self.output_dense(self.merge_heads(heads))
        outputs = (output,) + ((scores,) if return_attention_scores else ()) + ((cache,) if cache is not None else ())
        return outputs[0] if len(outputs) == 1 else outputs

    def compute_mask(self, query, mask=None):
        # Keras passes the mask of the first argument (the query): one output row per query, so it carries over.
        return mask

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None, **kwargs):
        output_dim = self.output_dim or query_shape[-1]
        return tuple(query_shape[:-1]) + (output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "output_dim": self.output_dim,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
