"""Distribution strategies, and the one place where multi-worker ``model.fit`` is made to work in Keras 3.

``get_strategy`` chooses a ``tf.distribute`` strategy by name (or automatically), and can split the CPU into
several logical devices so that data parallelism is testable on a machine without accelerators.

``prepare_model_for_strategy`` contains this project's fix for ``MultiWorkerMirroredStrategy`` + ``fit``
(keras-team/keras#20585, tensorflow/tensorflow#72388). It changes only the model instance it is given.
"""

from __future__ import annotations

import json
import os
import types

import keras
import tensorflow as tf

from llm_tf.checks import check_choice, check_positive_int, require_tensorflow_backend

STRATEGY_NAMES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")

# Environment variables that indicate a Cloud TPU or a TPU VM. The TPU cluster resolver is only tried when one
# is present, because without them it may try to reach the GCE metadata server, which hangs on offline
# machines.
_TPU_HINT_VARIABLES = ("TPU_NAME", "COLAB_TPU_ADDR", "TPU_ACCELERATOR_TYPE", "TPU_WORKER_ID")


def configure_cpu_devices(num_cpu_devices: int) -> list[str]:
    """Split the first physical CPU into ``num_cpu_devices`` logical devices.

    TensorFlow backend only (``tf.distribute``): raises ValueError under another Keras backend.

    This must run before TensorFlow initialises its devices (before the first op or strategy is created).
    Calling it again with the same number is harmless.

    Args:
        num_cpu_devices: how many logical CPU devices to create (at least 1).

    Returns:
        The names of the logical CPU devices, e.g. ``["/device:CPU:0", "/device:CPU:1"]``.

    Example:
        >>> configure_cpu_devices(2)  # doctest: +SKIP
        ['/device:CPU:0', '/device:CPU:1']
    """
    require_tensorflow_backend("configure_cpu_devices (tf.distribute)")
    check_positive_int("num_cpu_devices", num_cpu_devices)
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(num_cpu_devices)]
        )
    except RuntimeError as error:
        # The runtime is already initialised: acceptable only when the existing split is the requested one.
        existing = tf.config.list_logical_devices("CPU")
        if len(existing) != num_cpu_devices:
            raise ValueError(
                f"num_cpu_devices={num_cpu_devices} cannot be applied: TensorFlow already initialised "
                f"{len(existing)} logical CPU device(s). Call get_strategy(num_cpu_devices=...) at program "
                "start, before any TensorFlow op runs."
            ) from error
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def _tf_config_task_count() -> int:
    """Number of tasks (chief + workers) named by the ``TF_CONFIG`` environment variable, 0 when unset."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: TF_CONFIG={raw!r}") from error
    return sum(len(cluster.get(job, [])) for job in ("chief", "worker"))


def _tpu_hinted() -> bool:
    return any(os.environ.get(name) for name in _TPU_HINT_VARIABLES)


def _make_tpu_strategy() -> tf.distribute.Strategy:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", "local"))
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def choose_strategy_name(
    name: str = "auto", num_cpu_devices: int | None = None, tpu: bool | None = None
) -> str:
    """Resolve ``"auto"`` to the concrete strategy name :func:`get_strategy` builds (others pass through).

    Args:
        name: a strategy name (see :data:`STRATEGY_NAMES`).
        num_cpu_devices: the number of logical CPU devices configured (None: not split).
        tpu: whether a TPU is available; None looks for TPU environment hints.

    Returns:
        One of ``"tpu"``, ``"multi_worker"``, ``"mirrored"``, ``"default"`` (or ``name`` itself when not
        auto).

    Example:
        >>> choose_strategy_name("auto", tpu=False) in ("default", "mirrored", "multi_worker")
        True
    """
    check_choice("name", name, STRATEGY_NAMES)
    if name != "auto":
        return name
    if _tpu_hinted() if tpu is None else tpu:
        return "tpu"
    if _tf_config_task_count() > 1:
        return "multi_worker"
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1 or (not gpus and num_cpu_devices is not None and num_cpu_devices > 1):
        return "mirrored"
    return "default"


def get_strategy(name: str = "auto", num_cpu_devices: int | None = None) -> tf.distribute.Strategy:
    """Return a ``tf.distribute`` strategy by name.

    ``"auto"`` picks, in this order: a TPU when a TPU cluster resolver finds one;
    ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names a cluster of more than one task;
    ``MirroredStrategy`` over all GPUs when there are several (or over the logical CPUs when
    ``num_cpu_devices`` > 1 and there is no GPU); else TensorFlow's default one-device strategy.

    Create the strategy at program start: ``MultiWorkerMirroredStrategy`` must exist before other TensorFlow
    ops run, and logical CPU devices can only be configured before TensorFlow initialises. Build models under
    ``strategy.scope()`` and pass them through :func:`prepare_model_for_strategy`.

    Args:
        name: one of ``"auto"``, ``"default"`` (TensorFlow's default strategy), ``"one_device"`` (the first
            GPU, else the CPU), ``"mirrored"`` (all local GPUs, else all logical CPUs), ``"multi_worker"``
            (``MultiWorkerMirroredStrategy``, configured by ``TF_CONFIG``), ``"tpu"``.
        num_cpu_devices: when set, split the CPU into this many logical devices first (for testing data
            parallelism without GPUs).

    TensorFlow backend only (``tf.distribute``): raises ValueError under another Keras backend.

    Returns:
        The strategy.

    Example:
        >>> strategy = get_strategy("mirrored", num_cpu_devices=2)  # doctest: +SKIP
        >>> strategy.num_replicas_in_sync  # doctest: +SKIP
        2
    """
    require_tensorflow_backend("get_strategy (tf.distribute)")
    check_choice("name", name, STRATEGY_NAMES)
    cpu_devices = configure_cpu_devices(num_cpu_devices) if num_cpu_devices is not None else None
    if name == "auto" and _tpu_hinted():
        try:
            return _make_tpu_strategy()
        except (ValueError, RuntimeError, tf.errors.OpError):
            pass  # no reachable TPU after all: fall through to the other choices
    name = choose_strategy_name(name, num_cpu_devices=len(cpu_devices) if cpu_devices else None, tpu=False)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
        devices = gpus or [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return _make_tpu_strategy()


def is_multi_worker(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether ``strategy`` (default: the current one) is a ``MultiWorkerMirroredStrategy`` over >1 worker.

    Args:
        strategy: the strategy to inspect; ``None`` uses ``tf.distribute.get_strategy()``.

    Returns:
        True when training runs in several worker processes.

    Example:
        >>> is_multi_worker(tf.distribute.get_strategy())
        False
    """
    strategy = strategy or tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    in_multi_worker_mode = getattr(strategy.extended, "_in_multi_worker_mode", None)
    if in_multi_worker_mode is not None:
        return bool(in_multi_worker_mode())
    return _tf_config_task_count() > 1


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process should write shared outputs (run directory, checkpoints, logs).

    True for single-process training; in a multi-worker cluster true only for the chief (or worker 0 when the
    cluster has no chief).

    Args:
        strategy: the strategy in use; ``None`` uses ``tf.distribute.get_strategy()``.

    Returns:
        True when this process is the chief.

    Example:
        >>> is_chief()
        True
    """
    strategy = strategy or tf.distribute.get_strategy()
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)


# ----------------------------------------------------------------------------------------------------------
# The multi-worker fix (and a related MirroredStrategy one).
#
# Keras 3 (checked with 3.15.1 on TF 2.21) cannot run `model.fit`/`evaluate` under
# MultiWorkerMirroredStrategy (keras-team/keras#20585, tensorflow/tensorflow#72388). Two places in
# keras/src/backend/tensorflow/trainer.py fail:
#   1. `TensorFlowTrainer._maybe_symbolic_build` takes the first distributed batch and reduces it eagerly
#      with `strategy.reduce("MEAN", batch, axis=None)` only to learn its shapes. Across workers this eager
#      reduce of the (dict-structured, often integer) input batch fails. The same call also fails with a
#      single-worker MirroredStrategy over 2+ devices whenever an input is boolean (no AddN kernel for bool),
#      which is the case for this project's `padding_mask` (found here; no upstream issue number known).
#      We build from this worker's first local replica batch instead: shapes are all the symbolic build
#      needs, and no collective or arithmetic on the inputs is involved.
#   2. `reduce_per_replica` reduces every logged value with `strategy.reduce("MEAN", v, axis=0)` in
#      multi-worker mode, which fails for the scalar metric values that `train_step`/`test_step` return
#      (axis 0 does not exist). We wrap this model's `train_step`/`test_step` so scalars come back with
#      shape (1,); `reduce(MEAN, axis=0)` then averages them over all replicas, which is what the
#      single-worker MirroredStrategy path computes with `tf.reduce_mean` of the local results.
# The changes are instance attributes set on one model: the class and every other model stay untouched.
# ----------------------------------------------------------------------------------------------------------

_FIX_MARKER = "_llm_tf_multi_worker_fix"


def _local_first_replica(value):
    """The first local replica's component of a distributed value (the value itself when not distributed)."""
    if isinstance(value, tf.distribute.DistributedValues):
        return value.values[0]
    return value


