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
4. Packed decoding weights (``GPT.generate(weight_dtype=...)``, :func:`pack_rows`, :func:`packed_matmul`).
   At batch 1 a decoding step is a chain of matrix-vector products bound by reading the weights. XLA on
   CPU runs ``x · Wᵀ`` over ``(out, in)`` rows as a loop split over the cores when the rows come from an
   elementwise conversion, and fuses that conversion into the loop, so rows stored in bfloat16 or float16
   (half the bytes) or int8 with one float32 scale per output channel (a quarter) are read in their small
   dtype while activations and accumulation stay float32. GPT-2 small, 2 cores, per token: float32 kernels
   21-25 ms, bfloat16 10-11 ms, float16 10.4 ms (a few more integer operations per weight than bfloat16's
   single shift), int8 6-8 ms. Three details make XLA keep that form inside the decoding loop (each found
   in its optimized HLO): the conversion starts from a loop-dependent zero (else it is hoisted out of the
   loop, which then reads a float32 copy), a multiply follows the product (else a bias add turns it into a
   "dot + add" fusion that takes a re-laid-out operand), and the vector enters through a branch (else its
   LayerNorm or GELU is recomputed for every output row). Float32 rows need no conversion: they are the
   left operand of one product, ``(W · xᵀ)ᵀ``, which XLA on CPU runs on both cores and faster than
   ``x · W`` over the layers' ``(in, out)`` kernels (GPT-2 small's products at 8 rows, Xeon: 20 vs 32 ms)
   and, at one row, than the converting loop (Xeon: 45.4 vs 42.2 tokens/s), as long as a loop-dependent
   factor of 1 keeps the transpose from being folded back into the product. Weight-only bfloat16 / float16 / int8
   change the results; their error is measured (``benchmarks/weight_only_decoding.py``), not proved zero.
