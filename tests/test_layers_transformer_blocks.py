import numpy as np
import pytest

from llm_tf.layers import TransformerDecoderBlock, TransformerEncoderBlock
from tests.layer_checks import run_layer_checks

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 6, 16)).astype("float32")
ENCODER = RNG.normal(size=(2, 4, 16)).astype("float32")
PADDING = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=bool)
ENCODER_PADDING = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=bool)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_standard_checks(norm_first):
    run_layer_checks(
        lambda **kw: TransformerEncoderBlock(4, 32, norm_first=norm_first, activation="gelu", **kw),
        X,
        expected_output_shape=X.shape,
        mask=PADDING.astype("int32"),
    )


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_standard_checks(norm_first):
    run_layer_checks(
        lambda **kw: TransformerDecoderBlock(4, 32, norm_first=norm_first, **kw),
        X,
        expected_output_shape=X.shape,
        mask=PADDING.astype("int32"),
    )


def test_decoder_with_cross_attention_standard_checks():
    run_layer_checks(
        lambda **kw: TransformerDecoderBlock(4, 32, cross_attention=True, **kw),
        [X, ENCODER],
        expected_output_shape=X.shape,
    )


def test_encoder_padding_invariance():
    block = TransformerEncoderBlock(4, 32)
    before = np.asarray(block(X, padding_mask=PADDING))
    changed = X.copy()
    changed[0, 4:] = 50.0
    after = np.asarray(block(changed, padding_mask=PADDING))
    np.testing.assert_allclose(after[0, :4], before[0, :4], atol=1e-5)
    np.testing.assert_allclose(after[1], before[1], atol=1e-6)


def test_encoder_is_bidirectional_and_decoder_is_causal():
    encoder, decoder = TransformerEncoderBlock(4, 32), TransformerDecoderBlock(4, 32, norm_first=True)
    changed = X.copy()
    changed[:, 3] += 5.0
    enc_before, enc_after = np.asarray(encoder(X)), np.asarray(encoder(changed))
    dec_before, dec_after = np.asarray(decoder(X)), np.asarray(decoder(changed))
    assert not np.allclose(enc_after[:, :3], enc_before[:, :3])  # the past sees the future
    np.testing.assert_allclose(dec_after[:, :3], dec_before[:, :3], atol=1e-6)
    assert not np.allclose(dec_after[:, 3:], dec_before[:, 3:])


def test_pre_and_post_norm_compose_the_sublayers_as_documented():
    for norm_first in (False, True):
        block = TransformerEncoderBlock(4, 32, norm_first=norm_first)
        out = np.asarray(block(X))
        attention, ffn = block.self_attention, block.feed_forward
        norm1, norm2 = block.self_attention_norm, block.feed_forward_norm
        if norm_first:
            hidden = X + attention(norm1(X))
            expected = hidden + ffn(norm2(hidden))
        else:
            hidden = norm1(X + attention(X))
            expected = norm2(hidden + ffn(hidden))
        np.testing.assert_allclose(out, np.asarray(expected), atol=1e-5)


@pytest.mark.parametrize("cross_attention", [False, True])
def test_decoder_cached_decoding_equals_full_pass(cross_attention):
    block = TransformerDecoderBlock(4, 32, norm_first=True, cross_attention=cross_attention)
    encoder_kwargs = {"encoder_output": ENCODER, "encoder_padding_mask": ENCODER_PADDING} if cross_attention else {}
    full = np.asarray(block(X, **encoder_kwargs))
    cache = np.zeros((2, 2, 8, 4, 4), "float32")
    step_kwargs = {}
    if cross_attention:
        step_kwargs = {
            "cross_attention_cache": block.compute_cross_attention_cache(ENCODER),
            "encoder_padding_mask": ENCODER_PADDING,
        }
    outputs = []
    for index in range(6):
        step, cache = block(X[:, index : index + 1], self_attention_cache=cache, cache_index=index, **step_kwargs)
        outputs.append(np.asarray(step))
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), full, atol=1e-5)


def test_decoder_input_errors():
    with pytest.raises(ValueError, match="encoder_output"):
        TransformerDecoderBlock(4, 32, cross_attention=True)(X)
    with pytest.raises(ValueError, match="cross_attention=False"):
        TransformerDecoderBlock(4, 32)(X, ENCODER)
    with pytest.raises(ValueError, match="cache_index"):
        TransformerDecoderBlock(4, 32)(X, self_attention_cache=np.zeros((2, 2, 8, 4, 4), "float32"))


@pytest.mark.parametrize("block_class", [TransformerEncoderBlock, TransformerDecoderBlock])
@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"num_heads": 0}, "num_heads"),
        ({"intermediate_dim": -1}, "intermediate_dim"),
        ({"dropout": 1.0}, "dropout"),
        ({"attention_dropout": -0.5}, "attention_dropout"),
        ({"activation": "swish42"}, "activation"),
        ({"layer_norm_epsilon": 0}, "layer_norm_epsilon"),
    ],
)
def test_invalid_arguments_name_the_argument(block_class, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        block_class(**({"num_heads": 4, "intermediate_dim": 32} | kwargs))


@pytest.mark.parametrize("block_class", [TransformerEncoderBlock, TransformerDecoderBlock])
def test_embedding_dim_not_divisible_by_heads(block_class):
    with pytest.raises(ValueError, match="num_heads=5"):
        block_class(num_heads=5, intermediate_dim=32)(X)
