"""Token embedding plus learned or sinusoidal position embedding."""

import math

import keras
from keras import ops

from llm_tf.checks import check_choice, check_positive_int


def sinusoidal_position_encoding(max_sequence_length, embedding_dim, dtype="float32"):
    """The fixed encoding of "Attention Is All You Need".

    ``PE[pos, 2i] = sin(pos / 10000^(2i/d))`` and ``PE[pos, 2i+1] = cos(pos / 10000^(2i/d))``.
    Returns a ``(max_sequence_length, embedding_dim)`` tensor.
    """
    positions = ops.cast(ops.arange(max_sequence_length), "float32")[:, None]
    even_dims = ops.cast(ops.arange(0, embedding_dim, 2), "float32")
    inverse_frequency = ops.exp(-math.log(10000.0) * even_dims / embedding_dim)
    angles = positions * inverse_frequency[None, :]
    # Interleave sin (even features) and cos (odd features).
    encoding = ops.reshape(ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1), (max_sequence_length, -1))
    return ops.cast(encoding[:, :embedding_dim], dtype)


@keras.saving.register_keras_serializable(package="llm_tf")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Maps token ids to vectors and adds the position of each token.

    Implements

        X = W_embed · onehot(x_input) + P[start_index : start_index + T]

    with ``W_embed`` a ``(vocabulary_size, embedding_dim)`` table and ``P`` either a learned
    ``(max_sequence_length, embedding_dim)`` table (BERT, GPT-2) or the fixed sinusoidal encoding of
    the original Transformer. ``start_index`` shifts the positions for incremental decoding, where
    one new token at position ``t`` is embedded at a time.

    The token table is exposed as :attr:`token_embeddings` and :meth:`project_to_vocabulary` computes
    ``H · W_embedᵀ``, so a language-model head can tie its output projection to the input embedding.

    Args:
        vocabulary_size: number of token ids.
        max_sequence_length: longest sequence the positions cover.
        embedding_dim: size of each vector.
        position: ``"learned"`` or ``"sinusoidal"``.
        padding_id: if given, tokens equal to it produce a Keras mask (False at padding), which
            downstream layers receive automatically. ``None`` means no mask.
        scale_embeddings: multiply token vectors by ``√embedding_dim`` before adding positions
            (the original Transformer does this).
        embeddings_initializer: initializer of the token (and learned position) tables.
        **kwargs: standard layer arguments.

    Call arguments:
        token_ids: int ``(batch, sequence)``.
        start_index: position of the first token (int or scalar tensor), default 0.

    Returns:
        ``(batch, sequence, embedding_dim)``.

    Example:

    >>> embedding = TokenAndPositionEmbedding(1000, 128, 64, padding_id=0)
    >>> embedding(keras.ops.array([[5, 7, 0]])).shape
    (1, 3, 64)
    """

    def __init__(
        self,
        vocabulary_size,
        max_sequence_length,
        embedding_dim,
        position="learned",
        padding_id=None,
        scale_embeddings=False,
        embeddings_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("vocabulary_size", vocabulary_size)
        check_positive_int("max_sequence_length", max_sequence_length)
        check_positive_int("embedding_dim", embedding_dim)
        check_choice("position", position, {"learned", "sinusoidal"})
        if padding_id is not None and not 0 <= padding_id < vocabulary_size:
            raise ValueError(
                f"`padding_id` must be in [0, vocabulary_size={vocabulary_size}); got padding_id={padding_id!r}."
            )
        self.vocabulary_size = vocabulary_size
        self.max_sequence_length = max_sequence_length
        self.embedding_dim = embedding_dim
        self.position = position
        self.padding_id = padding_id
        self.scale_embeddings = scale_embeddings
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.supports_masking = padding_id is not None

    def build(self, token_ids_shape=None):
        self.token_embeddings = self.add_weight(
            name="token_embeddings",
            shape=(self.vocabulary_size, self.embedding_dim),
            initializer=self.embeddings_initializer,
        )
        if self.position == "learned":
            self.position_embeddings = self.add_weight(
                name="position_embeddings",
                shape=(self.max_sequence_length, self.embedding_dim),
                initializer=keras.initializers.get(keras.initializers.serialize(self.embeddings_initializer)),
            )
        self.built = True

    def call(self, token_ids, start_index=0, positions=None):
        sequence_length = token_ids.shape[1]
        if sequence_length is not None and isinstance(start_index, int):
            if start_index + sequence_length > self.max_sequence_length:
                raise ValueError(
                    f"sequence too long: {sequence_length} tokens starting at position {start_index} exceed "
                    f"max_sequence_length={self.max_sequence_length}."
                )
        token_ids = ops.cast(token_ids, "int32")
        embedded = ops.take(self.token_embeddings, token_ids, axis=0)
        if self.scale_embeddings:
            embedded = embedded * ops.cast(math.sqrt(self.embedding_dim), embedded.dtype)
        if self.position == "learned":
            table = ops.convert_to_tensor(self.position_embeddings)
        else:
            table = sinusoidal_position_encoding(self.max_sequence_length, self.embedding_dim, embedded.dtype)
        if positions is not None:  # explicit (batch, sequence) positions: padded prompts, cached decoding
            return embedded + ops.cast(ops.take(table, ops.cast(positions, "int32"), axis=0), embedded.dtype)
        length = ops.shape(token_ids)[1]
        positions = ops.slice(table, [start_index, 0], [length, self.embedding_dim])
        return embedded + ops.cast(positions, embedded.dtype)[None, :, :]

    def project_to_vocabulary(self, hidden):
        """Tied output projection ``H · W_embedᵀ``: ``(..., embedding_dim)`` → ``(..., vocabulary_size)``."""
        return ops.matmul(hidden, ops.transpose(ops.cast(self.token_embeddings, hidden.dtype)))

    def compute_mask(self, token_ids, mask=None):
        if self.padding_id is None:
            return None
        return ops.not_equal(token_ids, self.padding_id)

    def compute_output_shape(self, token_ids_shape):
        return tuple(token_ids_shape) + (self.embedding_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "max_sequence_length": self.max_sequence_length,
                "embedding_dim": self.embedding_dim,
                "position": self.position,
                "padding_id": self.padding_id,
                "scale_embeddings": self.scale_embeddings,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
            }
        )
        return config
