"""Multi-head attention with an optional fixed-size key/value cache for incremental decoding."""

import itertools
import math

import keras
from keras import ops

from llm_tf.layers._validation import check_positive_int, check_rate
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

    def _projection(self, name, einsum, output_shape, bias_axes):
        projection = keras.layers.EinsumDense(
            einsum,
            output_shape=output_shape,
            bias_axes=bias_axes if self.use_bias else None,
            # A fresh initializer per projection, so a seeded one does not repeat its values.
            kernel_initializer=keras.initializers.get(keras.initializers.serialize(self.kernel_initializer)),
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name=name,
        )
        # A per-token projection keeps the padding mask valid; say so, so Keras does not warn and drop it.
        projection.supports_masking = True
        return projection

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
        output_dim = self.output_dim or query_shape[-1]
        self.query_dense = self._projection("query", "abc,cde->abde", (None, self.num_heads, self.key_dim), "de")
        self.query_dense.build(query_shape)
        self.key_dense = self._projection("key", "abc,cde->abde", (None, self.num_heads, self.key_dim), "de")
        self.key_dense.build(key_shape)
        self.value_dense = self._projection(
            "value", "abc,cde->abde", (None, self.num_heads, self._value_dim), "de"
        )
        self.value_dense.build(value_shape)
        self.output_dense = self._projection("attention_output", "abcd,cde->abe", (None, output_dim), "e")
        self.output_dense.build((query_shape[0], query_shape[1], self.num_heads, self._value_dim))
        self.built = True

    # The projections below compute exactly what the EinsumDense sublayers compute, from their own kernels and
    # biases, but as plain 2-D GEMMs over the flattened tokens: ``(batch * length, features) @ (features,
    # heads * dim)``. TensorFlow differentiates the einsum form ``abc,cde->abde`` into a batched matmul that
    # makes one kernel gradient per example and then sums them; the 2-D form makes a single GEMM with the
    # whole batch as its inner dimension (measured on the char-GPT recipe: 16 such per-example gradients per
    # step, 6 ms of a 51 ms step on a 2-core CPU).

    def _project(self, inputs, *projections, input_dims=1):
        """``inputs (batch, length, *in_dims)`` through one or more projections sharing them, as one 2-D GEMM.

        Each projection's kernel is ``(*in_dims, *out_dims)`` with ``input_dims`` input axes; with several
        projections (self-attention's Q, K and V) the kernels are laid side by side, so one GEMM serves all.
        Returns one ``(batch, length, *out_dims)`` tensor per projection (a single tensor for one projection).
        """
        kernel_shapes = [tuple(p.kernel.shape) for p in projections]
        in_size = math.prod(kernel_shapes[0][:input_dims])
        widths = [math.prod(shape[input_dims:]) for shape in kernel_shapes]
        kernels = [ops.reshape(p.kernel, (in_size, width)) for p, width in zip(projections, widths)]
        kernel = ops.concatenate(kernels, axis=1) if len(kernels) > 1 else kernels[0]
        flat = ops.matmul(ops.reshape(inputs, (-1, in_size)), kernel)
        if self.use_bias:
            biases = [ops.reshape(p.bias, (width,)) for p, width in zip(projections, widths)]
            flat = ops.add(flat, ops.concatenate(biases, axis=0) if len(biases) > 1 else biases[0])
        length = ops.shape(inputs)[1]
        parts = [flat] if len(projections) == 1 else ops.split(flat, list(itertools.accumulate(widths[:-1])), axis=1)
        outputs = tuple(ops.reshape(part, (-1, length) + shape[input_dims:]) for part, shape in zip(parts, kernel_shapes))
        return outputs[0] if len(outputs) == 1 else outputs

    def compute_key_value_cache(self, key_value, key=None):
        """Project an encoder output once into a fixed ``(batch, 2, length, heads, key_dim)`` cache."""
        key = key_value if key is None else key
        if self._value_dim != self.key_dim:
            raise ValueError(
                f"a key/value cache needs value_dim == key_dim; got key_dim={self.key_dim}, "
                f"value_dim={self._value_dim}."
            )
        return ops.stack([self._project(key, self.key_dense), self._project(key_value, self.value_dense)], axis=1)

    def call(
        self,
        query,
        value=None,
        key=None,
        padding_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        cache=None,
        cache_index=None,
        return_attention_scores=False,
        training=None,
    ):
        value = query if value is None else value
        key = value if key is None else key
        if padding_mask is None and cache is None:
            # With a cache the keys are cache slots, not `value`'s tokens: the mask must be explicit.
            padding_mask = getattr(value, "_keras_mask", None)

        query_start_index = None
        causal = use_causal_mask
        if cache is not None and cache_index is None:
            # A precomputed cache (cross-attention): keys and values are fixed.
            query_heads = self._project(query, self.query_dense)
            key_heads, value_heads = cache[:, 0], cache[:, 1]
        else:
            if query is key and key is value and cache is None:
                # Self-attention without a cache: one GEMM with the three kernels side by side.
                query_heads, key_heads, value_heads = self._project(
                    query, self.query_dense, self.key_dense, self.value_dense
                )
            else:
                query_heads = self._project(query, self.query_dense)
                key_heads = self._project(key, self.key_dense)
                value_heads = self._project(value, self.value_dense)
            if cache is not None:
                if self._value_dim != self.key_dim:
                    raise ValueError(
                        f"a key/value cache needs value_dim == key_dim; got key_dim={self.key_dim}, "
                        f"value_dim={self._value_dim}."
                    )
                start = [0, 0, cache_index, 0, 0]
                new_entries = ops.stack([key_heads, value_heads], axis=1)
                cache = ops.slice_update(cache, start, ops.cast(new_entries, cache.dtype))
                key_heads, value_heads = cache[:, 0], cache[:, 1]
                # The empty slots after the new tokens must stay invisible: always causal here.
                causal, query_start_index = True, cache_index

        attended = self.attention(
            query_heads,
            key_heads,
            value_heads,
            padding_mask=padding_mask,
            attention_mask=attention_mask,
            causal=causal,
            query_start_index=query_start_index,
            return_attention_scores=return_attention_scores,
            training=training,
        )
        if return_attention_scores:
            attended, scores = attended
        output = self._project(attended, self.output_dense, input_dims=2)

        outputs = (output,)
        if return_attention_scores:
            outputs += (scores,)
        if cache is not None:
            outputs += (cache,)
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
