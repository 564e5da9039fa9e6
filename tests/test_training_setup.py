"""llm_tf.training: setup_training with plain keyword arguments, the EMA optimizer, XLA-by-device selection,
the CPU description and the warning for emulated bfloat16."""

import warnings

import keras
import pytest
import tensorflow as tf

from llm_tf import training
from llm_tf.training import loop

# Two processors of a /proc/cpuinfo: only the first block counts.
CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 23
model\t\t: 1
model name\t: AMD EPYC
flags\t\t: fpu sse2 fma avx avx2 bmi2

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Another CPU
flags\t\t: avx512f avx512_bf16 amx_bf16
"""


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
    assert training.has_accelerator() is has_accelerator
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


def test_cpu_description_reads_the_first_processor(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    info = training.cpu_description(str(path))
    assert info == {"cpu_model": "AMD EPYC", "cpu_vendor": "AuthenticAMD", "cpu_family": 23,
                    "cpu_model_number": 1, "cpu_features": ["avx2", "fma"]}
    assert training.cpu_summary(info) == "AMD EPYC (AuthenticAMD, family 23 model 1; avx2 fma)"
    missing = training.cpu_description(str(tmp_path / "absent"))
    assert missing["cpu_model"] is None and missing["cpu_features"] is None
    assert set(training.machine_info()) >= set(info)  # every run's results.json records them


def test_bfloat16_emulation_warning_names_the_missing_instructions():
    message = training.bfloat16_emulation_warning("mixed_bfloat16", ["avx2", "fma"])
    assert "avx512_bf16" in message and "amx_bf16" in message and "avx2 fma" in message
    assert training.bfloat16_emulation_warning("mixed_bfloat16", ["avx512f", "amx_bf16"]) is None
    assert training.bfloat16_emulation_warning("float32", ["avx2"]) is None
    assert training.bfloat16_emulation_warning("mixed_bfloat16", None) is None  # unknown CPU: no guess
    assert training.bfloat16_emulation_warning("mixed_bfloat16", ["avx2"], on_accelerator=True) is None


@pytest.mark.parametrize("features, warns", [(["avx2", "fma"], True), (["avx512f", "avx512_bf16"], False)])
def test_setup_training_warns_when_bfloat16_would_be_emulated(monkeypatch, features, warns):
    monkeypatch.setattr(loop, "cpu_description", lambda: {"cpu_features": features})
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            training.setup_training(strategy="default", precision="mixed_bfloat16", deterministic=False)
        assert keras.config.dtype_policy().name == "mixed_bfloat16"  # a warning, not a refusal
    finally:
        keras.config.set_dtype_policy("float32")
    assert any("without bfloat16 instructions" in str(w.message) for w in caught) is warns


def test_optimizer_update_flag_sets_the_rule_every_build_optimizer_follows():
    import argparse

    from llm_tf.tasks.classification import ClassificationConfig
    from llm_tf.tasks.cli import add_common_arguments, flag_overrides

    parser = add_common_arguments(argparse.ArgumentParser(), ["full"])
    assert parser.parse_args([]).optimizer_update == "fused"
    values = vars(parser.parse_args(["--optimizer-update", "per-variable"]))
    # The flag lands in the task's config (so config.json records it and resume compares it).
    assert flag_overrides(values, ClassificationConfig)["optimizer_update"] == "per-variable"
    with pytest.raises(SystemExit):
        parser.parse_args(["--optimizer-update", "lazy"])
    try:
        training.setup_training(strategy="default", seed=0, deterministic=False, optimizer_update="per-variable")
        assert training.optimizer_update() == "per-variable"
        assert not training.build_optimizer(1e-3).fused
        assert training.build_optimizer(1e-3, fused=True).fused  # an explicit argument wins
        training.setup_training(strategy="default", seed=0, deterministic=False)
        assert training.optimizer_update() == "fused" and training.build_optimizer(1e-3).fused
        with pytest.raises(ValueError, match="optimizer_update.*sparse"):
            training.setup_training(optimizer_update="sparse")
        with pytest.raises(ValueError, match="optimizer_update.*'lazy'"):
            training.set_optimizer_update("lazy")
        assert training.optimizer_update() == "fused"  # a rejected name changes nothing
    finally:
        training.set_optimizer_update("fused")
