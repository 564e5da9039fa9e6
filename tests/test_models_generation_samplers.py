"""The nucleus (top-p) sampler's candidate shortcut equals sampling from the fully sorted vocabulary."""

import numpy as np
import pytest
import tensorflow as tf

from llm_tf.models import generation
from tests.sampling_reference import reference_uniforms

VOCABULARY_SIZE = 5000  # above both candidate counts, so every level (256, 4096, full sort) can be reached


def reference_top_p(logits, top_p, uniforms):
    """Nucleus sampling written out: sort all tokens, keep the prefix reaching ``top_p``, inverse CDF."""
    tokens = []
    for row, u in zip(logits.astype("float64"), uniforms):
        order = np.argsort(-row, kind="stable")
        probabilities = np.exp(row[order] - row.max())
        probabilities /= probabilities.sum()
        kept = np.where(np.cumsum(probabilities) - probabilities < top_p, probabilities, 0.0)
        cumulative = np.cumsum(kept)
        tokens.append(order[min(int((cumulative < u * cumulative[-1]).sum()), len(row) - 1)])
    return np.array(tokens)


def nucleus_size(logits, top_p):
    probabilities = np.sort(np.exp(logits - logits.max(axis=1, keepdims=True)), axis=1)[:, ::-1]
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return ((np.cumsum(probabilities, axis=1) - probabilities) < top_p).sum(axis=1)


@pytest.mark.parametrize("sharpness", [[8.0, 6.0], [1.0, 8.0], [0.05, 8.0], [8.0, 1.0, 0.05]])
def test_top_p_shortcut_equals_the_full_sort(sharpness):
    """Rows peaked (nucleus in the top 256), broader (in the top 4096) and nearly flat (full sort)."""
    rng = np.random.default_rng(len(sharpness) + int(10 * sharpness[0]))
    logits = (rng.standard_normal((len(sharpness), VOCABULARY_SIZE)) * np.array(sharpness)[:, None]).astype("float32")
    top_p = 0.9
    sizes = nucleus_size(logits, top_p)
    compiled = tf.function(
        lambda logits, seed, step: generation.select_tokens(logits, "top_p", 1.0, None, top_p, seed, step),
        jit_compile=True,
    )
    for step in range(4):
        seed = np.uint32(17)
        uniforms = np.asarray(generation.row_uniforms(seed, step, len(sharpness)))
        expected = reference_top_p(logits, top_p, uniforms)
        eager = np.asarray(generation.select_tokens(logits, "top_p", 1.0, None, top_p, seed, step))
        np.testing.assert_array_equal(eager, expected)
        np.testing.assert_array_equal(np.asarray(compiled(logits, seed, step)), expected)
    # The cases above do reach every level (the largest nucleus of each case decides its level).
    assert sizes.max() <= 256 if sharpness == [8.0, 6.0] else sizes.max() > 256
    if 0.05 in sharpness:
        assert sizes.max() > 4096


def test_row_uniforms_equal_the_numpy_reference_eager_and_compiled():
    """The draws are the uint32 hash written again in numpy, strictly inside (0, 1), for large seeds and steps too
    (the model smoke checks the same on JAX and PyTorch)."""
    compiled = tf.function(lambda seed, step: generation.row_uniforms(seed, step, 64), jit_compile=True)
    for seed, step in ((0, 0), (7, 3), (2**32 - 1, 255), (123456789, 40000)):
        expected = reference_uniforms(seed, step, 64)
        assert np.all((expected > 0) & (expected < 1)) and len(np.unique(expected)) == 64
        np.testing.assert_array_equal(np.asarray(generation.row_uniforms(np.uint32(seed), step, 64)), expected)
        np.testing.assert_array_equal(np.asarray(compiled(np.uint32(seed), np.int32(step))), expected)
