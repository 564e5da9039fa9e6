"""``train``: ``model.fit`` with a run directory, the standard callbacks and exact crash-safe resume.

Also the command-line switches every experiment shares (``--strategy``, ``--precision``, ``--seed``, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
import warnings

import keras
import tensorflow as tf

from llm_tf.checks import check_choice, check_int, check_positive_int, require_tensorflow_backend
from llm_tf.training.callbacks import (
    MetricsCSVLogger,
    SafeModelCheckpoint,
    StopOnNonFiniteLoss,
    standard_callbacks,
)
from llm_tf.training.data import infer_steps_per_epoch, resumable_dataset
from llm_tf.training.optimizers import OPTIMIZER_UPDATES, set_optimizer_update
from llm_tf.training.precision import (
    PRECISIONS,
    bfloat16_emulation_warning,
    enable_determinism,
    set_precision,
)
from llm_tf.training.resume import ResumableBackup
from llm_tf.training.run_dir import RunDirectory, cpu_description, write_results
from llm_tf.training.strategy import (
    STRATEGY_NAMES,
    get_strategy,
    has_accelerator,
    is_chief,
    prepare_model_for_strategy,
)


def build_for_training(model: keras.Model, data) -> keras.Model:
    """Create every variable ``fit`` will use (model, compiled metrics and loss, optimizer) without training.

    TensorFlow backend only (``tf.data``, ``tf.distribute``): raises ValueError under another Keras backend.

    Keras builds these lazily at the first training step; a backup can only be restored into them once they
    exist. Uses the batch structure only (``element_spec``); no data is consumed.

    Args:
        model: a compiled model.
        data: a ``tf.data.Dataset`` of batches, or its ``element_spec``.

    Returns:
        The same model.

    Example:
        >>> build_for_training(model, train_batches)  # doctest: +SKIP
    """
    require_tensorflow_backend("build_for_training (tf.data, tf.distribute)")
    if getattr(model, "optimizer", None) is None:
        raise ValueError(f"model={model.name!r} must be compiled before build_for_training")
    spec = data.element_spec if isinstance(data, tf.data.Dataset) else data
    with model.distribute_strategy.scope():
        # Keras's own (private) build routine, the one fit uses under a distribution strategy.
        model._symbolic_build(data_batch=spec)
    return model


@dataclasses.dataclass
class TrainingResult:
    """What :func:`train` returns.

    Args:
        history: per-epoch metrics of the whole run, name -> list (epochs before a resume included when the
            run has a directory).
        status: ``"completed"``, ``"stopped_non_finite_loss"`` or ``"stopped_early"``.
        wall_time_s: training wall time, summed over resumed segments.
        run_dir: the run directory, or None.
        resumed_from: ``{"epoch", "step_in_epoch", "global_step"}`` when resumed from a backup, else None.
        final_metrics: the last epoch's metrics.

    Returns:
        A dataclass.

    Example:
        >>> result = train(model, batches, epochs=3)  # doctest: +SKIP
        >>> result.status  # doctest: +SKIP
        'completed'
    """

    history: dict
    status: str
    wall_time_s: float
    run_dir: RunDirectory | None = None
    resumed_from: dict | None = None
    final_metrics: dict = dataclasses.field(default_factory=dict)


def _plot_curves(run_dir: RunDirectory, logger: MetricsCSVLogger | None) -> list[str]:
    """Write the per-epoch (and per-step) training-curve PNGs from the CSV logger's rows."""
    try:
        from llm_tf.plots import plot_training_curves
    except ImportError:
        warnings.warn("llm_tf.plots is not available; the training-curve PNGs are not written", stacklevel=3)
        return []
    if logger is None:
        return []
    written = []
    tables = [(logger.epochs_table, "epoch", run_dir.curves_png)]
    if logger.steps_table is not None:
        tables.append((logger.steps_table, "step", run_dir.file("training_curves_steps.png")))
    for table, index_name, png in tables:
        if not table.rows:
            continue
        index_column = "epoch" if index_name == "epoch" else "global_step"
        curves = {index_name: [row.get(index_column) for row in table.rows]}
        for name, values in table.as_history().items():
            numbers = [math.nan if value is None else float(value) for value in values]
            if any(math.isfinite(number) for number in numbers):
                curves[name] = numbers
        if len(curves) > 1:
            title = f"{run_dir.path} ({'per epoch' if index_name == 'epoch' else 'per step'})"
            written.append(plot_training_curves(curves, png, title=title))
    return written


