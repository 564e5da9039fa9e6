"""Learning-rate schedules, AdamW with weight-decay exclusions, and precision policies."""

import math

import keras
import numpy as np
import pytest

from llm_tf import training


def _rate(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_warmup_cosine_values():
    schedule = training.WarmupCosineDecay(1e-3, warmup_steps=10, total_steps=110, final_learning_rate=1e-5)
    # Linear warmup: step s uses peak * (s + 1) / warmup.
    assert _rate(schedule, 0) == pytest.approx(1e-4)
    assert _rate(schedule, 4) == pytest.approx(5e-4)
    assert _rate(schedule, 9) == pytest.approx(1e-3)
    # Cosine: peak at the end of warmup, halfway point at the midpoint, final rate at and after the end.
    assert _rate(schedule, 10) == pytest.approx(1e-3)
    assert _rate(schedule, 60) == pytest.approx((1e-3 + 1e-5) / 2)
    assert _rate(schedule, 110) == pytest.approx(1e-5)
    assert _rate(schedule, 500) == pytest.approx(1e-5)
    decay = [_rate(schedule, step) for step in range(10, 111)]
    assert all(a >= b for a, b in zip(decay, decay[1:]))


def test_warmup_cosine_without_warmup_starts_at_peak():
    schedule = training.WarmupCosineDecay(2e-3, warmup_steps=0, total_steps=100)
    assert _rate(schedule, 0) == pytest.approx(2e-3)
    assert _rate(schedule, 100) == pytest.approx(0.0, abs=1e-12)


def test_noam_schedule_matches_the_paper_formula():
    schedule = training.NoamSchedule(d_model=512, warmup_steps=4000)
    for step in (0, 99, 3999, 4000, 20000):
        n = step + 1
        expected = 512**-0.5 * min(n**-0.5, n * 4000**-1.5)
        assert _rate(schedule, step) == pytest.approx(expected, rel=1e-5)
    peak_step = max(range(0, 8000, 50), key=lambda s: _rate(schedule, s))
    assert abs(peak_step - 4000) <= 50
    assert _rate(training.NoamSchedule(512, 4000, scale=2.0), 10) == pytest.approx(2 * _rate(schedule, 10))


@pytest.mark.parametrize(
    "schedule",
    [training.WarmupCosineDecay(3e-4, 5, 50, 1e-6), training.NoamSchedule(128, 100, scale=0.5)],
    ids=["warmup_cosine", "noam"],
)
def test_schedules_serialize(schedule):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    assert _rate(restored, 7) == pytest.approx(_rate(schedule, 7))


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"peak_learning_rate": -1.0, "warmup_steps": 1, "total_steps": 2}, "peak_learning_rate"),
        (
            {"peak_learning_rate": 1e-3, "warmup_steps": 10, "total_steps": 5},
            "total_steps must be >= warmup_steps",
        ),
        (
            {"peak_learning_rate": 1e-3, "warmup_steps": 1, "total_steps": 5, "final_learning_rate": 1.0},
            "final_learning_rate",
        ),
        ({"peak_learning_rate": float("nan"), "warmup_steps": 1, "total_steps": 5}, "finite"),
    ],
)
def test_warmup_cosine_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        training.WarmupCosineDecay(**arguments)


def test_noam_rejects_bad_arguments():
    with pytest.raises(ValueError, match="d_model"):
        training.NoamSchedule(d_model=0)


def _transformer_like_model():
    token_ids = keras.Input((4,), dtype="int32", name="token_ids")
    hidden = keras.layers.Embedding(10, 6, name="token_embedding")(token_ids)
    hidden = keras.layers.Dense(6, name="attention_output")(hidden)
    hidden = keras.layers.LayerNormalization(name="block_norm")(hidden)
    outputs = keras.layers.Dense(10, name="lm_head")(hidden)
    return keras.Model(token_ids, outputs)


def test_weight_decay_exclusions_by_path_and_rank():
    model = _transformer_like_model()
    optimizer = training.build_optimizer(1e-3, weight_decay=0.1)
    excluded = optimizer.excluded_variable_paths(model.trainable_variables)
    assert sorted(excluded) == sorted(
        [
            "token_embedding/embeddings",  # by name (a matrix, but an embedding)
            "attention_output/bias",
            "block_norm/gamma",
            "block_norm/beta",
            "lm_head/bias",  # by rank
        ]
    )
    decayed = sorted(set(v.path for v in model.trainable_variables) - set(excluded))
    assert decayed == ["attention_output/kernel", "lm_head/kernel"]
    # Patterns alone, without the rank rule.
    by_name_only = training.build_optimizer(
        1e-3, exclude_from_weight_decay=("embedding",), exclude_vectors=False
    )
    assert by_name_only.excluded_variable_paths(model.trainable_variables) == ["token_embedding/embeddings"]


