"""GPT-2 checkpoints in the Hugging Face format, to and from :class:`~llm_tf.models.GPT`.

Hugging Face GPT-2 (``GPT2LMHeadModel``) and our GPT share the architecture — pre-norm blocks, learned
positions, tanh-GELU, a final LayerNorm, an output head tied to the token embedding — so the conversion is a
renaming plus three layout changes:

* ``attn.c_attn`` is one fused ``Conv1D`` ``(d, 3d)``: its columns are ``[query | key | value]``, each
  ``heads × head_dim``; we keep separate ``(d, heads, head_dim)`` projections.
* ``Conv1D`` stores ``(in, out)`` (not ``nn.Linear``'s ``(out, in)``), so those kernels are not transposed;
  only the attention output projection is reshaped to ``(heads, head_dim, d)``.
* ``lm_head.weight`` is usually absent from the file (tied to ``wte``); an untied head is read when present.

Names are accepted with or without the ``transformer.`` prefix (``GPT2LMHeadModel`` vs ``GPT2Model``).
"""

import json
import pathlib

import numpy as np

from llm_tf.interop._common import (
    TensorMapping,
    assign_all,
    check_model_type,
    checkpoint_directory,
    keras_activation,
    read_config,
    read_tensors,
    require_model_setting,
    require_setting,
    strip_prefix,
    take_tensor,
    warn_unused,
    write_checkpoint,
)

TOKENIZER_FILE = "tokenizer.json"
_PREFIX = "transformer."
_QKV = ("query", "key", "value")
# Our activation names → the Hugging Face name GPT-2 uses for the same function.
_KERAS_TO_HF_ACTIVATION = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu", "silu": "silu"}
# Buffers older checkpoints carry (the causal mask and its fill value), not weights.
_IGNORED_TENSORS = (r"h\.\d+\.attn\.bias", r"h\.\d+\.attn\.masked_bias")


def gpt_config_from_hf(hf_config, source="config.json"):
    """Translate a GPT-2 ``config.json`` dict into a :class:`~llm_tf.models.GPTConfig`.

    Args:
        hf_config: the parsed ``config.json`` (``model_type`` ``"gpt2"``).
        source: where it came from, for error messages.

    Returns:
        A ``GPTConfig`` expressing the same architecture.

    Raises:
        ValueError: for settings our GPT cannot express exactly (unscaled or layer-scaled attention,
            cross-attention, an activation without an exact counterpart).

    Example:

    >>> gpt_config_from_hf({"model_type": "gpt2", "vocab_size": 100, "n_positions": 32, "n_embd": 16,
    ...                     "n_layer": 2, "n_head": 2}).intermediate_dim
    64
    """
    from llm_tf.models.gpt import GPTConfig

    require_setting(
        hf_config, "scale_attn_weights", True, True, source, "our attention always scales by 1/√d_k"
    )
    require_setting(
        hf_config,
        "scale_attn_by_inverse_layer_idx",
        False,
        False,
        source,
        "our attention has no per-layer 1/(layer+1) scale",
    )
    require_setting(hf_config, "add_cross_attention", False, False, source, "GPT has no cross-attention")
    hidden_dim = hf_config.get("n_embd", 768)
    resid_dropout = hf_config.get("resid_pdrop", 0.1)
    # Our GPT has one dropout rate for the embeddings and the residual branches; dropout never affects
    # inference, so a checkpoint whose two rates differ still converts exactly (its embd_pdrop is dropped).
    return GPTConfig(
        vocabulary_size=hf_config.get("vocab_size", 50257),
        max_sequence_length=hf_config.get("n_positions", 1024),
        hidden_dim=hidden_dim,
        num_layers=hf_config.get("n_layer", 12),
        num_heads=hf_config.get("n_head", 12),
        intermediate_dim=hf_config.get("n_inner") or 4 * hidden_dim,
        dropout=resid_dropout,
        attention_dropout=hf_config.get("attn_pdrop", 0.1),
        activation=keras_activation(
            hf_config.get("activation_function", "gelu_new"), "activation_function", source
        ),
        layer_norm_epsilon=hf_config.get("layer_norm_epsilon", 1e-5),
        norm_first=True,
        use_bias=True,
        final_norm=True,
        tie_embeddings=bool(hf_config.get("tie_word_embeddings", True)),
        position="learned",
        initializer_range=hf_config.get("initializer_range", 0.02),
    )