def train(
    model: keras.Model,
    train_data,
    val_data=None,
    epochs: int = 1,
    run_dir: RunDirectory | None = None,
    steps_per_epoch: int | None = None,
    validation_steps: int | None = None,
    callbacks=None,
    monitor: str | None = None,
    mode: str = "min",
    log_every_n_steps: int = 50,
    backup_every_n_steps: int | None = None,
    tensorboard: bool = True,
    plot: bool = True,
    verbose="auto",
    strategy: tf.distribute.Strategy | None = None,
    extra_results: dict | None = None,
) -> TrainingResult:
    """Train with ``model.fit``; with a run directory, log, checkpoint, back up, resume and write results.

    TensorFlow backend only (``tf.data``, ``tf.distribute``): raises ValueError under another Keras backend.

    With ``run_dir`` the standard callbacks are used (:func:`llm_tf.training.standard_callbacks`): metrics
    CSVs, TensorBoard, best/last ``.keras``, a NaN/Inf stop and a resumable backup every
    ``backup_every_n_steps``. If the run directory holds a backup, training resumes at the exact next batch.
    At the end ``results.json`` and the training-curve PNG are written; a run whose backup says every epoch
    is done (its process ended after the last backup, before these files) trains nothing: the model is restored
    from the backup and the run is finished (checkpoints, ``results.json``, the backup deleted). Exact resume
    needs ``train_data`` as a function ``epoch -> dataset`` whose order depends only on the epoch (see
    :func:`llm_tf.training.seeded_epoch_batches`); a plain dataset is used unchanged for every epoch.

    Args:
        model: a compiled model (built under ``strategy.scope()`` when distributed).
        train_data: a ``tf.data.Dataset`` of batches, or a function ``epoch -> tf.data.Dataset``.
        val_data: optional validation batches.
        epochs: total epochs of the run.
        run_dir: a :class:`RunDirectory` (see :func:`llm_tf.training.create_run_dir`), or None for no files.
        steps_per_epoch: batches per epoch (default: the cardinality of epoch 0's dataset).
        validation_steps: batches of ``val_data`` per evaluation (default: all).
        callbacks: extra Keras callbacks (run after the standard ones).
        monitor: metric for the best model (default ``"val_loss"``, or ``"loss"`` without validation data).
        mode: ``"min"`` or ``"max"`` for ``monitor``.
        log_every_n_steps: interval of step rows in ``metrics_steps.csv`` and TensorBoard step summaries.
        backup_every_n_steps: backup interval (None: end of each epoch only).
        tensorboard: write TensorBoard logs.
        plot: write ``training_curves.png`` with ``llm_tf.plots.plot_training_curves``.
        verbose: passed to ``fit`` (progress bars stay on by default).
        strategy: the distribution strategy (default: the model's).
        extra_results: more fields for ``results.json``.

    Returns:
        A :class:`TrainingResult`.

    Example:
        >>> run = create_run_dir("demo", config={"lr": 1e-3})  # doctest: +SKIP
        >>> result = train(model, seeded_epoch_batches(examples, 32, seed=0), val_batches, epochs=5,
        ...                run_dir=run, backup_every_n_steps=100)  # doctest: +SKIP
    """
    require_tensorflow_backend("train (tf.data, tf.distribute)")
    check_positive_int("epochs", epochs)
    if run_dir is not None and not isinstance(run_dir, RunDirectory):
        raise ValueError(f"run_dir must be a RunDirectory or None; got run_dir={run_dir!r}")
    if isinstance(train_data, tf.data.Dataset):
        dataset_fn = lambda epoch: train_data  # noqa: E731 -- same pipeline every epoch
    elif callable(train_data):
        dataset_fn = train_data
    else:
        raise ValueError(
            "train_data must be a tf.data.Dataset or a function epoch -> tf.data.Dataset; got "
            f"train_data={type(train_data).__name__}"
        )
    strategy = strategy or model.distribute_strategy
    first_epoch_data = dataset_fn(0)
    if steps_per_epoch is None:
        steps_per_epoch = infer_steps_per_epoch(first_epoch_data)
    steps_per_execution = int(getattr(model, "steps_per_execution", 1) or 1)
    if steps_per_execution > 1:
        # Backups and the end of a resumed epoch fall on execution boundaries only when these divide evenly.
        for name, value in (
            ("steps_per_epoch", steps_per_epoch),
            ("backup_every_n_steps", backup_every_n_steps),
        ):
            if value is not None and value % steps_per_execution:
                raise ValueError(
                    f"{name}={value} must be a multiple of the model's "
                    f"steps_per_execution={steps_per_execution}"
                )
    prepare_model_for_strategy(model, strategy)
    build_for_training(model, first_epoch_data)

    all_callbacks = []
    if run_dir is not None:
        monitor = monitor or ("val_loss" if val_data is not None else "loss")
        all_callbacks = standard_callbacks(
            run_dir,
            monitor=monitor,
            mode=mode,
            log_every_n_steps=log_every_n_steps,
            backup_every_n_steps=backup_every_n_steps,
            tensorboard=tensorboard,
            strategy=strategy,
        )
    all_callbacks += list(callbacks or [])
    backup = next((cb for cb in all_callbacks if isinstance(cb, ResumableBackup)), None)
    start_epoch, skip_batches = backup.resume_position() if backup is not None else (0, 0)
    logger = next((cb for cb in all_callbacks if isinstance(cb, MetricsCSVLogger)), None)
    guard = next((cb for cb in all_callbacks if isinstance(cb, StopOnNonFiniteLoss)), None)
    finishing_only = start_epoch >= epochs
    if finishing_only:
        # The process that trained the last epoch ended after its backup and before the end of this function
        # (results.json, the backup's deletion): train nothing, finish the run from the backup and the logs.
        print(f"llm_tf: nothing to train, the backup says all {epochs} epochs are done; finishing the run",
              flush=True)
        backup.restore_model_state(model)
        if logger is not None:
            logger.load()
        rows = logger.epochs_table.rows if logger is not None else []
        last_epoch_logs = rows[-1] if rows and rows[-1].get("epoch") == epochs - 1 else {}
        for callback in all_callbacks:
            if isinstance(callback, SafeModelCheckpoint):
                # The kill may have come between the backup and these saves (they follow it at an epoch's end):
                # repeat them. "last" is rewritten with the same weights, "best" only if that epoch improved it.
                callback.set_model(model)
                callback.on_epoch_end(epochs - 1, last_epoch_logs)
        if isinstance(model.optimizer, keras.optimizers.Optimizer):
            model.optimizer.finalize_variable_values(model.trainable_variables)  # as fit does at its end
        history = logger.history() if logger is not None else {}
        wall_time, status = backup.elapsed_before_resume, "completed"
    else:
        stream = resumable_dataset(dataset_fn, epochs, steps_per_epoch, start_epoch, skip_batches)
        started = time.time()
        keras_history = model.fit(
            stream,
            epochs=epochs,
            initial_epoch=start_epoch,
            steps_per_epoch=steps_per_epoch,
            validation_data=val_data,
            validation_steps=validation_steps,
            callbacks=all_callbacks,
            verbose=verbose,
            shuffle=False,  # the order is dataset_fn's (a function of the epoch), never Keras's
        )
        wall_time = time.time() - started
        if backup is not None:
            wall_time += backup.elapsed_before_resume
        history = logger.history() if logger is not None else dict(keras_history.history)
        if guard is not None and guard.stopped is not None:
            status = "stopped_non_finite_loss"
        elif model.stop_training:
            status = "stopped_early"
        else:
            status = "completed"
    final_metrics = {
        name: values[-1]
        for name, values in history.items()
        if values and isinstance(values[-1], (int, float)) and name not in ("elapsed_s",)
    }
    final_metrics = {k: (v if math.isfinite(v) else str(v)) for k, v in final_metrics.items()}
    resumed_from = backup.restored_position if backup is not None else None
    if run_dir is not None and is_chief(strategy):
        extra = {
            "status": status,
            "epochs": epochs,
            "steps_per_epoch": steps_per_epoch,
            "resumed_from": resumed_from,
            "strategy": type(strategy).__name__,
            "num_replicas": strategy.num_replicas_in_sync,
            "precision": keras.config.dtype_policy().name,
            "non_finite_loss": guard.stopped if guard is not None else None,
        }
        extra.update(extra_results or {})
        if plot:
            extra["curve_pngs"] = _plot_curves(run_dir, logger)
        write_results(run_dir, final_metrics, wall_time, extra=extra)
    if finishing_only and backup.delete_checkpoint:
        backup.delete_backup(strategy)  # what the backup does at the end of a completed fit
    return TrainingResult(
        history=history,
        status=status,
        wall_time_s=wall_time,
        run_dir=run_dir,
        resumed_from=resumed_from,
        final_metrics=final_metrics,
    )


