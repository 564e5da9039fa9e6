"""Encoder–decoder Transformer ("Attention Is All You Need") with cached greedy and beam-search decoding.

The model maps a source sequence to a target sequence (translation, summarization):

    E = Encoder(embed(source))                              (bidirectional self-attention)
    logits = W_out · Decoder(embed(target_in), E)           (causal self-attention + cross-attention to E)

Training uses teacher forcing: the decoder reads ``[start] + target`` and is trained to predict
``target + [end]`` (padding carries sample weight 0). :meth:`Seq2SeqTransformer.generate` decodes new
targets one token at a time, reusing each decoder layer's key/value cache and a cross-attention cache
projected once from the encoder output.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from llm_tf.checks import check_choice, check_number, check_positive_int, check_rate, is_int
from llm_tf.layers import TokenAndPositionEmbedding, TransformerDecoderBlock, TransformerEncoderBlock
from llm_tf.layers.feed_forward import get_activation
from llm_tf.models import generation
from llm_tf.models.config import ModelConfig

# Sizes only; the vocabulary comes from the tokenizer, so it is always passed by the caller.
SEQ2SEQ_PRESETS = {
    "tiny": dict(
        hidden_dim=128, num_encoder_layers=2, num_decoder_layers=2, num_heads=2, intermediate_dim=512
    ),
    "mini": dict(
        hidden_dim=256, num_encoder_layers=4, num_decoder_layers=4, num_heads=4, intermediate_dim=1024
    ),
    "small": dict(
        hidden_dim=512, num_encoder_layers=4, num_decoder_layers=4, num_heads=8, intermediate_dim=2048
    ),
    # The paper's base model: 6 + 6 layers, d_model 512, 8 heads, d_ff 2048.
    "base": dict(
        hidden_dim=512, num_encoder_layers=6, num_decoder_layers=6, num_heads=8, intermediate_dim=2048
    ),
}

_POSITIONS = ("sinusoidal", "learned")
# generate() pads source lengths up to a multiple of this, so it compiles once per bucket, not per length.
_SOURCE_LENGTH_BUCKET = 16


@dataclass
class Seq2SeqConfig(ModelConfig):
    """Sizes and choices of a :class:`Seq2SeqTransformer`; round-trips through JSON.

    Args:
        vocabulary_size: number of token ids of the source vocabulary (and of the target vocabulary
            unless ``target_vocabulary_size`` is set: a shared vocabulary, as in the paper).
        max_sequence_length: longest source sequence (and target sequence, unless
            ``max_target_sequence_length`` is set).
        hidden_dim: model width ``d_model``.
        num_encoder_layers: number of encoder blocks.
        num_decoder_layers: number of decoder blocks.
        num_heads: attention heads per block; must divide ``hidden_dim``.
        intermediate_dim: feed-forward width ``d_ff``.
        dropout: dropout on embeddings and every residual branch, in ``[0, 1)``.
        attention_dropout: dropout on attention weights (default ``dropout``).
        activation: feed-forward activation (``"relu"``, ``"gelu"``, ``"gelu_tanh"``, ``"silu"``).
        layer_norm_epsilon: epsilon of every LayerNorm.
        norm_first: pre-norm (True) or post-norm (False, the paper).
        use_bias: whether projections have biases.
        position: ``"sinusoidal"`` (the paper) or ``"learned"`` position embeddings.
        scale_embeddings: multiply token vectors by ``√hidden_dim`` (the paper).
        tie_embeddings: share the decoder's token table with the output projection; with a shared
            vocabulary the encoder uses the same table too (one matrix for all three, as in the paper).
        target_vocabulary_size: size of a separate target vocabulary (default: shared vocabulary).
        max_target_sequence_length: longest target sequence (default ``max_sequence_length``).
        final_norm: LayerNorm after the last encoder and decoder block (default: ``norm_first``, since a
            pre-norm stack leaves its output unnormalized).
        pad_id: padding id (0 in every llm_tf tokenizer).
        start_id: id the decoder starts from (a tokenizer's ``bos_id``; 2 is ``[CLS]``/``<s>`` in the
            llm_tf tokenizers' default special-token order ``pad, unk, cls, sep, mask``).
        end_id: id that ends a generated target (a tokenizer's ``eos_id``; 3 is ``[SEP]``/``</s>``).

    Example:

    >>> config = Seq2SeqConfig.from_preset("tiny", vocabulary_size=8000)
    >>> Seq2SeqConfig.from_dict(config.to_dict()) == config
    True
    """

    vocabulary_size: int
    max_sequence_length: int = 256
    hidden_dim: int = 512
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    num_heads: int = 8
    intermediate_dim: int = 2048
    dropout: float = 0.1
    attention_dropout: float | None = None
    activation: str = "relu"
    layer_norm_epsilon: float = 1e-5
    norm_first: bool = False
    use_bias: bool = True
    position: str = "sinusoidal"
    scale_embeddings: bool = True
    tie_embeddings: bool = True
    target_vocabulary_size: int | None = None
    max_target_sequence_length: int | None = None
    final_norm: bool | None = None
    pad_id: int = 0
    start_id: int = 2
    end_id: int = 3

    def __post_init__(self):
        for name in (
            "vocabulary_size",
            "max_sequence_length",
            "hidden_dim",
            "num_encoder_layers",
            "num_decoder_layers",
            "num_heads",
            "intermediate_dim",
        ):
            check_positive_int(name, getattr(self, name))
        for name in ("target_vocabulary_size", "max_target_sequence_length"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        if self.hidden_dim % self.num_heads != 0:
            raise ValueError(
                f"`hidden_dim` must be divisible by `num_heads`; got hidden_dim={self.hidden_dim}, "
                f"num_heads={self.num_heads}."
            )
        check_rate("dropout", self.dropout)
        if self.attention_dropout is not None:
            check_rate("attention_dropout", self.attention_dropout)
        get_activation(self.activation)  # raises a ValueError naming `activation` for an unknown one
        check_number("layer_norm_epsilon", self.layer_norm_epsilon, minimum=0, exclusive_minimum=True)
        check_choice("position", self.position, list(_POSITIONS))
        for name, size in (
            ("pad_id", self.vocabulary_size),
            ("pad_id", self.effective_target_vocabulary_size),
            ("start_id", self.effective_target_vocabulary_size),
            ("end_id", self.effective_target_vocabulary_size),
        ):
            value = getattr(self, name)
            if not is_int(value) or not 0 <= value < size:
                raise ValueError(f"`{name}` must be an id in [0, {size}); got {name}={value!r}.")
        if self.end_id == self.pad_id:
            raise ValueError(
                f"`end_id` must differ from `pad_id` (generated targets are padded after the end token); "
                f"got end_id={self.end_id}, pad_id={self.pad_id}."
            )

    @property
    def effective_target_vocabulary_size(self):
        """The target vocabulary size actually used (``target_vocabulary_size`` or the shared one)."""
        return self.target_vocabulary_size or self.vocabulary_size

    @property
    def effective_max_target_length(self):
        """The longest target sequence actually allowed."""
        return self.max_target_sequence_length or self.max_sequence_length

    @property
    def max_target_length_name(self):
        """The field that sets :attr:`effective_max_target_length`, for error messages."""
        return "max_target_sequence_length" if self.max_target_sequence_length else "max_sequence_length"

    @property
    def shares_vocabulary(self):
        """Whether source and target use one vocabulary."""
        return self.target_vocabulary_size in (None, self.vocabulary_size)

Seq2SeqConfig.PRESETS, Seq2SeqConfig.PRESET_KIND = SEQ2SEQ_PRESETS, "seq2seq"
Seq2SeqConfig.REQUIRED_OVERRIDES = ("vocabulary_size",)


def _known_values(tensor):
    """The values of ``tensor`` as a numpy array when they are known now, else ``None``.

    Numpy arrays, Python lists and eager tensors have values; symbolic tensors (a Functional model
    being built, a ``tf.function`` or ``fit`` trace) do not, and are not checked.
    """
    if isinstance(tensor, np.ndarray | list | tuple):
        return np.asarray(tensor)
    if keras.backend.is_keras_tensor(tensor) or not hasattr(tensor, "numpy"):
        return None
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def _check_token_ids(name, token_ids, vocabulary_size, max_length, length_name):
    """Raises ``ValueError`` for a rank other than 2, a sequence over ``max_length`` or ids out of range."""
    shape = tuple(token_ids.shape)
    if len(shape) != 2:
        raise ValueError(f"`{name}` must have shape (batch, sequence); got shape {shape}.")
    if shape[1] is not None and shape[1] > max_length:
        raise ValueError(
            f"sequence too long: `{name}` has {shape[1]} tokens, more than {length_name}={max_length}."
        )
    values = _known_values(token_ids)
    if values is not None and values.size:
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= vocabulary_size:
            bad = low if low < 0 else high
            raise ValueError(f"`{name}` holds token id {bad}, outside the vocabulary [0, {vocabulary_size}).")


@keras.saving.register_keras_serializable(package="llm_tf")
class Seq2SeqTransformer(keras.Model):
    """Encoder–decoder Transformer for translation and summarization.

    Post-norm (``norm_first=False``, the paper) encoder block: ``H' = LN(H + MHA(H))``,
    ``Y = LN(H' + FFN(H'))``; the decoder adds ``LN(H + CrossMHA(H, E))`` between its masked
    self-attention and its feed-forward network. Logits are ``H_dec · W_embedᵀ`` with tied embeddings.

    Sublayers (attribute names, for weight mapping):

    - ``encoder_embedding``, ``decoder_embedding``: :class:`~llm_tf.layers.TokenAndPositionEmbedding`
      (the same layer object when the vocabulary is shared and ``tie_embeddings`` is set; then
      ``position="learned"`` shares the position table between encoder and decoder too);
    - ``embedding_dropout``: dropout on both embedded sequences;
    - ``encoder_blocks``: list of :class:`~llm_tf.layers.TransformerEncoderBlock`;
    - ``decoder_blocks``: list of :class:`~llm_tf.layers.TransformerDecoderBlock` (``cross_attention=True``);
    - ``encoder_final_norm``, ``decoder_final_norm``: LayerNorms, only when ``config.final_norm``
      (default: pre-norm models);
    - ``output_projection``: ``Dense(target_vocabulary)`` only when ``tie_embeddings`` is False.

    Args:
        config: a :class:`Seq2SeqConfig` (or its dict).
        **kwargs: standard ``keras.Model`` arguments (``name``, ``dtype``).

    Call arguments:
        inputs: dict with ``encoder_token_ids`` ``(batch, source)`` and ``decoder_token_ids``
            ``(batch, target)`` (int), and optional ``encoder_padding_mask`` / ``decoder_padding_mask``
            (bool, True = real token; default ``ids != pad_id``).
        training: whether dropout is active.

    Returns:
        float32 logits ``(batch, target, target_vocabulary)``.

    Training data: ``decoder_token_ids = [start_id] + target`` and labels ``target + [end_id]``, both
    right-padded with ``pad_id``, sample weight 0 at padding, with
    ``SparseCategoricalCrossentropy(from_logits=True)``. :meth:`encode` and :meth:`decode` run the two
    halves separately; :meth:`generate` decodes new targets (greedy or beam search).

    Example:

    >>> config = Seq2SeqConfig.from_preset("tiny", vocabulary_size=100, dropout=0.0)
    >>> model = Seq2SeqTransformer(config)
    >>> source = np.array([[5, 6, 7, 3, 0]])
    >>> logits = model({"encoder_token_ids": source, "decoder_token_ids": np.array([[2, 9, 8]])})
    >>> tuple(logits.shape)
    (1, 3, 100)
    >>> model.generate(source, max_length=4).shape
    (1, 4)
    """

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = Seq2SeqConfig.from_dict(config)
        if not isinstance(config, Seq2SeqConfig):
            raise ValueError(f"`config` must be a Seq2SeqConfig or its dict; got {type(config).__name__}.")
        self.config = config
        final_norm = config.norm_first if config.final_norm is None else config.final_norm

        def embedding(vocabulary_size, max_length, name):
            return TokenAndPositionEmbedding(
                vocabulary_size,
                max_length,
                config.hidden_dim,
                position=config.position,
                scale_embeddings=config.scale_embeddings,
                # The paper's N(0, d^-1/2) scale keeps √d-scaled embeddings at unit size.
                embeddings_initializer=keras.initializers.RandomNormal(stddev=config.hidden_dim**-0.5),
                dtype=self.dtype_policy,
                name=name,
            )

        if config.shares_vocabulary and config.tie_embeddings:
            # One layer for both sides (with learned positions, the position table is shared too).
            longest = max(config.max_sequence_length, config.effective_max_target_length)
            self.encoder_embedding = embedding(config.vocabulary_size, longest, "encoder_embedding")
            self.decoder_embedding = self.encoder_embedding
        else:
            self.encoder_embedding = embedding(
                config.vocabulary_size, config.max_sequence_length, "encoder_embedding"
            )
            self.decoder_embedding = embedding(
                config.effective_target_vocabulary_size,
                config.effective_max_target_length,
                "decoder_embedding",
            )
        self.embedding_dropout = keras.layers.Dropout(
            config.dropout, dtype=self.dtype_policy, name="embedding_dropout"
        )
        block_arguments = dict(
            num_heads=config.num_heads,
            intermediate_dim=config.intermediate_dim,
            dropout=config.dropout,
            attention_dropout=config.attention_dropout,
            activation=config.activation,
            layer_norm_epsilon=config.layer_norm_epsilon,
            norm_first=config.norm_first,
            use_bias=config.use_bias,
            dtype=self.dtype_policy,
        )
        self.encoder_blocks = [
            TransformerEncoderBlock(**block_arguments, name=f"encoder_block_{i}")
            for i in range(config.num_encoder_layers)
        ]
        self.decoder_blocks = [
            TransformerDecoderBlock(**block_arguments, cross_attention=True, name=f"decoder_block_{i}")
            for i in range(config.num_decoder_layers)
        ]
        self.encoder_final_norm = self.decoder_final_norm = None
        if final_norm:
            self.encoder_final_norm = keras.layers.LayerNormalization(
                epsilon=config.layer_norm_epsilon, dtype=self.dtype_policy, name="encoder_final_norm"
            )
            self.decoder_final_norm = keras.layers.LayerNormalization(
                epsilon=config.layer_norm_epsilon, dtype=self.dtype_policy, name="decoder_final_norm"
            )
        self.output_projection = None
        if not config.tie_embeddings:
            self.output_projection = keras.layers.Dense(
                config.effective_target_vocabulary_size,
                use_bias=config.use_bias,
                dtype=self.dtype_policy,
                name="output_projection",
            )
        self._generation_loops = generation.CompiledLoops()
        self.build()

    def build(self, input_shape=None):
        # Every shape is known from the config, so the weights exist right after construction
        # (save/load and weight mapping need no dummy call).
        hidden_shape = (None, None, self.config.hidden_dim)
        for embedding in (self.encoder_embedding, self.decoder_embedding):
            if not embedding.built:  # the two may be one shared layer
                embedding.build()
        for block in self.encoder_blocks:
            block.build(hidden_shape)
        for block in self.decoder_blocks:
            block.build(hidden_shape, hidden_shape)
        for norm in (self.encoder_final_norm, self.decoder_final_norm):
            if norm is not None:
                norm.build(hidden_shape)
        if self.output_projection is not None:
            self.output_projection.build(hidden_shape)
        self.built = True

    # ----------------------------------------------------------------------------------------------
    # Forward pass.

    def _padding_mask(self, token_ids, padding_mask):
        if padding_mask is None:
            return ops.not_equal(token_ids, self.config.pad_id)
        return ops.cast(padding_mask, "bool")

    def encode(self, encoder_token_ids, encoder_padding_mask=None, training=None):
        """Runs the encoder.

        Args:
            encoder_token_ids: int ``(batch, source)``.
            encoder_padding_mask: bool ``(batch, source)``, True for real tokens (default ``ids != pad_id``).
            training: whether dropout is active.

        Returns:
            ``(batch, source, hidden_dim)`` encoder output.
        """
        config = self.config
        _check_token_ids(
            "encoder_token_ids",
            encoder_token_ids,
            config.vocabulary_size,
            config.max_sequence_length,
            "max_sequence_length",
        )
        encoder_padding_mask = self._padding_mask(encoder_token_ids, encoder_padding_mask)
        hidden = self.embedding_dropout(self.encoder_embedding(encoder_token_ids), training=training)
        for block in self.encoder_blocks:
            hidden = block(hidden, padding_mask=encoder_padding_mask, training=training)
        if self.encoder_final_norm is not None:
            hidden = self.encoder_final_norm(hidden)
        return hidden

    def _logits(self, hidden):
        if self.output_projection is None:
            logits = self.decoder_embedding.project_to_vocabulary(hidden)
        else:
            logits = self.output_projection(hidden)
        return ops.cast(logits, "float32")

    def decode(
        self,
        decoder_token_ids,
        encoder_output,
        encoder_padding_mask=None,
        decoder_padding_mask=None,
        training=None,
    ):
        """Runs the decoder over a whole target (teacher forcing) and returns logits.

        Args:
            decoder_token_ids: int ``(batch, target)``, starting with ``start_id``.
            encoder_output: ``(batch, source, hidden_dim)`` from :meth:`encode`.
            encoder_padding_mask: bool ``(batch, source)``, True for real source tokens.
            decoder_padding_mask: bool ``(batch, target)`` (default ``ids != pad_id``).
            training: whether dropout is active.

        Returns:
            float32 logits ``(batch, target, target_vocabulary)``.
        """
        config = self.config
        _check_token_ids(
            "decoder_token_ids",
            decoder_token_ids,
            config.effective_target_vocabulary_size,
            config.effective_max_target_length,
            config.max_target_length_name,
        )
        decoder_padding_mask = self._padding_mask(decoder_token_ids, decoder_padding_mask)
        if encoder_padding_mask is not None:
            encoder_padding_mask = ops.cast(encoder_padding_mask, "bool")
        hidden = self.embedding_dropout(self.decoder_embedding(decoder_token_ids), training=training)
        for block in self.decoder_blocks:
            hidden = block(
                hidden,
                encoder_output,
                padding_mask=decoder_padding_mask,
                encoder_padding_mask=encoder_padding_mask,
                training=training,
            )
        if self.decoder_final_norm is not None:
            hidden = self.decoder_final_norm(hidden)
        return self._logits(hidden)

    def call(self, inputs, training=None):
        if not isinstance(inputs, dict):
            raise ValueError(
                "Seq2SeqTransformer expects a dict with `encoder_token_ids` and `decoder_token_ids` "
                f"(and optional padding masks); got {type(inputs).__name__}."
            )
        missing = [key for key in ("encoder_token_ids", "decoder_token_ids") if key not in inputs]
        if missing:
            raise ValueError(f"the inputs dict misses {missing}; got keys {sorted(inputs)}.")
        encoder_token_ids = inputs["encoder_token_ids"]
        encoder_padding_mask = self._padding_mask(encoder_token_ids, inputs.get("encoder_padding_mask"))
        encoder_output = self.encode(encoder_token_ids, encoder_padding_mask, training=training)
        return self.decode(
            inputs["decoder_token_ids"],
            encoder_output,
            encoder_padding_mask=encoder_padding_mask,
            decoder_padding_mask=inputs.get("decoder_padding_mask"),
            training=training,
        )

    def get_config(self):
        config = super().get_config()
        config["config"] = self.config.to_dict()
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(Seq2SeqConfig.from_dict(config.pop("config")), **config)

    @classmethod
    def from_preset(cls, name, **overrides):
        """A freshly initialized model of size ``name``; see :meth:`Seq2SeqConfig.from_preset`."""
        return cls(Seq2SeqConfig.from_preset(name, **overrides))

    # ----------------------------------------------------------------------------------------------
    # Generation.

    def _prepare_source(self, encoder_token_ids, encoder_padding_mask):
        """Host-side checks and conversion of the source batch; returns int32 ids and a bool mask."""
        if isinstance(encoder_token_ids, dict):
            if "encoder_token_ids" not in encoder_token_ids:
                raise ValueError(
                    f"a dict passed to generate needs `encoder_token_ids`; got keys {sorted(encoder_token_ids)}."
                )
            if encoder_padding_mask is None:
                encoder_padding_mask = encoder_token_ids.get("encoder_padding_mask")
            encoder_token_ids = encoder_token_ids["encoder_token_ids"]
        if hasattr(encoder_token_ids, "to_tensor"):  # a ragged batch (tf.RaggedTensor)
            encoder_token_ids = encoder_token_ids.to_tensor(default_value=self.config.pad_id)
        if isinstance(encoder_token_ids, list | tuple) and any(
            isinstance(row, list | tuple | np.ndarray) for row in encoder_token_ids
        ):
            # A list of sequences, possibly of different lengths: right-pad them with pad_id.
            rows = [np.asarray(row).reshape(-1) for row in encoder_token_ids]
            values = np.full((len(rows), max((len(r) for r in rows), default=0)), self.config.pad_id, "int64")
            for i, row in enumerate(rows):
                values[i, : len(row)] = row
        else:
            values = _known_values(encoder_token_ids)
        if values is None:
            raise ValueError("generate needs concrete `encoder_token_ids` (numpy, lists or eager tensors).")
        if values.ndim == 1:
            values = values[None, :]
        if not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"`encoder_token_ids` must hold integer ids; got dtype {values.dtype}.")
        if values.size == 0:
            raise ValueError(f"`encoder_token_ids` must be a non-empty batch; got shape {values.shape}.")
        config = self.config
        _check_token_ids(
            "encoder_token_ids",
            values,
            config.vocabulary_size,
            config.max_sequence_length,
            "max_sequence_length",
        )
        if encoder_padding_mask is None:
            mask = values != config.pad_id
        else:
            mask = _known_values(encoder_padding_mask)
            if mask is None or mask.shape != values.shape:
                raise ValueError(
                    f"`encoder_padding_mask` must be concrete with the ids' shape {values.shape}; "
                    f"got {None if mask is None else mask.shape}."
                )
            mask = mask.astype(bool)
        # Round the source length up to a multiple of 16 with masked padding (which changes no result), so
        # batches of similar lengths share one compiled loop instead of compiling one each.
        bucket = -(-values.shape[1] // _SOURCE_LENGTH_BUCKET) * _SOURCE_LENGTH_BUCKET
        extra = min(bucket, config.max_sequence_length) - values.shape[1]
        if extra > 0:
            values = np.pad(values, ((0, 0), (0, extra)), constant_values=config.pad_id)
            mask = np.pad(mask, ((0, 0), (0, extra)), constant_values=False)
        return values.astype("int32"), mask

    @property
    def generate_trace_count(self):
        """How many times a generation loop was traced (compiled); one per new shape or sampler setting."""
        return self._generation_loops.trace_count

    def generate(
        self,
        encoder_token_ids,
        max_new_tokens=None,
        sampler="greedy",
        temperature=1.0,
        top_k=None,
        top_p=None,
        num_beams=4,
        length_penalty=1.0,
        stop_token_ids=None,
        seed=None,
        encoder_padding_mask=None,
        return_scores=False,
    ):
        """Generates target token ids for a batch of sources (greedy, sampled or beam search).

        Decoding starts from ``config.start_id`` and stops at ``config.end_id`` (and any
        ``stop_token_ids``) or after ``max_new_tokens`` tokens; ``pad_id`` is never generated, so in the
        output it only follows the end token. Each step runs only the newest token through the decoder:
        the self-attention keys and values of earlier tokens sit in per-layer caches, and the
        cross-attention keys and values are projected once from the encoder output. The loop
        (:mod:`llm_tf.models.generation`, shared with :class:`~llm_tf.models.GPT`) is compiled (XLA on
        TensorFlow) once per batch size, ``max_new_tokens``, sampler, ``top_k``, ``num_beams``, stop tokens and
        source length rounded up to a multiple of 16 (the source is padded, masked, to that length); keep the
        batch size fixed when generating over a dataset. ``temperature``, ``top_p`` and ``length_penalty`` are
        values of the compiled loop: a new one does not compile again.

        Scores are ``log P(y | x) / lp(len(y))`` with the GNMT penalty ``lp(n) = ((5 + n) / 6) **
        length_penalty`` (``n`` counts generated tokens including the end token); beam search ranks its
        hypotheses by this score at every step. ``sampler="beam"`` with ``num_beams=1`` is exactly greedy.

        Args:
            encoder_token_ids: int ``(batch, source)`` (numpy, eager tensor, list of lists, which may
                differ in length and are right-padded, a ``tf.RaggedTensor``), a single sequence, or a
                model inputs dict (its ``encoder_*`` entries are used).
            max_new_tokens: most tokens to generate, at most the maximum target length (default: that).
            sampler: ``"greedy"``, ``"temperature"``, ``"top_k"``, ``"top_p"`` or ``"beam"``.
            temperature, top_k, top_p: settings of the sampling samplers (as in ``GPT.generate``).
            num_beams: beams per source for ``"beam"``.
            length_penalty: ``alpha`` of the GNMT length penalty (>= 0).
            stop_token_ids: ids that end a sequence besides ``config.end_id``.
            seed: integer seed of the sampling samplers (``None`` draws one).
            encoder_padding_mask: bool ``(batch, source)``, True for real tokens (default ``ids != pad_id``).
            return_scores: also return each output's score.

        Returns:
            int32 numpy array ``(batch, max_new_tokens)`` of generated ids without the start token, with
            ``pad_id`` after the end token, ready for ``tokenizer.batch_decode``; with
            ``return_scores``, a tuple ``(token_ids, scores)`` with float32 scores ``(batch,)``.

        Example:

        >>> model = Seq2SeqTransformer(Seq2SeqConfig.from_preset("tiny", vocabulary_size=100))
        >>> model.generate([[5, 6, 7, 3]], max_new_tokens=6, sampler="beam", num_beams=4).shape
        (1, 6)
        """
        config = self.config
        limit = config.effective_max_target_length
        max_new_tokens = generation.check_max_new_tokens(
            limit if max_new_tokens is None else max_new_tokens, limit, config.max_target_length_name
        )
        stop_token_ids = [stop_token_ids] if is_int(stop_token_ids) else list(stop_token_ids or [])
        settings = generation.generation_settings(
            sampler, temperature, top_k, top_p, num_beams, length_penalty, stop_token_ids + [config.end_id],
            config.effective_target_vocabulary_size,
        )
        token_ids, padding_mask = self._prepare_source(encoder_token_ids, encoder_padding_mask)
        key, values = generation.compile_key_and_values(settings)
        output_ids, scores = self._generation_loops(
            key + (max_new_tokens,),
            lambda: lambda ids, mask, seed, values: self._generate_graph(
                ids, mask, seed, max_new_tokens, generation.settings_in_graph(key, values)
            ),
            token_ids,
            padding_mask,
            generation.check_seed(seed),
            values,
        )
        output_ids = np.asarray(ops.convert_to_numpy(output_ids)).astype("int32")
        if return_scores:
            return output_ids, np.asarray(ops.convert_to_numpy(scores)).astype("float32")
        return output_ids

    def _generate_graph(self, encoder_token_ids, encoder_padding_mask, seed, max_new_tokens, settings):
        """The traced body of :meth:`generate`: encode once, then :func:`generation.decode` over cached steps."""
        batch_size = ops.shape(encoder_token_ids)[0]
        encoder_output = self.encode(encoder_token_ids, encoder_padding_mask, training=False)
        if settings[0] == "beam":  # beams are flattened into the batch: row b * num_beams + k
            encoder_output = ops.repeat(encoder_output, settings[4], axis=0)
            encoder_padding_mask = ops.repeat(encoder_padding_mask, settings[4], axis=0)
        rows = ops.shape(encoder_output)[0]
        cross_caches = tuple(block.compute_cross_attention_cache(encoder_output) for block in self.decoder_blocks)

        def step(tokens, index, caches):
            return self._decode_step(tokens, index, caches, cross_caches, encoder_padding_mask)

        def reorder(caches, parent_rows):
            return tuple(ops.take(cache, parent_rows, axis=0) for cache in caches)

        start = ops.full((rows,), self.config.start_id, "int32")
        first_logits, caches = step(start, 0, self._empty_self_attention_caches(rows, max_new_tokens))
        return generation.decode(
            step, reorder, first_logits, caches, batch_size, max_new_tokens, settings, seed,
            pad_id=self.config.pad_id, banned_token_ids=(self.config.pad_id,),
        )

    def _empty_self_attention_caches(self, batch_size, max_length):
        head_dim = self.config.hidden_dim // self.config.num_heads
        shape = (batch_size, 2, max_length, self.config.num_heads, head_dim)
        return tuple(ops.zeros(shape, dtype=block.compute_dtype) for block in self.decoder_blocks)

    def _decode_step(
        self, token_ids, index, self_attention_caches, cross_attention_caches, encoder_padding_mask
    ):
        """One cached decoder step: ``token_ids`` ``(batch,)`` at position ``index`` → float32 logits ``(batch, vocab)``."""
        hidden = self.decoder_embedding(token_ids[:, None], start_index=index)
        updated_caches = []
        for block, cache, cross_cache in zip(
            self.decoder_blocks, self_attention_caches, cross_attention_caches
        ):
            hidden, cache = block(
                hidden,
                encoder_padding_mask=encoder_padding_mask,
                self_attention_cache=cache,
                cache_index=index,
                cross_attention_cache=cross_cache,
                training=False,
            )
            updated_caches.append(cache)
        if self.decoder_final_norm is not None:
            hidden = self.decoder_final_norm(hidden)
        return self._logits(hidden)[:, 0, :], tuple(updated_caches)
