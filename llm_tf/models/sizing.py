"""How big is a model and what does it cost to train? Parameter counts and training FLOPs per token.

Works for the three model families by duck typing on their configs:

- ``GPTConfig`` (``num_layers``) → :class:`~llm_tf.models.GPT`;
- ``TransformerEncoderConfig`` (``num_layers``, ``num_segments``) → the
  :class:`~llm_tf.models.TransformerEncoder` backbone (no task head);
- ``Seq2SeqConfig`` (``num_encoder_layers`` + ``num_decoder_layers``) → :class:`~llm_tf.models.Seq2SeqTransformer`.

Parameter counts are exact: the model is built from the config and its weights are counted (results are
memoised per config, so a table of presets builds each model once).

Training compute follows the usual dense-Transformer estimate (Kaplan et al. 2020, "Scaling Laws for
Neural Language Models", §2.1; Chowdhery et al. 2022, "PaLM", App. B)::

    C_train per token = 6·N + 12·L·d·T

- ``N`` is the number of **non-embedding** parameters (as in Kaplan et al.): every weight except the
  token, position and segment embedding tables. A forward pass costs ``2·N`` FLOPs per token for the
  matrix multiplies (one multiply-add per weight) and the backward pass twice that, hence ``6·N``.
  An untied output head is a weight matrix like any other and counts in ``N``; the tied head's
  ``2·V·d`` forward FLOPs are not counted (pass ``include_embeddings=True`` to count every parameter).
- ``12·L·d·T`` is attention over the context: per layer and token, ``Q·Kᵀ`` and ``A·V`` each cost
  ``2·d·T`` forward FLOPs (no saving counted for causal masking), times 3 for training. ``L`` is the
  number of blocks (encoder + decoder blocks for seq2seq, whose cross-attention is approximated by the
  same term) and ``T`` the sequence length (default ``max_sequence_length``).

Command line, to choose a model for a budget::

    python -m llm_tf.models.sizing --family gpt --preset small [--sequence-length 512] [--budget-flops 1e18]

prints a table of every preset of the family (parameters, FLOPs per token, tokens affordable within the
budget) and the full description of the chosen preset.
"""

import argparse
import dataclasses
import importlib
import json
import sys

from llm_tf.checks import check_choice, check_positive_int

# family name → (module, config class, model class, presets dict)
FAMILIES = {
    "gpt": ("llm_tf.models.gpt", "GPTConfig", "GPT", "GPT_PRESETS"),
    "encoder": (
        "llm_tf.models.transformer_encoder",
        "TransformerEncoderConfig",
        "TransformerEncoder",
        "ENCODER_PRESETS",
    ),
    "seq2seq": ("llm_tf.models.seq2seq", "Seq2SeqConfig", "Seq2SeqTransformer", "SEQ2SEQ_PRESETS"),
}
# Seq2seq presets leave the vocabulary to the tokenizer; the CLI assumes the paper's shared BPE vocabulary.
DEFAULT_SEQ2SEQ_VOCABULARY = 37000
_EMBEDDING_SUFFIXES = ("embeddings",)  # token_embeddings, position_embeddings, segment Embedding "embeddings"
_COUNT_CACHE = {}


def _family_of(config):
    """The family name of ``config``, from its class name, else from its fields (duck typing)."""
    name = type(config).__name__
    for family, (_, config_class, _, _) in FAMILIES.items():
        if name == config_class:
            return family
    if hasattr(config, "num_encoder_layers") and hasattr(config, "num_decoder_layers"):
        return "seq2seq"
    if hasattr(config, "num_segments") or hasattr(config, "embedding_norm"):
        return "encoder"
    if hasattr(config, "num_layers"):
        return "gpt"
    raise ValueError(
        f"`config` must be a GPTConfig, TransformerEncoderConfig or Seq2SeqConfig (or have their fields); "
        f"got {type(config).__name__}."
    )


def num_layers(config):
    """Number of Transformer blocks: ``num_layers``, or ``num_encoder_layers + num_decoder_layers``."""
    if hasattr(config, "num_encoder_layers"):
        return config.num_encoder_layers + config.num_decoder_layers
    return config.num_layers


def _config_key(config):
    values = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(vars(config))
    return type(config).__name__, json.dumps(values, sort_keys=True, default=str)


