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
import json
import math

import keras
import numpy as np
from keras import ops

from llm_tf.layers import TokenAndPositionEmbedding, TransformerDecoderBlock, sinusoidal_position_encoding
from llm_tf.layers.feed_forward import ACTIVATIONS
from llm_tf.models import generation

# ------------------------------------------------------------------------------------------------------
# Configuration and presets
# ------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class GPTConfig:
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
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"GPTConfig `{name}` must be a positive integer; got {name}={value!r}.")
        if self.hidden_dim % self.num_heads != 0:
            raise ValueError(
                f"GPTConfig `hidden_dim` must be divisible by `num_heads`; got hidden_dim={self.hidden_dim}, "
                f"num_heads={self.num_heads}."
            )
        for name in ("dropout", "attention_dropout"):
            value = getattr(self, name)
            if value is None and name == "attention_dropout":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
                raise ValueError(f"GPTConfig `{name}` must be a float in [0, 1); got {name}={value!r}.")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"GPTConfig `activation` must be one of {sorted(ACTIVATIONS)}; got activation={self.activation!r}."
            )
        if self.position not in ("learned", "sinusoidal"):
            raise ValueError(
                f"GPTConfig `position` must be 'learned' or 'sinusoidal'; got position={self.position!r}."
            )
        if not self.layer_norm_epsilon > 0:
            raise ValueError(
                f"GPTConfig `layer_norm_epsilon` must be > 0; got layer_norm_epsilon={self.layer_norm_epsilon!r}."
            )
        if not self.initializer_range > 0:
            raise ValueError(
                f"GPTConfig `initializer_range` must be > 0; got initializer_range={self.initializer_range!r}."
            )

    @property
    def head_dim(self):
        """Size of each attention head, ``hidden_dim // num_heads``."""
        return self.hidden_dim // self.num_heads

    def to_dict(self):
        """The fields as a plain (JSON-serializable) dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Rebuild from :meth:`to_dict` output; unknown keys raise ValueError."""
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"GPTConfig.from_dict got unknown fields {unknown}.")
        return cls(**values)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_preset(cls, name, **overrides):
        """The preset ``name`` (one of ``GPT_PRESETS``) with some fields replaced.

        Example: ``GPTConfig.from_preset("mini", vocabulary_size=65, max_sequence_length=256)``.
        """
        if name not in GPT_PRESETS:
            raise ValueError(f"unknown GPT preset {name!r}; valid presets are {sorted(GPT_PRESETS)}.")
        values = dict(GPT_PRESETS[name])
        values.update(overrides)
        return cls.from_dict(values)


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
# Input checks
# ------------------------------------------------------------------------------------------------------


def _check_token_ids(token_ids, vocabulary_size, argument="token_ids"):
    """Raise ValueError for ids outside ``[0, vocabulary_size)`` (XLA's gather would clamp them silently)."""
    values = np.asarray(token_ids)
    if values.size == 0:
        return
    if not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"`{argument}` must hold integer token ids; got dtype {values.dtype}.")
    low, high = int(values.min()), int(values.max())
    if low < 0 or high >= vocabulary_size:
        bad = low if low < 0 else high
        raise ValueError(
            f"`{argument}` must hold ids in [0, vocabulary_size={vocabulary_size}); got a token id {bad}."
        )


def _split_inputs(inputs):
    if isinstance(inputs, dict):
        if "token_ids" not in inputs:
            raise ValueError(f"GPT inputs dict needs a 'token_ids' entry; got keys {sorted(inputs)}.")
        return inputs["token_ids"], inputs.get("padding_mask")
    return inputs, None


