"""The experiment command line: common flags, presets + overrides, seeds, printed configs and tables.

Every experiment in ``experiments/`` is a thin script: it builds an ``argparse`` parser with
:func:`add_common_arguments`, turns the parsed flags into a config dataclass (a preset plus the flags the user
set: :func:`flag_overrides` and :func:`apply_overrides`), prints and saves that config, then calls the library
with plain values. This is the only module of the task layer that deals with ``argparse``; it holds no model or
data logic.

Example:
    >>> import dataclasses
    >>> @dataclasses.dataclass
    ... class Config:
    ...     epochs: int = 8
    ...     learning_rate: float = 1e-3
    >>> apply_overrides(Config(), {"epochs": 2, "learning_rate": None})
    Config(epochs=2, learning_rate=0.001)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Collection, Mapping, Sequence
from typing import Any

#: The repository root of a source checkout (``llm_tf/`` lives in it).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def add_common_arguments(
    parser: argparse.ArgumentParser, presets: Sequence[str], default_preset: str | None = None
) -> argparse.ArgumentParser:
    """Add the flags every experiment has: ``--preset``, ``--data-dir``, ``--output-dir`` and the training flags.

    The training flags come from :func:`llm_tf.training.add_training_arguments` (``--strategy``,
    ``--precision``, ``--seed``, ``--resume``, ``--num-cpu-devices``, ``--log-every-n-steps``,
    ``--backup-every-n-steps`` and ``--runs-root``); ``--output-dir`` is another name for ``--runs-root``
    (both set ``runs_root``, default ``runs``).

    Args:
        parser: the experiment's parser.
        presets: the preset names the experiment knows, e.g. ``["full", "smoke"]``.
        default_preset: the preset used without ``--preset`` (default: the first of ``presets``).

    Returns:
        The same parser.

    Example:
        >>> parser = add_common_arguments(argparse.ArgumentParser(), ["full", "smoke"])
        >>> parser.parse_args(["--preset", "smoke", "--output-dir", "/tmp/runs"]).runs_root
        '/tmp/runs'
    """
    from llm_tf.training import add_training_arguments

    presets = list(presets)
    if not presets:
        raise ValueError("`presets` must name at least one preset; got an empty sequence.")
    if default_preset is None:
        default_preset = presets[0]
    if default_preset not in presets:
        raise ValueError(f"`default_preset` must be one of {presets}; got default_preset={default_preset!r}.")
    group = parser.add_argument_group("experiment")
    group.add_argument(
        "--preset", default=default_preset, choices=presets,
        help=f"size preset (default {default_preset}); flags given explicitly override its values",
    )
    group.add_argument(
        "--data-dir", default=None,
        help="root of the datasets (default: $LLM_TF_DATA_DIR, ../shared/data next to the repository, "
        "or ~/.cache/llm_tf/datasets)",
    )
    add_training_arguments(parser)
    group.add_argument(
        "--output-dir", dest="runs_root", default=argparse.SUPPRESS,
        help="root of the run directories, runs/<experiment>/<timestamp>/ (default runs; same as --runs-root)",
    )
    return parser


def default_data_dir(data_dir: str | None) -> str | None:
    """The data directory to use: the flag, else ``$LLM_TF_DATA_DIR``, else ``../shared/data`` when it exists.

    Args:
        data_dir: the ``--data-dir`` value (None when not given).

    Returns:
        A directory path, or None to let the loaders use their own default (``~/.cache/llm_tf/datasets``).

    Example:
        >>> default_data_dir("/data") == "/data"
        True
    """
    if data_dir:
        return data_dir
    if os.environ.get("LLM_TF_DATA_DIR"):
        return os.environ["LLM_TF_DATA_DIR"]
    shared = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")
    return shared if os.path.isdir(shared) else None


def flag_overrides(values: Mapping[str, Any], config_class: type, skip: Collection[str] = ()) -> dict[str, Any]:
    """The parsed flags that name a field of ``config_class``: field -> value (None = flag not given).

    Args:
        values: the parsed flags as a dict (``vars(args)``).
        config_class: the config dataclass.
        skip: fields the script sets itself.

    Returns:
        A dict for :func:`apply_overrides`.

    Example:
        >>> @dataclasses.dataclass
        ... class Demo:
        ...     epochs: int = 8
        ...     seed: int = 0
        >>> flag_overrides({"epochs": 3, "seed": None, "verbose": True}, Demo)
        {'epochs': 3, 'seed': None}
    """
    if not dataclasses.is_dataclass(config_class):
        raise ValueError(f"`config_class` must be a dataclass type; got {config_class!r}.")
    return {
        field.name: values[field.name]
        for field in dataclasses.fields(config_class)
        if field.name in values and field.name not in skip
    }


def apply_overrides(config: Any, overrides: Mapping[str, Any]) -> Any:
    """A copy of the dataclass ``config`` with the fields in ``overrides`` replaced, skipping None values.

    None means "flag not given", so a preset's value stays unless the user set the flag.

    Args:
        config: a dataclass instance (the preset).
        overrides: field name -> value (None = keep the preset's value).

    Returns:
        A new instance of the same dataclass.

    Raises:
        ValueError: for a name that is not a field of ``config``.

    Example:
        >>> @dataclasses.dataclass
        ... class Demo:
        ...     epochs: int = 8
        >>> apply_overrides(Demo(), {"epochs": 3})
        Demo(epochs=3)
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise ValueError(f"`config` must be a dataclass instance; got {type(config).__name__}.")
    fields = {field.name for field in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown {type(config).__name__} field(s) {unknown}; valid fields are {sorted(fields)}.")
    return dataclasses.replace(config, **{name: value for name, value in overrides.items() if value is not None})


def config_from_dict(cls: type, values: Mapping[str, Any]) -> Any:
    """Rebuild a config dataclass from a dict (e.g. a saved ``config.json``), rejecting unknown fields.

    Args:
        cls: the dataclass type.
        values: field name -> value; fields left out take their defaults.

    Returns:
        An instance of ``cls``.

    Raises:
        ValueError: for unknown fields, or when ``values`` is not a mapping.

    Example:
        >>> @dataclasses.dataclass
        ... class Demo:
        ...     epochs: int = 8
        >>> config_from_dict(Demo, json.loads(json.dumps(dataclasses.asdict(Demo(epochs=2)))))
        Demo(epochs=2)
    """
    if not isinstance(values, Mapping):
        raise ValueError(f"`values` must be a dict of {cls.__name__} fields; got {type(values).__name__}.")
    fields = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; valid fields are {sorted(fields)}.")
    return cls(**dict(values))


class ExperimentConfig:
    """Base for an experiment's config dataclass: validated on creation, JSON round-trip, rebuilt from a saved dict.

    Subclasses are ``@dataclasses.dataclass`` classes that override :meth:`validate`.

    Example:
        >>> @dataclasses.dataclass
        ... class Demo(ExperimentConfig):
        ...     epochs: int = 8
        >>> Demo.from_json(Demo(epochs=2).to_json())
        Demo(epochs=2)
    """

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check every field; raise ``ValueError`` naming the field, its value and what was expected."""

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain JSON-serializable dict."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """The config as a JSON string (sorted keys)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]):
        """Rebuild from :meth:`to_dict` output (or a saved ``config.json``); unknown fields are errors."""
        return config_from_dict(cls, values)

    @classmethod
    def from_json(cls, text: str):
        """Rebuild from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))


def print_config(config: Any, title: str = "config") -> None:
    """Print a config (dataclass or dict) as indented JSON under a title line.

    Args:
        config: a dataclass instance or a JSON-serializable dict.
        title: the line printed first.

    Returns:
        None.

    Example:
        >>> print_config({"epochs": 2}, title="demo")
        demo:
        {
          "epochs": 2
        }
    """
    values = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    print(f"{title}:\n{json.dumps(values, indent=2, sort_keys=True, default=str)}", flush=True)


def resolve_seeds(seed: int | None, seeds: Sequence[int] | None, num_seeds: int | None, default: Sequence[int]) -> list[int]:
    """The seeds to run, from ``--seed``, ``--seeds`` and ``--num-seeds`` (at most one of the last two).

    ``--seeds a b c`` runs exactly those; ``--num-seeds N`` runs ``seed, seed+1, ..., seed+N-1`` (``seed``
    defaults to 0); ``--seed S`` alone runs S only; nothing given runs ``default`` (the preset's seeds).

    Args:
        seed: the ``--seed`` value, None when not given.
        seeds: the ``--seeds`` values, None when not given.
        num_seeds: the ``--num-seeds`` value, None when not given.
        default: the preset's seeds.

    Returns:
        A non-empty list of distinct non-negative seeds.

    Raises:
        ValueError: when both ``seeds`` and ``num_seeds`` are given, or a seed/count is invalid.

    Example:
        >>> resolve_seeds(None, None, 3, default=[0]), resolve_seeds(7, None, None, default=[0, 1, 2])
        ([0, 1, 2], [7])
    """
    if seeds is not None and num_seeds is not None:
        raise ValueError(f"give `--seeds` or `--num-seeds`, not both; got seeds={list(seeds)}, num_seeds={num_seeds}.")
    if num_seeds is not None:
        if isinstance(num_seeds, bool) or not isinstance(num_seeds, int) or num_seeds < 1:
            raise ValueError(f"`--num-seeds` must be a positive integer; got num_seeds={num_seeds!r}.")
        first = 0 if seed is None else seed
        chosen = list(range(first, first + num_seeds))
    elif seeds is not None:
        chosen = list(seeds)
    elif seed is not None:
        chosen = [seed]
    else:
        chosen = list(default)
    if not chosen:
        raise ValueError("`--seeds` must list at least one seed; got none.")
    for value in chosen:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"seeds must be non-negative integers; got seed={value!r}.")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"seeds must be distinct; got {chosen}.")
    return chosen


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: a header row, a rule, then one line per row; numbers right-aligned.

    Args:
        headers: the column titles.
        rows: the cells, one sequence per row (each as long as ``headers``); floats are shown with 4 decimals.

    Returns:
        The table as one string (no trailing newline).

    Raises:
        ValueError: when a row's length differs from the header's.

    Example:
        >>> print(format_table(["model", "accuracy"], [["svm", 0.98], ["transformer", 0.975]]))
        model        | accuracy
        -------------+---------
        svm          |   0.9800
        transformer  |   0.9750
    """
    headers = [str(header) for header in headers]
    cells = []
    for index, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(f"row {index} has {len(row)} cells; expected {len(headers)} (one per header).")
        cells.append([f"{value:.4f}" if isinstance(value, float) else str(value) for value in row])
    numeric = [
        bool(rows) and all(isinstance(row[column], int | float) and not isinstance(row[column], bool) for row in rows)
        for column in range(len(headers))
    ]
    widths = [max([len(header)] + [len(row[column]) for row in cells]) for column, header in enumerate(headers)]
    widths[0] += 1  # a little air after the row labels

    def line(values):
        return " | ".join(
            value.rjust(width) if is_number else value.ljust(width)
            for value, width, is_number in zip(values, widths, numeric)
        ).rstrip()

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(headers), rule] + [line(row) for row in cells])


