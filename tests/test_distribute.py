"""Data parallelism: MirroredStrategy over 2 logical CPUs and 2 MultiWorkerMirroredStrategy workers on
127.0.0.1 must train exactly like one device with the same global batch (losses and weights within 1e-5).

The strategies run in subprocesses (logical devices and TF_CONFIG must be set before TensorFlow starts); the
three processes run concurrently and are always killed at the end.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from llm_tf import training
from llm_tf.training import strategy as strategy_module
from tests._training_scripts.processes import Script, free_ports, kill_all, wait_all

TOLERANCE = 1e-5
EXAMPLES, GLOBAL_BATCH, EPOCHS = 32, 8, 2  # as in tests/_training_scripts/distributed_run.py


@pytest.fixture(scope="module")
def distributed_runs(tmp_path_factory):
    """Run the local (single + mirrored) process and the two workers concurrently; load what they recorded."""
    base = tmp_path_factory.mktemp("distributed")
    out_dir, runs_root = base / "out", base / "runs"
    ports = ",".join(map(str, free_ports(2)))
    common = ["--out-dir", out_dir, "--runs-root", runs_root]
    scripts = []
    try:
        scripts.append(
            Script("distributed_run.py", ["--mode", "local", "--cpu-devices", 2, *common], base / "local.log")
        )
        for index in range(2):
            scripts.append(
                Script(
                    "distributed_run.py",
                    ["--mode", "worker", "--ports", ports, "--worker-index", index, *common],
                    base / f"worker{index}.log",
                )
            )
        wait_all(scripts, timeout=150)
    finally:
        kill_all(scripts)
    records = {}
    for name in ("single", "mirrored", "worker0", "worker1"):
        with open(out_dir / f"{name}.json") as file:
            records[name] = json.load(file)
        with np.load(out_dir / f"{name}.npz") as weights:
            records[name]["weights"] = [weights[key] for key in weights.files]
    return records


def _max_weight_difference(a, b):
    assert len(a) == len(b)
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def _max_loss_difference(a, b):
    assert len(a) == len(b) == EPOCHS * EXAMPLES // GLOBAL_BATCH
    return max(abs(x - y) for x, y in zip(a, b))


@pytest.mark.slow
def test_mirrored_two_cpu_devices_matches_one_device(distributed_runs):
    single, mirrored = distributed_runs["single"], distributed_runs["mirrored"]
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    assert mirrored["strategy"] == "MirroredStrategy"
    loss_difference = _max_loss_difference(single["step_losses"], mirrored["step_losses"])
    weight_difference = _max_weight_difference(single["weights"], mirrored["weights"])
    print(
        f"mirrored vs one device: max |loss diff| = {loss_difference:.3g}, "
        f"max |weight diff| = {weight_difference:.3g}"
    )
    assert loss_difference <= TOLERANCE
    assert weight_difference <= TOLERANCE
    assert np.allclose(single["history"]["loss"], mirrored["history"]["loss"], atol=TOLERANCE, rtol=0)
    # Training moved the weights, so matching weights is not trivially true.
    assert single["step_losses"][0] - single["step_losses"][-1] > 0.05


@pytest.mark.slow
def test_two_workers_match_each_other_and_single_process(distributed_runs):
    single, first, second = (distributed_runs[name] for name in ("single", "worker0", "worker1"))
    assert first["strategy"] == second["strategy"] == "CollectiveAllReduceStrategy"
    assert first["replicas"] == second["replicas"] == 2
    assert first["status"] == second["status"] == "completed"
    worker_difference = _max_weight_difference(first["weights"], second["weights"])
    loss_difference = _max_loss_difference(single["step_losses"], first["step_losses"])
    weight_difference = _max_weight_difference(single["weights"], first["weights"])
    print(
        f"2 workers: worker0 vs worker1 max |weight diff| = {worker_difference:.3g}; vs single process: "
        f"max |loss diff| = {loss_difference:.3g}, max |weight diff| = {weight_difference:.3g}"
    )
    assert worker_difference == 0.0
    assert first["step_losses"] == second["step_losses"]
    assert loss_difference <= TOLERANCE
    assert weight_difference <= TOLERANCE
    # evaluate() works too (it goes through the same multi-worker fix) and agrees with the single process.
    assert abs(first["evaluate"]["loss"] - single["evaluate"]["loss"]) <= TOLERANCE


@pytest.mark.slow
def test_two_workers_see_each_example_once_per_epoch(distributed_runs):
    steps_per_epoch = EXAMPLES // GLOBAL_BATCH
    first, second = distributed_runs["worker0"]["ids_per_step"], distributed_runs["worker1"]["ids_per_step"]
    assert len(first) == len(second) == EPOCHS * steps_per_epoch
    for epoch in range(EPOCHS):
        steps = slice(epoch * steps_per_epoch, (epoch + 1) * steps_per_epoch)
        ids_first = [i for batch in first[steps] for i in batch]
        ids_second = [i for batch in second[steps] for i in batch]
        assert len(ids_first) == len(ids_second) == EXAMPLES // 2  # each worker: half of every global batch
        assert sorted(ids_first + ids_second) == list(range(EXAMPLES))  # all examples, none twice


@pytest.mark.slow
def test_only_the_chief_writes_the_shared_run_directory(distributed_runs):
    first, second = distributed_runs["worker0"], distributed_runs["worker1"]
    assert first["is_chief"] and not second["is_chief"]
    run_dir = first["run_dir"]
    with open(os.path.join(run_dir, "results.json")) as file:
        results = json.load(file)
    assert results["status"] == "completed" and results["num_replicas"] == 2
    metrics = training.MetricsCSVLogger(os.path.join(run_dir, "metrics.csv"))
    metrics.epochs_table.load()
    assert [row["epoch"] for row in metrics.epochs_table.rows] == list(range(EPOCHS))
    assert np.allclose(metrics.history()["loss"], first["history"]["loss"], atol=1e-7, rtol=0)
    # The non-chief computed the same epoch metrics without writing them.
    assert np.allclose(second["history"]["loss"], first["history"]["loss"], atol=1e-7, rtol=0)
    assert os.path.isfile(os.path.join(run_dir, "last.keras"))
    assert not os.path.exists(os.path.join(run_dir, "backup"))  # removed after the completed run


def test_prepare_model_for_strategy_leaves_other_models_and_strategies_alone():
    def small_model():
        inputs = keras.Input((3,))
        return keras.Model(inputs, keras.layers.Dense(2)(inputs))

    prepared, plain = small_model(), small_model()
    # Not multi-worker: nothing to fix, the model is returned untouched.
    assert training.prepare_model_for_strategy(prepared) is prepared
    for model in (prepared, plain):
        for name in ("train_step", "test_step", "_maybe_symbolic_build"):
            assert name not in vars(model)
    assert not hasattr(prepared, strategy_module._FIX_MARKER)
    with pytest.raises(ValueError, match="keras.Model"):
        training.prepare_model_for_strategy("not a model")


def test_prepare_model_for_mirrored_replaces_only_the_symbolic_build():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert training.prepare_model_for_strategy(model, strategy) is model
    assert "_maybe_symbolic_build" in vars(model)
    assert "train_step" not in vars(model) and "test_step" not in vars(model)
    with pytest.raises(ValueError, match="scope"):
        training.prepare_model_for_strategy(model, tf.distribute.MirroredStrategy(["/cpu:0"]))


def test_multi_worker_fix_changes_only_the_given_instance(monkeypatch):
    """Apply the fix with the multi-worker check forced on: only that instance changes, the class does not."""

    def small_model():
        inputs = keras.Input((3,))
        return keras.Model(inputs, keras.layers.Dense(2)(inputs))

    strategy = tf.distribute.get_strategy()
    fixed, plain = small_model(), small_model()
    class_methods = {
        name: getattr(keras.Model, name) for name in ("train_step", "test_step", "_maybe_symbolic_build")
    }
    monkeypatch.setattr(strategy_module, "is_multi_worker", lambda strategy=None: True)
    # The model must come from the strategy's scope; pretend it did.
    monkeypatch.setattr(fixed, "_distribute_strategy", strategy, raising=False)
    assert training.prepare_model_for_strategy(fixed, strategy) is fixed
    assert training.prepare_model_for_strategy(fixed, strategy) is fixed  # idempotent
    for name in class_methods:
        assert name in vars(fixed)
        assert name not in vars(plain)
        assert getattr(keras.Model, name) is class_methods[name]
    # The wrapped step returns shape-(1,) logs; the plain one keeps scalars.
    assert fixed.train_step.__name__ == "train_step"
    logs = strategy_module._scalars_as_vectors({"loss": tf.constant(1.5), "matrix": tf.ones((2, 2))})
    assert logs["loss"].shape == (1,) and logs["matrix"].shape == (2, 2)
    # A model from outside the strategy's scope is refused with a clear message.
    with pytest.raises(ValueError, match="strategy.scope"):
        training.prepare_model_for_strategy(plain, strategy)


def test_choose_strategy_name(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    for hint in strategy_module._TPU_HINT_VARIABLES:
        monkeypatch.delenv(hint, raising=False)
    expected_local = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "default"
    assert training.choose_strategy_name("auto") == expected_local
    if not tf.config.list_physical_devices("GPU"):
        assert training.choose_strategy_name("auto", num_cpu_devices=2) == "mirrored"
    assert training.choose_strategy_name("auto", tpu=True) == "tpu"
    assert training.choose_strategy_name("one_device") == "one_device"
    cluster = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    assert training.choose_strategy_name("auto") == "multi_worker"
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        training.choose_strategy_name("auto")
    with pytest.raises(ValueError, match="name='gpu_cluster'"):
        training.get_strategy("gpu_cluster")


def test_get_strategy_local_choices():
    assert training.get_strategy("default") is tf.distribute.get_strategy()
    one_device = training.get_strategy("one_device")
    assert isinstance(one_device, tf.distribute.OneDeviceStrategy)
    assert one_device.num_replicas_in_sync == 1
    assert not training.is_multi_worker(one_device) and training.is_chief(one_device)


def test_cpu_devices_cannot_change_after_tensorflow_started():
    tf.constant(0)  # make sure the runtime is initialised
    current = len(tf.config.list_logical_devices("CPU"))
    assert training.configure_cpu_devices(current)  # the existing split is accepted
    with pytest.raises(ValueError, match=f"num_cpu_devices={current + 1}"):
        training.configure_cpu_devices(current + 1)
    with pytest.raises(ValueError, match="positive integer"):
        training.configure_cpu_devices(0)
