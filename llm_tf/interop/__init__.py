"""Hugging Face checkpoints (``config.json`` + ``model.safetensors`` + ``tokenizer.json``) in and out.

Names are imported lazily so that ``safetensors``/``transformers`` load only when used.
"""

import importlib

_EXPORTS = {
    "load_hf_gpt2": "gpt2",
    "save_hf_gpt2": "gpt2",
    "load_hf_bert": "bert",
    "save_hf_bert": "bert",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'llm_tf.interop' has no attribute {name!r}")
    module = importlib.import_module(f"llm_tf.interop.{_EXPORTS[name]}")
    return getattr(module, name)
