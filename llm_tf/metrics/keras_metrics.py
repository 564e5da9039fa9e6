"""Keras metrics (``keras.ops`` only) for ``model.compile(metrics=[...])``.

``Perplexity`` accumulates the weighted sum of token cross-entropies and the sum of weights over
batches and takes the exponential only at the end: the perplexity of the whole evaluation set, not a
mean of per-batch perplexities.
"""

import keras
from keras import ops

from llm_tf.checks import check_bool, check_int


@keras.saving.register_keras_serializable(package="llm_tf")
class Perplexity(keras.metrics.Metric):
    """Corpus perplexity of a language model, for ``model.compile(metrics=[Perplexity()])``.

    ``update_state`` takes integer targets ``(batch, sequence)`` and predictions
    ``(batch, sequence, vocab)`` (logits by default) and adds ``sum(weight · CE)`` and ``sum(weight)``
    over the tokens; ``result()`` is ``exp(total CE / total weight)`` (0.0 before any token is seen).
    A token's weight is ``y_true != ignore_class`` times the ``sample_weight`` when one is given.
    Written with ``keras.ops`` only; computed in float32 whatever the model's compute dtype.

    Padding: Keras passes ``sample_weight`` only to ``compile(weighted_metrics=[...])``, never to
    ``compile(metrics=[...])``. Hence the default ``ignore_class=0``: the project's padding id is 0
    and padded label positions hold 0, so ``metrics=[Perplexity()]`` already leaves padding out. Use
    ``weighted_metrics=[Perplexity(ignore_class=None)]`` when the dataset's sample weights (e.g. the
    masked positions of a masked LM) must decide which tokens count.

    Args:
        from_logits: whether ``y_pred`` holds logits (True) or probabilities (False).
        ignore_class: target id left out of the average (default 0, the padding id); None counts
            every position.
        name: metric name, the key in ``logs`` (``perplexity`` / ``val_perplexity``).
        dtype: dtype of the accumulators.

    Example:
        >>> model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ...               metrics=[Perplexity()])
    """

    def __init__(self, from_logits=True, ignore_class=0, name="perplexity", dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        check_bool("from_logits", from_logits)
        check_int("ignore_class", ignore_class, allow_none=True)
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        self.total_cross_entropy = self.add_variable(
            shape=(), initializer="zeros", dtype=self.dtype, name="total_cross_entropy"
        )
        self.total_weight = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="total_weight")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.cast(y_pred, self.dtype)
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):
            # (batch, sequence, 1) targets: drop the trailing axis.
            y_true = ops.squeeze(y_true, axis=-1)
        weights = ops.ones(ops.shape(y_true), dtype=self.dtype)
        if self.ignore_class is not None:
            keep = ops.not_equal(y_true, self.ignore_class)
            weights = weights * ops.cast(keep, self.dtype)
            # The ignored id may be outside the vocabulary (e.g. -100): give the loss a valid index.
            y_true = ops.where(keep, y_true, ops.zeros_like(y_true))
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, self.dtype)
            if len(sample_weight.shape) == len(weights.shape) + 1:
                sample_weight = ops.squeeze(sample_weight, axis=-1)
            # Per-example weights (batch,) spread over the sequence axis.
            while len(sample_weight.shape) < len(weights.shape):
                sample_weight = ops.expand_dims(sample_weight, axis=-1)
            weights = weights * sample_weight
        token_cross_entropy = ops.sparse_categorical_crossentropy(y_true, y_pred, from_logits=self.from_logits)
        self.total_cross_entropy.assign_add(ops.sum(token_cross_entropy * weights))
        self.total_weight.assign_add(ops.sum(weights))

    def result(self):
        mean_cross_entropy = ops.divide_no_nan(self.total_cross_entropy, self.total_weight)
        return ops.where(self.total_weight > 0, ops.exp(mean_cross_entropy), ops.zeros_like(mean_cross_entropy))

    def get_config(self):
        return {
            "name": self.name,
            "dtype": self.dtype,
            "from_logits": self.from_logits,
            "ignore_class": self.ignore_class,
        }
