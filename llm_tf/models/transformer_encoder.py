"""BERT-style bidirectional encoder (the backbone of :mod:`~llm_tf.models.text_classifier` and
:mod:`~llm_tf.models.masked_lm`).

* :class:`TransformerEncoderConfig` — the sizes and architecture switches (a JSON-friendly dataclass),
  with the presets in :data:`ENCODER_PRESETS` (``tiny``, ``mini``, ``small``, ``base``);
* :class:`TransformerEncoder` — the backbone: embeddings → N encoder blocks → optional final norm.

The heads live one per file: ``text_classifier.TextClassifier`` (backbone + pooling + dropout + dense head →
class logits) and ``masked_lm.MaskedLM`` (backbone + BERT's MLM head tied to the token embedding).

With the default switches the backbone is exactly BERT (Devlin et al., 2019)::

    E = LayerNorm(W_tok[x] + W_pos[0..T) + W_seg[s])          (embedding_norm=True, num_segments=2)
    H_0 = Dropout(E)
    H_l = EncoderBlock_l(H_{l-1})                               (post-norm, GELU with erf)

so a Hugging Face ``BertModel`` maps onto it weight for weight (``pooling="pooler"`` of
:class:`TextClassifier` adds BERT's pooler, :class:`MaskedLM` holds BERT's ``cls.predictions``).

Inputs follow the project convention: a dict with ``token_ids`` (int ``(batch, sequence)``),
``padding_mask`` (bool or 0/1 ``(batch, sequence)``, True for real tokens) and optional ``segment_ids``;
a bare token-id tensor is accepted too (its padding mask is then ``token_ids != 0``, the project's padding
id). In eager calls the ids are checked against the vocabulary and segment count, because compiled (XLA)
gathers silently clamp out-of-range ids instead of failing.
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from llm_tf.checks import (
    check_bool,
    check_choice,
    check_non_negative_int,
    check_number,
    check_positive_int,
    check_rate,
)
from llm_tf.layers import TokenAndPositionEmbedding, TransformerEncoderBlock
from llm_tf.layers.feed_forward import get_activation
from llm_tf.models.config import ModelConfig

# The project's tokenizers all reserve id 0 for padding; a bare token-id input is masked with it.
PADDING_ID = 0
BACKBONE_INPUT_KEYS = ("token_ids", "padding_mask", "segment_ids")
POOLING_CHOICES = ("first", "mean", "max", "mean_max", "pooler")

# BERT's miniatures (Turc et al., 2019: "Well-Read Students Learn Better") and BERT-base. They share
# BERT's uncased WordPiece vocabulary, 512 positions and 2 segments; override `vocabulary_size` for
# another tokenizer.
_BERT_SHARED = {"vocabulary_size": 30522, "max_sequence_length": 512, "num_segments": 2}
ENCODER_PRESETS = {
    "tiny": {**_BERT_SHARED, "hidden_dim": 128, "num_layers": 2, "num_heads": 2, "intermediate_dim": 512},
    "mini": {**_BERT_SHARED, "hidden_dim": 256, "num_layers": 4, "num_heads": 4, "intermediate_dim": 1024},
    "small": {**_BERT_SHARED, "hidden_dim": 512, "num_layers": 4, "num_heads": 8, "intermediate_dim": 2048},
    "base": {**_BERT_SHARED, "hidden_dim": 768, "num_layers": 12, "num_heads": 12, "intermediate_dim": 3072},
}


@dataclasses.dataclass
class TransformerEncoderConfig(ModelConfig):
    """Sizes and architecture switches of a :class:`TransformerEncoder`.

    The defaults of the switches reproduce BERT; ``norm_first=True, final_norm=True,
    embedding_norm=False`` gives a pre-norm encoder instead.

    Args:
        vocabulary_size: number of token ids.
        max_sequence_length: longest sequence (number of learned positions).
        hidden_dim: width ``d`` of every token vector.
        num_layers: number of encoder blocks.
        num_heads: attention heads per block; must divide ``hidden_dim``.
        intermediate_dim: hidden width of each feed-forward network (``4·d`` in BERT).
        dropout: dropout after the embeddings and on every residual branch, in ``[0, 1)``.
        attention_dropout: dropout on the attention weights (default: ``dropout``).
        activation: feed-forward (and MLM head) activation: ``"gelu"`` (exact erf form, BERT),
            ``"gelu_tanh"``, ``"relu"`` or ``"silu"``.
        layer_norm_epsilon: epsilon of every LayerNorm (BERT: 1e-12).
        norm_first: pre-norm blocks (True) or post-norm blocks (False, BERT).
        use_bias: whether the attention and feed-forward projections have biases.
        num_segments: number of segment (token-type) ids; 0 means no segment embedding (BERT: 2).
        embedding_norm: LayerNorm after summing the embeddings (BERT: True).
        final_norm: LayerNorm after the last block (for pre-norm stacks).
        position: ``"learned"`` (BERT) or ``"sinusoidal"`` position embeddings.
        initializer_range: standard deviation of the truncated-normal weight initializer (BERT: 0.02).

    Example:

    >>> config = TransformerEncoderConfig.from_preset("tiny", vocabulary_size=8000, num_segments=0)
    >>> TransformerEncoderConfig.from_dict(config.to_dict()) == config
    True
    """

    vocabulary_size: int
    max_sequence_length: int
    hidden_dim: int
    num_layers: int
    num_heads: int
    intermediate_dim: int
    dropout: float = 0.1
    attention_dropout: float | None = None
    activation: str = "gelu"
    layer_norm_epsilon: float = 1e-12
    norm_first: bool = False
    use_bias: bool = True
    num_segments: int = 0
    embedding_norm: bool = True
    final_norm: bool = False
    position: str = "learned"
    initializer_range: float = 0.02

    def __post_init__(self):
        for name in ("vocabulary_size", "max_sequence_length", "hidden_dim", "num_layers", "num_heads"):
            check_positive_int(name, getattr(self, name))
        check_positive_int("intermediate_dim", self.intermediate_dim)
        if self.hidden_dim % self.num_heads != 0:
            raise ValueError(
                f"`hidden_dim` must be divisible by `num_heads`; got hidden_dim={self.hidden_dim} and "
                f"num_heads={self.num_heads}."
            )
        check_rate("dropout", self.dropout)
        if self.attention_dropout is not None:
            check_rate("attention_dropout", self.attention_dropout)
        get_activation(self.activation)  # raises a ValueError naming `activation` for an unknown one
        check_choice("position", self.position, {"learned", "sinusoidal"})
        for name in ("layer_norm_epsilon", "initializer_range"):
            check_number(name, getattr(self, name), minimum=0, exclusive_minimum=True)
        check_non_negative_int("num_segments", self.num_segments)  # 0: no segment embedding
        for name in ("norm_first", "use_bias", "embedding_norm", "final_norm"):
            check_bool(name, getattr(self, name))

TransformerEncoderConfig.PRESETS, TransformerEncoderConfig.PRESET_KIND = ENCODER_PRESETS, "encoder"


def _as_config(config):
    if isinstance(config, TransformerEncoderConfig):
        return config
    if isinstance(config, dict):
        return TransformerEncoderConfig.from_dict(config)
    raise ValueError(
        f"`config` must be a TransformerEncoderConfig or a dict of its fields; got {type(config).__name__}."
    )


def _initializer(config):
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


def _concrete_values(tensor):
    """The tensor's values as numpy when they exist now (an eager call), else None (while tracing)."""
    if isinstance(tensor, np.ndarray):
        return tensor
    if isinstance(tensor, keras.KerasTensor) or not hasattr(tensor, "numpy"):
        return None
    return ops.convert_to_numpy(tensor)


