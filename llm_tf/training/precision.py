"""Numeric precision and reproducibility switches shared by every experiment."""

from __future__ import annotations

import keras
import tensorflow as tf

from llm_tf.checks import check_choice, check_non_negative_int

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


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
