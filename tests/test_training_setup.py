"""llm_tf.training: setup_training with plain keyword arguments, the EMA optimizer, XLA-by-device selection."""

import pytest
import tensorflow as tf

from llm_tf import training


def test_setup_training_takes_plain_keyword_arguments():
    strategy = training.setup_training(strategy="default", precision="float32", seed=3, deterministic=False)
    assert strategy.num_replicas_in_sync == 1
    first = tf.random.uniform([3]).numpy()
    training.setup_training(strategy="default", seed=3, deterministic=False)
    assert (tf.random.uniform([3]).numpy() == first).all()  # the seed was applied
    with pytest.raises(ValueError, match="precision"):
        training.setup_training(precision="float8")
    with pytest.raises(ValueError, match="seed"):
        training.setup_training(seed="0")


def test_build_optimizer_with_a_weight_average():
    plain = training.build_optimizer(1e-3, weight_decay=0.01)
    averaged = training.build_optimizer(1e-3, weight_decay=0.01, ema_momentum=0.99)
    assert not plain.use_ema
    assert averaged.use_ema and averaged.ema_momentum == pytest.approx(0.99)
    assert averaged.exclude_vectors and averaged.global_clipnorm == 1.0
    with pytest.raises(ValueError, match="ema_momentum"):
        training.build_optimizer(1e-3, ema_momentum=1.0)


def test_resolve_jit_compile_auto_follows_the_devices():
    has_accelerator = bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
    assert training.resolve_jit_compile("auto") is has_accelerator
    assert training.resolve_jit_compile(True) is True and training.resolve_jit_compile(False) is False
    with pytest.raises(ValueError, match="jit_compile"):
        training.resolve_jit_compile("yes")


def test_public_names_load_lazily_from_their_modules():
    """``llm_tf.training`` loads names on first use; each is its module's object, never a submodule."""
    import importlib
    import types

    for name in training.__all__:
        value = getattr(training, name)
        assert not isinstance(value, types.ModuleType), name
        assert value is getattr(importlib.import_module(training._NAME_TO_MODULE[name]), name)
    assert callable(training.train)
    assert training.resume.BACKUP_FILE_NAME
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        training.not_a_name  # noqa: B018
