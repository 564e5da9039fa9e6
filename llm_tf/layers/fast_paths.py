"""CPU-speed tricks, kept here and only here; each computes exactly what the readable path computes.

``tests/test_layers_fast_paths.py`` proves every function below equal to the readable code it replaces.

1. :class:`FlatProjection` — a projection whose kernel keeps its per-head shape (``(features, heads,
   head_dim)`` as in ``keras.layers.MultiHeadAttention``, so weights move between the two and to Hugging
   Face) but runs as one 2-D GEMM over the flattened tokens: ``(batch·length, features) @ (features,
   heads·head_dim)``. TensorFlow differentiates the einsum form ``abc,cde->abde`` into a batched matmul that
   makes one kernel gradient per example and then sums them; the 2-D form makes a single GEMM with the whole
   batch as its inner dimension (char-GPT recipe, 2-core CPU: 6 ms of a 51 ms step).
2. :func:`fused_projection` — self-attention's Q, K and V kernels side by side, one GEMM (and one kernel
   gradient GEMM) instead of three.
3. Decode-time weight preparation and the single-token decoder step of :meth:`GPT.generate`
   (:func:`decode_weights`, :func:`decode_block_step`, :func:`last_token_logits`): the attention of
   :class:`~llm_tf.layers.TransformerDecoderBlock` written for one token per row with plain 2-D matrix
   products over caches laid out as the matmul operands want them. (Applied to one token, per-head einsum
   projections lead XLA on CPU to fuse the preceding LayerNorm and the kernel reshape into a generic loop
   that reads the kernel several times slower than a matrix-vector product does.)
"""

