"""Masked language model on the encoder backbone: BERT's MLM head tied to the token embedding."""

import keras
from keras import ops

from llm_tf.layers.feed_forward import get_activation
from llm_tf.models.transformer_encoder import (
    BACKBONE_INPUT_KEYS,
    TransformerEncoderConfig,
    _backbone_from,
    _check_id_range,
    _check_inputs_dict,
    _compile_from_saved,
    _initializer,
)


@keras.saving.register_keras_serializable(package="llm_tf")
class MaskedLM(keras.Model):
    """Masked language model: encoder backbone + BERT's MLM head, evaluated at the masked positions only.

    Implements, for the backbone states ``h`` gathered at ``mask_positions`` (gathering first keeps the
    vocabulary projection to ``P`` positions instead of ``T``)::

        z      = LayerNorm(act(W_t · h + b_t))
        logits = z · W_tokᵀ + b_out                  (W_tok: the backbone's token embedding, tied)

    which is Hugging Face's ``BertForMaskedLM`` head (``cls.predictions``). The logits are float32.

    Training data are ``({"token_ids", "padding_mask", "mask_positions"}, mask_ids, mask_weights)``:
    ``mask_ids`` ``(batch, P)`` are the original tokens at the masked positions and ``mask_weights``
    ``(batch, P)`` are 1 for real masks and 0 for padded slots. :meth:`compile` defaults to
    ``SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")`` (the mean
    over real masks) and a weighted accuracy, so weight-0 slots count for neither.

    Sublayers: ``backbone`` (:class:`TransformerEncoder`), ``transform_dense`` (``Dense(hidden_dim)``),
    ``transform_norm`` (LayerNorm) and the weight ``output_bias`` ``(vocabulary_size,)``; the output
    projection reuses ``backbone.embedding.token_embeddings``.

    Args:
        backbone: an existing :class:`TransformerEncoder`; mutually exclusive with ``config``.
        config: a :class:`TransformerEncoderConfig` (or dict) for a new backbone.
        **kwargs: standard model arguments (``name``, ``dtype``).

    Call arguments:
        inputs: ``{"token_ids", "padding_mask"[, "segment_ids"], "mask_positions"}`` with
            ``mask_positions`` int ``(batch, P)`` in ``[0, sequence)``. Without ``mask_positions`` (or with
            bare token ids) the head runs at every position.
        training: whether dropout is active.

    Returns:
        float32 logits ``(batch, P, vocabulary_size)`` (``(batch, sequence, vocabulary_size)`` without
        ``mask_positions``).

    Example:

    >>> mlm = MaskedLM(config=TransformerEncoderConfig.from_preset("tiny", vocabulary_size=1000))
    >>> mlm.compile(optimizer="adam")
    >>> inputs = {"token_ids": np.array([[2, 4, 9, 3]]), "padding_mask": np.array([[1, 1, 1, 1]]),
    ...           "mask_positions": np.array([[1, 0]])}
    >>> mlm(inputs).shape
    TensorShape([1, 2, 1000])
    """

    def __init__(self, backbone=None, config=None, **kwargs):
        super().__init__(**kwargs)
        self.backbone = _backbone_from(backbone, config, self.dtype_policy, type(self).__name__)
        backbone_config = self.backbone.config
        self.transform_dense = keras.layers.Dense(
            backbone_config.hidden_dim,
            kernel_initializer=_initializer(backbone_config),
            dtype=self.dtype_policy,
            name="transform_dense",
        )
        self.transform_norm = keras.layers.LayerNormalization(
            epsilon=backbone_config.layer_norm_epsilon, dtype=self.dtype_policy, name="transform_norm"
        )
        self.build()

    @property
    def config(self):
        """The backbone's :class:`TransformerEncoderConfig`."""
        return self.backbone.config

    def build(self, input_shape=None):
        hidden_dim = self.backbone.config.hidden_dim
        self.transform_dense.build((None, None, hidden_dim))
        self.transform_norm.build((None, None, hidden_dim))
        self.output_bias = self.add_weight(
            name="output_bias", shape=(self.backbone.config.vocabulary_size,), initializer="zeros"
        )

    def call(self, inputs, training=None):
        mask_positions = None
        if isinstance(inputs, dict):
            _check_inputs_dict(inputs, BACKBONE_INPUT_KEYS + ("mask_positions",), type(self).__name__)
            inputs = dict(inputs)
            mask_positions = inputs.pop("mask_positions", None)
        token_ids, padding_mask, segment_ids = self.backbone.unpack_inputs(inputs)
        sequence = self.backbone.encode(token_ids, padding_mask, segment_ids, training=training)
        if mask_positions is not None:
            if len(mask_positions.shape) != 2:
                raise ValueError(
                    f"`mask_positions` must have shape (batch, num_masks); "
                    f"got mask_positions shape {tuple(mask_positions.shape)}."
                )
            length = token_ids.shape[1]
            if length is not None:
                _check_id_range("mask_positions", mask_positions, length, "sequence length")
            mask_positions = ops.cast(mask_positions, "int32")
            sequence = ops.take_along_axis(sequence, mask_positions[:, :, None], axis=1)
        return self.predict_tokens(sequence)

    def predict_tokens(self, hidden):
        """The MLM head on backbone states: ``(..., hidden_dim)`` → float32 ``(..., vocabulary_size)``."""
        hidden = self.transform_dense(hidden)
        hidden = get_activation(self.backbone.config.activation)(hidden)
        hidden = self.transform_norm(hidden)
        logits = self.backbone.embedding.project_to_vocabulary(hidden)
        return ops.cast(logits, "float32") + ops.cast(self.output_bias, "float32")

    def compile(self, optimizer="adam", loss="auto", weighted_metrics="auto", **kwargs):
        """``keras.Model.compile`` with masked-LM defaults.

        ``loss="auto"`` is ``SparseCategoricalCrossentropy(from_logits=True,
        reduction="mean_with_sample_weight")`` — with ``mask_weights`` as sample weights, the mean
        cross-entropy over the real masks — and ``weighted_metrics="auto"`` is
        ``[SparseCategoricalAccuracy(name="accuracy")]``, the accuracy over the real masks.
        """
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, reduction="mean_with_sample_weight"
            )
        if weighted_metrics == "auto":
            weighted_metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        super().compile(optimizer=optimizer, loss=loss, weighted_metrics=weighted_metrics, **kwargs)

    def compile_from_config(self, config):
        _compile_from_saved(self, config)

    def get_config(self):
        config = super().get_config()
        config["config"] = self.backbone.config.to_dict()
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["config"] = TransformerEncoderConfig.from_dict(config["config"])
        return cls(**config)
