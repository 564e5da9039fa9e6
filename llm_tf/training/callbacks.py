"""Callbacks for a run directory: CSV metrics (per epoch and every N steps), atomic best/last ``.keras``
checkpoints, a NaN/Inf-loss stop that keeps the last good checkpoint, TensorBoard, and the resumable backup.

Multi-worker safe: every worker executes the same callbacks (reading some variables is a collective operation
there), but only the chief writes files; other workers write model files to a temporary directory and delete
them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import sys
import tempfile
import time
import warnings

import keras
import numpy as np

from llm_tf.checks import check_choice, check_positive_int
from llm_tf.training.resume import ResumableBackup, atomic_write_bytes, variable_to_numpy
from llm_tf.training.strategy import is_chief

_MODES = ("min", "max")


def _as_float(value):
    try:
        return float(np.asarray(value))
    except (TypeError, ValueError):
        return None


def current_learning_rate(model: keras.Model) -> float | None:
    """The optimizer's learning rate at its current step (schedules evaluated), or None without an optimizer.

    Args:
        model: a compiled model.

    Returns:
        The learning rate as a float.

    Example:
        >>> current_learning_rate(model)  # doctest: +SKIP
        0.0005
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    try:
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except (AttributeError, TypeError, ValueError):
        return None


def _weights_finite(model: keras.Model) -> bool:
    for weight in model.weights:
        value = variable_to_numpy(weight)
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            return False
    return True


class _CsvTable:
    """Rows of one CSV file kept in memory; appends lines, rewrites the file atomically when columns grow."""

    def __init__(self, path, leading_columns):
        self.path = path
        self.leading_columns = list(leading_columns)
        self.columns = list(leading_columns)
        self.rows: list[dict] = []

    def load(self):
        self.rows = []
        if not os.path.isfile(self.path):
            return
        with open(self.path, newline="", encoding="utf-8") as file:
            reader = csv.reader(file)
            header = next(reader, None)
            if not header:
                return
            for values in reader:
                if len(values) != len(header):
                    continue  # a line cut short by a crash
                self.rows.append({key: _parse_cell(value) for key, value in zip(header, values)})
        self.columns = list(header)

    def keep(self, predicate):
        self.rows = [row for row in self.rows if predicate(row)]

    def _serialize(self, rows, header):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if header:
            writer.writerow(self.columns)
        for row in rows:
            writer.writerow(["" if row.get(column) is None else row.get(column) for column in self.columns])
        return buffer.getvalue()

    def rewrite(self):
        atomic_write_bytes(self.path, self._serialize(self.rows, header=True).encode("utf-8"))

    def append(self, row, write=True):
        self.rows.append(row)
        new_columns = [key for key in row if key not in self.columns]
        self.columns += sorted(new_columns)
        if not write:
            return
        if new_columns or not os.path.isfile(self.path):
            self.rewrite()
            return
        with open(self.path, "a", encoding="utf-8", newline="") as file:
            file.write(self._serialize([row], header=False))
            file.flush()

    def as_history(self) -> dict[str, list]:
        names = [column for column in self.columns if column not in self.leading_columns]
        return {name: [row.get(name) for row in self.rows] for name in names}


def _parse_cell(value):
    if value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number