def _parameter_counts(config):
    """``(total, embedding)`` parameter counts of the model built from ``config`` (memoised)."""
    key = _config_key(config)
    if key not in _COUNT_CACHE:
        module_name, _, model_class, _ = FAMILIES[_family_of(config)]
        model = getattr(importlib.import_module(module_name), model_class)(config)
        total, embedding = 0, 0
        seen = set()
        for weight in model.weights:
            if id(weight) in seen:  # a shared (tied) table is one set of parameters
                continue
            seen.add(id(weight))
            size = 1
            for dimension in weight.shape:
                size *= int(dimension)
            total += size
            if weight.path.split("/")[-1].endswith(_EMBEDDING_SUFFIXES):
                embedding += size
        _COUNT_CACHE[key] = (total, embedding)
        del model
    return _COUNT_CACHE[key]


def count_parameters(config, include_embeddings=True):
    """Exact number of parameters of the model a config describes.

    Args:
        config: a ``GPTConfig``, ``TransformerEncoderConfig`` or ``Seq2SeqConfig``.
        include_embeddings: count the token/position/segment embedding tables too (default). With
            False, returns the non-embedding count ``N`` of :func:`training_flops_per_token`.

    Returns:
        int.

    Example:

    >>> from llm_tf.models import GPTConfig
    >>> count_parameters(GPTConfig.from_preset("small"))
    124439808
    """
    total, embedding = _parameter_counts(config)
    return total if include_embeddings else total - embedding


def training_flops_per_token(config, sequence_length=None, include_embeddings=False):
    """Training FLOPs per token, ``6·N + 12·L·d·T`` (see the module docstring).

    Args:
        config: a model config of any family.
        sequence_length: ``T``; default ``config.max_sequence_length``.
        include_embeddings: use every parameter for ``N`` instead of the non-embedding ones.

    Returns:
        float: FLOPs for one token's forward and backward pass.

    Example:

    >>> from llm_tf.models import GPTConfig
    >>> config = GPTConfig.from_preset("small")
    >>> training_flops_per_token(config, 1024) == 6 * 85056000 + 12 * 12 * 768 * 1024
    True
    """
    if sequence_length is None:
        sequence_length = config.max_sequence_length
    check_positive_int("sequence_length", sequence_length)
    parameters = count_parameters(config, include_embeddings=include_embeddings)
    return float(6 * parameters + 12 * num_layers(config) * config.hidden_dim * sequence_length)


def _human(number, unit=""):
    for factor, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= factor:
            return f"{number / factor:.1f}{suffix}{unit}"
    return f"{number:.0f}{unit}"


def _bytes(number):
    for factor, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if number >= factor:
            return f"{number / factor:.1f} {suffix}"
    return f"{number} B"