def _check_id_range(name, tensor, upper, upper_name):
    """Raise ``ValueError`` if any concrete id is outside ``[0, upper)``; skipped while tracing."""
    values = _concrete_values(tensor)
    if values is None or values.size == 0:
        return
    low, high = int(values.min()), int(values.max())
    if low < 0 or high >= upper:
        bad = low if low < 0 else high
        position = tuple(int(i) for i in np.argwhere(values == bad)[0])
        raise ValueError(
            f"`{name}` must be in [0, {upper_name}={upper}); got {name}={bad} at position {position}."
        )


def _check_inputs_dict(inputs, allowed, model_name):
    if not isinstance(inputs, dict):
        return
    unknown = sorted(set(inputs) - set(allowed))
    if unknown:
        raise ValueError(
            f"{model_name} got unknown input key(s) {unknown}; expected keys among {list(allowed)}."
        )
    if "token_ids" not in inputs:
        raise ValueError(f"{model_name} inputs must contain 'token_ids'; got keys {sorted(inputs)}.")


@keras.saving.register_keras_serializable(package="llm_tf")
class TransformerEncoder(keras.Model):
    """The bidirectional (BERT-style) Transformer encoder backbone.

    Implements::

        E   = W_tok[x] + P[0..T) (+ W_seg[s] if num_segments > 0)
        H_0 = Dropout(LayerNorm(E))                (LayerNorm only if embedding_norm)
        H_l = EncoderBlock_l(H_{l-1}, padding_mask)  for l = 1..num_layers
        Y   = LayerNorm(H_L)                       (only if final_norm)

    The model is built when constructed, so its weights exist (and can be assigned) before the first call.

    Sublayers (the names a checkpoint converter relies on):

    * ``embedding`` — :class:`~llm_tf.layers.TokenAndPositionEmbedding`, weights ``token_embeddings``
      ``(vocabulary_size, hidden_dim)`` and, when learned, ``position_embeddings``
      ``(max_sequence_length, hidden_dim)``; ``embedding.project_to_vocabulary`` is the tied output head.
    * ``segment_embedding`` — ``keras.layers.Embedding(num_segments, hidden_dim)`` or ``None``.
    * ``embedding_norm`` — ``keras.layers.LayerNormalization`` or ``None``.
    * ``embedding_dropout`` — ``keras.layers.Dropout``.
    * ``blocks`` — list of :class:`~llm_tf.layers.TransformerEncoderBlock` (each with ``self_attention``
      (``query_dense``, ``key_dense``, ``value_dense``, ``output_dense``), ``self_attention_norm``,
      ``feed_forward`` (``intermediate_dense``, ``output_dense``) and ``feed_forward_norm``).
    * ``final_norm`` — ``keras.layers.LayerNormalization`` or ``None``.

    Args:
        config: a :class:`TransformerEncoderConfig` (or a dict of its fields).
        **kwargs: standard model arguments (``name``, ``dtype`` such as ``"mixed_bfloat16"``).

    Call arguments:
        inputs: dict with ``token_ids`` (int ``(batch, sequence)``), optional ``padding_mask`` (bool or
            0/1 ``(batch, sequence)``, True for real tokens; default ``token_ids != 0``) and optional
            ``segment_ids`` (int ``(batch, sequence)`` in ``[0, num_segments)``; default all 0); or a
            bare ``token_ids`` tensor.
        training: whether dropout is active.

    Returns:
        The sequence output ``(batch, sequence, hidden_dim)`` in the compute dtype.

    Raises:
        ValueError: in eager calls, for token ids outside ``[0, vocabulary_size)``, segment ids outside
            ``[0, num_segments)`` or segment ids given to a model without segments; always, for a
            sequence longer than ``max_sequence_length`` or unknown input keys.

    Example:

    >>> encoder = TransformerEncoder(TransformerEncoderConfig.from_preset("tiny", vocabulary_size=1000))
    >>> encoder({"token_ids": np.array([[2, 7, 9, 0]]), "padding_mask": np.array([[1, 1, 1, 0]])}).shape
    TensorShape([1, 4, 128])
    """

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = _as_config(config)
        config = self.config
        self.embedding = TokenAndPositionEmbedding(
            vocabulary_size=config.vocabulary_size,
            max_sequence_length=config.max_sequence_length,
            embedding_dim=config.hidden_dim,
            position=config.position,
            embeddings_initializer=_initializer(config),
            dtype=self.dtype_policy,
            name="embedding",
        )
        self.segment_embedding = None
        if config.num_segments > 0:
            self.segment_embedding = keras.layers.Embedding(
                config.num_segments,
                config.hidden_dim,
                embeddings_initializer=_initializer(config),
                dtype=self.dtype_policy,
                name="segment_embedding",
            )
        self.embedding_norm = None
        if config.embedding_norm:
            self.embedding_norm = keras.layers.LayerNormalization(
                epsilon=config.layer_norm_epsilon, dtype=self.dtype_policy, name="embedding_norm"
            )
        self.embedding_dropout = keras.layers.Dropout(
            config.dropout, dtype=self.dtype_policy, name="embedding_dropout"
        )
        self.blocks = [
            TransformerEncoderBlock(
                num_heads=config.num_heads,
                intermediate_dim=config.intermediate_dim,
                dropout=config.dropout,
                attention_dropout=config.attention_dropout,
                activation=config.activation,
                layer_norm_epsilon=config.layer_norm_epsilon,
                norm_first=config.norm_first,
                use_bias=config.use_bias,
                kernel_initializer=_initializer(config),
                dtype=self.dtype_policy,
                name=f"block_{index}",
            )
            for index in range(config.num_layers)
        ]
        self.final_norm = None
        if config.final_norm:
            self.final_norm = keras.layers.LayerNormalization(
                epsilon=config.layer_norm_epsilon, dtype=self.dtype_policy, name="final_norm"
            )
        self.build()

    def build(self, input_shape=None):
        # Every weight's shape follows from the config, whatever the input: build everything now.
        sequence_shape = (None, None, self.config.hidden_dim)
        self.embedding.build((None, None))
        if self.segment_embedding is not None:
            self.segment_embedding.build((None, None))
        if self.embedding_norm is not None:
            self.embedding_norm.build(sequence_shape)
        for block in self.blocks:
            block.build(sequence_shape)
        if self.final_norm is not None:
            self.final_norm.build(sequence_shape)

    def unpack_inputs(self, inputs):
        """Split (and check) the inputs into ``(token_ids, padding_mask, segment_ids)``.

        Args:
            inputs: the backbone inputs (dict or bare token ids), see the class docstring.

        Returns:
            ``token_ids`` (int32), ``padding_mask`` (bool) and ``segment_ids`` (int32, or ``None`` when
            the model has no segment embedding).
        """
        _check_inputs_dict(inputs, BACKBONE_INPUT_KEYS, type(self).__name__)
        if isinstance(inputs, dict):
            token_ids = inputs["token_ids"]
            padding_mask = inputs.get("padding_mask")
            segment_ids = inputs.get("segment_ids")
        else:
            token_ids, padding_mask, segment_ids = inputs, None, None
        config = self.config
        if len(token_ids.shape) != 2:
            raise ValueError(
                f"`token_ids` must have shape (batch, sequence); got token_ids shape {tuple(token_ids.shape)}."
            )
        length = token_ids.shape[1]
        if length is not None and length > config.max_sequence_length:
            raise ValueError(
                f"sequence too long: token_ids has {length} tokens but "
                f"max_sequence_length={config.max_sequence_length}."
            )
        _check_id_range("token_ids", token_ids, config.vocabulary_size, "vocabulary_size")
        token_ids = ops.cast(token_ids, "int32")

        if padding_mask is None:
            padding_mask = ops.not_equal(token_ids, PADDING_ID)
        elif tuple(padding_mask.shape) != tuple(token_ids.shape):
            raise ValueError(
                f"`padding_mask` must have the shape of token_ids {tuple(token_ids.shape)}; "
                f"got padding_mask shape {tuple(padding_mask.shape)}."
            )
        padding_mask = ops.cast(padding_mask, "bool")

        if segment_ids is not None:
            if config.num_segments == 0:
                raise ValueError(
                    "`segment_ids` were given but this model has num_segments=0 (no segment embedding); "
                    "build it with num_segments > 0 or leave segment_ids out."
                )
            if tuple(segment_ids.shape) != tuple(token_ids.shape):
                raise ValueError(
                    f"`segment_ids` must have the shape of token_ids {tuple(token_ids.shape)}; "
                    f"got segment_ids shape {tuple(segment_ids.shape)}."
                )
            _check_id_range("segment_ids", segment_ids, config.num_segments, "num_segments")
            segment_ids = ops.cast(segment_ids, "int32")
        elif config.num_segments > 0:
            segment_ids = ops.zeros_like(token_ids)
        return token_ids, padding_mask, segment_ids

    def call(self, inputs, training=None):
        token_ids, padding_mask, segment_ids = self.unpack_inputs(inputs)
        return self.encode(token_ids, padding_mask, segment_ids, training=training)

    def encode(self, token_ids, padding_mask, segment_ids=None, training=None):
        """The forward pass on already unpacked and checked inputs (see :meth:`unpack_inputs`).

        Returns:
            ``(batch, sequence, hidden_dim)``.
        """
        return self.hidden_states(token_ids, padding_mask, segment_ids, training=training)[-1]

    def hidden_states(self, token_ids, padding_mask, segment_ids=None, training=None):
        """Every intermediate sequence output, for probing what each layer holds (Hugging Face's
        ``output_hidden_states``).

        Args:
            token_ids, padding_mask, segment_ids: as returned by :meth:`unpack_inputs`.
            training: whether dropout is active.

        Returns:
            A list of ``(batch, sequence, hidden_dim)`` tensors: ``H_0`` (the embeddings, after their
            LayerNorm and dropout), ``H_1`` … ``H_L`` (each block's output) and, with ``final_norm``,
            ``LayerNorm(H_L)``; the last one is what the model returns.
        """
        hidden = self.embedding(token_ids)
        if self.segment_embedding is not None:
            hidden = hidden + self.segment_embedding(segment_ids)
        if self.embedding_norm is not None:
            hidden = self.embedding_norm(hidden)
        states = [self.embedding_dropout(hidden, training=training)]
        for block in self.blocks:
            states.append(block(states[-1], padding_mask=padding_mask, training=training))
        if self.final_norm is not None:
            states.append(self.final_norm(states[-1]))
        return states

    def get_config(self):
        config = super().get_config()
        config["config"] = self.config.to_dict()
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(TransformerEncoderConfig.from_dict(config.pop("config")), **config)

    @classmethod
    def from_preset(cls, name, **overrides):
        """A backbone built from :meth:`TransformerEncoderConfig.from_preset` (random weights)."""
        return cls(TransformerEncoderConfig.from_preset(name, **overrides))