"""

import itertools
import math

import keras
import numpy as np
from keras import ops

from llm_tf.checks import check_choice


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


#: ``weight_dtype`` values of :func:`decode_weights` (and of ``GPT.generate``).
WEIGHT_DTYPES = ("float32", "bfloat16", "float16", "int8")
_INT8_MAX = 127.0
_FLOAT16_MAX = 65504.0  # the largest finite float16
_FLOAT16_SMALLEST_NORMAL = 2.0**-14


def pack_rows(rows, weight_dtype):
    """A matrix stored as ``(out, in)`` rows for :func:`packed_matmul`, in ``weight_dtype``.

    ``"bfloat16"`` rounds each weight to bfloat16 (kept as its 16 raw bits in int16, see :func:`unpack_rows`).
    ``"float16"`` rounds each weight to float16: the same bytes as bfloat16 with 3 more mantissa bits (an
    8× smaller rounding error), but a narrower range, so magnitudes above 65504 are clipped to it and those
    below float16's smallest normal number (6.1e-5) are stored as 0 (an absolute error of at most 6.1e-5; the
    conversion back to float32 then never meets a denormal, whatever the CPU's flush-to-zero mode).
    ``"int8"`` is symmetric per-output-channel quantization: ``scale_o = max_i |W_oi| / 127`` and
    ``q_oi = round(W_oi / scale_o)`` in ``[-127, 127]``, so ``W_oi ≈ q_oi · scale_o`` with an error of at
    most ``scale_o / 2`` (an all-zero row keeps scale 1). ``"float32"`` keeps the values (transposed).

    Returns:
        ``{"float32_rows" | "bfloat16_bits" | "float16_bits" | "int8_rows": (out, in) tensor}``, plus
        ``"scale"`` ``(out,)`` float32 for int8.
    """
    check_choice("weight_dtype", weight_dtype, WEIGHT_DTYPES)
    rows = ops.stop_gradient(ops.cast(rows, "float32"))  # a decoding copy: never part of a gradient
    if weight_dtype == "float32":
        return {"float32_rows": rows}
    if weight_dtype == "bfloat16":
        return {"bfloat16_bits": _int16_bits(rows, "bfloat16")}
    if weight_dtype == "float16":
        clipped = ops.clip(rows, -_FLOAT16_MAX, _FLOAT16_MAX)
        normal = ops.where(ops.abs(clipped) < _FLOAT16_SMALLEST_NORMAL, ops.zeros_like(clipped), clipped)
        return {"float16_bits": _int16_bits(normal, "float16")}
    largest = ops.max(ops.abs(rows), axis=1)
    scale = ops.where(largest > 0, largest / _INT8_MAX, ops.ones_like(largest))
    quantized = ops.clip(ops.round(rows / scale[:, None]), -_INT8_MAX, _INT8_MAX)
    return {"int8_rows": ops.cast(quantized, "int8"), "scale": scale}


def _int16_bits(values, dtype):
    """``values`` rounded to the 16-bit float ``dtype``, returned as their raw bits in int16."""
    # Flattened and reshaped so the bits are viewed from a contiguous array (PyTorch views only those).
    contiguous = ops.reshape(ops.reshape(ops.cast(values, dtype), (-1,)), ops.shape(values))
    return ops.view(contiguous, "int16")


def unpack_rows(packed, loop_zero=0):
    """:func:`pack_rows`' matrix as float32 ``(out, in)`` (int8 rows unscaled: the scale is applied after).

    ``loop_zero`` is an int scalar that is 0 but varies with the decoding loop (XLA cannot prove it
    constant). It is added to the stored integers *before* the conversion, so the conversion is not
    loop-invariant: otherwise XLA hoists it out of the while-loop, materialises a float32 copy of every
    weight once, and each step reads that copy (2-4× the bytes) instead of the packed weights.
    """
    if "float32_rows" in packed:  # nothing to convert (packed_matmul multiplies float32 rows directly)
        return packed["float32_rows"]
    if "int8_rows" in packed:
        return ops.cast(packed["int8_rows"] + ops.cast(loop_zero, "int8"), "float32")
    if "float16_bits" in packed:
        return _float16_bits_to_float32(packed["float16_bits"] + ops.cast(loop_zero, "int16"))
    # bfloat16 → float32 is exact: its 16 bits are the high half of the float32's. (int16, not uint16: every
    # backend has it; the sign extension of the int32 cast is shifted out.)
    bits = ops.cast(packed["bfloat16_bits"] + ops.cast(loop_zero, "int16"), "int32")
    return ops.view(ops.left_shift(bits, np.int32(16)), "float32")


def _float16_bits_to_float32(bits):
    """float16 values given as their int16 bits → float32, exactly, for zero and normal numbers.

    The 15 magnitude bits shifted left by 13 land in a float32's exponent and mantissa fields: a float32 of
    the same mantissa whose exponent is float16's minus 112 (float16's bias 15 against float32's 127), so
    multiplying it by 2^112 (exact: a power of two) gives the float16's value; the sign bit moves to bit 31.
    Elementwise integer operations that XLA fuses into the product's loop, like bfloat16's shift.
    """
    bits = ops.cast(bits, "int32")  # sign-extended: bit 15 is the sign, and stays set in bit 15
    magnitude = ops.left_shift(ops.bitwise_and(bits, np.int32(0x7FFF)), np.int32(13))
    sign = ops.left_shift(ops.bitwise_and(bits, np.int32(0x8000)), np.int32(16))
    return ops.view(ops.bitwise_or(magnitude, sign), "float32") * np.float32(2.0**112)


def packed_matmul(x, packed, loop_zero=0):
    """``x · Wᵀ`` for :func:`pack_rows`' rows ``W`` ``(out, in)``: ``(batch, in)`` → float32 ``(batch, out)``.

    float32 rows are the left operand of one matrix product. Rows in a smaller dtype are converted to
    float32 inside the product: for a matrix-vector product XLA on CPU fuses the conversion into the
    product (emitted as a loop over the rows, split over the cores), so the packed dtype is what is read
    from memory. The int8 scales multiply the ``out`` results, which equals scaling each row first.
    ``loop_zero``: see :func:`unpack_rows`.
    """
    x = ops.cast(x, "float32")
    if "float32_rows" in packed:
        # One matrix product with the rows as its left operand, (out, in) · (in, batch). XLA on CPU runs this
        # orientation ~1.6× faster than (batch, in) · (in, out) for a few rows (GPT-2 small's products at 8
        # rows: 20 vs 32 ms), and at one row faster than the converting loop below (GPT-2 small, 128 + 128
        # tokens: 45.4 vs 42.2 tokens/s on an AVX-512 Xeon); the float32 rows need no conversion, so no loop
        # is needed. The loop-dependent factor of 1 sits between product and transpose: without it XLA folds
        # the transpose into the product and is back at the slow orientation.
        product = ops.matmul(packed["float32_rows"], ops.transpose(x))
        return ops.transpose(product * (1.0 + ops.cast(loop_zero, "float32")))
    if not isinstance(loop_zero, int):
        # Always x (loop_zero is 0), but XLA cannot tell: the branch boundary keeps the vector's own
        # computation (a LayerNorm, GELU's tanh) out of the product's loop, which would otherwise
        # recompute it for every output row (GPT-2 small, bfloat16: 14 → 11 ms per token).
        x = ops.cond(ops.equal(loop_zero, 0), lambda: x, lambda: -x)
    product = ops.einsum("bi,oi->bo", x, unpack_rows(packed, loop_zero))
    # Always a multiply after the product (int8: the scales; else a loop-dependent 1): a bias or residual
    # add directly after it would become XLA's "dot + add" output fusion, which takes the converted
    # matrix as a materialised, re-laid-out operand instead of converting it inside the product.
    if "scale" in packed:
        return product * packed["scale"]
    return product * (1.0 + ops.cast(loop_zero, "float32"))


def _project(x, weight, bias=None, loop_zero=0):
    """``x·W + b`` for a float32 ``(in, out)`` kernel or a packed ``(out, in)`` matrix, in ``x``'s dtype."""
    if isinstance(weight, dict):
        out = ops.cast(packed_matmul(x, weight, loop_zero), x.dtype)
    else:
        out = ops.matmul(x, weight)
    return out if bias is None else out + bias


