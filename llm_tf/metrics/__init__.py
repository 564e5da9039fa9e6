"""Evaluation metrics: BLEU/chrF (sacreBLEU), ROUGE (rouge-score), classification metrics, perplexity.

Text metrics take detokenized strings; classification metrics take integer class ids; generation is
reached through a plain ``generate_fn(list[str]) -> list[str]`` so that nothing here depends on model
classes. The Keras pieces (``Perplexity``, ``GenerationMetricsCallback``) are imported on first use,
so ``from llm_tf.metrics import corpus_bleu`` does not load TensorFlow.

Example:
    >>> from llm_tf.metrics import corpus_bleu, corpus_rouge, classification_report, perplexity
    >>> corpus_bleu(["the cat sat on the mat"], ["the cat sat on a mat"])["score"]  # doctest: +ELLIPSIS
    45.48...
"""

import importlib

from llm_tf.metrics.classification import classification_report, confusion_matrix
from llm_tf.metrics.evaluation import (
    GENERATION_METRICS,
    evaluate_classifier,
    evaluate_generation,
    flatten_generation_scores,
    generate_texts,
    score_generation,
)
from llm_tf.metrics.language_modeling import perplexity
from llm_tf.metrics.rouge import DEFAULT_ROUGE_TYPES, bootstrap_mean_interval, corpus_rouge
from llm_tf.metrics.translation import corpus_bleu, corpus_chrf

# Names whose modules import keras (and so TensorFlow): loaded lazily by __getattr__.
_LAZY_NAMES = {
    "Perplexity": "llm_tf.metrics.keras_metrics",
    "GenerationMetricsCallback": "llm_tf.metrics.callbacks",
}

__all__ = [
    "DEFAULT_ROUGE_TYPES",
    "GENERATION_METRICS",
    "GenerationMetricsCallback",
    "Perplexity",
    "bootstrap_mean_interval",
    "classification_report",
    "confusion_matrix",
    "corpus_bleu",
    "corpus_chrf",
    "corpus_rouge",
    "evaluate_classifier",
    "evaluate_generation",
    "flatten_generation_scores",
    "generate_texts",
    "perplexity",
    "score_generation",
]


def __getattr__(name):
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'llm_tf.metrics' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