def lengthen_positions(model, max_sequence_length):
    """A copy of ``model`` (a ``TransformerEncoder`` or ``MaskedLM``) with ``max_sequence_length`` positions.

    Every weight is copied; a learned position table of ``L`` rows grows to ``max_sequence_length`` rows with
    row ``i`` a copy of row ``i mod L`` (the copy initialization Longformer used to lengthen RoBERTa: each
    block of ``L`` positions starts from the pretrained ones, so attention patterns learned on short
    sequences apply at once, and further training tells the blocks apart). Sinusoidal tables are computed for
    any length. Continue training the longer model on long sequences before relying on positions ``>= L``.

    Args:
        model: a built ``TransformerEncoder`` or ``MaskedLM`` (its backbone's ``config`` is read).
        max_sequence_length: the new number of positions, at least the model's.

    Returns:
        A new model of the same class; ``model`` is unchanged.

    Example:

    >>> encoder = TransformerEncoder(TransformerEncoderConfig(vocabulary_size=100, max_sequence_length=8,
    ...                                                        hidden_dim=16, num_layers=1, num_heads=2,
    ...                                                        intermediate_dim=32))
    >>> lengthen_positions(encoder, 32).config.max_sequence_length
    32
    """
    from llm_tf.models.masked_lm import MaskedLM

    if not isinstance(model, (TransformerEncoder, MaskedLM)):
        raise ValueError(f"`model` must be a TransformerEncoder or a MaskedLM; got {type(model).__name__}.")
    config = model.config
    check_positive_int("max_sequence_length", max_sequence_length)
    if max_sequence_length < config.max_sequence_length:
        raise ValueError(f"`max_sequence_length` must be >= the model's {config.max_sequence_length} (positions "
                         f"are added, never cut); got max_sequence_length={max_sequence_length}.")
    longer_config = dataclasses.replace(config, max_sequence_length=max_sequence_length)
    if isinstance(model, MaskedLM):
        longer = MaskedLM(config=longer_config, dtype=model.dtype_policy, name=model.name)
        embedding = model.backbone.embedding
    else:
        longer = TransformerEncoder(longer_config, dtype=model.dtype_policy, name=model.name)
        embedding = model.embedding
    weights = model.get_weights()  # Keras's own copy (set_weights checks the count and every shape)
    if config.position == "learned":
        index = next(i for i, weight in enumerate(model.weights) if weight is embedding.position_embeddings)
        weights[index] = weights[index][np.arange(max_sequence_length) % config.max_sequence_length]
    longer.set_weights(weights)
    return longer