def _symbolic_build_from_local_batch(self, iterator=None, data_batch=None):
    """Replacement for ``TensorFlowTrainer._maybe_symbolic_build`` without an eager reduce of the inputs."""
    if iterator is not None:
        for _, _, batches in iterator:
            data_batch = tf.nest.map_structure(_local_first_replica, next(batches))
            break
    elif data_batch is not None:
        data_batch = tf.nest.map_structure(_local_first_replica, data_batch)
    with self.distribute_strategy.scope():
        self._symbolic_build(data_batch=data_batch)


def _scalars_as_vectors(logs):
    """Give every scalar in a step's logs the shape (1,), so ``strategy.reduce(..., axis=0)`` accepts it."""

    def reshape(value):
        if isinstance(value, (tf.Tensor, tf.Variable)) and value.shape.rank == 0:
            return tf.reshape(value, (1,))
        return value

    return tf.nest.map_structure(reshape, logs)


def _wrap_step(step):
    def step_with_vector_logs(data):
        return _scalars_as_vectors(step(data))

    step_with_vector_logs.__name__ = getattr(step, "__name__", "step")
    step_with_vector_logs.__doc__ = getattr(step, "__doc__", None)
    return step_with_vector_logs


def prepare_model_for_strategy(
    model: keras.Model, strategy: tf.distribute.Strategy | None = None
) -> keras.Model:
    """Make ``fit``/``evaluate`` work under ``strategy``: the one documented place for the multi-worker fix.

    TensorFlow backend only (``tf.distribute``): raises ValueError under another Keras backend.

    Works around keras-team/keras#20585 and tensorflow/tensorflow#72388 (see the comment block above this
    function for what fails and why the replacements are equivalent), on this model instance only:

    - for any strategy the model was created under (``MirroredStrategy``, ``MultiWorkerMirroredStrategy``,
      ...), ``_maybe_symbolic_build`` is replaced by one that needs no eager reduce of the input batch;
    - for ``MultiWorkerMirroredStrategy`` in multi-worker mode, ``train_step`` and ``test_step`` are also
      wrapped so their scalar logs can be reduced across workers.

    Under TensorFlow's default strategy the model is returned unchanged. The call is idempotent. For a
    distribution strategy, the model must have been created under ``strategy.scope()``.

    Args:
        model: a Keras model built (or to be built) under ``strategy.scope()``.
        strategy: the strategy to train under; ``None`` uses the model's own strategy.

    Returns:
        The same model object.

    Example:
        >>> strategy = get_strategy("auto")  # doctest: +SKIP
        >>> with strategy.scope():  # doctest: +SKIP
        ...     model = build_model()
        ...     model.compile(optimizer="adam", loss="mse")
        >>> model = prepare_model_for_strategy(model, strategy)  # doctest: +SKIP
    """
    require_tensorflow_backend("prepare_model_for_strategy (tf.distribute)")
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model; got model={type(model).__name__}")
    own_strategy = getattr(model, "_distribute_strategy", None)
    strategy = strategy or own_strategy or tf.distribute.get_strategy()
    multi_worker = is_multi_worker(strategy)
    if own_strategy is None and not multi_worker:
        # Created outside any strategy scope: Keras's fit builds lazily and never does the eager reduce.
        return model
    if own_strategy is not strategy:
        raise ValueError(
            f"model={model.name!r} was not created under the given {type(strategy).__name__}'s scope; "
            "create (and compile) it inside `with strategy.scope():`"
        )
    if getattr(model, _FIX_MARKER, False):
        return model
    model._maybe_symbolic_build = types.MethodType(_symbolic_build_from_local_batch, model)
    if multi_worker:
        model.train_step = _wrap_step(model.train_step)
        model.test_step = _wrap_step(model.test_step)
        # Step functions may already have been traced with the unwrapped steps.
        model.train_function = None
        model.test_function = None
    setattr(model, _FIX_MARKER, True)
    return model


def resolve_jit_compile(jit_compile: bool | str = "auto") -> bool:
    """Whether to compile the train/eval steps with XLA: ``"auto"`` means on a GPU or TPU only.

    On the project's 2-core CPU, XLA-compiled steps of the small encoders measured 1.6-7x slower than
    TensorFlow's own kernels (docs/results.md), so the default leaves XLA to accelerators.

    Args:
        jit_compile: True, False or ``"auto"``.

    Returns:
        A bool for ``model.compile(jit_compile=...)``.

    Example:
        >>> resolve_jit_compile(False)
        False
    """
    if jit_compile is True or jit_compile is False:
        return jit_compile
    if jit_compile != "auto":
        raise ValueError(f"jit_compile must be True, False or 'auto'; got jit_compile={jit_compile!r}")
    return has_accelerator()


def has_accelerator() -> bool:
    """Whether TensorFlow sees a GPU or TPU (logical devices: call it after the strategy is set up).

    Example:
        >>> isinstance(has_accelerator(), bool)
        True
    """
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