def test_weight_decay_applies_only_to_included_variables():
    model = _transformer_like_model()
    learning_rate, weight_decay = 0.1, 0.5
    optimizer = training.build_optimizer(learning_rate, weight_decay=weight_decay, global_clipnorm=None)
    variables = model.trainable_variables
    for variable in variables:
        variable.assign(np.ones(variable.shape, dtype="float32"))
    # Zero gradients: Adam's own update is zero, only decoupled weight decay moves a variable.
    optimizer.apply([keras.ops.zeros(v.shape) for v in variables], variables)
    excluded = set(optimizer.excluded_variable_paths(variables))
    for variable in variables:
        value = keras.ops.convert_to_numpy(variable)
        expected = 1.0 if variable.path in excluded else 1.0 - learning_rate * weight_decay
        np.testing.assert_allclose(value, expected, rtol=1e-6, err_msg=variable.path)


def test_optimizer_settings_and_validation():
    optimizer = training.build_optimizer(
        training.WarmupCosineDecay(1e-3, 10, 100), weight_decay=0.01, beta_2=0.98, global_clipnorm=1.0
    )
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.global_clipnorm == 1.0 and optimizer.clipnorm is None
    assert optimizer.beta_2 == 0.98 and optimizer.weight_decay == 0.01
    with pytest.raises(ValueError, match="global_clipnorm"):
        training.build_optimizer(1e-3, global_clipnorm=1.0, clipnorm=1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        training.build_optimizer(1e-3, weight_decay=-0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        training.build_optimizer("fast")
    with pytest.raises(ValueError, match="beta_1"):
        training.build_optimizer(1e-3, beta_1=1.5)
    with pytest.raises(ValueError, match="regular expressions"):
        training.SelectiveAdamW(exclude_from_weight_decay_patterns=["("])


def test_global_clipnorm_clips_the_global_gradient_norm():
    # Adam's first update hides the gradient scale, so check the clipping step on the gradients themselves.
    optimizer = training.build_optimizer(1e-3, global_clipnorm=1.0)
    gradients = [keras.ops.ones((3,)) * 10.0, keras.ops.ones((4,)) * 10.0]
    clipped = optimizer._clip_gradients(gradients)
    norm = math.sqrt(sum(float(keras.ops.sum(g * g)) for g in clipped))
    assert norm == pytest.approx(1.0, rel=1e-5)


def test_saved_model_reloads_with_optimizer_and_schedule(tmp_path):
    model = _transformer_like_model()
    schedule = training.WarmupCosineDecay(1e-3, warmup_steps=2, total_steps=20)
    model.compile(
        optimizer=training.build_optimizer(
            schedule, weight_decay=0.02, exclude_from_weight_decay=("embedding", "lm_head")
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    tokens = np.random.RandomState(0).randint(0, 10, size=(8, 4))
    model.fit(tokens, tokens, batch_size=4, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored.optimizer, training.SelectiveAdamW)
    assert isinstance(restored.optimizer._learning_rate, training.WarmupCosineDecay)
    assert restored.optimizer._learning_rate.get_config() == schedule.get_config()
    assert int(restored.optimizer.iterations) == 2
    assert restored.optimizer.exclude_from_weight_decay_patterns == ("embedding", "lm_head")
    assert float(restored.optimizer.learning_rate) == pytest.approx(float(model.optimizer.learning_rate))
    for original, loaded in zip(model.optimizer.variables, restored.optimizer.variables):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(original), keras.ops.convert_to_numpy(loaded)
        )


@pytest.fixture
def restore_dtype_policy():
    yield
    keras.config.set_dtype_policy("float32")


def test_set_precision_policies(restore_dtype_policy):
    policy = training.set_precision("mixed_bfloat16")
    assert policy.compute_dtype == "bfloat16" and policy.variable_dtype == "float32"
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    assert layer.compute_dtype == "bfloat16" and layer.kernel.dtype == "float32"
    assert training.set_precision("float32").name == "float32"
    with pytest.raises(ValueError, match="name='float16'"):
        training.set_precision("float16")


def test_mixed_float16_uses_loss_scaling(restore_dtype_policy):
    training.set_precision("mixed_float16")
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(1, dtype="float32")(keras.layers.Dense(4)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=training.build_optimizer(1e-2), loss="mse")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.optimizer.inner_optimizer, training.SelectiveAdamW)
    history = model.fit(
        np.ones((8, 3), "float32"), np.zeros((8, 1), "float32"), batch_size=4, epochs=2, verbose=0
    )
    assert all(math.isfinite(loss) for loss in history.history["loss"])
    assert history.history["loss"][-1] < history.history["loss"][0]
