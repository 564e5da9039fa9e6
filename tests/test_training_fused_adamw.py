"""``SelectiveAdamW(fused=True)``: Keras's AdamW arithmetic over a few flat buffers (llm_tf/training/optimizers.py).

The fused update must give the weights Keras's per-variable update gives, step after step, with everything the
library's recipes use (schedules, global clipping, weight-decay exclusions, per-variable learning-rate factors),
and keep what Keras keeps for a variable that got no gradient.
"""

import keras
import numpy as np
import pytest

from llm_tf import training
from llm_tf.models import GPT, GPTConfig
from llm_tf.training.optimizers import densify_gradients

STEPS = 40


class KerasAdamWOnDenseGradients(keras.optimizers.AdamW):
    """Keras's own AdamW fed dense gradients (see `test_a_repeated_tokens_sparse_gradient_is_summed_first`)."""

    def apply(self, grads, trainable_variables=None):
        return super().apply(densify_gradients(grads), trainable_variables)


class PerVariableAdamWOnDenseGradients(training.SelectiveAdamW):
    def apply(self, grads, trainable_variables=None):
        return super().apply(densify_gradients(grads), trainable_variables)


def _gpt():
    keras.backend.clear_session()  # the same layer names (and so variable paths) in every model built here
    keras.utils.set_random_seed(0)
    model = GPT(GPTConfig(vocabulary_size=40, max_sequence_length=12, hidden_dim=16, num_layers=1, num_heads=2,
                          intermediate_dim=32, dropout=0.0))
    model(np.zeros((1, 11), "int32"))
    return model


def _train(model, optimizer, jit_compile):
    tokens = np.random.default_rng(0).integers(0, 40, size=(STEPS * 4, 12)).astype("int32")
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile)
    model.fit(tokens[:, :-1], tokens[:, 1:], batch_size=4, epochs=1, shuffle=False, verbose=0)
    return [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]


def _schedule():
    return training.WarmupCosineDecay(3e-3, warmup_steps=5, total_steps=STEPS)


def test_fused_update_equals_keras_adamw_after_many_steps_with_xla():
    # Keras's own AdamW, decaying every variable, against the fused update with no exclusions (both on dense
    # gradients: see test_a_repeated_tokens_sparse_gradient_is_summed_first).
    reference = _train(_gpt(), KerasAdamWOnDenseGradients(_schedule(), weight_decay=0.1, global_clipnorm=1.0),
                       jit_compile=True)
    fused = training.SelectiveAdamW(learning_rate=_schedule(), weight_decay=0.1, global_clipnorm=1.0,
                                    exclude_from_weight_decay_patterns=(), exclude_vectors=False, fused=True)
    weights = _train(_gpt(), fused, jit_compile=True)
    assert fused.fused_active
    moved = max(float(np.abs(after - before).max()) for after, before in zip(reference, _initial_weights()))
    assert moved > 0.02  # the weights did move: the comparison below is not between two untrained models
    for got, expected in zip(weights, reference):
        np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


def _initial_weights():
    return [keras.ops.convert_to_numpy(v) for v in _gpt().trainable_variables]


def test_fused_update_equals_the_per_variable_one_with_exclusions_and_learning_rate_factors_without_xla():
    variables = _gpt().trainable_variables
    paths = [v.path for v in variables]
    excluded = training.build_optimizer(1e-3).excluded_variable_paths(variables)
    decayed = [path for path in paths if path not in excluded]
    # Factors on decayed and on excluded variables: the decay keeps the base rate, the Adam step takes the factor.
    factors = {decayed[0]: 0.5, decayed[-1]: 2.0, excluded[-1]: 0.25}

    settings = dict(learning_rate=_schedule(), weight_decay=0.1, global_clipnorm=1.0,
                    learning_rate_multipliers=factors)
    per_variable = PerVariableAdamWOnDenseGradients(**settings)
    fused = training.SelectiveAdamW(fused=True, **settings)
    reference = _train(_gpt(), per_variable, jit_compile=False)
    weights = _train(_gpt(), fused, jit_compile=False)
    # Groups: (decayed or not) x (factor 1, 0.5, 2, 0.25) as they occur.
    assert fused.fused_active and not per_variable.fused_active
    # The state: the iteration counter and two moments per weight, or per group.
    assert len(per_variable.variables) == 1 + 2 * len(weights)
    assert len(fused.variables) == 1 + 2 * len(fused._fused_groups)
    assert {(group.decays, group.factor) for group in fused._fused_groups} == {
        (True, 1.0), (False, 1.0), (True, 0.5), (True, 2.0), (False, 0.25)}
    for got, expected, path in zip(weights, reference, paths):
        np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0, err_msg=path)


