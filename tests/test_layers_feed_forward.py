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
