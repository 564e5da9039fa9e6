"""Models built from ``llm_tf.layers``: one readable file per model family.

Importing this package registers every model class with Keras, and everything llm_tf compiles them with
(optimizer, schedules, loss, metrics), so ``keras.saving.load_model`` can rebuild a saved ``.keras`` model, trained
and compiled, after a plain ``import llm_tf.models``.
"""

# A trained model's .keras file also holds what it was compiled with: llm_tf's optimizer, learning-rate schedules,
# loss and metrics. Importing their modules registers them too, so load_model needs nothing else.
from llm_tf.metrics import keras_metrics as _keras_metrics  # noqa: F401
from llm_tf.models.gpt import GPT, GPT_PRESETS, GPTConfig
from llm_tf.models.masked_lm import MaskedLM
from llm_tf.models.seq2seq import SEQ2SEQ_PRESETS, Seq2SeqConfig, Seq2SeqTransformer
from llm_tf.models.text_classifier import TextClassifier
from llm_tf.models.transformer_encoder import (
    ENCODER_PRESETS,
    TransformerEncoder,
    TransformerEncoderConfig,
    lengthen_positions,
)
from llm_tf.training import losses as _losses  # noqa: F401
from llm_tf.training import optimizers as _optimizers  # noqa: F401
from llm_tf.training import schedules as _schedules  # noqa: F401

__all__ = [
    "ENCODER_PRESETS",
    "GPT",
    "GPTConfig",
    "GPT_PRESETS",
    "MaskedLM",
    "SEQ2SEQ_PRESETS",
    "Seq2SeqConfig",
    "Seq2SeqTransformer",
    "TextClassifier",
    "TransformerEncoder",
    "TransformerEncoderConfig",
    "count_parameters",
    "describe_config",
    "lengthen_positions",
    "training_flops_per_token",
]


def __getattr__(name):
    # The sizing helpers build models to count parameters; load them on first use.
    if name in ("count_parameters", "describe_config", "training_flops_per_token"):
        from llm_tf.models import sizing

        return getattr(sizing, name)
    raise AttributeError(f"module 'llm_tf.models' has no attribute {name!r}")