def _backbone_from(backbone, config, dtype_policy, owner):
    """Exactly one of ``backbone`` (an existing encoder) or ``config`` gives the backbone."""
    if (backbone is None) == (config is None):
        raise ValueError(
            f"{owner} needs exactly one of `backbone` (a TransformerEncoder, e.g. a pretrained one) or "
            f"`config` (a TransformerEncoderConfig); got backbone={type(backbone).__name__}, "
            f"config={type(config).__name__}."
        )
    if backbone is None:
        return TransformerEncoder(_as_config(config), dtype=dtype_policy, name="backbone")
    if not isinstance(backbone, TransformerEncoder):
        raise ValueError(f"`backbone` must be a TransformerEncoder; got {type(backbone).__name__}.")
    return backbone


def _compile_from_saved(model, compile_config):
    """``compile_from_config`` for the heads whose ``compile`` only fills in defaults.

    Keras skips ``compile`` when loading a model that overrides it (with a warning), so a loaded
    ``.keras`` file would come back without its optimizer, loss and metrics. The saved arguments are
    the concrete ones ``keras.Model.compile`` received, which the overriding ``compile`` passes on
    unchanged; the optimizer is built here so that the file's optimizer state can be loaded into it.
    """
    model.compile(**keras.saving.deserialize_keras_object(compile_config))
    if model.built:
        model.optimizer.build(model.trainable_variables)