# ------------------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="llm_tf")
class GPT(keras.Model):
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

    def _position_table(self):
        if self.config.position == "learned":
            return self.embedding.position_embeddings
        return sinusoidal_position_encoding(
            self.config.max_sequence_length, self.config.hidden_dim, self.embedding.compute_dtype
        )

    def _embed_at(self, token_ids, positions):
        """Token + position embedding with explicit ``positions`` ``(batch, sequence)`` (padding, caching)."""
        dtype = self.embedding.compute_dtype
        tokens = ops.take(ops.cast(self.embedding.token_embeddings, dtype), token_ids, axis=0)
        return tokens + ops.take(ops.cast(self._position_table(), dtype), positions, axis=0)

    def _logits(self, hidden):
        """Final norm and output head: ``(..., d)`` → float32 ``(..., V)``."""
        if self.final_norm is not None:
            hidden = self.final_norm(hidden)
        if self.lm_head is not None:
            logits = self.lm_head(hidden)
        else:
            logits = self.embedding.project_to_vocabulary(hidden)
        return ops.cast(logits, "float32")

    def _last_logits(self, hidden):
        """Logits of one position per row, ``(batch, d)`` → float32 ``(batch, V)``, for decoding.

        With tied embeddings this is ``(W_embed · hᵀ)ᵀ``: the table is the left operand in its stored
        row-major layout, so XLA reads it once as a matrix-vector product. (``h · W_embedᵀ`` makes XLA
        on CPU materialise the ``(d, V)`` transpose at every step, which doubles the memory traffic of
        the largest matrix.)
        """
        if self.final_norm is not None:
            hidden = self.final_norm(hidden)
        if self.lm_head is not None:
            return ops.cast(self.lm_head(hidden), "float32")
        table = ops.cast(self.embedding.token_embeddings, hidden.dtype)
        return ops.cast(ops.transpose(ops.matmul(table, ops.transpose(hidden))), "float32")

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
            _check_token_ids(token_ids, self.config.vocabulary_size)
        if padding_mask is not None and tuple(padding_mask.shape) != tuple(token_ids.shape):
            raise ValueError(
                f"`padding_mask` must have the shape of `token_ids` {tuple(token_ids.shape)}; got "
                f"{tuple(padding_mask.shape)}."
            )

    def call(self, inputs, training=None):
        token_ids, padding_mask = _split_inputs(inputs)
        self._check_inputs(token_ids, padding_mask)
        token_ids = ops.cast(token_ids, "int32")
        if padding_mask is None:
            # The common pre-training case: positions 0..n-1 and the causal mask only.
            hidden = self.embedding(token_ids)
        else:
            padding_mask = ops.cast(padding_mask, "bool")
            positions = ops.maximum(ops.cumsum(ops.cast(padding_mask, "int32"), axis=1) - 1, 0)
            hidden = self._embed_at(token_ids, positions)
        hidden = self.embedding_dropout(hidden, training=training)
        for block in self.blocks:
            hidden = block(hidden, padding_mask=padding_mask, training=training)
        return self._logits(hidden)

    # ---- generation -------------------------------------------------------------------------------

    @property
    def generate_trace_count(self):
        """How many times a generation loop was traced (compiled); one per new shape or sampler setting."""
        return self._generation_loops.trace_count

    def generate(
        self,
        prompt_ids,
        max_new_tokens,
        sampler="greedy",
        temperature=1.0,
        top_k=None,
        top_p=None,
        num_beams=4,
        length_penalty=1.0,
        stop_token_ids=None,
        seed=None,
        padding_mask=None,
    ):
        """Continue each prompt by ``max_new_tokens`` tokens with a key/value cache.

        The whole prompt is run in one pass (prefill) that fills the per-block caches and scores
        only its last position; then a compiled while-loop (:mod:`llm_tf.models.generation`) emits one
        token per step. The loop is compiled with XLA once per (batch size, total length
        ``prompt_length + max_new_tokens``, sampler settings): calling again with the same shapes and
        settings does not trace again (see :attr:`generate_trace_count`).

        Prompts of different lengths go in one batch padded with id 0, either as a list of lists
        (left-padded here) or with a ``padding_mask``; left- and right-padded batches are both
        accepted (right padding is moved to the left). Each row is positioned as if unpadded, so a
        padded prompt gives the same continuation as the same prompt alone.

        Args:
            prompt_ids: int ``(batch, prompt_length)`` or ``(prompt_length,)`` array, a list of
                lists of ids (ragged allowed), or a dict with ``"token_ids"`` and ``"padding_mask"``.
            max_new_tokens: number of tokens to add (positive int).
            sampler: ``"greedy"``, ``"temperature"``, ``"top_k"``, ``"top_p"`` or ``"beam"`` (see
                :mod:`llm_tf.models.generation`).
            temperature: softmax temperature (> 0) of the sampling samplers.
            top_k: number of candidates for ``"top_k"`` (default 50, at most the vocabulary size).
            top_p: probability mass for ``"top_p"`` in (0, 1] (default 0.9).
            num_beams: beams for ``"beam"`` (1 reproduces greedy decoding).
            length_penalty: exponent ``alpha >= 0`` of the GNMT length penalty of beam search
                (``score = log P / ((5 + length) / 6) ** alpha``; 0 = raw log-probability).
            stop_token_ids: an id or ids that end a sequence; the stop token is kept, later
                positions of that row are padding (0), and the loop ends once every row stopped.
            seed: integer seed of the sampling samplers; the random draw of step ``s`` depends only
                on ``(seed, s, row)``, so a seed reproduces a sample exactly. ``None`` draws one.
            padding_mask: ``(batch, prompt_length)``, True for real prompt tokens (contiguous).

        Returns:
            int32 numpy array ``(batch, prompt_length + max_new_tokens)``: the (left-padded) prompt
            followed by the new tokens.

        Example:

        >>> model = GPT(GPTConfig.from_preset("tiny", vocabulary_size=100, max_sequence_length=32))
        >>> model.generate([[5, 6, 7], [8, 9]], max_new_tokens=3, sampler="top_k", top_k=5, seed=1).shape
        (2, 6)
        """
        settings = generation.generation_settings(
            sampler, temperature, top_k, top_p, num_beams, length_penalty, stop_token_ids,
            self.config.vocabulary_size,
        )
        token_ids, prompt_mask = self._prepare_prompts(prompt_ids, padding_mask)
        prompt_length = token_ids.shape[1]
        if generation._is_int(max_new_tokens) and max_new_tokens > 0:
            if prompt_length + max_new_tokens > self.config.max_sequence_length:
                raise ValueError(
                    f"prompt too long: prompt_length={prompt_length} + max_new_tokens={max_new_tokens} = "
                    f"{prompt_length + max_new_tokens} exceeds the model's max_sequence_length="
                    f"{self.config.max_sequence_length}."
                )
        max_new_tokens = generation.check_max_new_tokens(
            max_new_tokens, self.config.max_sequence_length, "max_sequence_length"
        )
        total_length = prompt_length + max_new_tokens
        output = self._generation_loops(
            settings + (total_length,),
            lambda: lambda ids, mask, seed: self._generate_graph(ids, mask, seed, total_length, settings),
            token_ids,
            prompt_mask,
            generation.check_seed(seed),
        )
        return np.asarray(ops.convert_to_numpy(output), dtype="int32")

    def _prepare_prompts(self, prompt_ids, padding_mask):
        """Prompts as a left-padded int32 ``(batch, length)`` array plus its bool mask (checked eagerly)."""
        if isinstance(prompt_ids, dict):
            if padding_mask is not None:
                raise ValueError(
                    "give the padding mask either in the `prompt_ids` dict or as `padding_mask`."
                )
            prompt_ids, padding_mask = _split_inputs(prompt_ids)
        if (
            isinstance(prompt_ids, list | tuple)
            and prompt_ids
            and isinstance(prompt_ids[0], list | tuple | np.ndarray)
        ):
            rows = [np.asarray(row).reshape(-1) for row in prompt_ids]
            if padding_mask is not None:
                raise ValueError(
                    "`padding_mask` cannot be combined with a list of prompts (they are padded here)."
                )
            length = max(len(row) for row in rows)
            token_ids = np.zeros((len(rows), length), dtype="int64")
            mask = np.zeros((len(rows), length), dtype=bool)
            for index, row in enumerate(rows):
                if len(row):
                    token_ids[index, length - len(row) :] = row
                    mask[index, length - len(row) :] = True
            prompt_ids, padding_mask = token_ids, mask
        token_ids = np.asarray(ops.convert_to_numpy(prompt_ids))
        if token_ids.ndim == 1:
            token_ids = token_ids[None, :]
            padding_mask = None if padding_mask is None else np.asarray(padding_mask).reshape(1, -1)
        if token_ids.ndim != 2 or token_ids.shape[1] == 0 or token_ids.shape[0] == 0:
            raise ValueError(
                f"`prompt_ids` must be a non-empty (batch, prompt_length) array; got shape {token_ids.shape}."
            )
        _check_token_ids(token_ids, self.config.vocabulary_size, "prompt_ids")
        if token_ids.shape[1] > self.config.max_sequence_length:
            raise ValueError(
                f"prompt too long: {token_ids.shape[1]} tokens exceed the model's max_sequence_length="
                f"{self.config.max_sequence_length}."
            )
        if padding_mask is None:
            return token_ids.astype("int32"), np.ones(token_ids.shape, dtype=bool)
        mask = np.asarray(ops.convert_to_numpy(padding_mask)).astype(bool)
        if mask.shape != token_ids.shape:
            raise ValueError(
                f"`padding_mask` must have the shape of `prompt_ids` {token_ids.shape}; got {mask.shape}."
            )
        left_padded_ids = np.zeros_like(token_ids, dtype="int32")
        left_padded_mask = np.zeros_like(mask)
        length = token_ids.shape[1]
        for index, row_mask in enumerate(mask):
            real = np.flatnonzero(row_mask)
            if real.size == 0:
                raise ValueError(f"prompt {index} is empty: its `padding_mask` row has no real token.")
            if real[-1] - real[0] + 1 != real.size:
                raise ValueError(
                    f"prompt {index} has padding between real tokens; `padding_mask` must mark one "
                    f"contiguous run of real tokens per row (left or right padding)."
                )
            left_padded_ids[index, length - real.size :] = token_ids[index, real]
            left_padded_mask[index, length - real.size :] = True
        return left_padded_ids, left_padded_mask

    @property
    def _head_shape(self):
        return (self.config.num_heads, self.config.head_dim)

    def _prefill(self, token_ids, prompt_mask, total_length):
        """Run the prompt once, filling fresh caches; returns last-position logits and the decoding state.

        Returns:
            ``(logits (batch, V), caches, key_mask (batch, total_length), lengths (batch,))`` where
            ``lengths`` counts the real prompt tokens (the position of the first new token).
        """
        batch_size, prompt_length = token_ids.shape
        dtype = self.blocks[0].compute_dtype
        caches = [
            ops.zeros((batch_size, 2, total_length) + self._head_shape, dtype=dtype) for _ in self.blocks
        ]
        key_mask = ops.concatenate(
            [prompt_mask, ops.ones((batch_size, total_length - prompt_length), dtype="bool")], axis=1
        )
        counts = ops.cumsum(ops.cast(prompt_mask, "int32"), axis=1)
        hidden = self._embed_at(token_ids, ops.maximum(counts - 1, 0))
        for index, block in enumerate(self.blocks):
            hidden, caches[index] = block(
                hidden,
                padding_mask=key_mask,
                self_attention_cache=caches[index],
                cache_index=0,
                training=False,
            )
        # Only the last position's logits are needed: project one vector per row, not the whole prompt.
        logits = self._last_logits(hidden[:, -1, :])
        # Re-lay the caches once for the decoding steps: keys as (batch·heads, head_dim, length) and values
        # as (batch·heads, length, head_dim), the operand layouts of the two attention matrix products, so
        # a step updates each cache in place and multiplies it without any reshaping copy.
        num_heads, head_dim = self._head_shape
        flat = batch_size * num_heads
        caches = [
            (
                ops.reshape(ops.transpose(cache[:, 0], (0, 2, 3, 1)), (flat, head_dim, total_length)),
                ops.reshape(ops.transpose(cache[:, 1], (0, 2, 1, 3)), (flat, total_length, head_dim)),
            )
            for cache in caches
        ]
        return logits, caches, key_mask, counts[:, -1]

    def _decode_weights(self):
        """Per block, the attention weights as 2-D matrices for :meth:`_block_step`.

        The query, key and value kernels ``(d, heads, head_dim)`` are concatenated into one ``(d, 3·d)``
        matrix, so each decoding step makes one matrix-vector product instead of three. This runs once
        per ``generate`` call, before the decoding loop (a copy of the attention weights), not per token.
        """
        dtype = self.blocks[0].compute_dtype
        d = self.config.hidden_dim
        prepared = []
        for block in self.blocks:
            attention = block.self_attention
            parts = (attention.query_dense, attention.key_dense, attention.value_dense)
            kernel = ops.concatenate([ops.reshape(dense.kernel, (d, d)) for dense in parts], axis=1)
            weights = {
                "qkv_kernel": ops.cast(kernel, dtype),
                "output_kernel": ops.cast(ops.reshape(attention.output_dense.kernel, (d, d)), dtype),
            }
            if self.config.use_bias:
                bias = ops.concatenate([ops.reshape(dense.bias, (d,)) for dense in parts], axis=0)
                weights["qkv_bias"] = ops.cast(bias, dtype)
                weights["output_bias"] = ops.cast(attention.output_dense.bias, dtype)
            prepared.append(weights)
        return prepared

    def _decode_step(self, token, position, caches, key_mask, cache_index, weights):
        """One new token per row at ``position`` (batch,), its keys/values written at slot ``cache_index``.

        Args:
            token: int ``(batch,)``.
            position: int ``(batch,)``, the position embedding index of each row's token.
            caches: per block ``(keys (batch·heads, head_dim, length), values (batch·heads, length,
                head_dim))`` as :meth:`_prefill` returns them.
            key_mask: bool ``(batch, length)``, False at prompt padding.
            cache_index: scalar slot of this step.
            weights: :meth:`_decode_weights`.

        Returns:
            ``(logits (batch, V), caches)``.
        """
        hidden = self._embed_at(token, position)
        length = ops.shape(key_mask)[1]
        # Which slots this step may attend to: real tokens up to and including its own. Built once per
        # step for all blocks, as an additive bias (batch·heads, 1, length).
        visible = ops.logical_and(key_mask, (ops.arange(length, dtype="int32") <= cache_index)[None, :])
        bias = ops.repeat(ops.where(visible, 0.0, -1e9), self.config.num_heads, axis=0)[:, None, :]
        new_caches = []
        for block, (keys, values), block_weights in zip(self.blocks, caches, weights):
            hidden, keys, values = self._block_step(
                block, hidden, keys, values, bias, cache_index, block_weights
            )
            new_caches.append((keys, values))
        return self._last_logits(hidden), new_caches

    def _block_step(self, block, hidden, keys, values, bias, cache_index, weights):
        """One decoder block for one token per row, ``(batch, d)`` → ``(batch, d)``, with its cache.

        The same computation as ``TransformerDecoderBlock`` with a cache (the tests check generation
        against full recomputation through the blocks), written for the single-token case with plain
        2-D matrix products. (Applied to one token, the per-head ``EinsumDense`` projections lead XLA on
        CPU to fuse the preceding LayerNorm and the kernel reshape into a generic loop that reads the
        kernel several times slower than a matrix-vector product does.)
        """
        dtype = block.compute_dtype
        batch_size = ops.shape(hidden)[0]
        num_heads, head_dim = self._head_shape
        d = self.config.hidden_dim
        x = block.self_attention_norm(hidden) if block.norm_first else hidden
        qkv = ops.matmul(x, weights["qkv_kernel"])
        if "qkv_bias" in weights:
            qkv = qkv + weights["qkv_bias"]
        flat = batch_size * num_heads
        query = ops.reshape(qkv[:, :d], (flat, 1, head_dim))
        key = ops.reshape(qkv[:, d : 2 * d], (flat, head_dim, 1))
        value = ops.reshape(qkv[:, 2 * d :], (flat, 1, head_dim))
        keys = ops.slice_update(keys, [0, 0, cache_index], key)
        values = ops.slice_update(values, [0, cache_index, 0], value)
        scores = ops.matmul(query, keys)  # (batch·heads, 1, length)
        scores = ops.cast(scores, "float32") * (1.0 / math.sqrt(head_dim)) + bias
        attention_weights = ops.cast(ops.softmax(scores, axis=-1), dtype)
        attended = ops.reshape(ops.matmul(attention_weights, values), (batch_size, d))
        attended = ops.matmul(attended, weights["output_kernel"])
        if "output_bias" in weights:
            attended = attended + weights["output_bias"]
        hidden = hidden + attended
        if not block.norm_first:
            hidden = block.self_attention_norm(hidden)
        x = block.feed_forward_norm(hidden) if block.norm_first else hidden
        hidden = hidden + block.feed_forward(x, training=False)
        if not block.norm_first:
            hidden = block.feed_forward_norm(hidden)
        return hidden, keys, values

    def _generate_graph(self, token_ids, prompt_mask, seed, total_length, settings):
        """The traced body of :meth:`generate`: prefill, then :func:`generation.decode` over cached steps."""
        batch_size, prompt_length = token_ids.shape
        logits, caches, key_mask, lengths = self._prefill(token_ids, prompt_mask, total_length)
        weights = self._decode_weights()
        num_heads = self.config.num_heads

        def reorder(caches, rows):
            # Caches hold (rows·heads, ...): gather whole rows, keeping each row's heads together.
            def take(cache):
                shape = ops.shape(cache)
                per_row = ops.reshape(cache, (shape[0] // num_heads, num_heads) + tuple(shape[1:]))
                return ops.reshape(ops.take(per_row, rows, axis=0), (-1,) + tuple(shape[1:]))

            return [(take(keys), take(values)) for keys, values in caches]

        if settings[0] == "beam":  # one row per beam, each a copy of its prompt's
            rows = ops.repeat(ops.arange(batch_size, dtype="int32"), settings[4])
            caches = reorder(caches, rows)
            logits, key_mask, lengths = (ops.take(t, rows, axis=0) for t in (logits, key_mask, lengths))

        def step(tokens, index, caches):
            # The token generated at step index - 1 sits at position lengths + index - 1, cache slot
            # prompt_length + index - 1.
            return self._decode_step(
                tokens, lengths + index - 1, caches, key_mask, prompt_length + index - 1, weights
            )

        new_tokens, _ = generation.decode(
            step, reorder, logits, caches, batch_size, total_length - prompt_length, settings, seed
        )
        return ops.concatenate([token_ids, new_tokens], axis=1)

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
            token_ids, padding_mask = _split_inputs(token_ids)
        token_ids = np.asarray(ops.convert_to_numpy(token_ids))
        if token_ids.ndim != 2 or token_ids.shape[1] < 2:
            raise ValueError(
                f"`token_ids` must be (batch, sequence) with sequence >= 2 to score next tokens; "
                f"got shape {token_ids.shape}."
            )
        _check_token_ids(token_ids, self.config.vocabulary_size)
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