def add_block_order_arguments(group, pre_norm_help: str, post_norm_help: str) -> None:
    """``--norm-first`` / ``--post-norm``: one ``norm_first`` value (None when neither is given: the preset's).

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_block_order_arguments(parser, "pre-norm blocks", "post-norm blocks")
        >>> parser.parse_args(["--post-norm"]).norm_first
        False
    """
    group.add_argument("--norm-first", dest="norm_first", action="store_true", default=None, help=pre_norm_help)
    group.add_argument("--post-norm", dest="norm_first", action="store_false", default=None, help=post_norm_help)


# ------------------------------------------------------------------------------------------------------------
# Classification experiments (llm_tf.tasks.classification.ClassificationConfig).


def add_classification_arguments(parser: argparse.ArgumentParser, data_formats: Sequence[str]) -> argparse.ArgumentParser:
    """Add the data, recipe, seed / fold and baseline flags of a classification experiment.

    Every flag defaults to None (= the preset's value); :func:`classification_config` applies them.

    Args:
        parser: a parser already given to :func:`add_common_arguments`.
        data_formats: the accepted ``--data-format`` values: named datasets the script loads, plus
            ``"folder"`` and ``"csv"``.

    Returns:
        The same parser.
    """
    from llm_tf.tasks.classification import POOLINGS
    from llm_tf.tasks.windows import EVAL_WINDOWS, TRAIN_WINDOWS

    parser.set_defaults(seed=None)  # --seed not given: the preset's seeds apply
    data = parser.add_argument_group("data (your own: --train-path, optionally --validation-path / --test-path)")
    data.add_argument("--data-format", choices=list(data_formats), default=None,
                      help="a named dataset, folder (<label>/<file>) or csv (default: the preset's; inferred from "
                      "--train-path)")
    data.add_argument("--data-path", "--train-path", dest="data_path", default=None,
                      help="training folder or CSV; alone it is split 80/10/10 (seeded, stratified)")
    data.add_argument("--validation-path", default=None, help="the dataset's own validation folder or CSV")
    data.add_argument("--test-path", default=None,
                      help="the dataset's own test folder or CSV (with only train and test, validation is carved "
                      "from train: 10%% of each class, seeded)")
    data.add_argument("--text-column", action="append", default=None,
                      help="CSV text column (name or 0-based index); repeat to join several, e.g. title and body")
    data.add_argument("--label-column", default=None, help="CSV label column (name or 0-based index)")
    data.add_argument("--no-header", dest="has_header", action="store_false", default=None,
                      help="the CSV files have no header row (give columns by index)")
    data.add_argument("--file-pattern", default=None, help="only read class-folder files matching this glob "
                      "(default: every regular, non-hidden file)")
    data.add_argument("--split-seed", type=int, default=None, help="seed of the stratified splits and folds (42)")
    data.add_argument("--max-train-examples", type=int, default=None,
                      help="train on a stratified subset of this many examples")
    model = parser.add_argument_group("model and optimization (default: the preset's value)")
    for flag, kind in (("vocabulary-size", int), ("max-sequence-length", int), ("hidden-dim", int),
                       ("num-layers", int), ("num-heads", int), ("intermediate-dim", int), ("dropout", float),
                       ("attention-dropout", float), ("classifier-dropout", float), ("batch-size", int), ("epochs", int),
                       ("learning-rate", float), ("warmup-fraction", float), ("weight-decay", float),
                       ("label-smoothing", float)):
        model.add_argument(f"--{flag}", type=kind, default=None)
    model.add_argument("--pooling", choices=POOLINGS, default=None)
    model.add_argument("--token-mask-rate", type=float, default=None,
                       help="augmentation: replace this fraction of training tokens by [MASK] each epoch")
    model.add_argument("--ema-momentum", type=float, default=None,
                       help="evaluate an exponential moving average of the weights (e.g. 0.99)")
    model.add_argument("--train-windows", choices=TRAIN_WINDOWS, default=None,
                       help="first: each document's first tokens; head_tail: its first and last ones; "
                       "random: a random window per epoch")
    model.add_argument("--eval-windows", choices=EVAL_WINDOWS, default=None,
                       help="first / head_tail: as for training; all: average over windows covering each document")
    model.add_argument("--jit-compile", choices=("auto", "true", "false"), default=None,
                       help="XLA for the train/eval steps (auto: on GPU/TPU only)")
    model.add_argument("--deterministic", action="store_true", default=None,
                       help="enable TensorFlow op determinism (bit-exact reruns; Keras then runs without XLA)")
    model.add_argument("--init-from", default=None,
                       help="fine-tune from a pretraining run directory (experiments/pretrain.py) or a Hugging Face "
                       "BERT folder: its tokenizer, architecture and sequence length are used")
    model.add_argument("--bucket-by-length", action=argparse.BooleanOptionalAction, default=None,
                       help="batch training texts of similar length, each batch cut to its longest "
                       "(--no-bucket-by-length: fixed-length batches)")
    add_block_order_arguments(model, "a pre-norm encoder (the pretraining default); with --init-from it comes "
                              "from the model", "BERT's post-norm encoder; with --init-from it comes from the model")
    model.add_argument("--layer-decay", type=float, default=None,
                       help="layer-wise learning-rate decay for fine-tuning, e.g. 0.8 (head 1, lower blocks less)")
    runs = parser.add_argument_group("seeds, cross-validation and baseline")
    runs.add_argument("--seeds", type=int, nargs="+", default=None,
                      help="training seeds, one run each; mean ± std and a 95%% interval are reported")
    runs.add_argument("--num-seeds", type=int, default=None, help="run seeds --seed .. --seed+N-1")
    runs.add_argument("--folds", type=int, default=None,
                      help="stratified K-fold cross-validation over train + validation (test untouched)")
    runs.add_argument("--no-baseline", dest="baseline", action="store_false", default=None,
                      help="skip the TF-IDF + LinearSVC baseline")
    return parser


