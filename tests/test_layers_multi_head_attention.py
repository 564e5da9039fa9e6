import keras
import numpy as np
import pytest

from llm_tf.layers import MultiHeadAttention
from tests.layer_checks import run_layer_checks

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 6, 16)).astype("float32")
ENCODER = RNG.normal(size=(2, 4, 16)).astype("float32")
PADDING = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=bool)
ENCODER_PADDING = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=bool)


def test_standard_checks_self_attention():
    run_layer_checks(
        lambda **kw: MultiHeadAttention(4, 4, **kw),
        X,
        call_kwargs={"use_causal_mask": True},
        expected_output_shape=(2, 6, 16),
        mask=PADDING.astype("int32"),
    )


def test_standard_checks_cross_attention():
    run_layer_checks(lambda **kw: MultiHeadAttention(2, 8, value_dim=6, **kw), [X, ENCODER])


def _keras_reference_pair(**kwargs):
    ours = MultiHeadAttention(**kwargs)
    if "output_dim" in kwargs:  # Keras names it `output_shape`
        kwargs["output_shape"] = kwargs.pop("output_dim")
    reference = keras.layers.MultiHeadAttention(**kwargs)
    return ours, reference


def _copy_weights(ours, reference):
    for mine, theirs in [
        (ours.query_dense, reference._query_dense),
        (ours.key_dense, reference._key_dense),
        (ours.value_dense, reference._value_dense),
        (ours.output_dense, reference._output_dense),
    ]:
        mine.set_weights([w + 0.01 * RNG.normal(size=w.shape) for w in theirs.get_weights()])
        theirs.set_weights(mine.get_weights())  # identical, random (non-zero) biases included


@pytest.mark.parametrize(
    "case",
    ["self", "self_padding", "self_causal", "self_causal_padding", "cross", "cross_padding", "value_dim"],
)
def test_matches_keras_multi_head_attention(case):
    kwargs = {"num_heads": 4, "key_dim": 4}
    if case == "value_dim":
        kwargs |= {"value_dim": 3, "output_dim": 5}
    ours, reference = _keras_reference_pair(**kwargs)
    cross = case.startswith("cross")
    value = ENCODER if cross else X
    ours(X, value)
    reference(X, value)
    _copy_weights(ours, reference)
    our_kwargs, their_kwargs = {}, {}
    if "padding" in case:
        key_padding = ENCODER_PADDING if cross else PADDING
        our_kwargs["padding_mask"] = key_padding
        their_kwargs["attention_mask"] = np.broadcast_to(key_padding[:, None, :], (2, 6, value.shape[1]))
    if "causal" in case:
        our_kwargs["use_causal_mask"] = their_kwargs["use_causal_mask"] = True
    ours_out, ours_scores = ours(X, value, return_attention_scores=True, **our_kwargs)
    their_out, their_scores = reference(X, value, return_attention_scores=True, **their_kwargs)
    difference = float(np.max(np.abs(np.asarray(ours_out) - np.asarray(their_out))))
    print(f"max abs diff vs keras.layers.MultiHeadAttention [{case}]: {difference:.3e}")
    assert difference <= 1e-5
    np.testing.assert_allclose(np.asarray(ours_scores), np.asarray(their_scores), atol=1e-6)


def test_per_head_weights_and_padding_invariance():
    layer = MultiHeadAttention(4, 4)
    out, scores = layer(X, padding_mask=PADDING, return_attention_scores=True)
    assert scores.shape == (2, 4, 6, 6)
    np.testing.assert_allclose(np.asarray(scores).sum(-1), 1.0, atol=1e-6)
    changed = X.copy()
    changed[0, 4:] = 99.0
    out2 = layer(changed, padding_mask=PADDING)
    np.testing.assert_allclose(np.asarray(out2)[0, :4], np.asarray(out)[0, :4], atol=1e-5)


def test_cached_incremental_decoding_equals_full_causal_pass():
    layer = MultiHeadAttention(4, 4)
    full = np.asarray(layer(X, use_causal_mask=True))
    max_length = 8  # longer than the sequence: the unused cache slots must stay invisible
    cache = np.zeros((2, 2, max_length, 4, 4), "float32")
    # Prefill the first three tokens in one pass, then one token at a time.
    prefill, cache = layer(X[:, :3], cache=cache, cache_index=0)
    outputs = [np.asarray(prefill)]
    for index in range(3, 6):
        step, cache = layer(X[:, index : index + 1], cache=cache, cache_index=index)
        outputs.append(np.asarray(step))
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), full, atol=1e-5)


def test_precomputed_cross_attention_cache_equals_direct_call():
    layer = MultiHeadAttention(2, 8)
    direct = np.asarray(layer(X, ENCODER, padding_mask=ENCODER_PADDING))
    cache = layer.compute_key_value_cache(ENCODER)
    cached, same_cache = layer(X, cache=cache, padding_mask=ENCODER_PADDING)
    np.testing.assert_allclose(np.asarray(cached), direct, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(same_cache), np.asarray(cache))


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"num_heads": 0, "key_dim": 4}, "num_heads"),
        ({"num_heads": 2, "key_dim": -1}, "key_dim"),
        ({"num_heads": 2, "key_dim": 4, "dropout": 1.0}, "dropout"),
        ({"num_heads": 2, "key_dim": 4, "value_dim": 0}, "value_dim"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        MultiHeadAttention(**kwargs)


def test_mismatched_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="same sequence length"):
        MultiHeadAttention(2, 4)(X, ENCODER, key=X)
    with pytest.raises(ValueError, match="query"):
        MultiHeadAttention(2, 4)(X[0])
