"""Run directories, results, callbacks (CSV, checkpoints, NaN stop), backups and data streams, in-process."""

import argparse
import dataclasses
import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from llm_tf import training

FEATURES, EXAMPLES, BATCH = 3, 16, 4
STEPS_PER_EPOCH = EXAMPLES // BATCH


def _regression_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((FEATURES,), name="features")
    hidden = keras.layers.Dense(4, activation="tanh", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(hidden))
    model.compile(optimizer=training.build_optimizer(1e-2, weight_decay=0.0), loss="mse", metrics=["mae"])
    return model


def _batches_for_epoch(nan_at=None):
    """epoch -> batches of a fixed regression problem; nan_at=(epoch, batch) puts a NaN into that batch."""
    rng = np.random.RandomState(0)
    features = rng.normal(size=(EXAMPLES, FEATURES)).astype("float32")
    targets = features.sum(axis=1, keepdims=True).astype("float32")

    def batches(epoch):
        x = features.copy()
        if nan_at is not None and nan_at[0] == epoch:
            x[nan_at[1] * BATCH] = np.nan
        examples = tf.data.Dataset.from_tensor_slices((x, targets))
        return examples.batch(BATCH)

    return batches


def _weights_of(path):
    return keras.models.load_model(path).get_weights()


@dataclasses.dataclass
class _Config:
    learning_rate: float = 1e-3
    layers: tuple = (2, 3)


def test_create_run_dir_writes_config(tmp_path):
    run = training.create_run_dir("demo", root=str(tmp_path), config=_Config())
    assert os.path.dirname(run.path) == str(tmp_path / "demo") and not run.resumed
    assert run.read_config() == {"learning_rate": 1e-3, "layers": [2, 3]}
    other = training.create_run_dir("demo", root=str(tmp_path), config=_Config())
    assert other.path != run.path  # same second: a suffix keeps them apart
    named = training.create_run_dir("demo", root=str(tmp_path), config={}, run_name="fixed")
    assert named.path == str(tmp_path / "demo" / "fixed")
    with pytest.raises(ValueError, match="experiment="):
        training.create_run_dir("../escape", root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="resume="):
        training.create_run_dir("demo", root=str(tmp_path), resume=str(tmp_path / "missing"))


def test_auto_resume_picks_the_unfinished_run_with_the_same_config(tmp_path):
    root = str(tmp_path)
    interrupted = training.create_run_dir("exp", root=root, config={"lr": 1})
    os.makedirs(interrupted.backup_dir)
    with open(interrupted.backup_file, "wb") as file:
        file.write(b"placeholder")
    finished = training.create_run_dir("exp", root=root, config={"lr": 1}, resume="never")
    os.makedirs(finished.backup_dir)
    with open(finished.backup_file, "wb") as file:
        file.write(b"placeholder")
    training.write_results(finished, {"loss": 1.0}, wall_time=1.0)
    resumed = training.create_run_dir("exp", root=root, config={"lr": 1})
    assert resumed.resumed and resumed.path == interrupted.path
    assert not training.create_run_dir("exp", root=root, config={"lr": 2}).resumed
    assert not training.create_run_dir("exp", root=root, config={"lr": 1}, resume="never").resumed
    explicit = training.create_run_dir("exp", root=root, resume=finished.path)
    assert explicit.resumed and explicit.path == finished.path


def test_write_results_records_machine_and_versions(tmp_path):
    run = training.create_run_dir("demo", root=str(tmp_path), config={})
    path = training.write_results(
        run,
        {"val_accuracy": np.float32(0.5), "loss": float("nan")},
        wall_time=12.5,
        extra={"status": "completed"},
    )
    with open(path) as file:
        results = json.load(file)
    assert results["metrics"] == {"val_accuracy": 0.5, "loss": "nan"}
    assert results["wall_time_s"] == 12.5 and results["status"] == "completed"
    assert results["libraries"]["tensorflow"] == tf.__version__
    assert results["libraries"]["keras"] == keras.__version__
    assert results["machine"]["cpu_count"] == os.cpu_count()
    with pytest.raises(ValueError, match="wall_time"):
        training.write_results(run, {}, wall_time=-1)