def add_training_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the switches every experiment shares to an ``argparse`` parser.

    ``--strategy``, ``--num-cpu-devices``, ``--precision``, ``--optimizer-update``, ``--seed``, ``--runs-root``,
    ``--resume``, ``--log-every-n-steps``, ``--backup-every-n-steps``. Pass the parsed values to :func:`setup_training`.

    Args:
        parser: the experiment's parser.

    Returns:
        The same parser.

    Example:
        >>> parser = add_training_arguments(argparse.ArgumentParser())
        >>> args = parser.parse_args(["--precision", "mixed_bfloat16"])
        >>> args.precision, args.strategy
        ('mixed_bfloat16', 'auto')
    """
    group = parser.add_argument_group("training")
    group.add_argument("--strategy", default="auto", choices=STRATEGY_NAMES, help="distribution strategy")
    group.add_argument(
        "--num-cpu-devices",
        type=int,
        default=None,
        help="split the CPU into N logical devices (test data parallelism without GPUs)",
    )
    group.add_argument("--precision", default="float32", choices=PRECISIONS, help="numeric precision")
    group.add_argument(
        "--optimizer-update",
        default="fused",
        choices=OPTIMIZER_UPDATES,
        help="AdamW's update: 'fused' (a few flat buffers) or 'per-variable' (Keras's own, the rule of the results "
        "made before 2026-12-07)",
    )
    group.add_argument("--seed", type=int, default=0, help="random seed (weights, dropout, data order)")
    group.add_argument("--runs-root", default="runs", help="root of the run directories")
    group.add_argument(
        "--resume",
        default="auto",
        help="'auto' (continue an interrupted run with the same config), 'never', or a run directory",
    )
    group.add_argument("--log-every-n-steps", type=int, default=50, help="step interval of metrics_steps.csv")
    group.add_argument(
        "--backup-every-n-steps",
        type=int,
        default=None,
        help="write a resumable backup every N steps (default: every epoch)",
    )
    return parser


def setup_training(
    strategy: str = "auto",
    num_cpu_devices: int | None = None,
    precision: str = "float32",
    seed: int = 0,
    deterministic: bool = True,
    optimizer_update: str = "fused",
) -> tf.distribute.Strategy:
    """Apply the shared switches, in the order TensorFlow requires: strategy, seed/determinism, precision.

    TensorFlow backend only (``tf.distribute``): raises ValueError under another Keras backend.

    Call it at program start, before any other TensorFlow op. A script passes its parsed flags as plain
    values, e.g. ``setup_training(strategy=args.strategy, seed=args.seed, ...)``.

    Args:
        strategy: a name of :data:`STRATEGY_NAMES` (see :func:`get_strategy`).
        num_cpu_devices: split the CPU into this many logical devices (None: leave it).
        precision: one of :data:`PRECISIONS`.
        seed: the global seed (Python, NumPy, TensorFlow).
        deterministic: also enable TensorFlow op determinism (bit-exact reruns; Keras then runs without XLA).
        optimizer_update: the AdamW update every ``build_optimizer`` call of the process then uses,
            ``"fused"`` or ``"per-variable"`` (see :func:`llm_tf.training.set_optimizer_update`).

    Warns when ``mixed_bfloat16`` would run on a CPU without bfloat16 instructions (see
    :func:`llm_tf.training.precision.bfloat16_emulation_warning`).

    Returns:
        The strategy to build the model under.

    Example:
        >>> strategy = setup_training(strategy="auto", precision="float32", seed=0)  # doctest: +SKIP
    """
    require_tensorflow_backend("setup_training (tf.distribute)")
    check_int("seed", seed)
    check_choice("precision", precision, PRECISIONS)
    check_choice("optimizer_update", optimizer_update, OPTIMIZER_UPDATES)
    distribution = get_strategy(strategy, num_cpu_devices=num_cpu_devices)
    if deterministic:
        enable_determinism(seed)
    else:
        keras.utils.set_random_seed(seed)
    set_precision(precision)
    set_optimizer_update(optimizer_update)
    if precision == "mixed_bfloat16":  # only then is /proc/cpuinfo worth reading
        message = bfloat16_emulation_warning(precision, cpu_description()["cpu_features"], has_accelerator())
        if message:
            warnings.warn(message, stacklevel=2)
    return distribution