def decode_weights(blocks, use_bias, packed_dtype=None):
    """Per block, the weights of :func:`decode_block_step` as 2-D matrices.

    Args:
        blocks: the model's :class:`~llm_tf.layers.TransformerDecoderBlock` list.
        use_bias: whether the projections have biases.
        packed_dtype: ``None``: the layers' own kernels, with Q, K and V concatenated into one ``(d, 3·d)``
            matrix (one matrix-vector product instead of three); runs inside the compiled loop, before it.
            ``"float32"``, ``"bfloat16"``, ``"float16"`` or ``"int8"``: the four projections of every block (Q/K/V,
            attention output, both feed-forward layers) as :func:`pack_rows` ``(out, in)`` rows for
            :func:`packed_matmul`; biases, norms and caches stay in the compute dtype.
    """
    prepared = []
    for block in blocks:
        attention, feed_forward = block.self_attention, block.feed_forward
        dtype = block.compute_dtype
        parts = (attention.query_dense, attention.key_dense, attention.value_dense)
        kernels = {  # (in, out)
            "qkv_kernel": ops.concatenate([p.flat_kernel() for p in parts], axis=1),
            "output_kernel": attention.output_dense.flat_kernel(),
            "intermediate_kernel": feed_forward.intermediate_dense.kernel,
            "feed_forward_output_kernel": feed_forward.output_dense.kernel,
        }
        if packed_dtype is None:
            weights = {name: ops.cast(kernel, dtype) for name, kernel in kernels.items()}
        else:
            weights = {name: pack_rows(ops.transpose(kernel), packed_dtype) for name, kernel in kernels.items()}
        if use_bias:
            weights["qkv_bias"] = ops.cast(ops.concatenate([p.flat_bias() for p in parts], axis=0), dtype)
            weights["output_bias"] = ops.cast(attention.output_dense.flat_bias(), dtype)
            weights["intermediate_bias"] = ops.cast(feed_forward.intermediate_dense.bias, dtype)
            weights["feed_forward_output_bias"] = ops.cast(feed_forward.output_dense.bias, dtype)
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
    # 0, but not provably constant to XLA: see unpack_rows (packed weights only).
    loop_zero = ops.minimum(cache_index, 0)
    qkv = _project(x, weights["qkv_kernel"], weights.get("qkv_bias"), loop_zero)
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
    attended = _project(attended, weights["output_kernel"], weights.get("output_bias"), loop_zero)
    hidden = hidden + attended
    if not block.norm_first:
        hidden = block.self_attention_norm(hidden)
    x = block.feed_forward_norm(hidden) if block.norm_first else hidden
    # The feed-forward layer written out (its dropout is off when decoding).
    x = _project(x, weights["intermediate_kernel"], weights.get("intermediate_bias"), loop_zero)
    x = block.feed_forward._activation_fn(x)
    x = _project(x, weights["feed_forward_output_kernel"], weights.get("feed_forward_output_bias"), loop_zero)
    hidden = hidden + x
    if not block.norm_first:
        hidden = block.feed_forward_norm(hidden)
    return hidden, keys, values


def output_rows(lm_head, token_embeddings, packed_dtype):
    """The output head as :func:`pack_rows` ``(V, d)`` rows for :func:`last_token_logits` (None: unpacked)."""
    if packed_dtype is None:
        return None
    rows = token_embeddings if lm_head is None else ops.transpose(lm_head.kernel)
    return pack_rows(rows, packed_dtype)


def last_token_logits(final_norm, lm_head, token_embeddings, hidden, packed_head=None, loop_zero=0):
    """Logits of one position per row, ``(batch, d)`` → float32 ``(batch, V)``.

    ``packed_head`` (:func:`output_rows`) replaces the head's float32 weights with packed ones
    (``loop_zero``: see :func:`unpack_rows`).

    With tied embeddings this is ``(W_embed · hᵀ)ᵀ``: the table is the left operand in its stored row-major
    layout, so XLA reads it once as a matrix-vector product (``h · W_embedᵀ`` makes XLA on CPU materialise
    the ``(d, V)`` transpose at every step).
    """
    if final_norm is not None:
        hidden = final_norm(hidden)
    if packed_head is not None:
        return packed_matmul(hidden, packed_head, loop_zero)
    if lm_head is not None:
        return ops.cast(lm_head(hidden), "float32")
    table = ops.cast(token_embeddings, hidden.dtype)
    return ops.cast(ops.transpose(ops.matmul(table, ops.transpose(hidden))), "float32")
