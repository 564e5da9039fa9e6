"""Model smoke on the current Keras backend (run by tests/test_backends.py with KERAS_BACKEND set).

For GPT, TextClassifier and Seq2SeqTransformer: build, call, one fit step, .keras save/load reproduces the
outputs; GPT's cached generation equals the uncached argmax pass; ``get_strategy`` (tf.distribute) refuses to run. Prints "OK <backend>" at the end.
"""

import os
import sys
import tempfile

import keras
import numpy as np
from keras import ops

from llm_tf.models import (
    GPT,
    GPTConfig,
    Seq2SeqConfig,
    Seq2SeqTransformer,
    TextClassifier,
    TransformerEncoderConfig,
    generation,
)
from tests.sampling_reference import reference_uniforms

backend = keras.config.backend()
assert backend == os.environ["KERAS_BACKEND"], (backend, os.environ["KERAS_BACKEND"])
JIT = backend != "torch"
rng = np.random.default_rng(0)
keras.utils.set_random_seed(0)
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def numpy(x):
    return ops.convert_to_numpy(x)


def fit_and_reload(model, inputs, labels, directory, name):
    model.compile(optimizer="adam", loss=loss, jit_compile=JIT)
    history = model.fit(inputs, labels, batch_size=len(labels), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]), f"{name}: non-finite loss"
    expected = numpy(model(inputs))
    path = os.path.join(directory, f"{name}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(numpy(reloaded(inputs)), expected, atol=1e-5, err_msg=f"{name}: reload differs")
    return reloaded


with tempfile.TemporaryDirectory() as directory:
    # GPT
    gpt = GPT(GPTConfig(vocabulary_size=31, max_sequence_length=16, hidden_dim=32, num_layers=2, num_heads=2,
                        intermediate_dim=64, dropout=0.0))
    ids = rng.integers(1, 31, size=(4, 8)).astype("int32")
    assert tuple(gpt(ids).shape) == (4, 8, 31)
    gpt = fit_and_reload(gpt, ids[:, :-1], ids[:, 1:], directory, "gpt")
    prompts = ids[:2, :4]
    cached = gpt.generate(prompts, max_new_tokens=5)
    # Greedy: every new token is the argmax of the uncached causal pass over the tokens before it (one forward
    # pass over the whole generated sequence gives the logits of every prefix).
    uncached_next = np.argmax(numpy(gpt(cached))[:, 3:-1], axis=-1)
    np.testing.assert_array_equal(cached[:, 4:], uncached_next, err_msg="cached generation differs from the "
                                                                        "uncached pass")
    beam = gpt.generate(prompts, max_new_tokens=3, sampler="beam", num_beams=1)
    np.testing.assert_array_equal(beam, cached[:, :7])
    # The samplers' random numbers are the same uint32 hash on every backend (PyTorch holds uint32 in int64),
    # and a nucleus that keeps only the likeliest token is greedy, at any temperature.
    np.testing.assert_array_equal(numpy(generation.row_uniforms(np.uint32(7), 3, 4)), reference_uniforms(7, 3, 4))
    np.testing.assert_array_equal(
        gpt.generate(prompts, max_new_tokens=5, sampler="top_p", top_p=1e-6, temperature=0.7, seed=1), cached
    )
    # One row decodes through packed (out, in) weights: float32 equals the forward pass, bfloat16 / float16 /
    # int8 stay within the documented 1% / 0.2% / 3% of the largest logit.
    forward = numpy(gpt(ids[:1]))[:, 3:-1]
    for weight_dtype, tolerance in (("float32", 1e-4), ("bfloat16", 0.01), ("float16", 0.002), ("int8", 0.03)):
        logits = gpt.decode_logits(ids[:1], 4, weight_dtype=weight_dtype)
        error = np.abs(logits - forward).max()
        assert error <= tolerance * max(np.abs(forward).max(), 1.0), f"{weight_dtype} decoding error {error}"
    assert gpt.generate(ids[:1, :4], max_new_tokens=3, weight_dtype="int8").shape == (1, 7)

    # TextClassifier on the encoder backbone
    config = TransformerEncoderConfig(vocabulary_size=31, max_sequence_length=8, hidden_dim=32, num_layers=1,
                                      num_heads=2, intermediate_dim=64, dropout=0.0, num_segments=0)
    classifier = TextClassifier(3, config=config)
    inputs = {"token_ids": ids, "padding_mask": np.ones_like(ids, bool)}
    assert tuple(classifier(inputs).shape) == (4, 3)
    fit_and_reload(classifier, inputs, np.array([0, 1, 2, 0]), directory, "classifier")

    # Seq2SeqTransformer
    seq2seq = Seq2SeqTransformer(Seq2SeqConfig(vocabulary_size=31, max_sequence_length=8, hidden_dim=32,
                                               num_encoder_layers=1, num_decoder_layers=1, num_heads=2,
                                               intermediate_dim=64, dropout=0.0))
    batch = {"encoder_token_ids": ids, "decoder_token_ids": ids[:, ::-1].copy()}
    seq2seq = fit_and_reload(seq2seq, batch, ids, directory, "seq2seq")
    generated = seq2seq.generate(ids, max_new_tokens=4)
    assert generated.shape == (4, 4)
    np.testing.assert_array_equal(generated, seq2seq.generate(ids, max_new_tokens=4, sampler="beam", num_beams=1))

# A TensorFlow-only feature refuses to run on another backend (no silent fallback).
from llm_tf.training.strategy import get_strategy  # noqa: E402

try:
    get_strategy("default")
except ValueError as error:
    assert "TensorFlow-only" in str(error), error
else:
    raise AssertionError("get_strategy ran on a non-TensorFlow backend")

print("OK", backend)
sys.exit(0)