def test_a_variable_without_a_gradient_keeps_its_value_and_moments():
    def run(fused):
        variables = [keras.Variable(np.full(shape, 0.5, "float32"), name=f"w{i}")
                     for i, shape in enumerate([(3, 2), (4,), (2, 2)])]
        optimizer = training.build_optimizer(0.1, weight_decay=0.2, global_clipnorm=None, fused=fused)
        rng = np.random.default_rng(0)
        gradients = [rng.normal(size=v.shape).astype("float32") for v in variables]
        optimizer.apply(gradients, variables)
        optimizer.apply([gradients[0], None, gradients[2]], variables)  # w1 gets no gradient this step
        after_skip = keras.ops.convert_to_numpy(variables[1])
        optimizer.apply([g * -2.0 for g in gradients], variables)
        return after_skip, [keras.ops.convert_to_numpy(v) for v in variables]

    skipped, reference = run(False)
    skipped_fused, weights = run(True)
    np.testing.assert_array_equal(skipped_fused, skipped)  # untouched by the step that had no gradient for it
    for got, expected in zip(weights, reference):
        np.testing.assert_allclose(got, expected, atol=1e-7, rtol=0)


def test_a_repeated_tokens_sparse_gradient_is_summed_first():
    if keras.config.backend() != "tensorflow":
        pytest.skip("tf.IndexedSlices are TensorFlow's")
    import tensorflow as tf

    # Token 1 looked up twice in a batch: two gradient rows of ones. Adam's second moment after one step is
    # (1 - beta_2) * (1 + 1)^2 = 0.004 (the fused optimizer); Keras's per-variable update squares the rows before
    # summing them: (1 - beta_2) * (1^2 + 1^2) = 0.002. Its global-norm clipping does the same.
    def moments_of_row_1(fused, global_clipnorm=None):
        table = keras.Variable(np.zeros((4, 2), "float32"))
        gradient = tf.IndexedSlices(tf.ones((2, 2)), tf.constant([1, 1]), tf.constant([4, 2]))
        optimizer = training.build_optimizer(0.1, weight_decay=0.0, global_clipnorm=global_clipnorm, fused=fused)
        optimizer.apply([gradient], [table])
        return [keras.ops.convert_to_numpy([v for v in optimizer.variables if name in v.path][0]).reshape(4, 2)[1]
                for name in ("momentum", "velocity")]

    np.testing.assert_allclose(moments_of_row_1(True)[1], [0.004, 0.004], rtol=1e-6)
    np.testing.assert_allclose(moments_of_row_1(False)[1], [0.002, 0.002], rtol=1e-6)
    # Global-norm clipping at 1: the true gradient [[0, 0], [2, 2], [0, 0], [0, 0]] has norm sqrt(8), so the
    # first moment's row is 0.1 * 2 / sqrt(8); measured on the rows separately the norm would be 2 (row: 0.1).
    np.testing.assert_allclose(moments_of_row_1(True, global_clipnorm=1.0)[0], [0.1 / np.sqrt(2)] * 2, rtol=1e-6)
    np.testing.assert_allclose(moments_of_row_1(False, global_clipnorm=1.0)[0], [0.1, 0.1], rtol=1e-6)


def test_fused_optimizer_saves_and_reloads_with_its_state(tmp_path):
    model = _gpt()
    _train(model, training.build_optimizer(_schedule(), fused=True), jit_compile=False)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert restored.optimizer.fused and restored.optimizer.fused_active
    assert len(restored.optimizer.variables) == len(model.optimizer.variables)
    for original, loaded in zip(model.optimizer.variables, restored.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(original), keras.ops.convert_to_numpy(loaded))


def test_fused_needs_plain_variables_and_no_amsgrad():
    with pytest.raises(ValueError, match="amsgrad"):
        training.SelectiveAdamW(fused=True, amsgrad=True)
    if keras.config.backend() != "tensorflow":
        return
    import tensorflow as tf

    # Mirrored variables (even over one device) are updated through the strategy, one by one.
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        variable = keras.Variable(np.ones((2, 2), "float32"))
        optimizer = training.build_optimizer(0.1, fused=True)
        optimizer.build([variable])
    assert optimizer.fused and not optimizer.fused_active
    plain = training.build_optimizer(0.1, fused=True)
    plain.build([keras.Variable(np.ones((2, 2), "float32"))])
    assert plain.fused_active
