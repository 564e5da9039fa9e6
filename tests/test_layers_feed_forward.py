import keras
import numpy as np
import pytest
from scipy.special import erf

from llm_tf.layers import FeedForward
from tests.layer_checks import run_layer_checks

X = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])


def test_standard_checks():
    run_layer_checks(lambda **kw: FeedForward(32, **kw), X, expected_output_shape=(2, 5, 8), mask=MASK)


def _numpy_reference(layer, x, activation):
    w_f, b_f = (np.asarray(v) for v in layer.intermediate_dense.weights)
    w_o, b_o = (np.asarray(v) for v in layer.output_dense.weights)
    hidden = x @ w_f + b_f
    if activation == "relu":
        hidden = np.maximum(hidden, 0)
    elif activation == "gelu":
        hidden = 0.5 * hidden * (1 + erf(hidden / np.sqrt(2)))
    else:
        hidden = 0.5 * hidden * (1 + np.tanh(np.sqrt(2 / np.pi) * (hidden + 0.044715 * hidden**3)))
    return hidden @ w_o + b_o


@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh"])
def test_equation(activation):
    layer = FeedForward(32, activation=activation)
    out = np.asarray(layer(X))
    np.testing.assert_allclose(out, _numpy_reference(layer, X, activation), atol=1e-5)


def test_output_dim_and_no_bias():
    layer = FeedForward(32, output_dim=3, use_bias=False)
    assert layer(X).shape == (2, 5, 3)
    assert len(layer.weights) == 2


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"intermediate_dim": 0}, "intermediate_dim"),
        ({"intermediate_dim": 8, "activation": "swish42"}, "activation"),
        ({"intermediate_dim": 8, "dropout": 1.0}, "dropout"),
        ({"intermediate_dim": 8, "dropout": -0.1}, "dropout"),
        ({"intermediate_dim": 8, "output_dim": 0}, "output_dim"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        FeedForward(**kwargs)


def test_any_keras_activation_name_or_callable():
    by_name = FeedForward(32, activation="tanh")
    out = np.asarray(by_name(X))
    w_f, b_f = (np.asarray(w) for w in by_name.intermediate_dense.weights)
    w_o, b_o = (np.asarray(w) for w in by_name.output_dense.weights)
    np.testing.assert_allclose(out, np.tanh(X @ w_f + b_f) @ w_o + b_o, atol=1e-5)
    by_callable = FeedForward(32, activation=lambda x: 2.0 * keras.ops.relu(x))
    out = np.asarray(by_callable(X))
    w_f, b_f = (np.asarray(w) for w in by_callable.intermediate_dense.weights)
    w_o, b_o = (np.asarray(w) for w in by_callable.output_dense.weights)
    np.testing.assert_allclose(out, 2.0 * np.maximum(X @ w_f + b_f, 0) @ w_o + b_o, atol=1e-5)
    # The two GELUs stay distinct: the exact erf form vs GPT-2's tanh approximation.
    exact, approximate = FeedForward(32, activation="gelu"), FeedForward(32, activation="gelu_tanh")
    exact(X), approximate(X)
    approximate.set_weights(exact.get_weights())
    assert not np.allclose(np.asarray(exact(X)), np.asarray(approximate(X)), atol=1e-7)
