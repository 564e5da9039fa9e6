"""Position-wise feed-forward network."""

import keras

from llm_tf.checks import check_positive_int, check_rate

# The two GELUs are named apart: BERT's uses the exact erf form, GPT-2's the tanh approximation.
_GELU_VARIANTS = {
    "gelu": lambda x: keras.activations.gelu(x, approximate=False),
    "gelu_tanh": lambda x: keras.activations.gelu(x, approximate=True),
}


def get_activation(activation):
    """The activation function for ``activation``: a callable, ``"gelu"`` (exact), ``"gelu_tanh"``, or any
    name (or serialized config) ``keras.activations.get`` knows (``"relu"``, ``"silu"``, ``"tanh"``, ...).

    Raises ValueError naming ``activation`` when it is none of these.
    """
    if isinstance(activation, str) and activation in _GELU_VARIANTS:
        return _GELU_VARIANTS[activation]
    if activation is None:
        raise ValueError("`activation` must be a callable or an activation name; got activation=None.")
    try:
        return keras.activations.get(activation)
    except (ValueError, TypeError):
        raise ValueError(
            f"`activation` must be a callable, 'gelu_tanh' or a keras.activations name (e.g. 'relu', 'gelu', "
            f"'silu'); got activation={activation!r}."
        ) from None


@keras.saving.register_keras_serializable(package="llm_tf")
class FeedForward(keras.layers.Layer):
    """The position-wise feed-forward network applied to every token independently.

    Implements

        Y = W_O · ReLU(W_F · H + b_F) + b_O

    (or GELU / SiLU in place of ReLU), widening each ``d``-dimensional vector to ``intermediate_dim``
    and projecting it back to ``d`` (or ``output_dim``).

    Args:
        intermediate_dim: width of the hidden layer (``4·d`` in BERT and GPT).
        activation: a callable or a name: ``"relu"``, ``"gelu"`` (exact, BERT), ``"gelu_tanh"`` (GPT-2),
            ``"silu"`` or any other ``keras.activations`` name.
        dropout: dropout rate on the output, in ``[0, 1)``.
        output_dim: output width (default: the input width).
        use_bias: whether both projections have biases.
        kernel_initializer: initializer of both kernels.
        bias_initializer: initializer of both biases.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: ``(batch, sequence, features)``.
        training: whether dropout is active.

    Returns:
        ``(batch, sequence, output_dim)``.

    Example:

    >>> ffn = FeedForward(intermediate_dim=256, activation="gelu")
    >>> ffn(keras.random.normal((2, 10, 64))).shape
    (2, 10, 64)
    """

    def __init__(
        self,
        intermediate_dim,
        activation="relu",
        dropout=0.0,
        output_dim=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("intermediate_dim", intermediate_dim)
        self._activation_fn = get_activation(activation)
        check_rate("dropout", dropout)
        check_positive_int("output_dim", output_dim, allow_none=True)
        self.intermediate_dim = intermediate_dim
        self.activation = activation
        self.dropout = dropout
        self.output_dim = output_dim
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def _dense(self, units, name):
        return keras.layers.Dense(
            units,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.get(keras.initializers.serialize(self.kernel_initializer)),
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, inputs_shape):
        output_dim = self.output_dim or inputs_shape[-1]
        self.intermediate_dense = self._dense(self.intermediate_dim, "intermediate")
        self.intermediate_dense.build(inputs_shape)
        self.output_dense = self._dense(output_dim, "output")
        self.output_dense.build(tuple(inputs_shape[:-1]) + (self.intermediate_dim,))
        self.built = True

    def call(self, inputs, training=None):
        hidden = self._activation_fn(self.intermediate_dense(inputs))
        return self.dropout_layer(self.output_dense(hidden), training=training)

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape[:-1]) + (self.output_dim or inputs_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "intermediate_dim": self.intermediate_dim,
                "activation": (
                    self.activation if isinstance(self.activation, str) else keras.activations.serialize(self.activation)
                ),
                "dropout": self.dropout,
                "output_dim": self.output_dim,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


