"""Sequence classification on the encoder backbone: pooling → dropout → dense head → class logits."""

import keras
from keras import ops

from llm_tf.checks import check_bool, check_choice, check_positive_int, check_rate
from llm_tf.models.transformer_encoder import (
    POOLING_CHOICES,
    TransformerEncoderConfig,
    _backbone_from,
    _compile_from_saved,
    _initializer,
)


@keras.saving.register_keras_serializable(package="llm_tf")
class TextClassifier(keras.Model):
    """Sequence classification: encoder backbone → pooling → dropout → dense head → class logits.

    Pooling (``pooling=``):

    * ``"first"`` — the first token's state (BERT's ``[CLS]`` position);
    * ``"mean"`` — the mean of the states of the real tokens (padding excluded), in float32;
    * ``"max"`` — the feature-wise maximum over the real tokens' states (padding excluded), in float32: each
      feature reports its strongest occurrence anywhere in the text, as the max-over-time pooling of
      convolutional sentence classifiers (Kim, 2014) does;
    * ``"mean_max"`` — ``[mean; max]``, the two above concatenated (``2 · hidden_dim`` features): ULMFiT's concat
      pooling (Howard & Ruder, 2018) without its last-token state, which a bidirectional encoder has no use for;
    * ``"pooler"`` — BERT's pooler ``tanh(W_p · h_first + b_p)``; with it the model is exactly Hugging
      Face's ``BertForSequenceClassification`` (pooler → dropout → ``Dense(num_labels)``).

    Either build a fresh backbone from ``config`` or pass a trained one (the fine-tuning path, e.g.
    ``MaskedLM.backbone``); ``freeze_backbone=True`` trains only the head and runs the backbone in
    inference mode (no dropout). Setting ``model.backbone.trainable`` later re-freezes or unfreezes it.

    Sublayers: ``backbone`` (:class:`TransformerEncoder`), ``pooler`` (``Dense(hidden_dim, "tanh")``,
    only with ``pooling="pooler"``), ``output_dropout`` and ``classifier`` (``Dense(num_classes)``, float32
    so the logits stay float32 under mixed precision).

    Args:
        num_classes: number of classes (logit width).
        pooling: ``"first"``, ``"mean"``, ``"max"``, ``"mean_max"`` or ``"pooler"``.
        dropout: dropout rate before the classifier, in ``[0, 1)``.
        backbone: an existing :class:`TransformerEncoder`; mutually exclusive with ``config``.
        config: a :class:`TransformerEncoderConfig` (or dict) for a new backbone.
        freeze_backbone: whether the backbone's weights stay fixed.
        **kwargs: standard model arguments (``name``, ``dtype``).

    Call arguments:
        inputs: ``{"token_ids", "padding_mask"[, "segment_ids"]}`` or bare token ids, as for
            :class:`TransformerEncoder`.
        training: whether dropout is active.

    Returns:
        float32 logits ``(batch, num_classes)``.

    Example:

    >>> config = TransformerEncoderConfig.from_preset("tiny", vocabulary_size=8000, num_segments=0)
    >>> classifier = TextClassifier(num_classes=5, pooling="mean", config=config)
    >>> classifier.compile(optimizer="adam")  # default loss: sparse categorical cross-entropy on logits
    >>> classifier({"token_ids": np.array([[2, 7, 9, 0]]), "padding_mask": np.array([[1, 1, 1, 0]])}).shape
    TensorShape([1, 5])
    """

    def __init__(
        self,
        num_classes,
        pooling="first",
        dropout=0.1,
        backbone=None,
        config=None,
        freeze_backbone=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("num_classes", num_classes)
        check_choice("pooling", pooling, set(POOLING_CHOICES))
        check_rate("dropout", dropout)
        check_bool("freeze_backbone", freeze_backbone)
        self.num_classes = num_classes
        self.pooling = pooling
        self.dropout = dropout
        self.backbone = _backbone_from(backbone, config, self.dtype_policy, type(self).__name__)
        if freeze_backbone:
            self.backbone.trainable = False
        hidden_dim = self.backbone.config.hidden_dim
        self.pooler = None
        if pooling == "pooler":
            self.pooler = keras.layers.Dense(
                hidden_dim,
                activation="tanh",
                kernel_initializer=_initializer(self.backbone.config),
                dtype=self.dtype_policy,
                name="pooler",
            )
        self.output_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="output_dropout")
        self.classifier = keras.layers.Dense(
            num_classes,
            kernel_initializer=_initializer(self.backbone.config),
            dtype="float32",
            name="classifier",
        )
        self.build()

    @property
    def config(self):
        """The backbone's :class:`TransformerEncoderConfig`."""
        return self.backbone.config

    def build(self, input_shape=None):
        hidden_dim = self.backbone.config.hidden_dim
        if self.pooler is not None:
            self.pooler.build((None, hidden_dim))
        self.classifier.build((None, 2 * hidden_dim if self.pooling == "mean_max" else hidden_dim))

    def call(self, inputs, training=None):
        token_ids, padding_mask, segment_ids = self.backbone.unpack_inputs(inputs)
        # A frozen backbone is a fixed feature extractor: its dropout stays off too.
        backbone_training = training if self.backbone.trainable else False
        sequence = self.backbone.encode(token_ids, padding_mask, segment_ids, training=backbone_training)
        if self.pooling in ("mean", "max", "mean_max"):
            pooled = _pool_real_tokens(sequence, padding_mask, self.pooling)
        else:
            pooled = sequence[:, 0, :]
            if self.pooler is not None:
                pooled = self.pooler(pooled)
        pooled = self.output_dropout(pooled, training=training)
        return self.classifier(pooled)

    def compile(self, optimizer="adam", loss="auto", metrics="auto", **kwargs):
        """``keras.Model.compile`` with defaults for integer class labels.

        ``loss="auto"`` is ``SparseCategoricalCrossentropy(from_logits=True)`` and ``metrics="auto"`` is
        ``[SparseCategoricalAccuracy(name="accuracy")]``; anything else is passed through unchanged.
        """
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        _compile_from_saved(self, config)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "pooling": self.pooling,
                "dropout": self.dropout,
                "config": self.backbone.config.to_dict(),
                "freeze_backbone": not self.backbone.trainable,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["config"] = TransformerEncoderConfig.from_dict(config["config"])
        return cls(**config)


def _pool_real_tokens(sequence, padding_mask, pooling):
    """Mean, max or ``[mean; max]`` of the real tokens' states, in float32; an all-padding row pools to zeros."""
    real = ops.cast(padding_mask, "bool")[:, :, None]
    states = ops.cast(sequence, "float32")
    pooled = []
    if pooling in ("mean", "mean_max"):
        weights = ops.cast(real, "float32")
        # max(count, 1): an all-padding row pools to zeros instead of 0/0.
        pooled.append(ops.sum(states * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0))
    if pooling in ("max", "mean_max"):
        real_states = ops.where(real, states, float("-inf"))
        # An all-padding row pools to zeros instead of -inf.
        pooled.append(ops.where(ops.any(real, axis=1), ops.max(real_states, axis=1), 0.0))
    return pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, axis=-1)