import itertools
import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="llm_tf")
class FlatProjection(keras.layers.Layer):
    """``y = x · W + b`` over the last ``len(input_shape)`` axes of ``x``, as one 2-D GEMM.

    Args:
        input_shape: the trailing input axes the kernel contracts, e.g. ``(features,)`` or ``(heads, dim)``.
        output_shape: the kernel's output axes, e.g. ``(heads, head_dim)`` or ``(features,)``.
        use_bias: whether there is a bias of shape ``output_shape``.
        kernel_initializer, bias_initializer: initializers.

    Call: ``(batch, length, prod(input_shape))`` → ``(batch, length, prod(output_shape))`` (flat features).
    The kernel is stored as ``(*input_shape, *output_shape)`` and the bias as ``output_shape``.
    """

    def __init__(
        self,
        input_shape,
        output_shape,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kernel_input_shape = tuple(input_shape)
        self.kernel_output_shape = tuple(output_shape)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.in_size = math.prod(self.kernel_input_shape)
        self.out_size = math.prod(self.kernel_output_shape)
        # A per-token projection keeps the padding mask valid.
        self.supports_masking = True

    def build(self, inputs_shape=None):
        self.kernel = self.add_weight(
            name="kernel",
            shape=self.kernel_input_shape + self.kernel_output_shape,
            initializer=self.kernel_initializer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=self.kernel_output_shape, initializer=self.bias_initializer)
        self.built = True

    def flat_kernel(self):
        return ops.reshape(self.kernel, (self.in_size, self.out_size))

    def flat_bias(self):
        return ops.reshape(self.bias, (self.out_size,))

    def call(self, inputs):
        flat = ops.matmul(ops.reshape(inputs, (-1, self.in_size)), self.flat_kernel())
        if self.use_bias:
            flat = flat + self.flat_bias()
        return ops.reshape(flat, (ops.shape(inputs)[0], ops.shape(inputs)[1], self.out_size))

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape[:2]) + (self.out_size,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "input_shape": self.kernel_input_shape,
                "output_shape": self.kernel_output_shape,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


def fused_projection(inputs, projections):
    """``tuple(p(inputs) for p in projections)`` as one GEMM with the kernels laid side by side."""
    kernel = ops.concatenate([p.flat_kernel() for p in projections], axis=1)
    flat = ops.matmul(ops.reshape(inputs, (-1, projections[0].in_size)), kernel)
    if projections[0].use_bias:
        flat = flat + ops.concatenate([p.flat_bias() for p in projections], axis=0)
    sizes = [p.out_size for p in projections]
    parts = ops.split(flat, list(itertools.accumulate(sizes[:-1])), axis=1)
    batch, length = ops.shape(inputs)[0], ops.shape(inputs)[1]
    return tuple(ops.reshape(part, (batch, length, size)) for part, size in zip(parts, sizes))


# ---- GPT decoding: one token per row --------------------------------------------------------------------


def decode_weights(blocks, use_bias):
    """Per block, the self-attention weights as 2-D matrices for :func:`decode_block_step`.

    Q, K and V kernels are concatenated into one ``(d, 3·d)`` matrix, so each step makes one
    matrix-vector product instead of three. Runs once per ``generate`` call, before the loop.
    """
    prepared = []
    for block in blocks:
        attention = block.self_attention
        dtype = block.compute_dtype
        parts = (attention.query_dense, attention.key_dense, attention.value_dense)
        weights = {
            "qkv_kernel": ops.cast(ops.concatenate([p.flat_kernel() for p in parts], axis=1), dtype),
            "output_kernel": ops.cast(attention.output_dense.flat_kernel(), dtype),
        }
        if use_bias:
            weights["qkv_bias"] = ops.cast(ops.concatenate([p.flat_bias() for p in parts], axis=0), dtype)
            weights["output_bias"] = ops.cast(attention.output_dense.flat_bias(), dtype)
        prepared.append(weights)
    return prepared


def decode_block_step(block, hidden, keys, values, bias, cache_index, weights, num_heads):
    """One :class:`TransformerDecoderBlock` for one token per row, ``(batch, d)`` → ``(batch, d)``.

    Args:
        keys: ``(batch·heads, head_dim, length)`` and values ``(batch·heads, length, head_dim)``: the
            cache in the operand layouts of the two attention matrix products.
        bias: additive attention mask ``(batch·heads, 1, length)`` (0 visible, -1e9 hidden).
        cache_index: the slot this step's key and value are written to.
        weights: this block's :func:`decode_weights`.
    """
    dtype = block.compute_dtype
    batch_size = ops.shape(hidden)[0]
    d = hidden.shape[-1]
    head_dim = d // num_heads
    x = block.self_attention_norm(hidden) if block.norm_first else hidden
    qkv = ops.matmul(x, weights["qkv_kernel"])
    if "qkv_bias" in weights:
        qkv = qkv + weights["qkv_bias"]
    flat = batch_size * num_heads
    query = ops.reshape(qkv[:, :d], (flat, 1, head_dim))
    key = ops.reshape(qkv[:, d : 2 * d], (flat, head_dim, 1))
    value = ops.reshape(qkv[:, 2 * d :], (flat, 1, head_dim))
    keys = ops.slice_update(keys, [0, 0, cache_index], key)
    values = ops.slice_update(values, [0, cache_index, 0], value)
    scores = ops.matmul(query, keys)  # (batch·heads, 1, length)
    scores = ops.cast(scores, "float32") * (1.0 / math.sqrt(head_dim)) + bias
    attention_weights = ops.cast(ops.softmax(scores, axis=-1), dtype)
    attended = ops.reshape(ops.matmul(attention_weights, values), (batch_size, d))
    attended = ops.matmul(attended, weights["output_kernel"])
    if "output_bias" in weights:
        attended = attended + weights["output_bias"]
    hidden = hidden + attended
    if not block.norm_first:
        hidden = block.self_attention_norm(hidden)
    x = block.feed_forward_norm(hidden) if block.norm_first else hidden
    hidden = hidden + block.feed_forward(x, training=False)
    if not block.norm_first:
        hidden = block.feed_forward_norm(hidden)
    return hidden, keys, values


def last_token_logits(final_norm, lm_head, token_embeddings, hidden):
    """Logits of one position per row, ``(batch, d)`` → float32 ``(batch, V)``.

    With tied embeddings this is ``(W_embed · hᵀ)ᵀ``: the table is the left operand in its stored row-major
    layout, so XLA reads it once as a matrix-vector product (``h · W_embedᵀ`` makes XLA on CPU materialise
    the ``(d, V)`` transpose at every step).
    """
    if final_norm is not None:
        hidden = final_norm(hidden)
    if lm_head is not None:
        return ops.cast(lm_head(hidden), "float32")
    table = ops.cast(token_embeddings, hidden.dtype)
    return ops.cast(ops.transpose(ops.matmul(table, ops.transpose(hidden))), "float32")
