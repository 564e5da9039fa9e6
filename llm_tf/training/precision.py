"""Numeric precision and reproducibility switches shared by every experiment."""

from __future__ import annotations

import keras
import tensorflow as tf

from llm_tf.checks import check_choice, check_non_negative_int

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# CPU flags (``/proc/cpuinfo``) of bfloat16 arithmetic: without one of them oneDNN emulates bfloat16 matmuls by
# converting to float32, and ``mixed_bfloat16`` only adds the conversions.
NATIVE_BFLOAT16_CPU_FEATURES = ("avx512_bf16", "amx_bf16")


def set_precision(name: str = "float32") -> keras.DTypePolicy:
    """Set Keras's global dtype policy; call it before building the model.

    ``mixed_float16`` computes in float16 with float32 variables; ``model.compile`` then wraps the optimizer
    in a ``keras.optimizers.LossScaleOptimizer`` (dynamic loss scaling) automatically. ``mixed_bfloat16`` is
    the choice for CPUs and TPUs and needs no loss scaling. Models should keep their final logits in float32.

    Args:
        name: ``"float32"``, ``"mixed_bfloat16"`` or ``"mixed_float16"``.

    Returns:
        The global dtype policy now in force.

    Example:
        >>> set_precision("mixed_bfloat16").compute_dtype
        'bfloat16'
        >>> set_precision("float32").name
        'float32'
    """
    check_choice("name", name, PRECISIONS)
    keras.config.set_dtype_policy(name)
    return keras.config.dtype_policy()


def enable_determinism(seed: int) -> None:
    """Seed every random generator and make TensorFlow ops deterministic.

    Calls ``keras.utils.set_random_seed`` (Python, NumPy, TensorFlow and Keras's global seed) and
    ``tf.config.experimental.enable_op_determinism``. Together with a data order that depends only on
    ``(seed, epoch)`` (see :func:`llm_tf.training.seeded_epoch_batches`), two runs with the same seed give
    identical results. Op determinism is process-wide and can slow some GPU ops down.

    Args:
        seed: a non-negative integer.

    Returns:
        None.

    Example:
        >>> enable_determinism(1234)  # doctest: +SKIP
    """
    check_non_negative_int("seed", seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def bfloat16_emulation_warning(precision: str, cpu_features, on_accelerator: bool = False) -> str | None:
    """The warning for ``mixed_bfloat16`` computed on a CPU without bfloat16 instructions (else None).

    Args:
        precision: the requested precision (one of :data:`PRECISIONS`).
        cpu_features: the CPU's flags (``cpu_description()["cpu_features"]``); None when unknown (no warning).
        on_accelerator: whether the computation runs on a GPU/TPU (then no warning).

    Returns:
        The message, naming the missing flags, or None.

    Example:
        >>> bfloat16_emulation_warning("mixed_bfloat16", ["avx2", "fma"]) is not None
        True
        >>> bfloat16_emulation_warning("mixed_bfloat16", ["avx512f", "avx512_bf16"]) is None
        True
    """
    if precision != "mixed_bfloat16" or on_accelerator or cpu_features is None:
        return None
    if any(flag in cpu_features for flag in NATIVE_BFLOAT16_CPU_FEATURES):
        return None
    return (f"precision='mixed_bfloat16' on a CPU without bfloat16 instructions (none of "
            f"{' / '.join(NATIVE_BFLOAT16_CPU_FEATURES)} in its flags: {' '.join(cpu_features) or 'none'}): "
            "bfloat16 is emulated through float32 here, so it runs slower than float32 (the translation step: "
            "0.78x float32's speed on an AVX2-only AMD EPYC, benchmarks/translation_precision.py); use "
            "precision 'float32' on this machine.")