def _mappings(model):
    """The table of checkpoint names (with ``c_attn`` split into ``c_attn.{query,key,value}``) → variables."""
    config = model.config
    d = config.hidden_dim

    def norm(prefix, layer):
        return [
            TensorMapping(f"{prefix}.weight", layer.gamma, (d,)),
            TensorMapping(f"{prefix}.bias", layer.beta, (d,)),
        ]

    rows = [
        TensorMapping("wte.weight", model.embedding.token_embeddings, (config.vocabulary_size, d)),
        TensorMapping("wpe.weight", model.embedding.position_embeddings, (config.max_sequence_length, d)),
    ]
    for index, block in enumerate(model.blocks):
        prefix = f"h.{index}"
        attention = block.self_attention
        rows += norm(f"{prefix}.ln_1", block.self_attention_norm)
        for part, projection in zip(
            _QKV, (attention.query_dense, attention.key_dense, attention.value_dense)
        ):
            rows.append(TensorMapping(f"{prefix}.attn.c_attn.{part}.weight", projection.kernel, (d, d)))
            rows.append(TensorMapping(f"{prefix}.attn.c_attn.{part}.bias", projection.bias, (d,)))
        rows.append(TensorMapping(f"{prefix}.attn.c_proj.weight", attention.output_dense.kernel, (d, d)))
        rows.append(TensorMapping(f"{prefix}.attn.c_proj.bias", attention.output_dense.bias, (d,)))
        rows += norm(f"{prefix}.ln_2", block.feed_forward_norm)
        feed_forward = block.feed_forward
        intermediate = config.intermediate_dim
        rows.append(
            TensorMapping(
                f"{prefix}.mlp.c_fc.weight", feed_forward.intermediate_dense.kernel, (d, intermediate)
            )
        )
        rows.append(
            TensorMapping(f"{prefix}.mlp.c_fc.bias", feed_forward.intermediate_dense.bias, (intermediate,))
        )
        rows.append(
            TensorMapping(f"{prefix}.mlp.c_proj.weight", feed_forward.output_dense.kernel, (intermediate, d))
        )
        rows.append(TensorMapping(f"{prefix}.mlp.c_proj.bias", feed_forward.output_dense.bias, (d,)))
    rows += norm("ln_f", model.final_norm)
    if model.lm_head is not None:
        # An untied head is an nn.Linear (V, d) without bias.
        rows.append(
            TensorMapping(
                "lm_head.weight", model.lm_head.kernel, (config.vocabulary_size, d), transposed=True
            )
        )
    return rows


def _split_fused_attention(tensors, num_layers, hidden_dim, source):
    """Add ``h.{i}.attn.c_attn.{query,key,value}.{weight,bias}`` entries split from each fused ``c_attn``."""
    split = dict(tensors)
    for index in range(num_layers):
        for kind, shape in (("weight", (hidden_dim, 3 * hidden_dim)), ("bias", (3 * hidden_dim,))):
            fused = take_tensor(tensors, f"h.{index}.attn.c_attn.{kind}", shape, source)
            for part, value in zip(_QKV, np.split(fused, 3, axis=-1)):
                split[f"h.{index}.attn.c_attn.{part}.{kind}"] = value
    return split


