"""GPT: a decoder-only causal language model (GPT-2 layout) with cached, compiled generation.

The model is the GPT-2 stack::

    H_0 = W_embed[x] + P[positions]                         (token + learned position embedding)
    H_l = Block_l(H_{l-1}),  l = 1..L                        (pre-norm causal decoder blocks)
    logits = LayerNorm_f(H_L) · W_embedᵀ                     (final LayerNorm, tied output head)

Everything a user touches is here: :class:`GPTConfig` (the sizes, a JSON round-tripping dataclass),
``GPT_PRESETS`` (``tiny``, ``mini``, ``small`` = GPT-2 small, ``base`` = GPT-2 medium) and :class:`GPT`
(forward pass, :meth:`GPT.generate`, :meth:`GPT.score`).
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from llm_tf.checks import check_choice, check_number, check_positive_int, check_rate, check_token_ids
from llm_tf.layers import TokenAndPositionEmbedding, TransformerDecoderBlock
from llm_tf.layers.feed_forward import get_activation
from llm_tf.models import generation
from llm_tf.models.config import ModelConfig
from llm_tf.models.gpt_generation import GPTGeneration, split_inputs

# ------------------------------------------------------------------------------------------------------
# Configuration and presets
# ------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class GPTConfig(ModelConfig):
    """Sizes and switches of a :class:`GPT` model.

    The defaults give the GPT-2 architecture (pre-norm blocks, tanh-GELU, LayerNorm epsilon 1e-5,
    biases everywhere, learned positions, a final LayerNorm and an output head tied to the token
    embedding), so a Hugging Face GPT-2 checkpoint maps onto it one to one.

    Args:
        vocabulary_size: number of token ids ``V``.
        max_sequence_length: longest sequence (context) ``T``; the learned position table has ``T`` rows.
        hidden_dim: model width ``d``.
        num_layers: number of decoder blocks ``L``.
        num_heads: attention heads per block; must divide ``hidden_dim``.
        intermediate_dim: feed-forward hidden width (``4·d`` in GPT-2).
        dropout: dropout rate on the embeddings and every residual branch, in ``[0, 1)``.
        attention_dropout: dropout rate on the attention weights (default: ``dropout``).
        activation: feed-forward activation, ``"gelu_tanh"`` (GPT-2), ``"gelu"``, ``"relu"`` or ``"silu"``.
        layer_norm_epsilon: epsilon of every LayerNorm.
        norm_first: pre-norm (True, GPT-2) or post-norm (False, GPT-1) blocks.
        use_bias: whether the attention and feed-forward projections have biases.
        final_norm: whether a LayerNorm follows the last block (GPT-2's ``ln_f``).
        tie_embeddings: whether the output head reuses the token embedding (``logits = H·W_embedᵀ``);
            if False a separate bias-free ``lm_head`` Dense layer is used.
        position: ``"learned"`` (GPT-2) or ``"sinusoidal"`` position embedding.
        initializer_range: standard deviation of the normal initializer of every kernel and table.

    Example:

    >>> config = GPTConfig.from_preset("tiny", vocabulary_size=65, max_sequence_length=64)
    >>> GPTConfig.from_dict(config.to_dict()) == config
    True
    """

    vocabulary_size: int
    max_sequence_length: int
    hidden_dim: int
    num_layers: int
    num_heads: int
    intermediate_dim: int
    dropout: float = 0.0
    attention_dropout: float | None = None
    activation: str = "gelu_tanh"
    layer_norm_epsilon: float = 1e-5
    norm_first: bool = True
    use_bias: bool = True
    final_norm: bool = True
    tie_embeddings: bool = True
    position: str = "learned"
    initializer_range: float = 0.02

    def __post_init__(self):
        for name in (
            "vocabulary_size",
            "max_sequence_length",
            "hidden_dim",
            "num_layers",
            "num_heads",
            "intermediate_dim",
        ):
            check_positive_int(name, getattr(self, name))
        if self.hidden_dim % self.num_heads != 0:
            raise ValueError(
                f"GPTConfig `hidden_dim` must be divisible by `num_heads`; got hidden_dim={self.hidden_dim}, "
                f"num_heads={self.num_heads}."
            )
        for name in ("dropout", "attention_dropout"):
            value = getattr(self, name)
            if value is None and name == "attention_dropout":
                continue
            check_rate(name, value)
        get_activation(self.activation)  # raises a ValueError naming `activation` for an unknown one
        check_choice("position", self.position, ("learned", "sinusoidal"))
        for name in ("layer_norm_epsilon", "initializer_range"):
            check_number(name, getattr(self, name), minimum=0, exclusive_minimum=True)

    @property
    def head_dim(self):
        """Size of each attention head, ``hidden_dim // num_heads``."""
        return self.hidden_dim // self.num_heads

_GPT2_VOCABULARY_SIZE = 50257

#: Size presets. All use the GPT-2 vocabulary; override ``vocabulary_size`` for another tokenizer.
#:
#: ========  ======  =====  =====  ============  =======  ================================
#: preset    layers  width  heads  intermediate  context  about
#: ========  ======  =====  =====  ============  =======  ================================
#: tiny      2       128    2      512           256      smoke tests, char-level toys
#: mini      4       256    4      1024          512      laptop experiments
#: small     12      768    12     3072          1024     GPT-2 small (124M parameters)
#: base      24      1024   16     4096          1024     GPT-2 medium (355M parameters)
#: ========  ======  =====  =====  ============  =======  ================================
GPT_PRESETS = {
    "tiny": dict(
        vocabulary_size=_GPT2_VOCABULARY_SIZE,
        max_sequence_length=256,
        hidden_dim=128,
        num_layers=2,
        num_heads=2,
        intermediate_dim=512,
    ),
    "mini": dict(
        vocabulary_size=_GPT2_VOCABULARY_SIZE,
        max_sequence_length=512,
        hidden_dim=256,
        num_layers=4,
        num_heads=4,
        intermediate_dim=1024,
    ),
    "small": dict(
        vocabulary_size=_GPT2_VOCABULARY_SIZE,
        max_sequence_length=1024,
        hidden_dim=768,
        num_layers=12,
        num_heads=12,
        intermediate_dim=3072,
    ),
    "base": dict(
        vocabulary_size=_GPT2_VOCABULARY_SIZE,
        max_sequence_length=1024,
        hidden_dim=1024,
        num_layers=24,
        num_heads=16,
        intermediate_dim=4096,
    ),
}
GPTConfig.PRESETS, GPTConfig.PRESET_KIND = GPT_PRESETS, "GPT"


# ------------------------------------------------------------------------------------------------------
# Backend-specific pieces (kept here, and only here)
# ------------------------------------------------------------------------------------------------------


def _is_concrete(tensor):
    """Whether ``tensor`` holds values we can inspect now (eager), rather than a symbolic/traced one."""
    if isinstance(tensor, np.ndarray | list | tuple):
        return True
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly() and hasattr(tensor, "numpy")
    try:
        np.asarray(tensor)
        return True
    except Exception:
        return False


# ------------------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="llm_tf")
class GPT(GPTGeneration, keras.Model):
    """Decoder-only causal Transformer language model (GPT-2 layout).

    Sublayers (names chosen to map onto Hugging Face GPT-2 one to one):

    - ``embedding``: :class:`~llm_tf.layers.TokenAndPositionEmbedding`; ``embedding.token_embeddings``
      is ``wte`` ``(V, d)`` and ``embedding.position_embeddings`` is ``wpe`` ``(T, d)``.
    - ``embedding_dropout``: dropout on the summed embeddings.
    - ``blocks``: list of :class:`~llm_tf.layers.TransformerDecoderBlock` (``h.{i}``), each with
      ``self_attention_norm`` (``ln_1``), ``self_attention`` (``attn``: ``query_dense``, ``key_dense``,
      ``value_dense``, ``output_dense``), ``feed_forward_norm`` (``ln_2``) and ``feed_forward``
      (``mlp``: ``intermediate_dense`` = ``c_fc``, ``output_dense`` = ``c_proj``).
    - ``final_norm``: LayerNorm after the last block (``ln_f``), or None when ``config.final_norm`` is off.
    - ``lm_head``: bias-free Dense ``(d, V)`` only when ``config.tie_embeddings`` is off; otherwise the
      logits are ``H · embedding.token_embeddingsᵀ``.

    Args:
        config: a :class:`GPTConfig` or its dict.
        **kwargs: standard ``keras.Model`` arguments (``name``, ``dtype`` such as ``"mixed_bfloat16"``).

    Call arguments:
        inputs: int token ids ``(batch, sequence)``, or a dict with ``"token_ids"`` and optionally
            ``"padding_mask"`` ``(batch, sequence)`` (True for real tokens). Without a padding mask only
            the causal mask is applied (the pre-training case). With one, padded keys are masked and the
            position of each real token counts only the real tokens before it, so a left-padded
            sequence gets the same outputs at its real tokens as the unpadded one.
        training: whether dropout is active.

    Returns:
        float32 logits ``(batch, sequence, vocabulary_size)`` (float32 even under mixed precision).

    Example:

    >>> model = GPT(GPTConfig.from_preset("tiny", vocabulary_size=100, max_sequence_length=32))
    >>> tuple(model(np.array([[1, 2, 3]])).shape)
    (1, 3, 100)
    >>> model.generate(np.array([[1, 2, 3]]), max_new_tokens=4).shape
    (1, 7)
    """

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = GPTConfig.from_dict(config)
        if not isinstance(config, GPTConfig):
            raise ValueError(
                f"GPT expects a GPTConfig or its dict; got config of type {type(config).__name__}."
            )
        self.config = config

        def initializer():
            return keras.initializers.RandomNormal(stddev=config.initializer_range)

        self.embedding = TokenAndPositionEmbedding(
            config.vocabulary_size,
            config.max_sequence_length,
            config.hidden_dim,
            position=config.position,
            embeddings_initializer=initializer(),
            dtype=self.dtype_policy,
            name="embedding",
        )
        self.embedding_dropout = keras.layers.Dropout(
            config.dropout, dtype=self.dtype_policy, name="embedding_dropout"
        )
        self.blocks = [
            TransformerDecoderBlock(
                num_heads=config.num_heads,
                intermediate_dim=config.intermediate_dim,
                dropout=config.dropout,
                attention_dropout=config.attention_dropout,
                activation=config.activation,
                layer_norm_epsilon=config.layer_norm_epsilon,
                norm_first=config.norm_first,
                use_bias=config.use_bias,
                kernel_initializer=initializer(),
                dtype=self.dtype_policy,
                name=f"block_{index}",
            )
            for index in range(config.num_layers)
        ]
        self.final_norm = (
            keras.layers.LayerNormalization(
                epsilon=config.layer_norm_epsilon, dtype=self.dtype_policy, name="final_norm"
            )
            if config.final_norm
            else None
        )
        self.lm_head = (
            None
            if config.tie_embeddings
            else keras.layers.Dense(
                config.vocabulary_size,
                use_bias=False,
                kernel_initializer=initializer(),
                dtype=self.dtype_policy,
                name="lm_head",
            )
        )
        self._generation_loops = generation.CompiledLoops()
        self._score_function = None
        # Packed decoding weights per weight_dtype, and the compiled checksum that validates them.
        self._packed_weights, self._weights_checksum = {}, None
        # Build every weight now, so a fresh model (and one rebuilt by `from_config`) is complete.
        self.build((None, None))

    # ---- Keras plumbing ---------------------------------------------------------------------------

    def build(self, input_shape=None):
        hidden_shape = (None, None, self.config.hidden_dim)
        self.embedding.build((None, None))
        for block in self.blocks:
            block.build(hidden_shape)
        if self.final_norm is not None:
            self.final_norm.build(hidden_shape)
        if self.lm_head is not None:
            self.lm_head.build(hidden_shape)
        self.built = True

    def get_config(self):
        config = super().get_config()
        config.update({"config": self.config.to_dict()})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(GPTConfig.from_dict(config.pop("config")), **config)

    @classmethod
    def from_preset(cls, name, **overrides):
        """A randomly initialised model of the preset ``name`` (see ``GPT_PRESETS``), fields overridable."""
        return cls(GPTConfig.from_preset(name, **overrides))

    # ---- forward pieces ---------------------------------------------------------------------------

    def _logits(self, hidden):
        """Final norm and output head: ``(..., d)`` → float32 ``(..., V)``."""
        if self.final_norm is not None:
            hidden = self.final_norm(hidden)
        if self.lm_head is not None:
            logits = self.lm_head(hidden)
        else:
            logits = self.embedding.project_to_vocabulary(hidden)
        return ops.cast(logits, "float32")

    def _check_inputs(self, token_ids, padding_mask):
        length = token_ids.shape[1] if len(token_ids.shape) == 2 else None
        if len(token_ids.shape) != 2:
            raise ValueError(
                f"GPT expects `token_ids` of shape (batch, sequence); got shape {tuple(token_ids.shape)}."
            )
        if length is not None and length > self.config.max_sequence_length:
            raise ValueError(
                f"sequence too long: `token_ids` has {length} tokens but max_sequence_length="
                f"{self.config.max_sequence_length}."
            )
        if _is_concrete(token_ids):
            check_token_ids(token_ids, self.config.vocabulary_size)
        if padding_mask is not None and tuple(padding_mask.shape) != tuple(token_ids.shape):
            raise ValueError(
                f"`padding_mask` must have the shape of `token_ids` {tuple(token_ids.shape)}; got "
                f"{tuple(padding_mask.shape)}."
            )

    def call(self, inputs, training=None):
        token_ids, padding_mask = split_inputs(inputs)
        self._check_inputs(token_ids, padding_mask)
        token_ids = ops.cast(token_ids, "int32")
        if padding_mask is None:
            # The common pre-training case: positions 0..n-1 and the causal mask only.
            hidden = self.embedding(token_ids)
        else:
            padding_mask = ops.cast(padding_mask, "bool")
            positions = ops.maximum(ops.cumsum(ops.cast(padding_mask, "int32"), axis=1) - 1, 0)
            hidden = self.embedding(token_ids, positions=positions)
        hidden = self.embedding_dropout(hidden, training=training)
        for block in self.blocks:
            hidden = block(hidden, padding_mask=padding_mask, training=training)
        return self._logits(hidden)

    # ---- scoring ----------------------------------------------------------------------------------

    def score(self, token_ids, padding_mask=None):
        """Log-probability of every next token, and perplexity.

        Args:
            token_ids: int ``(batch, sequence)`` (or a dict with ``"token_ids"``/``"padding_mask"``).
            padding_mask: ``(batch, sequence)``, True for real tokens (default: all real).

        Returns:
            A dict of numpy arrays: ``"log_probabilities"`` ``(batch, sequence - 1)`` with
            ``log p(x_{t+1} | x_{≤t})`` (0 where the predicted token is padding), ``"perplexity"``
            ``(batch,)`` per sequence, and ``"corpus_perplexity"``, the exponential of the mean negative
            log-probability over every real predicted token of the batch.

        Example:

        >>> model = GPT(GPTConfig.from_preset("tiny", vocabulary_size=100, max_sequence_length=32))
        >>> model.score(np.array([[1, 2, 3, 4]]))["log_probabilities"].shape
        (1, 3)
        """
        if isinstance(token_ids, dict):
            token_ids, padding_mask = split_inputs(token_ids)
        token_ids = np.asarray(ops.convert_to_numpy(token_ids))
        if token_ids.ndim != 2 or token_ids.shape[1] < 2:
            raise ValueError(
                f"`token_ids` must be (batch, sequence) with sequence >= 2 to score next tokens; "
                f"got shape {token_ids.shape}."
            )
        check_token_ids(token_ids, self.config.vocabulary_size)
        if token_ids.shape[1] > self.config.max_sequence_length:
            raise ValueError(
                f"sequence too long: {token_ids.shape[1]} tokens exceed max_sequence_length="
                f"{self.config.max_sequence_length}."
            )
        mask = (
            np.ones(token_ids.shape, bool) if padding_mask is None else np.asarray(padding_mask).astype(bool)
        )
        if mask.shape != token_ids.shape:
            raise ValueError(f"`padding_mask` must have shape {token_ids.shape}; got {mask.shape}.")
        if self._score_function is None:
            self._score_function = generation.compile_once(self._score_graph)
        log_probs = np.asarray(self._score_function(token_ids.astype("int32"), mask))
        target_mask = mask[:, 1:] & mask[:, :-1]
        log_probs = np.where(target_mask, log_probs, 0.0)
        counts = target_mask.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            perplexity = np.exp(-log_probs.sum(axis=1) / counts)
        corpus = float(np.exp(-log_probs.sum() / max(int(counts.sum()), 1)))
        return {"log_probabilities": log_probs, "perplexity": perplexity, "corpus_perplexity": corpus}

    def _score_graph(self, token_ids, padding_mask):
        logits = self({"token_ids": token_ids, "padding_mask": padding_mask}, training=False)[:, :-1]
        log_probs = ops.log_softmax(logits, axis=-1)
        return ops.take_along_axis(log_probs, token_ids[:, 1:, None], axis=-1)[:, :, 0]

