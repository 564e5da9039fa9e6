"""Weight-only bfloat16 / float16 / int8 decoding (``GPT.generate(weight_dtype=...)``) and the teacher-forced
``GPT.decode_logits`` that measures it.

Documented tolerances (``GPT.generate``'s docstring and docs/measurements.md): on a fixed model the logits of every
decoding step stay within 1% (bfloat16), 0.2% (float16) and 3% (int8) of the largest float32 logit.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from llm_tf.layers import fast_paths
from llm_tf.models import GPT, GPTConfig

RNG = np.random.default_rng(0)
TOLERANCE = {"bfloat16": 0.01, "float16": 0.002, "int8": 0.03}


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    # Larger-than-default init so the logits are far from flat (a random GPT at std 0.02 predicts nearly
    # uniformly, and every comparison would be between near-ties).
    return GPT(
        GPTConfig.from_preset(
            "tiny", vocabulary_size=300, max_sequence_length=64, initializer_range=0.08, tie_embeddings=False
        )
    )


def test_pack_rows_bfloat16_keeps_the_rounded_values_exactly():
    rows = RNG.normal(size=(5, 7)).astype("float32")
    packed = fast_paths.pack_rows(rows, "bfloat16")
    assert packed["bfloat16_bits"].dtype == "int16"
    expected = np.asarray(ops.cast(ops.cast(rows, "bfloat16"), "float32"))
    np.testing.assert_array_equal(np.asarray(fast_paths.unpack_rows(packed)), expected)
    assert np.abs(expected - rows).max() <= np.abs(rows).max() * 2.0**-8


def test_pack_rows_float16_keeps_the_rounded_values_exactly():
    rows = RNG.normal(size=(5, 7)).astype("float32")
    rows[0, :6] = [0.0, -0.0, 3e-5, -6e-5, 2.0**-14, 65504.0]
    rows[1, :3] = [1e5, -7e4, -(2.0**-14)]
    packed = fast_paths.pack_rows(rows, "float16")
    assert packed["float16_bits"].dtype == "int16"
    unpacked = np.asarray(fast_paths.unpack_rows(packed))
    # numpy's float16 rounding, after the documented clip to ±65504 and flush below the smallest normal
    expected = np.clip(rows, -65504, 65504)
    expected = np.where(np.abs(expected) < 2.0**-14, 0.0, expected).astype("float16").astype("float32")
    np.testing.assert_array_equal(unpacked, expected)
    np.testing.assert_array_equal(unpacked[0, :6], [0, 0, 0, 0, 2.0**-14, 65504])
    np.testing.assert_array_equal(unpacked[1, :3], [65504, -65504, -(2.0**-14)])
    ordinary = rows[2:]
    assert 0 < np.abs(unpacked[2:] - ordinary).max() <= np.abs(ordinary).max() * 2.0**-11


def test_pack_rows_int8_is_per_output_channel():
    rows = RNG.normal(size=(6, 9)).astype("float32") * np.array([[0.01], [1], [10], [0.5], [3], [1]], "float32")
    rows[3] = 0.0  # an all-zero row keeps scale 1
    packed = fast_paths.pack_rows(rows, "int8")
    quantized, scale = np.asarray(packed["int8_rows"]), np.asarray(packed["scale"])
    assert quantized.dtype == np.int8 and scale.shape == (6,)
    np.testing.assert_allclose(scale[[0, 1, 2, 4, 5]], np.abs(rows[[0, 1, 2, 4, 5]]).max(axis=1) / 127, rtol=1e-6)
    assert scale[3] == 1.0 and not quantized[3].any()
    assert (np.abs(quantized[[0, 1, 2, 4, 5]]).max(axis=1) == 127).all()
    assert (np.abs(quantized * scale[:, None] - rows) <= scale[:, None] / 2 + 1e-7).all()


@pytest.mark.parametrize("weight_dtype", ["float32", "bfloat16", "float16", "int8"])
def test_packed_matmul_is_x_times_the_dequantized_rows(weight_dtype):
    rows = RNG.normal(size=(11, 8)).astype("float32")
    x = RNG.normal(size=(3, 8)).astype("float32")
    packed = fast_paths.pack_rows(rows, weight_dtype)
    dequantized = np.asarray(fast_paths.unpack_rows(packed)) * np.asarray(packed.get("scale", 1.0))[..., None]
    compiled = tf.function(lambda x, zero: fast_paths.packed_matmul(x, packed, zero), jit_compile=True)
    for result in (fast_paths.packed_matmul(x, packed), compiled(x, tf.constant(0))):
        np.testing.assert_allclose(np.asarray(result), x @ dequantized.T, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="weight_dtype"):
        fast_paths.pack_rows(rows, "float8")


@pytest.mark.parametrize("batch", [1, 3, 65])
def test_decode_logits_in_float32_is_the_forward_pass(model, batch):
    """Batches 1 and 3 read packed float32 rows as one matrix product's left operand, batch 65 (above
    PACKED_FLOAT32_MAX_ROWS) the layers' own kernels."""
    assert model.PACKED_FLOAT32_MAX_ROWS == 64
    assert model._packed_dtype("float32", batch) == ("float32" if batch <= 64 else None)
    token_ids = RNG.integers(1, 300, size=(batch, 24))
    expected = np.asarray(model(token_ids))[:, 9:-1]
    np.testing.assert_allclose(model.decode_logits(token_ids, 10), expected, atol=1e-4)