class MetricsCSVLogger(keras.callbacks.Callback):
    """Log metrics to ``metrics.csv`` (one row per epoch) and ``metrics_steps.csv`` (one row every N steps).

    Epoch rows: ``epoch, global_step, elapsed_s, learning_rate`` and every metric Keras reports (training and
    validation). Step rows: ``epoch, step_in_epoch, global_step, elapsed_s, learning_rate`` and the running
    training metrics. Columns that appear later (e.g. validation every k epochs) are added by rewriting the
    file. When ``backup`` resumed a run, rows written after the backup's position are dropped first, so the
    files read as if the run had never been interrupted. The epoch CSV is the format
    ``llm_tf.plots.plot_training_curves`` reads.

    Args:
        epoch_csv: path of the per-epoch CSV.
        steps_csv: path of the per-step CSV (None disables it).
        every_n_steps: step-row interval.
        backup: the run's :class:`ResumableBackup`, placed before this callback in the callback list.

    Returns:
        A Keras callback; ``history()`` gives the per-epoch metrics of the whole run (resumed parts included).

    Example:
        >>> logger = MetricsCSVLogger("metrics.csv", "metrics_steps.csv", every_n_steps=50)  # doctest: +SKIP
    """

    def __init__(self, epoch_csv, steps_csv=None, every_n_steps=50, backup: ResumableBackup | None = None):
        super().__init__()
        if steps_csv is not None:
            check_positive_int("every_n_steps", every_n_steps)
        self.epochs_table = _CsvTable(str(epoch_csv), ["epoch", "global_step", "elapsed_s"])
        self.steps_table = (
            _CsvTable(str(steps_csv), ["epoch", "step_in_epoch", "global_step", "elapsed_s"])
            if steps_csv
            else None
        )
        self.every_n_steps = every_n_steps
        self.backup = backup
        self._write = True

    def history(self) -> dict[str, list]:
        """Per-epoch metrics of the whole run, name -> list (one value per epoch)."""
        return self.epochs_table.as_history()

    def _tables(self):
        return [self.epochs_table] + ([self.steps_table] if self.steps_table else [])

    def load(self) -> None:
        """Read the rows already in the CSV files (a resumed or finished run's), as ``fit`` does at its start."""
        for table in self._tables():
            table.load()

    def on_train_begin(self, logs=None):
        self._write = is_chief(self.model.distribute_strategy)
        self._start = time.time()
        self._global_step = 0
        self._resume_epoch, self._resume_skip, self._first_epoch = None, 0, True
        self._elapsed_before = 0.0
        self.load()
        position = self.backup.restored_position if self.backup is not None else None
        if position is not None:
            self._global_step = position["global_step"]
            self._resume_epoch, self._resume_skip = position["epoch"], position["step_in_epoch"]
            self._elapsed_before = self.backup.elapsed_before_resume
            self.epochs_table.keep(
                lambda row: isinstance(row.get("epoch"), int) and row["epoch"] < position["epoch"]
            )
            if self.steps_table:
                self.steps_table.keep(
                    lambda row: (
                        isinstance(row.get("global_step"), int)
                        and row["global_step"] <= position["global_step"]
                    )
                )
        elif self.epochs_table.rows:
            last = self.epochs_table.rows[-1]
            self._global_step = last.get("global_step") or 0
            self._elapsed_before = last.get("elapsed_s") or 0.0
        if self._write:
            for table in self._tables():
                if table.rows or os.path.exists(table.path):
                    table.rewrite()

    def on_epoch_begin(self, epoch, logs=None):
        self._offset = self._resume_skip if (self._first_epoch and epoch == self._resume_epoch) else 0
        self._global_at_epoch_begin = self._global_step
        self._epoch = epoch

    def _elapsed(self):
        return round(self._elapsed_before + time.time() - self._start, 3)

    def on_train_batch_end(self, batch, logs=None):
        previous = self._global_step
        self._global_step = self._global_at_epoch_begin + batch + 1
        if (
            self.steps_table is None
            or self._global_step // self.every_n_steps == previous // self.every_n_steps
        ):
            return
        row = {
            "epoch": self._epoch,
            "step_in_epoch": self._offset + batch + 1,
            "global_step": self._global_step,
            "elapsed_s": self._elapsed(),
            "learning_rate": current_learning_rate(self.model),
        }
        row.update({key: _as_float(value) for key, value in (logs or {}).items()})
        self.steps_table.append(row, write=self._write)

    def on_epoch_end(self, epoch, logs=None):
        self._first_epoch = False
        row = {
            "epoch": epoch,
            "global_step": self._global_step,
            "elapsed_s": self._elapsed(),
            "learning_rate": current_learning_rate(self.model),
        }
        row.update({key: _as_float(value) for key, value in (logs or {}).items()})
        self.epochs_table.append(row, write=self._write)


