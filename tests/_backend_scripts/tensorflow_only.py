"""Run under KERAS_BACKEND=jax/torch: every TensorFlow-only entry point raises a clear ValueError (no fallback).

Prints one line per checked function and ``OK <backend>`` at the end; exits nonzero on the first failure.
"""

import os
import sys

import keras

backend = keras.backend.backend()
assert backend == os.environ["KERAS_BACKEND"] != "tensorflow", backend

from llm_tf.text import CharTokenizer, WordPieceTokenizer  # noqa: E402
from llm_tf.text.pipelines import (  # noqa: E402
    make_causal_lm_dataset,
    make_classification_dataset,
    make_masked_lm_dataset,
    make_seq2seq_dataset,
)
from llm_tf.training.data import seeded_epoch_batches  # noqa: E402
from llm_tf.training.loop import setup_training, train  # noqa: E402
from llm_tf.training.strategy import configure_cpu_devices, get_strategy  # noqa: E402

texts = ["the cat sat", "a dog ran far"]
tokenizer = CharTokenizer.train(texts)
calls = {
    "make_classification_dataset": lambda: make_classification_dataset(texts, [0, 1], tokenizer, batch_size=2),
    "make_causal_lm_dataset": lambda: make_causal_lm_dataset(list(range(20)), block_size=4, batch_size=2),
    "make_masked_lm_dataset": lambda: make_masked_lm_dataset(texts, tokenizer, batch_size=2),
    "make_seq2seq_dataset": lambda: make_seq2seq_dataset(texts, texts, tokenizer, tokenizer, batch_size=2),
    "Tokenizer.tf_encode": lambda: tokenizer.tf_encode(texts),
    "get_strategy": lambda: get_strategy("default"),
    "configure_cpu_devices": lambda: configure_cpu_devices(1),
    "setup_training": lambda: setup_training(strategy="default"),
    "seeded_epoch_batches": lambda: seeded_epoch_batches(None, batch_size=2, seed=0),
    "train": lambda: train(None, None),
}
for name, call in calls.items():
    try:
        call()
    except ValueError as error:
        message = str(error)
        for part in (name, "TensorFlow-only", repr(backend), "KERAS_BACKEND=tensorflow", "any backend"):
            assert part in message, f"{name}: {part!r} missing from {message!r}"
        print("raises:", name)
    else:
        raise AssertionError(f"{name} ran on the {backend} backend instead of raising")

# The eager tokenizers are not TensorFlow-only: they encode on every backend (WordPiece runs TF kernels eagerly).
assert tokenizer.encode("cat") == tokenizer.encode("cat") and len(tokenizer.encode("cat")) == 3
wordpiece = WordPieceTokenizer.train(texts * 5, vocabulary_size=60)
assert wordpiece.decode(wordpiece.encode("the cat sat")) == "the cat sat"

print("OK", backend)
sys.exit(0)
