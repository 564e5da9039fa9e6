"""Transformer encoder block (bidirectional, BERT-style) and decoder block (causal, GPT-style)."""

import keras

from llm_tf.checks import check_number, check_positive_int, check_rate
from llm_tf.layers.feed_forward import FeedForward, get_activation
from llm_tf.layers.multi_head_attention import MultiHeadAttention


class _TransformerBlockBase(keras.layers.Layer):
    """Arguments, validation and sublayer factories shared by the encoder and decoder blocks."""

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        dropout=0.0,
        attention_dropout=None,
        activation="relu",
        layer_norm_epsilon=1e-5,
        norm_first=False,
        key_dim=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("num_heads", num_heads)
        check_positive_int("intermediate_dim", intermediate_dim)
        check_rate("dropout", dropout)
        if attention_dropout is not None:
            check_rate("attention_dropout", attention_dropout)
        get_activation(activation)  # raises a ValueError naming `activation` for an unknown one
        check_number("layer_norm_epsilon", layer_norm_epsilon, minimum=0, exclusive_minimum=True)
        check_positive_int("key_dim", key_dim, allow_none=True)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.norm_first = norm_first
        self.key_dim = key_dim
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True

    def _head_dim(self, hidden_dim):
        if self.key_dim is not None:
            return self.key_dim
        if hidden_dim % self.num_heads != 0:
            raise ValueError(
                f"the embedding dim must be divisible by `num_heads`; got embedding dim {hidden_dim} "
                f"and num_heads={self.num_heads}."
            )
        return hidden_dim // self.num_heads

    def _initializer(self):
        return keras.initializers.get(keras.initializers.serialize(self.kernel_initializer))

    def _attention(self, name, hidden_dim):
        return MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=self._head_dim(hidden_dim),
            dropout=self.dropout if self.attention_dropout is None else self.attention_dropout,
            use_bias=self.use_bias,
            output_dim=hidden_dim,
            kernel_initializer=self._initializer(),
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name=name,
        )

    def _norm(self, name, shape):
        norm = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name)
        norm.build(shape)
        return norm

    def _feed_forward(self, shape):
        ffn = FeedForward(
            intermediate_dim=self.intermediate_dim,
            activation=self.activation,
            # The block applies dropout to every residual branch itself; avoid dropping twice.
            dropout=0.0,
            use_bias=self.use_bias,
            kernel_initializer=self._initializer(),
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name="feed_forward",
        )
        ffn.build(shape)
        return ffn

    def _residual(self, inputs, sublayer_fn, norm, training):
        """Post-norm ``LN(x + Dropout(f(x)))`` or pre-norm ``x + Dropout(f(LN(x)))``.

        ``sublayer_fn`` may return ``(output, extra)``; ``extra`` (a cache) is passed through.
        """
        outputs = sublayer_fn(norm(inputs) if self.norm_first else inputs)
        extra = None
        if isinstance(outputs, tuple):
            outputs, extra = outputs[0], outputs[1:]
        outputs = self.dropout_layer(outputs, training=training)
        outputs = inputs + outputs
        if not self.norm_first:
            outputs = norm(outputs)
        return outputs, extra

    def compute_mask(self, inputs, mask=None, **kwargs):
        return mask

    def compute_output_shape(self, inputs_shape, *args, **kwargs):
        return tuple(inputs_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "norm_first": self.norm_first,
                "key_dim": self.key_dim,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="llm_tf")
