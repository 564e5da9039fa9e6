"""Models built from ``llm_tf.layers``: one readable file per model family.

Names are imported lazily, so ``import llm_tf.models`` stays cheap and each family loads on first use.
"""

import importlib

_EXPORTS = {
    # BERT-style encoder family: llm_tf/models/transformer_encoder.py
    "TransformerEncoderConfig": "transformer_encoder",
    "TransformerEncoder": "transformer_encoder",
    "TextClassifier": "transformer_encoder",
    "MaskedLM": "transformer_encoder",
    "ENCODER_PRESETS": "transformer_encoder",
    # GPT-style decoder: llm_tf/models/gpt.py
    "GPTConfig": "gpt",
    "GPT": "gpt",
    "GPT_PRESETS": "gpt",
    # Encoder–decoder: llm_tf/models/seq2seq.py
    "Seq2SeqConfig": "seq2seq",
    "Seq2SeqTransformer": "seq2seq",
    "SEQ2SEQ_PRESETS": "seq2seq",
    # Sizes and budgets: llm_tf/models/sizing.py
    "count_parameters": "sizing",
    "training_flops_per_token": "sizing",
    "describe_config": "sizing",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'llm_tf.models' has no attribute {name!r}")
    module = importlib.import_module(f"llm_tf.models.{_EXPORTS[name]}")
    return getattr(module, name)