class SafeModelCheckpoint(keras.callbacks.Callback):
    """Save the model as ``.keras`` atomically (temporary file + ``os.replace``) each epoch or on improvement.

    Nothing is saved while the loss or the weights are NaN/Inf, so the file always holds the last good model.
    With ``save_best_only`` the best value is kept in ``<filepath>.json`` and read back on construction, so a
    resumed run compares against the best of the whole run.

    Args:
        filepath: destination ending in ``.keras``.
        monitor: the metric deciding "best" (e.g. ``"val_loss"``); used with ``save_best_only``.
        mode: ``"min"`` or ``"max"``.
        save_best_only: save only when ``monitor`` improves.

    Returns:
        A Keras callback.

    Example:
        >>> best = SafeModelCheckpoint("best.keras", "val_loss", save_best_only=True)  # doctest: +SKIP
    """

    def __init__(self, filepath, monitor="val_loss", mode="min", save_best_only=False):
        super().__init__()
        filepath = os.fspath(filepath)
        if not filepath.endswith(".keras"):
            raise ValueError(f"filepath must end with '.keras'; got filepath={filepath!r}")
        check_choice("mode", mode, _MODES)
        self.filepath = filepath
        self.monitor = monitor
        self.mode = mode
        self.save_best_only = save_best_only
        self.best = None
        self.best_epoch = None
        self._warned_missing = False
        self.sidecar = filepath + ".json"
        if save_best_only and os.path.isfile(self.sidecar):
            with open(self.sidecar, encoding="utf-8") as file:
                saved = json.load(file)
            if saved.get("monitor") == monitor:
                self.best, self.best_epoch = saved.get("best"), saved.get("epoch")

    def _improved(self, value):
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        loss = _as_float(logs.get("loss"))
        if loss is not None and not math.isfinite(loss):
            return
        if self.save_best_only:
            value = _as_float(logs.get(self.monitor))
            if value is None:
                if not self._warned_missing:
                    warnings.warn(
                        f"SafeModelCheckpoint: monitor={self.monitor!r} is not in the logs "
                        f"({sorted(logs)}); {self.filepath} is not written",
                        stacklevel=2,
                    )
                    self._warned_missing = True
                return
            if not math.isfinite(value) or not self._improved(value):
                return
        if not _weights_finite(self.model):
            return
        self.save(epoch)
        if self.save_best_only:
            self.best, self.best_epoch = value, epoch
            if is_chief(self.model.distribute_strategy):
                atomic_write_bytes(
                    self.sidecar,
                    json.dumps(
                        {"monitor": self.monitor, "mode": self.mode, "best": value, "epoch": epoch}
                    ).encode(),
                )

    def save(self, epoch=None):
        """Save the model now (atomically on the chief; to a discarded temporary directory elsewhere)."""
        if is_chief(self.model.distribute_strategy):
            directory = os.path.dirname(os.path.abspath(self.filepath))
            os.makedirs(directory, exist_ok=True)
            stem = os.path.basename(self.filepath)[: -len(".keras")]
            temporary = os.path.join(directory, f".{stem}.tmp-{os.getpid()}.keras")
            try:
                self.model.save(temporary)
                os.replace(temporary, self.filepath)
            finally:
                if os.path.exists(temporary):
                    os.remove(temporary)
        else:
            scratch = tempfile.mkdtemp(prefix="llm_tf_worker_save_")
            try:
                self.model.save(os.path.join(scratch, "model.keras"))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stop training as soon as the loss is NaN or Inf, with a message naming the step and kept checkpoints.

    The checkpoint callbacks of this module never overwrite a good file with NaN/Inf weights, so the last good
    checkpoints stay on disk. Place this callback after :class:`ResumableBackup` (it re-asserts the stop at
    the epoch's end).

    Args:
        kept_checkpoints: paths to mention in the message (those that exist at that moment are listed).

    Returns:
        A Keras callback; ``stopped`` is None, or a dict with ``epoch``, ``batch`` and ``loss`` after a stop.

    Example:
        >>> guard = StopOnNonFiniteLoss(kept_checkpoints=["run/last.keras", "run/backup/backup.npz"])
        >>> guard.stopped is None
        True
    """

    def __init__(self, kept_checkpoints=()):
        super().__init__()
        self.kept_checkpoints = [os.fspath(path) for path in kept_checkpoints]
        self.stopped = None
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self.stopped = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _check(self, logs, batch):
        loss = _as_float((logs or {}).get("loss"))
        if loss is None or math.isfinite(loss) or self.stopped is not None:
            return
        self.stopped = {"epoch": self._epoch, "batch": batch, "loss": loss}
        self.model.stop_training = True
        kept = [path for path in self.kept_checkpoints if os.path.exists(path)]
        where = f"epoch {self._epoch + 1}" + (f", batch {batch + 1}" if batch is not None else "")
        message = (
            f"llm_tf: training stopped: the loss became {loss} at {where}. "
            + (
                f"The last good checkpoints are kept: {', '.join(kept)}."
                if kept
                else "No checkpoint was written yet."
            )
            + " Lower the learning rate, check the data for invalid values, or use float32 precision."
        )
        if is_chief(self.model.distribute_strategy):
            print(message, file=sys.stderr, flush=True)

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, batch)

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, None)
        if self.stopped is not None:
            self.model.stop_training = True


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package (needed by ``tf.summary``) is installed; warns when it is not.

    Returns:
        True when TensorBoard logs can be written.

    Example:
        >>> isinstance(tensorboard_available(), bool)
        True
    """
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None:
        return True
    warnings.warn("the tensorboard package is not installed; TensorBoard logs are not written", stacklevel=2)
    return False


def standard_callbacks(
    run_dir,
    monitor: str = "val_loss",
    mode: str = "min",
    log_every_n_steps: int = 50,
    backup_every_n_steps: int | None = None,
    tensorboard: bool = True,
    strategy=None,
) -> list[keras.callbacks.Callback]:
    """The callbacks every experiment uses, in the order they must run.

    ``[ResumableBackup, MetricsCSVLogger, best SafeModelCheckpoint, last SafeModelCheckpoint, TensorBoard
    (chief only), StopOnNonFiniteLoss]``. Add Keras's progress bar through ``fit(verbose=...)`` as usual.

    Args:
        run_dir: a :class:`llm_tf.training.RunDirectory`.
        monitor: metric deciding the best model (``"loss"`` when there is no validation data).
        mode: ``"min"`` or ``"max"`` for ``monitor``.
        log_every_n_steps: interval of ``metrics_steps.csv`` rows and TensorBoard step summaries.
        backup_every_n_steps: backup interval in steps (None: at the end of each epoch only).
        tensorboard: add the TensorBoard callback (written by the chief only).
        strategy: the training strategy (decides which worker is the chief); None uses the current one.

    Returns:
        The list of callbacks.

    Example:
        >>> callbacks = standard_callbacks(create_run_dir("demo"), monitor="val_loss")  # doctest: +SKIP
    """
    from llm_tf.training.run_dir import RunDirectory

    if not isinstance(run_dir, RunDirectory):
        raise ValueError(f"run_dir must be a RunDirectory (see create_run_dir); got run_dir={run_dir!r}")
    backup = ResumableBackup(run_dir.backup_dir, save_freq=backup_every_n_steps or "epoch")
    callbacks = [
        backup,
        MetricsCSVLogger(
            run_dir.metrics_csv, run_dir.metrics_steps_csv, every_n_steps=log_every_n_steps, backup=backup
        ),
        SafeModelCheckpoint(run_dir.best_model, monitor=monitor, mode=mode, save_best_only=True),
        SafeModelCheckpoint(run_dir.last_model),
    ]
    if tensorboard and is_chief(strategy) and tensorboard_available():
        callbacks.append(
            keras.callbacks.TensorBoard(
                log_dir=run_dir.tensorboard_dir,
                update_freq=log_every_n_steps,
                write_graph=False,
                profile_batch=0,
            )
        )
    callbacks.append(
        StopOnNonFiniteLoss(kept_checkpoints=[run_dir.last_model, run_dir.best_model, run_dir.backup_file])
    )
    return callbacks