def test_train_writes_the_whole_run_directory(tmp_path):
    model = _regression_model()
    run = training.create_run_dir("demo", root=str(tmp_path), config={"epochs": 3})
    batches = _batches_for_epoch()
    result = training.train(
        model,
        batches,
        batches(0),
        epochs=3,
        run_dir=run,
        log_every_n_steps=2,
        backup_every_n_steps=3,
        verbose=0,
    )
    assert result.status == "completed" and result.resumed_from is None
    assert len(result.history["loss"]) == 3 and result.history["loss"][-1] < result.history["loss"][0]
    with open(run.metrics_csv) as file:
        header, *rows = file.read().strip().splitlines()
    assert header.split(",")[:3] == ["epoch", "global_step", "elapsed_s"]
    assert {"loss", "mae", "val_loss", "val_mae", "learning_rate"} <= set(header.split(","))
    assert [row.split(",")[:2] for row in rows] == [["0", "4"], ["1", "8"], ["2", "12"]]
    with open(run.metrics_steps_csv) as file:
        step_rows = file.read().strip().splitlines()[1:]
    assert [int(row.split(",")[2]) for row in step_rows] == [2, 4, 6, 8, 10, 12]
    np.testing.assert_array_equal(_weights_of(run.last_model)[0], model.get_weights()[0])
    with open(run.best_model + ".json") as file:
        best = json.load(file)
    assert best["monitor"] == "val_loss" and best["best"] == pytest.approx(min(result.history["val_loss"]))
    assert os.path.isfile(run.curves_png) and os.path.isfile(run.file("training_curves_steps.png"))
    with open(run.results_json) as file:
        results = json.load(file)
    assert results["status"] == "completed" and results["metrics"]["loss"] == pytest.approx(
        result.history["loss"][-1]
    )
    assert not os.path.exists(run.backup_dir)  # deleted after a completed run
    if training.callbacks.tensorboard_available():
        events = [name for _, _, names in os.walk(run.tensorboard_dir) for name in names]
        assert any(name.startswith("events.out.tfevents") for name in events)
    assert not [name for name in os.listdir(run.path) if ".tmp-" in name]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoints(tmp_path, capfd):
    model = _regression_model()
    run = training.create_run_dir("nan", root=str(tmp_path), config={})
    result = training.train(
        model,
        _batches_for_epoch(nan_at=(1, 2)),
        epochs=3,
        run_dir=run,
        backup_every_n_steps=2,
        verbose=0,
        plot=False,
    )
    assert result.status == "stopped_non_finite_loss"
    message = capfd.readouterr().err
    assert "loss became nan at epoch 2, batch 3" in message and run.last_model in message
    assert not all(np.isfinite(w).all() for w in model.get_weights())  # the NaN really reached the weights
    last = _weights_of(run.last_model)
    assert all(np.isfinite(w).all() for w in last)
    # The backup kept the state from before the NaN step (epoch 2, after its 2nd batch), ready to resume from.
    metadata, arrays = training.read_backup(run.backup_file)
    assert (metadata["epoch"], metadata["step_in_epoch"]) == (1, 2)
    assert all(np.isfinite(value).all() for key, value in arrays.items() if key.startswith("model/"))
    with open(run.results_json) as file:
        results = json.load(file)
    assert results["status"] == "stopped_non_finite_loss" and results["non_finite_loss"]["epoch"] == 1
    with open(run.metrics_csv) as file:
        assert len(file.read().strip().splitlines()) == 1 + 2  # epoch 1 and the stopped epoch 2


class _Crash(keras.callbacks.Callback):
    def __init__(self, at_batch_of_epoch):
        super().__init__()
        self.epoch, self.batch = at_batch_of_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch):
            raise RuntimeError("simulated crash")


@pytest.fixture(scope="module")
def crashed_run_template(tmp_path_factory):
    """A run interrupted in epoch 2 (after a backup at its 2nd batch); tests get copies of it."""
    run = training.create_run_dir("crash", root=str(tmp_path_factory.mktemp("crash")), config={})
    with pytest.raises(RuntimeError, match="simulated crash"):
        training.train(
            _regression_model(),
            _batches_for_epoch(),
            epochs=3,
            run_dir=run,
            backup_every_n_steps=2,
            callbacks=[_Crash((1, 2))],
            verbose=0,
            plot=False,
            tensorboard=False,
        )
    assert os.path.isfile(run.backup_file)
    return run


@pytest.fixture
def crashed_run(crashed_run_template, tmp_path):
    copy = tmp_path / "crashed_run"
    shutil.copytree(crashed_run_template.path, copy)
    return training.RunDirectory(str(copy), resumed=True)


def test_resume_in_process_matches_an_uninterrupted_run(crashed_run, tmp_path):
    reference = _regression_model()
    training.train(reference, _batches_for_epoch(), epochs=3, verbose=0)
    model = _regression_model(seed=99)  # different initial weights: everything must come from the backup
    result = training.train(
        model,
        _batches_for_epoch(),
        epochs=3,
        run_dir=crashed_run,
        backup_every_n_steps=2,
        verbose=0,
        plot=False,
        tensorboard=False,
    )
    assert result.resumed_from == {"epoch": 1, "step_in_epoch": 2, "global_step": 6}
    for expected, actual in zip(reference.get_weights(), model.get_weights()):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)
    assert int(model.optimizer.iterations) == 3 * STEPS_PER_EPOCH
    assert len(result.history["loss"]) == 3