def load_hf_gpt2(path, *, dtype=None):
    """Load a Hugging Face GPT-2 checkpoint folder into a :class:`~llm_tf.models.GPT`.

    Reads ``config.json`` and ``model.safetensors`` (or its shards) as ``save_pretrained`` writes them for
    ``GPT2LMHeadModel`` or ``GPT2Model``, and ``tokenizer.json`` when the folder has one.

    Args:
        path: the checkpoint folder (or a file inside it, such as its ``config.json``).
        dtype: optional Keras dtype policy for the model (e.g. ``"mixed_bfloat16"``); default: the global one.

    Returns:
        ``(model, tokenizer)``: the :class:`~llm_tf.models.GPT` with the checkpoint's weights, and a
        :class:`~llm_tf.text.BPETokenizer` over ``tokenizer.json`` (``None`` when the folder has none).
        Note that GPT-2's own vocabulary has no padding token: id 0 is a real token there, so pass a
        ``padding_mask`` with padded batches.

    Raises:
        FileNotFoundError: when the folder, its config.json or its safetensors weights are missing.
        ValueError: for another ``model_type``, a missing or wrongly shaped tensor (named in the message),
            or a configuration our GPT cannot express exactly.

    Example:

    >>> model, tokenizer = load_hf_gpt2("checkpoints/gpt2")  # doctest: +SKIP
    >>> model.generate([tokenizer.encode("Hello")], max_new_tokens=20)  # doctest: +SKIP
    """
    from llm_tf.models.gpt import GPT

    directory = checkpoint_directory(path)
    source = str(directory)
    hf_config = read_config(directory)
    check_model_type(hf_config, "gpt2", directory)
    config = gpt_config_from_hf(hf_config, source)
    tensors = strip_prefix(read_tensors(directory), _PREFIX)
    tensors = _split_fused_attention(tensors, config.num_layers, config.hidden_dim, source)
    model = GPT(config) if dtype is None else GPT(config, dtype=dtype)
    rows = _mappings(model)
    assign_all(rows, tensors, source)
    used = {row.hf_name for row in rows}
    used |= {f"h.{i}.attn.c_attn.{kind}" for i in range(config.num_layers) for kind in ("weight", "bias")}
    if config.tie_embeddings:
        used.add("lm_head.weight")  # the tied copy of wte, when a file stores it
    warn_unused(tensors, used, _IGNORED_TENSORS, source)

    tokenizer = None
    if (directory / TOKENIZER_FILE).is_file():
        from llm_tf.text import BPETokenizer

        tokenizer = BPETokenizer.load(directory / TOKENIZER_FILE)
    return model, tokenizer


def hf_config_from_gpt(config, tokenizer=None):
    """The GPT-2 ``config.json`` dict for a :class:`~llm_tf.models.GPTConfig`.

    Args:
        config: the ``GPTConfig``.
        tokenizer: optional tokenizer whose ``bos_id``/``eos_id`` (and padding id, when it has a padding
            token) go into the config.

    Returns:
        A JSON-serializable dict that ``transformers.GPT2Config`` reads.

    Raises:
        ValueError: for settings GPT-2 cannot express (post-norm blocks, sinusoidal positions, no biases,
            no final LayerNorm).

    Example:

    >>> from llm_tf.models import GPTConfig
    >>> hf_config_from_gpt(GPTConfig.from_preset("tiny"))["n_embd"]
    128
    """
    require_model_setting(config.norm_first, "norm_first", True, "GPT-2 blocks are pre-norm")
    require_model_setting(config.position, "position", "learned", "GPT-2 learns its position embeddings")
    require_model_setting(config.use_bias, "use_bias", True, "every GPT-2 projection has a bias")
    require_model_setting(config.final_norm, "final_norm", True, "GPT-2 always ends with the LayerNorm ln_f")
    dropout = config.dropout
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocabulary_size,
        "n_positions": config.max_sequence_length,
        "n_embd": config.hidden_dim,
        "n_layer": config.num_layers,
        "n_head": config.num_heads,
        "n_inner": config.intermediate_dim,
        "activation_function": _KERAS_TO_HF_ACTIVATION[config.activation],
        "resid_pdrop": dropout,
        "embd_pdrop": dropout,
        "attn_pdrop": dropout if config.attention_dropout is None else config.attention_dropout,
        "layer_norm_epsilon": config.layer_norm_epsilon,
        "initializer_range": config.initializer_range,
        "tie_word_embeddings": config.tie_embeddings,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "add_cross_attention": False,
        "bos_token_id": None if tokenizer is None else tokenizer.bos_id,
        "eos_token_id": None if tokenizer is None else tokenizer.eos_id,
        "pad_token_id": _padding_token_id(tokenizer),
        "use_cache": True,
        "dtype": "float32",
    }


