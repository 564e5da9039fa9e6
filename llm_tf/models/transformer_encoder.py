"""BERT-style bidirectional encoder, a text classifier and a masked language model on top of it.

Everything of the family lives in this one file:

* :class:`TransformerEncoderConfig` — the sizes and architecture switches (a JSON-friendly dataclass),
  with the presets in :data:`ENCODER_PRESETS` (``tiny``, ``mini``, ``small``, ``base``);
* :class:`TransformerEncoder` — the backbone: embeddings → N encoder blocks → optional final norm;
* :class:`TextClassifier` — backbone + pooling + dropout + dense head → class logits;
* :class:`MaskedLM` — backbone + BERT's MLM head tied to the token embedding → logits at masked positions.

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
import json

import keras
import numpy as np
from keras import ops

from llm_tf.layers import TokenAndPositionEmbedding, TransformerEncoderBlock
from llm_tf.layers._validation import check_choice, check_positive_int, check_rate
from llm_tf.layers.feed_forward import ACTIVATIONS

# The project's tokenizers all reserve id 0 for padding; a bare token-id input is masked with it.
PADDING_ID = 0
BACKBONE_INPUT_KEYS = ("token_ids", "padding_mask", "segment_ids")
POOLING_CHOICES = ("first", "mean", "pooler")

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
class TransformerEncoderConfig:
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
        check_choice("activation", self.activation, set(ACTIVATIONS))
        check_choice("position", self.position, {"learned", "sinusoidal"})
        for name in ("layer_norm_epsilon", "initializer_range"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"`{name}` must be a positive number; got {name}={value!r}.")
        if (
            isinstance(self.num_segments, bool)
            or not isinstance(self.num_segments, int)
            or self.num_segments < 0
        ):
            raise ValueError(
                f"`num_segments` must be an integer >= 0 (0 = no segment embedding); "
                f"got num_segments={self.num_segments!r}."
            )
        for name in ("norm_first", "use_bias", "embedding_norm", "final_norm"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"`{name}` must be a bool; got {name}={getattr(self, name)!r}.")

    def to_dict(self):
        """Plain JSON-serializable dict of every field."""
        return dataclasses.asdict(self)

    def to_json(self):
        """The config as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values):
        """Rebuild from :meth:`to_dict` output; unknown or missing fields raise ``ValueError``."""
        if isinstance(values, cls):
            return values
        if not isinstance(values, dict):
            raise ValueError(
                f"`values` must be a dict of config fields; got {type(values).__name__}: {values!r}."
            )
        fields = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; valid fields are {sorted(fields)}.")
        required = [
            field.name
            for field in dataclasses.fields(cls)
            if field.default is dataclasses.MISSING and field.name not in values
        ]
        if required:
            raise ValueError(f"{cls.__name__} is missing required field(s) {required}.")
        return cls(**values)

    @classmethod
    def from_json(cls, text):
        """Rebuild from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_preset(cls, name, **overrides):
        """A preset from :data:`ENCODER_PRESETS` with some fields replaced.

        Args:
            name: ``"tiny"``, ``"mini"``, ``"small"`` or ``"base"`` (BERT-base: 12 layers, 768 wide,
                12 heads, 3072 intermediate, vocabulary 30522, 512 positions, 2 segments).
            **overrides: any config field, e.g. ``vocabulary_size=8000``.

        Returns:
            A :class:`TransformerEncoderConfig`.
        """
        if name not in ENCODER_PRESETS:
            raise ValueError(f"unknown encoder preset {name!r}; valid presets are {sorted(ENCODER_PRESETS)}.")
        return cls.from_dict({**ENCODER_PRESETS[name], **overrides})


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
        hidden = self.embedding(token_ids)
        if self.segment_embedding is not None:
            hidden = hidden + self.segment_embedding(segment_ids)
        if self.embedding_norm is not None:
            hidden = self.embedding_norm(hidden)
        hidden = self.embedding_dropout(hidden, training=training)
        for block in self.blocks:
            hidden = block(hidden, padding_mask=padding_mask, training=training)
        if self.final_norm is not None:
            hidden = self.final_norm(hidden)
        return hidden

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


@keras.saving.register_keras_serializable(package="llm_tf")
class TextClassifier(keras.Model):
    """Sequence classification: encoder backbone → pooling → dropout → dense head → class logits.

    Pooling (``pooling=``):

    * ``"first"`` — the first token's state (BERT's ``[CLS]`` position);
    * ``"mean"`` — the mean of the states of the real tokens (padding excluded), in float32;
    * ``"pooler"`` — BERT's pooler ``tanh(W_p · h_first + b_p)``; with it the model is exactly Hugging
      Face's ``BertForSequenceClassification`` (pooler → dropout → ``Dense(num_labels)``).

    Either build a fresh backbone from ``config`` or pass a trained one (the fine-tuning path, e.g.
    ``MaskedLM.backbone``); ``freeze_backbone=True`` trains only the head and runs the backbone in
    inference mode (no dropout). Setting ``model.backbone.trainable`` later re-freezes or unfreezes it.

    Sublayers: ``backbone`` (:class:`TransformerEncoder`), ``pooler`` (``Dense(hidden_dim, "tanh")``,
    only with ``pooling="pooler"``), ``output_dropout`` and ``classifier`` (``Dense(num_classes)``, float32
    so the logits stay float32 under mixed precision).

    Args:
        num_classes: number of classes (logit width).
        pooling: ``"first"``, ``"mean"`` or ``"pooler"``.
        dropout: dropout rate before the classifier, in ``[0, 1)``.
        backbone: an existing :class:`TransformerEncoder`; mutually exclusive with ``config``.
        config: a :class:`TransformerEncoderConfig` (or dict) for a new backbone.
        freeze_backbone: whether the backbone's weights stay fixed.
        **kwargs: standard model arguments (``name``, ``dtype``).

    Call arguments:
        inputs: ``{"token_ids", "padding_mask"[, "segment_ids"]}`` or bare token ids, as for
            :class:`TransformerEncoder`.
        training: whether dropout is active.

    Returns:
        float32 logits ``(batch, num_classes)``.

    Example:

    >>> config = TransformerEncoderConfig.from_preset("tiny", vocabulary_size=8000, num_segments=0)
    >>> classifier = TextClassifier(num_classes=5, pooling="mean", config=config)
    >>> classifier.compile(optimizer="adam")  # default loss: sparse categorical cross-entropy on logits
    >>> classifier({"token_ids": np.array([[2, 7, 9, 0]]), "padding_mask": np.array([[1, 1, 1, 0]])}).shape
    TensorShape([1, 5])
    """

    def __init__(
        self,
        num_classes,
        pooling="first",
        dropout=0.1,
        backbone=None,
        config=None,
        freeze_backbone=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("num_classes", num_classes)
        check_choice("pooling", pooling, set(POOLING_CHOICES))
        check_rate("dropout", dropout)
        if not isinstance(freeze_backbone, bool):
            raise ValueError(f"`freeze_backbone` must be a bool; got freeze_backbone={freeze_backbone!r}.")
        self.num_classes = num_classes
        self.pooling = pooling
        self.dropout = dropout
        self.backbone = _backbone_from(backbone, config, self.dtype_policy, type(self).__name__)
        if freeze_backbone:
            self.backbone.trainable = False
        hidden_dim = self.backbone.config.hidden_dim
        self.pooler = None
        if pooling == "pooler":
            self.pooler = keras.layers.Dense(
                hidden_dim,
                activation="tanh",
                kernel_initializer=_initializer(self.backbone.config),
                dtype=self.dtype_policy,
                name="pooler",
            )
        self.output_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="output_dropout")
        self.classifier = keras.layers.Dense(
            num_classes,
            kernel_initializer=_initializer(self.backbone.config),
            dtype="float32",
            name="classifier",
        )
        self.build()

    @property
    def config(self):
        """The backbone's :class:`TransformerEncoderConfig`."""
        return self.backbone.config

    def build(self, input_shape=None):
        hidden_dim = self.backbone.config.hidden_dim
        if self.pooler is not None:
            self.pooler.build((None, hidden_dim))
        self.classifier.build((None, hidden_dim))

    def call(self, inputs, training=None):
        token_ids, padding_mask, segment_ids = self.backbone.unpack_inputs(inputs)
        # A frozen backbone is a fixed feature extractor: its dropout stays off too.
        backbone_training = training if self.backbone.trainable else False
        sequence = self.backbone.encode(token_ids, padding_mask, segment_ids, training=backbone_training)
        if self.pooling == "mean":
            weights = ops.cast(padding_mask, "float32")[:, :, None]
            total = ops.sum(ops.cast(sequence, "float32") * weights, axis=1)
            # An all-padding row pools to zeros instead of 0/0.
            pooled = total / ops.maximum(ops.sum(weights, axis=1), 1.0)
        else:
            pooled = sequence[:, 0, :]
            if self.pooler is not None:
                pooled = self.pooler(pooled)
        pooled = self.output_dropout(pooled, training=training)
        return self.classifier(pooled)

    def compile(self, optimizer="adam", loss="auto", metrics="auto", **kwargs):
        """``keras.Model.compile`` with defaults for integer class labels.

        ``loss="auto"`` is ``SparseCategoricalCrossentropy(from_logits=True)`` and ``metrics="auto"`` is
        ``[SparseCategoricalAccuracy(name="accuracy")]``; anything else is passed through unchanged.
        """
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "pooling": self.pooling,
                "dropout": self.dropout,
                "config": self.backbone.config.to_dict(),
                "freeze_backbone": not self.backbone.trainable,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["config"] = TransformerEncoderConfig.from_dict(config["config"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="llm_tf")
class MaskedLM(keras.Model):
    """Masked language model: encoder backbone + BERT's MLM head, evaluated at the masked positions only.

    Implements, for the backbone states ``h`` gathered at ``mask_positions`` (gathering first keeps the
    vocabulary projection to ``P`` positions instead of ``T``)::

        z      = LayerNorm(act(W_t · h + b_t))
        logits = z · W_tokᵀ + b_out                  (W_tok: the backbone's token embedding, tied)

    which is Hugging Face's ``BertForMaskedLM`` head (``cls.predictions``). The logits are float32.

    Training data are ``({"token_ids", "padding_mask", "mask_positions"}, mask_ids, mask_weights)``:
    ``mask_ids`` ``(batch, P)`` are the original tokens at the masked positions and ``mask_weights``
    ``(batch, P)`` are 1 for real masks and 0 for padded slots. :meth:`compile` defaults to
    ``SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")`` (the mean
    over real masks) and a weighted accuracy, so weight-0 slots count for neither.

    Sublayers: ``backbone`` (:class:`TransformerEncoder`), ``transform_dense`` (``Dense(hidden_dim)``),
    ``transform_norm`` (LayerNorm) and the weight ``output_bias`` ``(vocabulary_size,)``; the output
    projection reuses ``backbone.embedding.token_embeddings``.

    Args:
        backbone: an existing :class:`TransformerEncoder`; mutually exclusive with ``config``.
        config: a :class:`TransformerEncoderConfig` (or dict) for a new backbone.
        **kwargs: standard model arguments (``name``, ``dtype``).

    Call arguments:
        inputs: ``{"token_ids", "padding_mask"[, "segment_ids"], "mask_positions"}`` with
            ``mask_positions`` int ``(batch, P)`` in ``[0, sequence)``. Without ``mask_positions`` (or with
            bare token ids) the head runs at every position.
        training: whether dropout is active.

    Returns:
        float32 logits ``(batch, P, vocabulary_size)`` (``(batch, sequence, vocabulary_size)`` without
        ``mask_positions``).

    Example:

    >>> mlm = MaskedLM(config=TransformerEncoderConfig.from_preset("tiny", vocabulary_size=1000))
    >>> mlm.compile(optimizer="adam")
    >>> inputs = {"token_ids": np.array([[2, 4, 9, 3]]), "padding_mask": np.array([[1, 1, 1, 1]]),
    ...           "mask_positions": np.array([[1, 0]])}
    >>> mlm(inputs).shape
    TensorShape([1, 2, 1000])
    """

    def __init__(self, backbone=None, config=None, **kwargs):
        super().__init__(**kwargs)
        self.backbone = _backbone_from(backbone, config, self.dtype_policy, type(self).__name__)
        backbone_config = self.backbone.config
        self.transform_dense = keras.layers.Dense(
            backbone_config.hidden_dim,
            kernel_initializer=_initializer(backbone_config),
            dtype=self.dtype_policy,
            name="transform_dense",
        )
        self.transform_norm = keras.layers.LayerNormalization(
            epsilon=backbone_config.layer_norm_epsilon, dtype=self.dtype_policy, name="transform_norm"
        )
        self.build()

    @property
    def config(self):
        """The backbone's :class:`TransformerEncoderConfig`."""
        return self.backbone.config

    def build(self, input_shape=None):
        hidden_dim = self.backbone.config.hidden_dim
        self.transform_dense.build((None, None, hidden_dim))
        self.transform_norm.build((None, None, hidden_dim))
        self.output_bias = self.add_weight(
            name="output_bias", shape=(self.backbone.config.vocabulary_size,), initializer="zeros"
        )

    def call(self, inputs, training=None):
        mask_positions = None
        if isinstance(inputs, dict):
            _check_inputs_dict(inputs, BACKBONE_INPUT_KEYS + ("mask_positions",), type(self).__name__)
            inputs = dict(inputs)
            mask_positions = inputs.pop("mask_positions", None)
        token_ids, padding_mask, segment_ids = self.backbone.unpack_inputs(inputs)
        sequence = self.backbone.encode(token_ids, padding_mask, segment_ids, training=training)
        if mask_positions is not None:
            if len(mask_positions.shape) != 2:
                raise ValueError(
                    f"`mask_positions` must have shape (batch, num_masks); "
                    f"got mask_positions shape {tuple(mask_positions.shape)}."
                )
            length = token_ids.shape[1]
            if length is not None:
                _check_id_range("mask_positions", mask_positions, length, "sequence length")
            mask_positions = ops.cast(mask_positions, "int32")
            sequence = ops.take_along_axis(sequence, mask_positions[:, :, None], axis=1)
        return self.predict_tokens(sequence)

    def predict_tokens(self, hidden):
        """The MLM head on backbone states: ``(..., hidden_dim)`` → float32 ``(..., vocabulary_size)``."""
        hidden = self.transform_dense(hidden)
        hidden = ACTIVATIONS[self.backbone.config.activation](hidden)
        hidden = self.transform_norm(hidden)
        logits = self.backbone.embedding.project_to_vocabulary(hidden)
        return ops.cast(logits, "float32") + ops.cast(self.output_bias, "float32")

    def compile(self, optimizer="adam", loss="auto", weighted_metrics="auto", **kwargs):
        """``keras.Model.compile`` with masked-LM defaults.

        ``loss="auto"`` is ``SparseCategoricalCrossentropy(from_logits=True,
        reduction="mean_with_sample_weight")`` — with ``mask_weights`` as sample weights, the mean
        cross-entropy over the real masks — and ``weighted_metrics="auto"`` is
        ``[SparseCategoricalAccuracy(name="accuracy")]``, the accuracy over the real masks.
        """
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, reduction="mean_with_sample_weight"
            )
        if weighted_metrics == "auto":
            weighted_metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        super().compile(optimizer=optimizer, loss=loss, weighted_metrics=weighted_metrics, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["config"] = self.backbone.config.to_dict()
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["config"] = TransformerEncoderConfig.from_dict(config["config"])
        return cls(**config)
