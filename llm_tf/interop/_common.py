"""Pieces shared by the GPT-2 and BERT converters: reading/writing checkpoint folders and moving tensors.

A Hugging Face checkpoint folder (as ``save_pretrained`` writes it) holds ``config.json`` and either
``model.safetensors`` or shards listed in ``model.safetensors.index.json``. Tensors are read with
``safetensors.numpy`` (no PyTorch needed); bfloat16 tensors, which numpy cannot represent, are widened to
float32 by a small reader of the (simple, documented) safetensors layout.

Each converter describes its model as a list of :class:`TensorMapping` rows — one Hugging Face tensor name,
one Keras variable, the tensor's shape in the checkpoint and whether it is stored transposed (``nn.Linear``
keeps ``(out, in)``; Keras kernels are ``(in, ...out)``) — and the same rows drive loading and saving.
"""

import dataclasses
import json
import math
import pathlib
import re
import struct
import warnings

import numpy as np

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"


# ------------------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------------------


def checkpoint_directory(path):
    """The checkpoint folder for ``path`` (the folder itself or any file inside it, e.g. its config.json).

    Raises:
        FileNotFoundError: when ``path`` does not exist.
    """
    path = pathlib.Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no Hugging Face checkpoint at path={str(path)!r}: it does not exist.")
    return path if path.is_dir() else path.parent