def _padding_token_id(tokenizer):
    """The id of the tokenizer's padding token, or None (GPT-2's own vocabulary has none)."""
    if tokenizer is None or "pad" not in tokenizer.special_tokens:
        return None
    return tokenizer.pad_id


def _check_tokenizer(tokenizer, vocabulary_size):
    from llm_tf.text import BPETokenizer

    if not isinstance(tokenizer, BPETokenizer):
        raise ValueError(
            f"`tokenizer` must be a BPETokenizer (it is saved as tokenizer.json); got {type(tokenizer).__name__}."
        )
    if tokenizer.vocabulary_size > vocabulary_size:
        raise ValueError(
            f"`tokenizer` has {tokenizer.vocabulary_size} tokens but the model's vocabulary_size is "
            f"{vocabulary_size}; their ids would not fit the embedding table."
        )


def _write_tokenizer(tokenizer, directory):
    tokenizer.save(directory)
    # transformers' AutoTokenizer reads the class and the special tokens from tokenizer_config.json.
    names = {
        "pad": "pad_token",
        "unk": "unk_token",
        "cls": "bos_token",
        "sep": "eos_token",
        "mask": "mask_token",
    }
    tokenizer_config = {"tokenizer_class": "PreTrainedTokenizerFast"}
    tokenizer_config.update({names[role]: token for role, token in tokenizer.special_tokens.items()})
    (pathlib.Path(directory) / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def save_hf_gpt2(model, path, *, tokenizer=None):
    """Write a :class:`~llm_tf.models.GPT` as a Hugging Face GPT-2 checkpoint folder.

    The folder gets ``config.json`` (``GPT2LMHeadModel``) and ``model.safetensors`` (float32, names as
    ``save_pretrained`` writes them, ``lm_head.weight`` only when the head is untied), so
    ``transformers.GPT2LMHeadModel.from_pretrained(path)`` loads it; with a tokenizer, also its
    ``tokenizer.json`` and a ``tokenizer_config.json`` for ``AutoTokenizer``.

    Args:
        model: the :class:`~llm_tf.models.GPT` (pre-norm, learned positions, biases, final norm).
        path: the output folder (created if needed; files in it are overwritten).
        tokenizer: optional :class:`~llm_tf.text.BPETokenizer` to save next to the weights.

    Returns:
        The folder as a ``pathlib.Path``.

    Raises:
        ValueError: when ``model`` is not a GPT or uses a setting GPT-2 cannot express.

    Example:

    >>> save_hf_gpt2(model, "exported/gpt2", tokenizer=tokenizer)  # doctest: +SKIP
    >>> transformers.GPT2LMHeadModel.from_pretrained("exported/gpt2")  # doctest: +SKIP
    """
    from llm_tf.models.gpt import GPT

    if not isinstance(model, GPT):
        raise ValueError(f"`model` must be an llm_tf GPT; got {type(model).__name__}.")
    if tokenizer is not None:
        _check_tokenizer(tokenizer, model.config.vocabulary_size)
    hf_config = hf_config_from_gpt(model.config, tokenizer)
    tensors = {row.hf_name: row.to_hf() for row in _mappings(model)}
    for index in range(model.config.num_layers):
        for kind in ("weight", "bias"):
            parts = [tensors.pop(f"h.{index}.attn.c_attn.{part}.{kind}") for part in _QKV]
            tensors[f"h.{index}.attn.c_attn.{kind}"] = np.ascontiguousarray(np.concatenate(parts, axis=-1))
    tensors = {
        (name if name == "lm_head.weight" else _PREFIX + name): value for name, value in tensors.items()
    }
    directory = write_checkpoint(path, hf_config, tensors)
    if tokenizer is not None:
        _write_tokenizer(tokenizer, directory)
    return directory