def describe_config(config, sequence_length=None):
    """A printable two-column table: sizes, parameters, training FLOPs per token and memory.

    Args:
        config: a model config of any family.
        sequence_length: ``T`` for the attention FLOPs; default ``config.max_sequence_length``.

    Returns:
        str, one row per line.

    Example:

    >>> from llm_tf.models import GPTConfig
    >>> print(describe_config(GPTConfig.from_preset("tiny")))  # doctest: +ELLIPSIS
    GPTConfig (family gpt)
    ...
    """
    family = _family_of(config)
    length = config.max_sequence_length if sequence_length is None else sequence_length
    total = count_parameters(config)
    non_embedding = count_parameters(config, include_embeddings=False)
    layers = num_layers(config)
    flops = training_flops_per_token(config, length)
    dense, attention = 6 * non_embedding, 12 * layers * config.hidden_dim * length
    if hasattr(config, "num_encoder_layers"):
        layer_text = f"{config.num_encoder_layers} encoder + {config.num_decoder_layers} decoder"
    else:
        layer_text = str(layers)
    chinchilla_tokens = 20 * total  # Hoffmann et al. 2022: ~20 training tokens per parameter
    rows = [
        ("layers", layer_text),
        (
            "hidden / heads / intermediate",
            f"{config.hidden_dim} / {config.num_heads} / {config.intermediate_dim}",
        ),
        ("vocabulary", f"{config.vocabulary_size:,}"),
        ("max sequence length", f"{config.max_sequence_length:,}"),
        ("parameters", f"{total:,} ({_human(total)})"),
        ("non-embedding parameters N", f"{non_embedding:,} ({_human(non_embedding)})"),
        (
            f"training FLOPs/token (T={length})",
            f"{flops:.3e} = 6N {dense:.2e} + 12·L·d·T {attention:.2e}",
        ),
        ("weights in float32", _bytes(4 * total)),
        ("training state (fp32 + Adam)", f"{_bytes(16 * total)} (16 bytes/parameter, activations extra)"),
        (
            "compute-optimal data (20 tok/param)",
            f"{_human(chinchilla_tokens)} tokens, {chinchilla_tokens * flops:.2e} FLOPs",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{type(config).__name__} (family {family})"]
    lines += [f"  {name.ljust(width)}  {value}" for name, value in rows]
    return "\n".join(lines)


def _family_presets(family, vocabulary_size=None):
    module_name, config_class, _, presets_name = FAMILIES[family]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"model family {family!r} is not available: {error}") from error
    config_type, presets = getattr(module, config_class), getattr(module, presets_name)
    overrides = {}
    if vocabulary_size is not None:
        overrides["vocabulary_size"] = vocabulary_size
    elif family == "seq2seq":
        overrides["vocabulary_size"] = DEFAULT_SEQ2SEQ_VOCABULARY
    return {name: config_type.from_preset(name, **overrides) for name in presets}


def presets_table(family, sequence_length=None, budget_flops=None, vocabulary_size=None, marked=None):
    """A table comparing every preset of ``family``: size, FLOPs per token and, given a budget, tokens.

    Args:
        family: ``"gpt"``, ``"encoder"`` or ``"seq2seq"``.
        sequence_length: ``T`` of the FLOPs estimate (default: each preset's maximum).
        budget_flops: optional training budget in FLOPs; adds the number of tokens it pays for.
        vocabulary_size: optional vocabulary override for every preset.
        marked: a preset name to flag with ``*``.

    Returns:
        str.
    """
    check_choice("family", family, set(FAMILIES))
    header = ["preset", "layers", "hidden", "heads", "params", "non-emb N", "T", "FLOPs/token"]
    if budget_flops is not None:
        header.append("tokens in budget")
    rows = []
    for name, config in _family_presets(family, vocabulary_size).items():
        length = config.max_sequence_length if sequence_length is None else sequence_length
        flops = training_flops_per_token(config, length)
        row = [
            name + (" *" if name == marked else ""),
            str(num_layers(config)),
            str(config.hidden_dim),
            str(config.num_heads),
            _human(count_parameters(config)),
            _human(count_parameters(config, include_embeddings=False)),
            str(length),
            f"{flops:.2e}",
        ]
        if budget_flops is not None:
            row.append(_human(budget_flops / flops))
        rows.append(row)
    widths = [max(len(line[i]) for line in [header] + rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [header] + rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m llm_tf.models.sizing",
        description="Parameter counts and training FLOPs per token of the model presets (6N + 12·L·d·T).",
    )
    parser.add_argument("--family", choices=sorted(FAMILIES), default="gpt", help="model family")
    parser.add_argument("--preset", default=None, help="preset to describe in full (tiny, mini, small, base)")
    parser.add_argument("--sequence-length", type=int, default=None, help="T of the FLOPs estimate")
    parser.add_argument(
        "--vocabulary-size", type=int, default=None, help="override every preset's vocabulary"
    )
    parser.add_argument("--budget-flops", type=float, default=None, help="training budget, e.g. 1e18")
    arguments = parser.parse_args(argv)
    try:
        presets = _family_presets(arguments.family, arguments.vocabulary_size)
        if arguments.preset is not None and arguments.preset not in presets:
            raise ValueError(
                f"unknown {arguments.family} preset {arguments.preset!r}; valid presets are {sorted(presets)}."
            )
        print(f"{arguments.family} presets — training FLOPs per token = 6·N + 12·L·d·T (N: non-embedding)")
        print(
            presets_table(
                arguments.family,
                arguments.sequence_length,
                arguments.budget_flops,
                arguments.vocabulary_size,
                marked=arguments.preset,
            )
        )
        if arguments.preset is not None:
            print()
            print(f"preset {arguments.preset!r}:")
            print(describe_config(presets[arguments.preset], arguments.sequence_length))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
