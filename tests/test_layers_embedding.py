import numpy as np
import pytest

from llm_tf.layers import TokenAndPositionEmbedding, sinusoidal_position_encoding
from tests.layer_checks import run_layer_checks

IDS = np.array([[5, 7, 9, 0, 0], [1, 2, 3, 4, 6]], dtype="int32")


@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
def test_standard_checks(position):
    run_layer_checks(
        lambda **kw: TokenAndPositionEmbedding(10, 8, 16, position=position, padding_id=0, **kw),
        IDS,
        expected_output_shape=(2, 5, 16),
    )


def test_padding_id_produces_keras_mask():
    embedded = TokenAndPositionEmbedding(10, 8, 16, padding_id=0)(IDS)
    np.testing.assert_array_equal(np.asarray(embedded._keras_mask), IDS != 0)
    assert getattr(TokenAndPositionEmbedding(10, 8, 16)(IDS), "_keras_mask", None) is None


def test_sinusoidal_values_follow_the_formula():
    encoding = np.asarray(sinusoidal_position_encoding(6, 8))
    position, i = 3, 2  # feature 2i = 4 and 2i+1 = 5
    angle = position / 10000 ** (2 * i / 8)
    np.testing.assert_allclose(encoding[position, 4], np.sin(angle), rtol=1e-5)
    np.testing.assert_allclose(encoding[position, 5], np.cos(angle), rtol=1e-5)
    layer = TokenAndPositionEmbedding(10, 8, 16, position="sinusoidal")
    out = np.asarray(layer(IDS))
    table = np.asarray(layer.token_embeddings)
    np.testing.assert_allclose(out, table[IDS] + np.asarray(sinusoidal_position_encoding(8, 16))[:5], atol=1e-6)
    assert len(layer.trainable_weights) == 1  # no learned position table


def test_scale_embeddings_multiplies_token_vectors():
    layer = TokenAndPositionEmbedding(10, 8, 16, position="sinusoidal", scale_embeddings=True)
    out = np.asarray(layer(IDS))
    table = np.asarray(layer.token_embeddings)
    expected = table[IDS] * 4.0 + np.asarray(sinusoidal_position_encoding(8, 16))[:5]
    np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
def test_start_index_shifts_positions(position):
    layer = TokenAndPositionEmbedding(10, 8, 16, position=position)
    full = np.asarray(layer(IDS))
    tail = np.asarray(layer(IDS[:, 2:], start_index=2))
    np.testing.assert_allclose(tail, full[:, 2:], atol=1e-6)


def test_tied_projection_uses_the_token_table():
    layer = TokenAndPositionEmbedding(10, 8, 16)
    hidden = np.random.default_rng(0).normal(size=(2, 3, 16)).astype("float32")
    layer(IDS)
    logits = np.asarray(layer.project_to_vocabulary(hidden))
    np.testing.assert_allclose(logits, hidden @ np.asarray(layer.token_embeddings).T, atol=1e-5)


def test_sequence_longer_than_max_is_a_clear_error():
    layer = TokenAndPositionEmbedding(10, 4, 16)
    with pytest.raises(ValueError, match="max_sequence_length=4"):
        layer(IDS)
    with pytest.raises(ValueError, match="max_sequence_length"):
        layer(IDS[:, :2], start_index=3)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"vocabulary_size": 0}, "vocabulary_size"),
        ({"max_sequence_length": -3}, "max_sequence_length"),
        ({"embedding_dim": 2.5}, "embedding_dim"),
        ({"position": "rotary"}, "position"),
        ({"padding_id": 10}, "padding_id"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, argument):
    arguments = {"vocabulary_size": 10, "max_sequence_length": 8, "embedding_dim": 16} | kwargs
    with pytest.raises(ValueError, match=argument):
        TokenAndPositionEmbedding(**arguments)
