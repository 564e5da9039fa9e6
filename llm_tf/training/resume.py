"""Crash-safe, bit-exact resume: full training-state backups every N steps and mid-epoch restart.

Keras 3.15's ``keras.callbacks.BackupAndRestore`` restores weights, optimizer and epoch but restarts an
interrupted epoch from its first batch. :class:`ResumableBackup` builds on it: its backup also holds the
metric state, the RNG (seed-generator) state and the position inside the epoch, and on resume it ends the
resumed epoch after the batches the interrupted run had not yet consumed. Together with a data stream whose
order is a pure function of ``(seed, epoch)`` that skips the consumed batches
(:func:`llm_tf.training.resumable_dataset`), a resumed run ends with exactly the weights of an uninterrupted
one.

Backups are written to a temporary file and renamed into place, so a crash never leaves a truncated backup; a
corrupt or truncated backup raises :class:`CheckpointError` instead of silently restarting from scratch.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
import zipfile

import keras
import numpy as np
import tensorflow as tf

from llm_tf.checks import is_int
from llm_tf.training.strategy import is_chief

BACKUP_FILE_NAME = "backup.npz"
BACKUP_FORMAT = "llm_tf.training.backup/1"
_METADATA_KEY = "__metadata__"


class CheckpointError(ValueError):
    """A backup checkpoint is corrupt, truncated, of an unknown format, or does not match the model."""


def atomic_write(path: str, write) -> None:
    """Create ``path`` through a temporary file and ``os.replace``, so readers never see half a file.

    Args:
        path: destination file.
        write: a function that writes the contents to the binary file object it is given.

    Returns:
        None.

    Example:
        >>> atomic_write("/tmp/llm_tf_example.txt", lambda file: file.write(b"hello"))  # doctest: +SKIP
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    _fsync_directory(directory)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`).

    Args:
        path: destination file.
        data: the bytes to write.

    Returns:
        None.

    Example:
        >>> atomic_write_bytes("/tmp/llm_tf_example.txt", b"hello")  # doctest: +SKIP
    """
    atomic_write(path, lambda file: file.write(data))


def atomic_write_csv(path: str, columns, rows) -> None:
    """Write ``rows`` (dicts) as a CSV table with header ``columns`` atomically; a missing or None value is empty.

    Example:
        >>> atomic_write_csv("/tmp/llm_tf_example.csv", ("step", "loss"), [{"step": 1, "loss": 0.5}])  # doctest: +SKIP
    """
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(name) is None else row[name] for name in columns])
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def _fsync_directory(directory: str) -> None:
    # Makes the rename durable on POSIX file systems; not available everywhere, hence best effort.
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _global_seed_generator(create: bool):
    """Keras's global ``SeedGenerator`` (used by unseeded ``keras.random`` calls), or None if absent."""
    try:
        from keras.src.backend.common import global_state
        from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR, global_seed_generator
    except ImportError:  # a future Keras moved it: nothing to save then
        return None
    generator = global_state.get_global_attribute(GLOBAL_SEED_GENERATOR)
    if generator is None and create:
        generator = global_seed_generator()
    return generator


def training_state_variables(model: keras.Model, create_missing: bool = False) -> dict[str, list]:
    """The variables that make up a model's training state, grouped.

    Groups: ``"model"`` (all model variables, including dropout seed-generator states), ``"optimizer"``,
    ``"metrics"``, and ``"global_seed"`` (Keras's global seed generator, when it exists).

    Args:
        model: a compiled, built model.
        create_missing: create Keras's global seed generator when it does not exist yet.

    Returns:
        A dict group name -> list of ``keras.Variable``.

    Example:
        >>> sorted(training_state_variables(model))  # doctest: +SKIP
        ['metrics', 'model', 'optimizer']
    """
    groups = {"model": list(model.variables), "metrics": list(model.metrics_variables)}
    if model.optimizer is not None:
        groups["optimizer"] = list(model.optimizer.variables)
    generator = _global_seed_generator(create_missing)
    if generator is not None:
        groups["global_seed"] = [generator.state]
    return groups


def variable_to_numpy(variable) -> np.ndarray:
    """A variable's value as a NumPy array, also for ``tf.distribute`` (mirrored or on-read) variables.

    Converting through ``tf.convert_to_tensor`` reads a distributed variable in cross-replica context:
    mirrored variables give their (identical) value, on-read variables (metrics) their aggregate over all
    replicas.

    Args:
        variable: a ``keras.Variable``.

    Returns:
        A NumPy array.

    Example:
        >>> variable_to_numpy(keras.Variable([1.0, 2.0]))
        array([1., 2.], dtype=float32)
    """
    return np.array(tf.convert_to_tensor(variable.value))


def capture_training_state(model: keras.Model) -> tuple[dict[str, np.ndarray], dict[str, list[dict]]]:
    """Read every training-state variable into NumPy arrays.

    Under ``MultiWorkerMirroredStrategy`` reading metric (on-read) variables is a collective operation: every
    worker must call this at the same point, even those that do not write the result.

    Args:
        model: a compiled, built model.

    Returns:
        ``(arrays, index)``: arrays keyed ``"<group>/<position>"`` and, per group, a list of
        ``{"path", "shape", "dtype"}`` describing each variable.

    Example:
        >>> arrays, index = capture_training_state(model)  # doctest: +SKIP
    """
    arrays, index = {}, {}
    for group, variables in training_state_variables(model).items():
        index[group] = []
        for position, variable in enumerate(variables):
            value = variable_to_numpy(variable)
            arrays[f"{group}/{position:05d}"] = value
            index[group].append(
                {
                    "path": str(getattr(variable, "path", variable.name)),
                    "shape": list(value.shape),
                    "dtype": str(value.dtype),
                }
            )
    return arrays, index


def _all_finite(arrays: dict[str, np.ndarray], group: str) -> bool:
    for key, value in arrays.items():
        if (
            key.startswith(group + "/")
            and np.issubdtype(value.dtype, np.floating)
            and not np.isfinite(value).all()
        ):
            return False
    return True


def write_backup(path: str, arrays: dict[str, np.ndarray], metadata: dict) -> None:
    """Write a backup file (one ``.npz`` holding the arrays and the JSON metadata) atomically.

    Args:
        path: destination, e.g. ``runs/exp/20250101-120000/backup/backup.npz``.
        arrays: from :func:`capture_training_state`.
        metadata: JSON-serializable description (position, variable index, ...).

    Returns:
        None.

    Example:
        >>> write_backup(path, *capture_training_state(model)[:1], {"epoch": 0})  # doctest: +SKIP
    """
    payload = dict(arrays)
    payload[_METADATA_KEY] = np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda file: np.savez(file, **payload))


def read_backup(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify a backup written by :func:`write_backup`.

    Args:
        path: the backup file.

    Returns:
        ``(metadata, arrays)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is truncated, corrupt (zip CRC mismatch) or of an unknown format.

    Example:
        >>> metadata, arrays = read_backup("runs/exp/20250101-120000/backup/backup.npz")  # doctest: +SKIP
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"backup checkpoint not found: path={path!r}")
    advice = (
        "refusing to silently restart from scratch; delete the file (or the run directory) to start over, "
        "or restore it from a copy"
    )
    try:
        with np.load(path, allow_pickle=False) as archive:
            # Reading every member checks each one's CRC-32, so corruption anywhere is detected here.
            contents = {name: archive[name] for name in archive.files}
        metadata = json.loads(contents.pop(_METADATA_KEY).tobytes().decode("utf-8"))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, KeyError, ValueError) as error:
        raise CheckpointError(
            f"backup checkpoint {path!r} is corrupt or truncated ({type(error).__name__}: {error}); {advice}"
        ) from error
    if not isinstance(metadata, dict) or metadata.get("format") != BACKUP_FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise CheckpointError(f"backup checkpoint {path!r} has format={found!r}; expected {BACKUP_FORMAT!r}")
    for group, entries in metadata.get("variables", {}).items():
        for position, entry in enumerate(entries):
            key = f"{group}/{position:05d}"
            if key not in contents or list(contents[key].shape) != list(entry["shape"]):
                raise CheckpointError(
                    f"backup checkpoint {path!r} is incomplete: array {key!r} missing or reshaped"
                )
    return metadata, contents


def restore_training_state(
    model: keras.Model, metadata: dict, arrays: dict[str, np.ndarray], groups=None, source: str = "backup"
) -> None:
    """Assign saved arrays to the model's training-state variables, after checking that they match.

    Args:
        model: the compiled, built model (optimizer built too).
        metadata: from :func:`read_backup`.
        arrays: from :func:`read_backup`.
        groups: which groups to restore (default: all saved groups).
        source: the file name, for error messages.

    Returns:
        None.

    Raises:
        CheckpointError: the number or shapes of variables differ between the backup and the model.

    Example:
        >>> restore_training_state(model, *read_backup(path))  # doctest: +SKIP
    """
    saved = metadata["variables"]
    current = training_state_variables(model, create_missing="global_seed" in saved)
    groups = list(saved) if groups is None else list(groups)
    for group in groups:
        variables = current.get(group, [])
        entries = saved[group]
        if len(variables) != len(entries):
            raise CheckpointError(
                f"backup checkpoint {source!r} holds {len(entries)} {group} variables but the model has "
                f"{len(variables)}; it was written for a different model, or the model is not fully built "
                "(build it with llm_tf.training.build_for_training(model, dataset) before fit)"
            )
        for variable, entry in zip(variables, entries):
            if list(variable.shape) != list(entry["shape"]):
                raise CheckpointError(
                    f"backup checkpoint {source!r}: {group} variable {entry['path']!r} "
                    f"has shape {entry['shape']}, "
                    f"but the model's {variable.path!r} has shape {list(variable.shape)}"
                )
    for group in groups:
        for position, variable in enumerate(current.get(group, [])):
            variable.assign(arrays[f"{group}/{position:05d}"])


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """Back up the full training state every ``save_freq`` steps and resume at the exact next batch.

    Extends ``keras.callbacks.BackupAndRestore`` (same constructor arguments) with: metric and RNG state in
    the backup, the position inside the epoch, atomic writes, finite-weights checks (a backup is never
    overwritten with NaN/Inf weights), clear errors for corrupt backups, and multi-worker safety (every worker
    reads the state, only the chief writes).

    Exact mid-epoch resume also needs the data to start at the right batch. Use it like this (or call
    :func:`llm_tf.training.train`, which does all of it)::

        backup = ResumableBackup("runs/exp/run/backup", save_freq=100)
        start_epoch, skip = backup.resume_position()
        stream = resumable_dataset(batches_for_epoch, epochs, steps_per_epoch, start_epoch, skip)
        model.fit(stream, epochs=epochs, steps_per_epoch=steps_per_epoch, callbacks=[backup, ...])

    In the resumed epoch this callback ends the epoch after ``steps_per_epoch - skip`` batches (it sets
    ``model.stop_training`` after that batch and clears it again in ``on_epoch_end``; place it first in the
    callback list so that later callbacks can still stop training at that epoch's end).

    Args:
        backup_dir: directory of the backup (``backup.npz`` inside it); not shared with other callbacks.
        save_freq: ``"epoch"`` or a number of steps; a backup is also written at the end of every epoch.
        delete_checkpoint: delete the backup when ``fit`` completes without being stopped early.
        double_checkpoint: not supported (the atomic write already keeps the previous backup intact on a
            crash).

    Returns:
        A Keras callback.

    Example:
        >>> backup = ResumableBackup("/tmp/run/backup", save_freq=50)
        >>> backup.resume_position()
        (0, 0)
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True, double_checkpoint=False):
        if double_checkpoint:
            raise ValueError(
                "double_checkpoint=True is not supported; backups are written atomically instead"
            )
        if save_freq != "epoch" and not (is_int(save_freq) and save_freq >= 1):
            raise ValueError(f"`save_freq` must be 'epoch' or a positive integer; got save_freq={save_freq!r}.")
        super().__init__(backup_dir=str(backup_dir), save_freq=save_freq, delete_checkpoint=delete_checkpoint)
        self.checkpoint_path = os.path.join(str(backup_dir), BACKUP_FILE_NAME)
        self.restored_position: dict | None = None
        self.elapsed_before_resume = 0.0
        self._cached = None
        self._resume_epoch = None
        self._resume_skip = 0
        self._pending_metrics = None
        self._global_step = 0
        self._last_saved_step = 0
        self._offset = 0
        self._ending_partial_epoch = False
        self._first_epoch_done = False
        self._train_start = None
        self._warned_nonfinite = False

    # ---------------------------------------------------------------- reading
    def _load_cached(self):
        stat = os.stat(self.checkpoint_path)
        signature = (stat.st_mtime_ns, stat.st_size)
        if self._cached is None or self._cached[0] != signature:
            self._cached = (signature, read_backup(self.checkpoint_path))
        return self._cached[1]

    def resume_position(self) -> tuple[int, int]:
        """Where training resumes: ``(epoch, batches of that epoch already done)``; ``(0, 0)`` with no backup.

        Returns:
            ``(start_epoch, skip_batches)``.

        Raises:
            CheckpointError: the backup exists but is corrupt or truncated.

        Example:
            >>> ResumableBackup("/tmp/no_such_run/backup").resume_position()
            (0, 0)
        """
        if not os.path.exists(self.checkpoint_path):
            return 0, 0
        metadata, _ = self._load_cached()
        return int(metadata["epoch"]), int(metadata["step_in_epoch"])

    def has_backup(self) -> bool:
        """Whether a backup file exists (it may still be corrupt; :meth:`resume_position` checks that)."""
        return os.path.exists(self.checkpoint_path)

    # ---------------------------------------------------------------- Keras hooks
    def on_train_begin(self, logs=None):
        self._train_start = time.time()
        self._first_epoch_done = False
        self._ending_partial_epoch = False
        self._pending_metrics = None
        self._resume_epoch, self._resume_skip = None, 0
        self.restored_position = None
        self.elapsed_before_resume = 0.0
        self._global_step = self._last_saved_step = 0
        if not os.path.exists(self.checkpoint_path):
            return
        metadata, arrays = self.restore_model_state(self.model)
        model = self.model
        skip = int(metadata["step_in_epoch"])
        if skip > 0:
            self._check_metric_count(metadata)
            self._pending_metrics = (metadata, arrays)
            expected_steps = self.params.get("steps") if self.params else None
            if expected_steps is not None and int(expected_steps) != int(metadata["steps_per_epoch"]):
                raise CheckpointError(
                    f"backup checkpoint {self.checkpoint_path!r} was written with steps_per_epoch="
                    f"{metadata['steps_per_epoch']}, but this fit runs steps_per_epoch={expected_steps}; "
                    "resume "
                    "with the same data and batch size"
                )
        self._resume_epoch, self._resume_skip = int(metadata["epoch"]), skip
        self._global_step = self._last_saved_step = int(metadata["global_step"])
        # Read by Keras's fit loop right after on_train_begin, exactly as BackupAndRestore does.
        model._initial_epoch = self._resume_epoch
        if is_chief(model.distribute_strategy):
            print(
                f"llm_tf: resuming from {self.checkpoint_path}: "
                f"epoch {self._resume_epoch + 1}, after batch {skip} "
                f"(global step {self._global_step})",
                flush=True,
            )

    def restore_model_state(self, model) -> tuple[dict, dict]:
        """Assign the backup's weights and optimizer state (not the metrics) to ``model``; record the position.

        ``on_train_begin`` calls it when ``fit`` resumes; :func:`llm_tf.training.train` calls it outside ``fit``
        for a run whose backup was written after its last epoch (nothing left to train).

        Args:
            model: the compiled, built model of the run.

        Returns:
            The backup's ``(metadata, arrays)``; the position is in :attr:`restored_position`.
        """
        metadata, arrays = self._load_cached()
        if not model.built:
            raise ValueError(
                f"To resume from {self.checkpoint_path!r} the model must be built before fit; call "
                "llm_tf.training.build_for_training(model, dataset) first"
            )
        if model.optimizer is not None and not model.optimizer.built:
            with model.distribute_strategy.scope():
                model.optimizer.build(model.trainable_variables)
        # The metrics are left out: a resumed fit assigns them after Keras resets them at epoch begin.
        now_groups = [group for group in metadata["variables"] if group != "metrics"]
        restore_training_state(model, metadata, arrays, groups=now_groups, source=self.checkpoint_path)
        self.elapsed_before_resume = float(metadata.get("elapsed_s", 0.0))
        self.restored_position = {
            "epoch": int(metadata["epoch"]),
            "step_in_epoch": int(metadata["step_in_epoch"]),
            "global_step": int(metadata["global_step"]),
        }
        return metadata, arrays

    def delete_backup(self, strategy=None) -> None:
        """Remove the backup file (and its directory when empty); only the chief worker writes."""
        if not is_chief(strategy or self.model.distribute_strategy):
            return
        if os.path.exists(self.checkpoint_path):
            os.remove(self.checkpoint_path)
        if os.path.isdir(self.backup_dir) and not os.listdir(self.backup_dir):
            os.rmdir(self.backup_dir)

    def _check_metric_count(self, metadata):
        saved = len(metadata["variables"].get("metrics", []))
        current = len(self.model.metrics_variables)
        if saved != current:
            raise CheckpointError(
                f"backup checkpoint {self.checkpoint_path!r} holds {saved} metric variables "
                "but the model has "
                f"{current}; build the model's metrics before fit with "
                "llm_tf.training.build_for_training(model, dataset)"
            )

    def on_epoch_begin(self, epoch, logs=None):
        self._offset = 0
        if not self._first_epoch_done and epoch == self._resume_epoch and self._resume_skip > 0:
            self._offset = self._resume_skip
            if self._pending_metrics is not None:
                restore_training_state(
                    self.model, *self._pending_metrics, groups=["metrics"], source=self.checkpoint_path
                )
                self._pending_metrics = None
        self._epoch = epoch
        self._global_at_epoch_begin = self._global_step

    def on_train_batch_end(self, batch, logs=None):
        step_in_epoch = self._offset + batch + 1
        self._global_step = self._global_at_epoch_begin + batch + 1
        steps_per_epoch = self.params.get("steps") if self.params else None
        epoch_complete = steps_per_epoch is not None and step_in_epoch >= steps_per_epoch
        if (
            self.save_freq != "epoch"
            and not epoch_complete
            and self._global_step // self.save_freq > self._last_saved_step // self.save_freq
        ):
            self._save(self._epoch, step_in_epoch, logs)
        if self._offset and epoch_complete and not self.model.stop_training:
            self.model.stop_training = True
            self._ending_partial_epoch = True

    def on_epoch_end(self, epoch, logs=None):
        if self._ending_partial_epoch:
            self.model.stop_training = False
            self._ending_partial_epoch = False
        self._first_epoch_done = True
        self._save(epoch + 1, 0, logs)

    def on_train_end(self, logs=None):
        self.model._initial_epoch = None
        completed = not self.model.stop_training
        if self.delete_checkpoint and completed:
            self.delete_backup()

    # ---------------------------------------------------------------- writing
    def _save(self, epoch, step_in_epoch, logs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return  # keep the last good backup
        arrays, index = capture_training_state(self.model)
        if not _all_finite(arrays, "model"):
            if not self._warned_nonfinite:
                warnings.warn(
                    "llm_tf: the model's weights contain NaN/Inf at global step "
                    f"{self._global_step}; the backup "
                    f"{self.checkpoint_path!r} keeps the last good state",
                    stacklevel=2,
                )
                self._warned_nonfinite = True
            return
        self._last_saved_step = self._global_step
        if not is_chief(self.model.distribute_strategy):
            return
        metadata = {
            "format": BACKUP_FORMAT,
            "epoch": int(epoch),
            "step_in_epoch": int(step_in_epoch),
            "global_step": int(self._global_step),
            "steps_per_epoch": self.params.get("steps") if self.params else None,
            "epochs": self.params.get("epochs") if self.params else None,
            "elapsed_s": self.elapsed_before_resume + (time.time() - self._train_start),
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "variables": index,
        }
        write_backup(self.checkpoint_path, arrays, metadata)
