"""Losses for Transformer training: sparse cross-entropy with label smoothing.

Registered Keras serializables (package ``llm_tf``): a ``.keras`` file compiled with one reloads after
``import llm_tf.models`` (which imports this package for that reason).
"""

from __future__ import annotations

import keras
from keras import ops

from llm_tf.checks import check_rate


@keras.saving.register_keras_serializable(package="llm_tf")
class LabelSmoothedCrossentropy(keras.losses.Loss):
    """Sparse cross-entropy from logits with label smoothing ``epsilon`` (uniform over the vocabulary).

    ``loss = (1 - epsilon) * -log p(y) + epsilon * mean_v(-log p(v))``.
    """

    def __init__(self, epsilon=0.1, name="label_smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        check_rate("epsilon", epsilon)
        self.epsilon = float(epsilon)

    def call(self, y_true, y_pred):
        log_probabilities = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        true = ops.take_along_axis(log_probabilities, ops.cast(y_true, "int32")[..., None], axis=-1)[..., 0]
        return -(1.0 - self.epsilon) * true - self.epsilon * ops.mean(log_probabilities, axis=-1)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
