"""Each CPU-speed trick in ``llm_tf.layers.fast_paths`` computes exactly what the readable path computes."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from llm_tf.layers import MultiHeadAttention, TransformerDecoderBlock, fast_paths

RNG = np.random.default_rng(0)


def test_flat_projection_is_the_per_head_einsum():
    layer = fast_paths.FlatProjection((6,), (2, 3))
    layer.build()
    layer.bias.assign(RNG.normal(size=(2, 3)))
    x = RNG.normal(size=(4, 5, 6)).astype("float32")
    expected = np.einsum("blf,fhd->blhd", x, np.asarray(layer.kernel)) + np.asarray(layer.bias)
    np.testing.assert_allclose(np.asarray(layer(x)), expected.reshape(4, 5, 6), atol=1e-5)
    merged = fast_paths.FlatProjection((2, 3), (7,))  # an output projection: (heads, dim) -> features
    merged.build()
    expected = np.einsum("blhd,hdf->blf", expected, np.asarray(merged.kernel))
    np.testing.assert_allclose(np.asarray(merged(layer(x))), expected, atol=1e-5)


def test_fused_projection_equals_the_three_projections():
    layers = [fast_paths.FlatProjection((6,), (2, width)) for width in (3, 3, 4)]
    for layer in layers:
        layer.build()
        layer.bias.assign(RNG.normal(size=tuple(layer.bias.shape)))
    x = RNG.normal(size=(4, 5, 6)).astype("float32")
    for fused, layer in zip(fast_paths.fused_projection(x, layers), layers):
        np.testing.assert_allclose(np.asarray(fused), np.asarray(layer(x)), atol=1e-5)


def test_multi_head_attention_equals_concat_of_heads_times_w_o():
    """The layer (fused Q/K/V, 2-D GEMMs) against the equation written out per head in numpy."""
    mha = MultiHeadAttention(num_heads=2, key_dim=3)
    x = RNG.normal(size=(2, 4, 6)).astype("float32")
    output = np.asarray(mha(x, use_causal_mask=True))
    W = {name: np.asarray(getattr(mha, name).kernel) for name in ("query_dense", "key_dense", "value_dense", "output_dense")}
    b = {name: np.asarray(getattr(mha, name).bias) for name in W}
    heads = []
    for h in range(2):
        q, k, v = (x @ W[n][:, h] + b[n][h] for n in ("query_dense", "key_dense", "value_dense"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(3) + np.triu(np.full((4, 4), -np.inf), 1)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        heads.append(weights / weights.sum(-1, keepdims=True) @ v)
    expected = np.concatenate(heads, axis=-1) @ W["output_dense"].reshape(6, 6) + b["output_dense"]
    np.testing.assert_allclose(output, expected, atol=1e-5)


@pytest.mark.parametrize("norm_first", [True, False])
def test_decode_block_step_equals_the_cached_block(norm_first):
    """One token through ``decode_block_step`` == the block's own cached call for that token."""
    keras.utils.set_random_seed(1)
    batch, length, d, heads = 2, 6, 8, 2
    block = TransformerDecoderBlock(num_heads=heads, intermediate_dim=16, norm_first=norm_first)
    prefix = RNG.normal(size=(batch, 3, d)).astype("float32")
    token = RNG.normal(size=(batch, 1, d)).astype("float32")
    cache = ops.zeros((batch, 2, length, heads, d // heads))
    _, cache = block(prefix, self_attention_cache=cache, cache_index=0)
    expected, _ = block(token, self_attention_cache=cache, cache_index=3)

    keys = ops.reshape(ops.transpose(cache[:, 0], (0, 2, 3, 1)), (batch * heads, d // heads, length))
    values = ops.reshape(ops.transpose(cache[:, 1], (0, 2, 1, 3)), (batch * heads, length, d // heads))
    visible = np.arange(length) <= 3
    bias = np.where(visible, 0.0, -1e9).astype("float32")[None, None, :].repeat(batch * heads, 0)
    weights = fast_paths.decode_weights([block], use_bias=True)[0]
    hidden, _, _ = fast_paths.decode_block_step(block, token[:, 0], keys, values, bias, 3, weights, heads)
    np.testing.assert_allclose(np.asarray(hidden), np.asarray(expected)[:, 0], atol=1e-5)


def test_last_token_logits_equals_the_tied_head():
    table = RNG.normal(size=(11, 8)).astype("float32")
    hidden = RNG.normal(size=(3, 8)).astype("float32")
    logits = fast_paths.last_token_logits(None, None, table, hidden)
    np.testing.assert_allclose(np.asarray(logits), hidden @ table.T, atol=1e-5)