def read_config(directory):
    """The ``config.json`` of a checkpoint folder as a dict.

    Raises:
        FileNotFoundError: when the folder has no config.json.
        ValueError: when config.json is not a JSON object.
    """
    config_path = pathlib.Path(directory) / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(
            f"no {CONFIG_FILE} in {str(directory)!r}; expected a folder written by save_pretrained "
            f"(config.json + model.safetensors)."
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{str(config_path)!r} is not valid JSON ({error}).") from None
    if not isinstance(config, dict):
        raise ValueError(f"{str(config_path)!r} must hold a JSON object; got {type(config).__name__}.")
    return config


def check_model_type(config, expected, directory):
    """Raise ValueError unless ``config["model_type"] == expected``."""
    model_type = config.get("model_type")
    if model_type != expected:
        raise ValueError(
            f"unsupported model_type={model_type!r} in {str(pathlib.Path(directory) / CONFIG_FILE)!r}; "
            f"this loader reads model_type={expected!r} checkpoints only."
        )


def _weight_files(directory):
    directory = pathlib.Path(directory)
    single = directory / WEIGHTS_FILE
    if single.is_file():
        return [single]
    index_path = directory / WEIGHTS_INDEX_FILE
    if index_path.is_file():
        index = json.loads(index_path.read_text(encoding="utf-8"))
        shard_names = sorted(set(index.get("weight_map", {}).values()))
        shards = [directory / name for name in shard_names]
        missing = [str(shard) for shard in shards if not shard.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{WEIGHTS_INDEX_FILE} in {str(directory)!r} lists missing shards {missing}."
            )
        return shards
    hint = ""
    if any((directory / name).is_file() for name in ("pytorch_model.bin", "tf_model.h5")):
        hint = (
            " The folder holds only a PyTorch/TF weights file: convert it first with "
            "transformers' `Model.from_pretrained(path).save_pretrained(path, safe_serialization=True)`."
        )
    raise FileNotFoundError(
        f"no {WEIGHTS_FILE} (or {WEIGHTS_INDEX_FILE}) in {str(directory)!r}; expected safetensors weights.{hint}"
    )


_SAFETENSORS_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def _read_safetensors_with_bfloat16(file_path):
    """Read a safetensors file holding bfloat16 tensors (widened to float32), which numpy cannot represent.

    The layout: an 8-byte little-endian header size, a JSON header ``name -> {dtype, shape, data_offsets}``,
    then the raw little-endian tensor bytes (offsets relative to the end of the header).
    """
    data = pathlib.Path(file_path).read_bytes()
    (header_size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_size])
    body = memoryview(data)[8 + header_size :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = body[start:end]
        shape = tuple(info["shape"])
        if info["dtype"] == "BF16":
            # bfloat16 is the upper half of a float32: shift the 16 bits into place.
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            tensors[name] = bits.view(np.float32).reshape(shape)
        elif info["dtype"] in _SAFETENSORS_DTYPES:
            dtype = np.dtype(_SAFETENSORS_DTYPES[info["dtype"]]).newbyteorder("<")
            tensors[name] = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        else:
            raise ValueError(
                f"tensor {name!r} in {str(file_path)!r} has dtype {info['dtype']!r}, which this reader does "
                f"not support; expected one of {sorted(_SAFETENSORS_DTYPES) + ['BF16']}."
            )
    return tensors


def read_tensors(directory):
    """Every tensor of the checkpoint folder (one file or all shards) as ``name -> numpy array``.

    Raises:
        FileNotFoundError: when the folder has no safetensors weights.
    """
    from safetensors.numpy import load_file

    tensors = {}
    for file_path in _weight_files(directory):
        try:
            shard = load_file(str(file_path))
        except TypeError as error:
            if "bfloat16" not in str(error):
                raise
            shard = _read_safetensors_with_bfloat16(file_path)
        tensors.update(shard)
    # Once TensorFlow is imported, numpy knows ml_dtypes' bfloat16 and load_file returns it as such;
    # widen it too, so every floating tensor reaches the models as a standard numpy float.
    return {
        name: value.astype(np.float32) if value.dtype.name == "bfloat16" else value
        for name, value in tensors.items()
    }


def strip_prefix(tensors, prefix):
    """Drop ``prefix`` from the names that carry it (checkpoints store names with or without it)."""
    return {
        name[len(prefix) :] if name.startswith(prefix) else name: value for name, value in tensors.items()
    }


# ------------------------------------------------------------------------------------------------------
# The name/variable table shared by loading and saving
# ------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TensorMapping:
    """One checkpoint tensor and the Keras variable it fills.

    Args:
        hf_name: the tensor's name in the checkpoint (without the model prefix).
        variable: the Keras variable.
        hf_shape: the tensor's shape in the checkpoint.
        transposed: whether the checkpoint stores the transpose of the flattened Keras kernel
            (``torch.nn.Linear`` weights are ``(out, in)``; Keras kernels are ``(in, out)``).
    """

    hf_name: str
    variable: object
    hf_shape: tuple
    transposed: bool = False

    def to_keras(self, hf_value):
        """The checkpoint array rearranged into the variable's shape."""
        value = hf_value.T if self.transposed else hf_value
        return np.reshape(value, tuple(self.variable.shape))

    def to_hf(self):
        """The variable's value rearranged into the checkpoint layout (float32, contiguous)."""
        value = np.asarray(self.variable.numpy(), dtype=np.float32)
        if self.transposed:
            value = value.reshape(self.hf_shape[::-1]).T
        return np.ascontiguousarray(value.reshape(self.hf_shape))


def take_tensor(tensors, name, expected_shape, source):
    """``tensors[name]`` as float32 after checking it exists and has ``expected_shape``.

    Raises:
        ValueError: naming the tensor, when it is missing or its shape differs from the config's.
    """
    if name not in tensors:
        raise ValueError(
            f"the checkpoint {source!r} lacks the tensor {name!r} (expected shape {tuple(expected_shape)})."
        )
    value = tensors[name]
    if tuple(value.shape) != tuple(expected_shape):
        raise ValueError(
            f"the tensor {name!r} in {source!r} has shape {tuple(value.shape)}, but its config.json implies "
            f"{tuple(expected_shape)}."
        )
    if not np.issubdtype(value.dtype, np.floating):
        raise ValueError(
            f"the tensor {name!r} in {source!r} must be floating point; got dtype {value.dtype}."
        )
    return np.asarray(value, dtype=np.float32)


def assign_all(mappings, tensors, source):
    """Check every tensor first (so a bad checkpoint changes nothing), then assign them to the variables."""
    values = [take_tensor(tensors, row.hf_name, row.hf_shape, source) for row in mappings]
    for row, value in zip(mappings, values):
        row.variable.assign(row.to_keras(value))


def warn_unused(tensors, used_names, ignored_patterns, source):
    """Warn about checkpoint tensors that neither map to a weight nor are known to be safely ignorable."""
    ignored = [re.compile(pattern) for pattern in ignored_patterns]
    unused = sorted(
        name for name in tensors if name not in used_names and not any(p.fullmatch(name) for p in ignored)
    )
    if unused:
        shown = ", ".join(unused[:8]) + (f", ... ({len(unused)} in all)" if len(unused) > 8 else "")
        warnings.warn(f"the checkpoint {source!r} has tensors the model does not use: {shown}.", stacklevel=3)


# ------------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------------


def write_checkpoint(directory, config, tensors):
    """Write ``config.json`` and ``model.safetensors`` into ``directory`` (created if needed).

    Returns:
        The folder as a ``pathlib.Path``.
    """
    from safetensors.numpy import save_file

    directory = pathlib.Path(directory).expanduser()
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"`path` must be a folder; got path={str(directory)!r}, which is a file.")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_FILE).write_text(
        json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    # transformers refuses safetensors files without a "format" entry in their metadata.
    save_file(tensors, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
    return directory


# ------------------------------------------------------------------------------------------------------
# Config translation helpers
# ------------------------------------------------------------------------------------------------------

# Hugging Face activation names (transformers.activations.ACT2FN) that equal one of ours exactly.
HF_TO_KERAS_ACTIVATION = {
    "gelu": "gelu",
    "gelu_python": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_python_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu_accurate": "gelu_tanh",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
}


def keras_activation(hf_name, field, source):
    """Our activation name for the Hugging Face one in ``config[field]``; ValueError if none matches."""
    if hf_name not in HF_TO_KERAS_ACTIVATION:
        raise ValueError(
            f"{field}={hf_name!r} in {source!r} has no exact counterpart in llm_tf; supported: "
            f"{sorted(HF_TO_KERAS_ACTIVATION)}."
        )
    return HF_TO_KERAS_ACTIVATION[hf_name]


def require_setting(config, field, expected, default, source, reason):
    """Raise ValueError when ``config[field]`` (default ``default``) differs from the only value we express."""
    value = config.get(field, default)
    if value != expected:
        raise ValueError(
            f"{field}={value!r} in {source!r} is not supported: {reason} (expected {field}={expected!r})."
        )


def require_model_setting(value, field, expected, reason):
    """Raise ValueError when a model config field cannot be written as a Hugging Face checkpoint."""
    if value != expected:
        raise ValueError(
            f"cannot export a model with {field}={value!r}: {reason} (expected {field}={expected!r})."
        )


def flat_size(shape):
    """Number of elements of ``shape``."""
    return math.prod(shape)