@pytest.mark.parametrize("weight_dtype", ["bfloat16", "float16", "int8"])
def test_weight_only_decoding_stays_within_its_tolerance(model, weight_dtype):
    token_ids = RNG.integers(1, 300, size=(2, 40))
    reference = model.decode_logits(token_ids, 8)
    packed = model.decode_logits(token_ids, 8, weight_dtype=weight_dtype)
    error = np.abs(packed - reference).max()
    assert 0 < error <= TOLERANCE[weight_dtype] * np.abs(reference).max()
    if weight_dtype == "float16":  # 3 more mantissa bits than bfloat16: a several times smaller error
        bfloat16_error = np.abs(model.decode_logits(token_ids, 8, weight_dtype="bfloat16") - reference).max()
        assert error < bfloat16_error / 3
    # The prefill keeps float32 weights: the first distribution (from the prompt alone) is unchanged.
    np.testing.assert_allclose(packed[:, 0], reference[:, 0], atol=1e-5)


@pytest.mark.parametrize("weight_dtype", ["bfloat16", "float16", "int8"])
def test_generate_uses_the_packed_weights_it_is_asked_for(model, weight_dtype):
    """Greedy tokens from ``generate`` are the argmax of the same path's teacher-forced logits."""
    prompts = RNG.integers(1, 300, size=(2, 6))
    tokens = model.generate(prompts, max_new_tokens=20, weight_dtype=weight_dtype)
    logits = model.decode_logits(tokens, 6, weight_dtype=weight_dtype)
    np.testing.assert_array_equal(logits.argmax(axis=-1), tokens[:, 6:])


def test_packed_weights_follow_the_model_weights():
    keras.utils.set_random_seed(4)
    config = GPTConfig.from_preset("tiny", vocabulary_size=200, max_sequence_length=32, initializer_range=0.08)
    model, other = GPT(config), GPT(config)
    token_ids = RNG.integers(1, 200, size=(1, 16))
    before = model.decode_logits(token_ids, 4, weight_dtype="int8")
    np.testing.assert_array_equal(model.decode_logits(token_ids, 4, weight_dtype="int8"), before)  # cached
    model.set_weights(other.get_weights())  # e.g. load_weights, or more training
    after = model.decode_logits(token_ids, 4, weight_dtype="int8")
    np.testing.assert_allclose(after, other.decode_logits(token_ids, 4, weight_dtype="int8"), atol=1e-6)
    assert np.abs(after - before).max() > 0.01


def test_bad_weight_dtype_and_prompt_length_are_clear_errors(model):
    with pytest.raises(ValueError, match="weight_dtype"):
        model.generate([[1, 2]], max_new_tokens=2, weight_dtype="fp8")
    with pytest.raises(ValueError, match="weight_dtype"):
        model.decode_logits([[1, 2, 3]], 1, weight_dtype="int4")
    with pytest.raises(ValueError, match="prompt_length"):
        model.decode_logits([[1, 2, 3]], 3)


def test_generate_reads_the_packed_copy_and_float32_does_not(model):
    """Zeroing the cached int8 output head makes every int8 logit 0 (argmax: id 0); float32 is untouched."""
    prompts = RNG.integers(1, 300, size=(1, 5))
    model.generate(prompts, max_new_tokens=3, weight_dtype="int8")  # packs and caches
    checksum, (blocks, head) = model._packed_weights["int8"]
    poisoned = dict(head, int8_rows=ops.zeros_like(head["int8_rows"]))
    model._packed_weights["int8"] = (checksum, (blocks, poisoned))
    try:
        tokens = model.generate(prompts, max_new_tokens=4, weight_dtype="int8")[0, 5:]
        # The first new token comes from the float32 prefill; the three after it from the zeroed head.
        assert tokens[0] != 0 and (tokens[1:] == 0).all()
        assert (model.generate(prompts, max_new_tokens=4)[0, 5:] != 0).any()
    finally:
        model._packed_weights = {}


@pytest.mark.parametrize("batch", [1, 3])
def test_float32_decoding_reads_the_packed_rows_up_to_the_row_limit(model, batch):
    """Zeroing the cached float32 head rows zeroes every decoded logit at batch 1 (the loop) and at batch 3 (the
    product with the rows as its left operand); with the limit below the batch, the layers' kernels are read."""
    prompts = RNG.integers(1, 300, size=(batch, 5))
    expected = model.generate(prompts, max_new_tokens=4)[:, 5:]  # packs and caches the float32 rows
    checksum, (blocks, head) = model._packed_weights["float32"]
    model._packed_weights["float32"] = (checksum, (blocks, {"float32_rows": ops.zeros_like(head["float32_rows"])}))
    try:
        tokens = model.generate(prompts, max_new_tokens=4)[:, 5:]
        assert (tokens[:, 0] == expected[:, 0]).all() and (tokens[:, 1:] == 0).all()  # prefill, then the zero head
        model.PACKED_FLOAT32_MAX_ROWS = batch - 1
        np.testing.assert_array_equal(model.generate(prompts, max_new_tokens=4)[:, 5:], expected)
    finally:
        model.__dict__.pop("PACKED_FLOAT32_MAX_ROWS", None)
        model._packed_weights = {}