def classification_config(values: Mapping[str, Any], preset: Any, named_formats: Collection[str] = ()) -> Any:
    """The preset with every classification flag the user gave applied (see :func:`add_classification_arguments`).

    Args:
        values: the parsed flags as a dict (``vars(args)``).
        preset: the preset, a ``ClassificationConfig`` (or a dataclass with its fields).
        named_formats: the data formats that are datasets read from ``--data-dir`` (e.g. ``["bbc"]``).

    Returns:
        A validated config of the preset's class.

    Raises:
        ValueError: for conflicting flags (``--seeds`` with ``--num-seeds``, ``--data-dir`` with a path).
    """
    values = dict(values)
    seeds = None
    if any(values.get(name) is not None for name in ("seed", "seeds", "num_seeds")):
        seeds = resolve_seeds(values.get("seed"), values.get("seeds"), values.get("num_seeds"), preset.seeds)
    special = {"seeds", "data_dir", "data_path", "validation_path", "test_path", "jit_compile", "text_column",
               "preset", "strategy", "num_cpu_devices", "precision", "init_from"}
    overrides = flag_overrides(values, type(preset), skip=special)
    overrides.update(seeds=seeds, strategy=values.get("strategy"), num_cpu_devices=values.get("num_cpu_devices"),
                     precision=values.get("precision"))
    if values.get("jit_compile") is not None:
        overrides["jit_compile"] = {"auto": "auto", "true": True, "false": False}[values["jit_compile"]]
    columns = values.get("text_column")
    if columns is not None:
        overrides["text_column"] = columns[0] if len(columns) == 1 else list(columns)
    paths = {name: values.get(name) for name in ("data_path", "validation_path", "test_path")}
    data_format = values.get("data_format")
    if data_format is None and paths["data_path"] is not None:
        data_format = overrides["data_format"] = "folder" if os.path.isdir(paths["data_path"]) else "csv"
    data_format = data_format or preset.data_format
    if data_format in named_formats:
        overrides["data_dir"] = default_data_dir(values.get("data_dir"))
    elif values.get("data_dir") is not None:
        raise ValueError(f"--data-dir applies to --data-format {'/'.join(named_formats) or '(a named dataset)'}; got "
                         f"--data-dir {values['data_dir']!r} with --data-format {data_format} (use --train-path).")
    else:
        overrides["data_dir"] = None
    for name, path in paths.items():
        if path is not None:
            overrides[name] = os.path.abspath(path)
    if values.get("init_from") is not None:
        overrides["init_from"] = os.path.abspath(values["init_from"])
    config = apply_overrides(preset, overrides)
    if data_format not in named_formats and preset.data_format in named_formats:
        config.data_dir = None
    if config.init_from:
        # The architecture, sequence length and tokenizer come from the pretrained model; flags that contradict it
        # are errors, preset values are replaced.
        from llm_tf.tasks.classification import apply_pretrained
        from llm_tf.tasks.pretraining import load_pretrained_encoder

        config = apply_pretrained(config, load_pretrained_encoder(config.init_from), overrides)
    config.validate()
    return config


__all__ = [
    "REPO_ROOT",
    "ExperimentConfig",
    "add_classification_arguments",
    "add_common_arguments",
    "apply_overrides",
    "classification_config",
    "config_from_dict",
    "default_data_dir",
    "flag_overrides",
    "format_table",
    "print_config",
    "resolve_seeds",
]
