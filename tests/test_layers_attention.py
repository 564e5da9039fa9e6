import numpy as np
import pytest
from keras import ops

from llm_tf.layers import ScaledDotProductAttention, causal_attention_mask
from llm_tf.layers.scaled_dot_product_attention import masked_softmax
from tests.layer_checks import run_layer_checks

RNG = np.random.default_rng(0)
Q, K, V = (RNG.normal(size=(2, 5, 3, 4)).astype("float32") for _ in range(3))
PADDING = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)


def _numpy_attention(q, k, v, allowed):
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
    scores = np.where(allowed, scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return np.einsum("bhqk,bkhd->bqhd", weights, v), weights


def test_standard_checks():
    run_layer_checks(
        lambda **kw: ScaledDotProductAttention(**kw), [Q, K, V], expected_output_shape=Q.shape, has_weights=False
    )


def test_equation_with_padding_and_causal_masks():
    layer = ScaledDotProductAttention()
    out, weights = layer(Q, K, V, padding_mask=PADDING, causal=True, return_attention_scores=True)
    allowed = PADDING[:, None, None, :] & np.tril(np.ones((5, 5), bool))[None, None]
    expected_out, expected_weights = _numpy_attention(Q, K, V, allowed)
    np.testing.assert_allclose(np.asarray(out), expected_out, atol=1e-5)
    np.testing.assert_allclose(np.asarray(weights), expected_weights, atol=1e-6)


def test_weights_sum_to_one_over_unmasked_keys():
    _, weights = ScaledDotProductAttention()(Q, K, V, padding_mask=PADDING, return_attention_scores=True)
    weights = np.asarray(weights)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    assert np.all(weights[0, :, :, 3:] == 0)


def test_fully_masked_rows_give_zeros_not_nan():
    attention_mask = np.ones((2, 5, 5), bool)
    attention_mask[0, 2, :] = False  # query 2 of example 0 may see nothing
    out, weights = ScaledDotProductAttention()(
        Q, K, V, attention_mask=attention_mask, return_attention_scores=True
    )
    out, weights = np.asarray(out), np.asarray(weights)
    assert np.all(np.isfinite(out))
    assert np.all(out[0, 2] == 0) and np.all(weights[0, :, 2] == 0)
    np.testing.assert_allclose(weights[1].sum(-1), 1.0, atol=1e-6)
    all_padding = np.zeros((2, 5), bool)
    assert np.all(np.asarray(ScaledDotProductAttention()(Q, K, V, padding_mask=all_padding)) == 0)


def test_masks_combine_with_logical_and():
    explicit = RNG.random((2, 5, 5)) > 0.3
    explicit[:, :, 0] = True  # keep every row non-empty
    layer = ScaledDotProductAttention()
    out = layer(Q, K, V, padding_mask=PADDING, attention_mask=explicit, causal=True)
    allowed = PADDING[:, None, None, :] & explicit[:, None] & np.tril(np.ones((5, 5), bool))[None, None]
    np.testing.assert_allclose(np.asarray(out), _numpy_attention(Q, K, V, allowed)[0], atol=1e-5)


def test_changing_a_padded_key_changes_no_output():
    layer = ScaledDotProductAttention()
    k2, v2 = K.copy(), V.copy()
    k2[0, 3:] += 100.0
    v2[0, 3:] -= 50.0
    before = np.asarray(layer(Q, K, V, padding_mask=PADDING))
    after = np.asarray(layer(Q, k2, v2, padding_mask=PADDING))
    np.testing.assert_allclose(after, before, atol=1e-6)


def test_causal_mask_hides_the_future():
    layer = ScaledDotProductAttention()
    before = np.asarray(layer(Q, K, V, causal=True))
    k2, v2 = K.copy(), V.copy()
    k2[:, 3] += 10.0
    v2[:, 3] += 10.0
    after = np.asarray(layer(Q, k2, v2, causal=True))
    np.testing.assert_allclose(after[:, :3], before[:, :3], atol=1e-6)
    assert not np.allclose(after[:, 3:], before[:, 3:])


def test_causal_mask_with_query_offset():
    mask = np.asarray(causal_attention_mask(2, 6, query_start_index=3))
    np.testing.assert_array_equal(mask, [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0]])
    np.testing.assert_array_equal(np.asarray(causal_attention_mask(2, 4)), [[1, 1, 1, 0], [1, 1, 1, 1]])


def test_single_head_rank_three_inputs():
    out = ScaledDotProductAttention()(Q[:, :, 0], K[:, :, 0], V[:, :, 0])
    np.testing.assert_allclose(
        np.asarray(out), _numpy_attention(Q[:, :, :1], K[:, :, :1], V[:, :, :1], True)[0][:, :, 0], atol=1e-5
    )


def test_softmax_runs_in_float32_under_bfloat16():
    # bfloat16 keeps 8 significant bits: a softmax computed (or returned) in bfloat16 is off by ~1e-3,
    # one computed in float32 from the same bfloat16 scores matches a float64 reference to ~1e-7.
    scores = ops.cast(RNG.normal(size=(2, 3, 5, 64)).astype("float32") * 8, "bfloat16")
    mask = np.tril(np.ones((5, 64), bool), k=59)[None, None]
    weights = masked_softmax(scores, mask)
    assert weights.dtype == "float32", f"softmax ran in {weights.dtype}, expected float32"
    reference = np.asarray(ops.cast(scores, "float32")).astype("float64")
    reference = np.where(mask, reference, -np.inf)
    reference = np.exp(reference - reference.max(-1, keepdims=True))
    reference /= reference.sum(-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(weights), reference, atol=1e-6)
    # Through the layer: large scores stay finite and the weights still sum to one.
    layer = ScaledDotProductAttention(dtype="mixed_bfloat16")
    _, layer_weights = layer(Q * 300, K * 300, V, return_attention_scores=True)
    layer_weights = np.asarray(layer_weights).astype("float32")
    assert np.all(np.isfinite(layer_weights))
    np.testing.assert_allclose(layer_weights.sum(-1), 1.0, atol=2e-2)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="dropout"):
        ScaledDotProductAttention(dropout=1.5)
    with pytest.raises(ValueError, match="head_dim"):
        ScaledDotProductAttention()(Q, K[..., :2], V)