class _CrashAtEpochEnd(keras.callbacks.Callback):
    """Raises at the end of one epoch, after the standard callbacks (backup, logs, checkpoints) have run."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("simulated crash")


def test_a_run_killed_after_its_last_backup_is_finished_without_training_again(tmp_path):
    run = training.create_run_dir("late_crash", root=str(tmp_path), config={})
    with pytest.raises(RuntimeError, match="simulated crash"):
        training.train(_regression_model(), _batches_for_epoch(), epochs=3, run_dir=run, backup_every_n_steps=2,
                       callbacks=[_CrashAtEpochEnd(2)], verbose=0, plot=False, tensorboard=False)
    assert os.path.isfile(run.backup_file) and not os.path.isfile(run.results_json)
    os.remove(run.last_model)  # as if the kill had come between the backup and the last checkpoint's save
    reference = _regression_model()
    training.train(reference, _batches_for_epoch(), epochs=3, verbose=0)
    model = _regression_model(seed=99)  # different initial weights: everything must come from the backup
    result = training.train(model, _batches_for_epoch(), epochs=3, run_dir=run, backup_every_n_steps=2, verbose=0,
                            plot=False, tensorboard=False)
    assert result.status == "completed"
    assert result.resumed_from == {"epoch": 3, "step_in_epoch": 0, "global_step": 3 * STEPS_PER_EPOCH}
    assert int(model.optimizer.iterations) == 3 * STEPS_PER_EPOCH  # nothing was trained again
    for expected, actual, saved in zip(reference.get_weights(), model.get_weights(), _weights_of(run.last_model)):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)
        np.testing.assert_allclose(saved, expected, rtol=0, atol=1e-6)
    assert len(result.history["loss"]) == 3 and result.wall_time_s > 0
    with open(run.results_json) as file:
        results = json.load(file)
    assert results["status"] == "completed" and results["wall_time_s"] == result.wall_time_s
    assert not os.path.exists(run.backup_file)  # as after a completed fit


def test_truncated_backup_is_a_clear_error(crashed_run):
    size = os.path.getsize(crashed_run.backup_file)
    with open(crashed_run.backup_file, "r+b") as file:
        file.truncate(size // 2)
    with pytest.raises(training.CheckpointError, match="corrupt or truncated") as error:
        training.train(_regression_model(), _batches_for_epoch(), epochs=3, run_dir=crashed_run, verbose=0)
    assert crashed_run.backup_file in str(error.value) and "refusing to silently restart" in str(error.value)
    assert os.path.getsize(crashed_run.backup_file) == size // 2  # left alone for inspection


def test_corrupted_backup_bytes_are_a_clear_error(crashed_run):
    with open(crashed_run.backup_file, "r+b") as file:
        file.seek(200)
        chunk = bytearray(file.read(64))
        file.seek(200)
        file.write(bytes(b ^ 0xFF for b in chunk))
    with pytest.raises(training.CheckpointError, match="corrupt or truncated"):
        training.ResumableBackup(crashed_run.backup_dir).resume_position()


def test_backup_of_another_model_is_a_clear_error(crashed_run):
    inputs = keras.Input((FEATURES,))
    other = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    other.compile(optimizer=training.build_optimizer(1e-2), loss="mse", metrics=["mae"])
    with pytest.raises(training.CheckpointError, match="model variables but the model has"):
        training.train(other, _batches_for_epoch(), epochs=3, run_dir=crashed_run, verbose=0)
    with pytest.raises(FileNotFoundError, match="backup checkpoint not found"):
        training.read_backup(os.path.join(crashed_run.path, "missing.npz"))


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = str(tmp_path / "state.bin")
    training.atomic_write_bytes(path, b"good")

    def failing_writer(file):
        file.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        training.atomic_write(path, failing_writer)
    with open(path, "rb") as file:
        assert file.read() == b"good"
    assert os.listdir(tmp_path) == ["state.bin"]


def test_best_checkpoint_remembers_its_best_value(tmp_path):
    model = _regression_model()
    path = str(tmp_path / "best.keras")
    first = training.SafeModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    first.set_model(model)
    first.on_epoch_end(0, {"loss": 1.0, "val_loss": 0.5})
    assert os.path.isfile(path)
    modified = os.path.getmtime(path)
    second = training.SafeModelCheckpoint(
        path, monitor="val_loss", save_best_only=True
    )  # e.g. after a restart
    second.set_model(model)
    assert second.best == 0.5
    second.on_epoch_end(1, {"loss": 1.0, "val_loss": 0.7})
    assert os.path.getmtime(path) == modified
    second.on_epoch_end(2, {"loss": float("nan"), "val_loss": 0.1})
    assert os.path.getmtime(path) == modified and second.best == 0.5
    with pytest.raises(ValueError, match=".keras"):
        training.SafeModelCheckpoint(str(tmp_path / "model.h5"))


def test_csv_logger_adds_columns_that_appear_later(tmp_path):
    logger = training.MetricsCSVLogger(str(tmp_path / "metrics.csv"))
    logger.set_model(_regression_model())
    logger.on_train_begin()
    logger.on_epoch_begin(0)
    logger.on_epoch_end(0, {"loss": 2.0})
    logger.on_epoch_begin(1)
    logger.on_epoch_end(1, {"loss": 1.0, "val_loss": 1.5})
    with open(tmp_path / "metrics.csv") as file:
        lines = file.read().strip().splitlines()
    columns = lines[0].split(",")
    assert "val_loss" in columns and len(lines) == 3
    assert lines[1].split(",")[columns.index("val_loss")] == ""
    assert logger.history()["loss"] == [2.0, 1.0]


def test_build_for_training_creates_metric_and_optimizer_variables():
    model = _regression_model()
    assert not model.optimizer.built
    training.build_for_training(model, _batches_for_epoch()(0))
    assert model.optimizer.built and len(model.metrics_variables) == 4  # loss and mae: total + count each
    uncompiled = keras.Sequential([keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="compiled"):
        training.build_for_training(uncompiled, _batches_for_epoch()(0))


def test_epoch_order_depends_only_on_seed_and_epoch():
    examples = tf.data.Dataset.range(20)
    batches = training.seeded_epoch_batches(examples, batch_size=5, seed=7)

    def order(epoch):
        return [int(i) for batch in batches(epoch) for i in batch]

    epoch_one = order(1)
    assert order(0) != epoch_one and sorted(epoch_one) == list(range(20))
    assert order(1) == epoch_one  # not influenced by how many passes were made before
    assert order(0) != [
        int(i) for batch in training.seeded_epoch_batches(examples, 5, seed=8)(0) for i in batch
    ]
    with pytest.raises(ValueError, match="batch_size"):
        training.seeded_epoch_batches(examples, batch_size=0, seed=1)
    with pytest.raises(ValueError, match="shuffle_buffer"):
        training.seeded_epoch_batches(examples.filter(lambda i: i > 2), 5, seed=1)


def test_resumable_dataset_skips_consumed_batches():
    def batches(epoch):
        return tf.data.Dataset.range(4).map(lambda i: i + 10 * epoch)

    stream = training.resumable_dataset(batches, epochs=3, steps_per_epoch=4, start_epoch=1, skip_batches=3)
    assert [int(x) for x in stream] == [13, 20, 21, 22, 23]
    assert int(stream.cardinality()) == 5
    with pytest.raises(ValueError, match="skip_batches"):
        training.resumable_dataset(batches, epochs=3, steps_per_epoch=4, skip_batches=4)
    with pytest.raises(ValueError, match="fewer than steps_per_epoch"):
        training.resumable_dataset(batches, epochs=2, steps_per_epoch=5)
    with pytest.raises(ValueError, match="unknown"):
        training.infer_steps_per_epoch(tf.data.Dataset.range(4).filter(lambda i: i > 0))


def test_training_arguments():
    parser = training.add_training_arguments(argparse.ArgumentParser())
    args = parser.parse_args(
        [
            "--strategy",
            "mirrored",
            "--num-cpu-devices",
            "2",
            "--precision",
            "mixed_bfloat16",
            "--seed",
            "5",
            "--backup-every-n-steps",
            "100",
        ]
    )
    assert (args.strategy, args.num_cpu_devices, args.precision, args.seed) == (
        "mirrored",
        2,
        "mixed_bfloat16",
        5,
    )
    assert args.backup_every_n_steps == 100 and args.resume == "auto" and args.runs_root == "runs"
    with pytest.raises(SystemExit):
        parser.parse_args(["--precision", "float8"])


def test_backups_must_fall_on_execution_boundaries(tmp_path):
    model = _regression_model()
    model.compile(optimizer=training.build_optimizer(1e-2), loss="mse", steps_per_execution=2)
    run = training.create_run_dir("spe", root=str(tmp_path), config={})
    with pytest.raises(ValueError, match="backup_every_n_steps=3 must be a multiple"):
        training.train(model, _batches_for_epoch(), epochs=1, run_dir=run, backup_every_n_steps=3, verbose=0)