class TransformerEncoderBlock(_TransformerBlockBase):
    """One bidirectional Transformer encoder layer (BERT, the original Transformer's encoder).

    Implements, with post-norm (``norm_first=False``, BERT and the original Transformer):

        H' = LayerNorm(H + MultiHead(H, H, H))
        Y  = LayerNorm(H' + FFN(H')),      FFN(x) = W_O·ReLU(W_F·x + b_F) + b_O

    or with pre-norm (``norm_first=True``): ``H' = H + MultiHead(LN(H))``, ``Y = H' + FFN(LN(H'))``.
    Every token attends to every unpadded token.

    Args:
        num_heads: number of attention heads; must divide the embedding dim unless ``key_dim`` is given.
        intermediate_dim: hidden width of the feed-forward network.
        dropout: dropout rate after attention and feed-forward (and on attention weights unless
            ``attention_dropout`` is set), in ``[0, 1)``.
        attention_dropout: dropout rate on the attention weights (default ``dropout``).
        activation: feed-forward activation (``"relu"``, ``"gelu"``, ``"gelu_tanh"``, ``"silu"``).
        layer_norm_epsilon: epsilon of both LayerNorms (BERT uses 1e-12).
        norm_first: pre-norm (True) or post-norm (False).
        key_dim: size per head (default ``embedding_dim // num_heads``).
        use_bias: whether the projections have biases.
        kernel_initializer: initializer of all kernels.
        bias_initializer: initializer of all biases.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: ``(batch, sequence, features)``.
        padding_mask: ``(batch, sequence)``, True for real tokens (default: the inputs' Keras mask).
        attention_mask: ``(batch, sequence, sequence)``, True where attention is allowed.
        training: whether dropout is active.

    Returns:
        ``(batch, sequence, features)``.

    Example:

    >>> block = TransformerEncoderBlock(num_heads=4, intermediate_dim=256)
    >>> block(keras.random.normal((2, 10, 64))).shape
    (2, 10, 64)
    """

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        self.self_attention = self._attention("self_attention", hidden_dim)
        self.self_attention.build(inputs_shape)
        self.self_attention_norm = self._norm("self_attention_norm", inputs_shape)
        self.feed_forward = self._feed_forward(inputs_shape)
        self.feed_forward_norm = self._norm("feed_forward_norm", inputs_shape)
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.built = True

    def call(self, inputs, padding_mask=None, attention_mask=None, training=None):
        if padding_mask is None:
            padding_mask = getattr(inputs, "_keras_mask", None)
        hidden, _ = self._residual(
            inputs,
            lambda x: self.self_attention(
                x, padding_mask=padding_mask, attention_mask=attention_mask, training=training
            ),
            self.self_attention_norm,
            training,
        )
        outputs, _ = self._residual(
            hidden,
            lambda x: self.feed_forward(x, training=training),
            self.feed_forward_norm,
            training,
        )
        return outputs


@keras.saving.register_keras_serializable(package="llm_tf")
class TransformerDecoderBlock(_TransformerBlockBase):
    """One causal Transformer decoder layer (GPT; with ``cross_attention=True``, the original decoder).

    Implements, with pre-norm (``norm_first=True``, GPT-2):

        H' = H + MaskedMultiHead(LN(H))                 (token t sees tokens ≤ t)
        H''= H' + MultiHead(LN(H'), E, E)               (only with cross_attention; E = encoder output)
        Y  = H'' + FFN(LN(H''))

    and the same with ``LN(x + f(x))`` in place of ``x + f(LN(x))`` for post-norm.

    For incremental decoding pass ``self_attention_cache`` (``(batch, 2, max_length, heads,
    head_dim)``) and ``cache_index``: the block then returns ``(outputs, updated_cache)``. A fixed
    cross-attention cache (see :meth:`compute_cross_attention_cache`) avoids re-projecting the
    encoder output at every step.

    Args:
        num_heads, intermediate_dim, dropout, attention_dropout, activation, layer_norm_epsilon,
        norm_first, key_dim, use_bias, kernel_initializer, bias_initializer: as in
            :class:`TransformerEncoderBlock`.
        cross_attention: whether the block attends to an encoder output.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: ``(batch, sequence, features)``.
        encoder_output: ``(batch, encoder_sequence, features)``; required with cross-attention
            unless ``cross_attention_cache`` is given.
        padding_mask: ``(batch, sequence)`` (``(batch, max_length)`` with a cache), True for real tokens.
        encoder_padding_mask: ``(batch, encoder_sequence)``, True for real encoder tokens.
        attention_mask: ``(batch, sequence, key_sequence)`` extra self-attention mask.
        self_attention_cache: optional key/value cache, see above.
        cache_index: where the new tokens' keys/values are written in the cache.
        cross_attention_cache: optional precomputed encoder keys/values.
        training: whether dropout is active.

    Returns:
        ``(batch, sequence, features)``, or ``(outputs, self_attention_cache)`` with a cache.

    Example:

    >>> block = TransformerDecoderBlock(num_heads=4, intermediate_dim=256, norm_first=True)
    >>> block(keras.random.normal((2, 10, 64))).shape
    (2, 10, 64)
    """

    def __init__(self, num_heads, intermediate_dim, cross_attention=False, **kwargs):
        super().__init__(num_heads, intermediate_dim, **kwargs)
        self.cross_attention = cross_attention

    def build(self, inputs_shape, encoder_output_shape=None):
        hidden_dim = inputs_shape[-1]
        self.self_attention = self._attention("self_attention", hidden_dim)
        self.self_attention.build(inputs_shape)
        self.self_attention_norm = self._norm("self_attention_norm", inputs_shape)
        if self.cross_attention:
            encoder_output_shape = encoder_output_shape or inputs_shape
            self.cross_attention_layer = self._attention("cross_attention", hidden_dim)
            self.cross_attention_layer.build(inputs_shape, encoder_output_shape)
            self.cross_attention_norm = self._norm("cross_attention_norm", inputs_shape)
        self.feed_forward = self._feed_forward(inputs_shape)
        self.feed_forward_norm = self._norm("feed_forward_norm", inputs_shape)
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.built = True

    def compute_cross_attention_cache(self, encoder_output):
        """Project ``encoder_output`` once into the cross-attention keys/values."""
        if not self.cross_attention:
            raise ValueError("compute_cross_attention_cache needs a block built with cross_attention=True.")
        return self.cross_attention_layer.compute_key_value_cache(encoder_output)

    def call(
        self,
        inputs,
        encoder_output=None,
        padding_mask=None,
        encoder_padding_mask=None,
        attention_mask=None,
        self_attention_cache=None,
        cache_index=None,
        cross_attention_cache=None,
        training=None,
    ):
        if self.cross_attention and encoder_output is None and cross_attention_cache is None:
            raise ValueError(
                "this block has cross_attention=True: pass `encoder_output` or `cross_attention_cache`."
            )
        if not self.cross_attention and (encoder_output is not None or cross_attention_cache is not None):
            raise ValueError("`encoder_output` was given to a block built with cross_attention=False.")
        if self_attention_cache is not None and cache_index is None:
            raise ValueError("`self_attention_cache` needs `cache_index` (where the new tokens are written).")
        if padding_mask is None and self_attention_cache is None:
            padding_mask = getattr(inputs, "_keras_mask", None)
        if encoder_padding_mask is None and encoder_output is not None:
            encoder_padding_mask = getattr(encoder_output, "_keras_mask", None)

        hidden, extra = self._residual(
            inputs,
            lambda x: self.self_attention(
                x,
                padding_mask=padding_mask,
                attention_mask=attention_mask,
                use_causal_mask=True,
                cache=self_attention_cache,
                cache_index=cache_index,
                training=training,
            ),
            self.self_attention_norm,
            training,
        )
        if self_attention_cache is not None:
            self_attention_cache = extra[0]
        if self.cross_attention:
            hidden, _ = self._residual(
                hidden,
                lambda x: self.cross_attention_layer(
                    x,
                    encoder_output,
                    padding_mask=encoder_padding_mask,
                    cache=cross_attention_cache,
                    training=training,
                ),
                self.cross_attention_norm,
                training,
            )
        outputs, _ = self._residual(
            hidden, lambda x: self.feed_forward(x, training=training), self.feed_forward_norm, training
        )
        if self_attention_cache is not None:
            return outputs, self_attention_cache
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update({"cross_attention": self.cross_attention})
        return config
