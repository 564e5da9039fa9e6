"""Run directories: ``runs/<experiment>/<timestamp>/`` with config, metrics, checkpoints, logs and results.

Layout of one run::

    config.json            the experiment's configuration
    metrics.csv            one row per epoch (train and validation metrics, learning rate, global step)
    metrics_steps.csv      one row every N steps (running training metrics)
    tensorboard/           TensorBoard event files
    best.keras / last.keras  the best model (by the monitored metric) and the model after the last epoch
    backup/backup.npz      the resumable training-state backup (removed when the run completes)
    results.json           final metrics, wall time, machine and library versions
    training_curves.png    plots of the training curves
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import math
import os
import platform
import re
import socket
import warnings

from llm_tf.checks import check_number
from llm_tf.runtime import cpu_description
from llm_tf.training.resume import BACKUP_FILE_NAME, atomic_write_bytes

_EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
RESUME_MODES = ("auto", "never")
_REPORTED_LIBRARIES = (
    "tensorflow",
    "keras",
    "numpy",
    "tensorflow-text",
    "transformers",
    "tokenizers",
    "safetensors",
    "sacrebleu",
    "rouge-score",
    "scikit-learn",
    "matplotlib",
    "tensorboard",
    "llm_tf",
)


def _jsonable(value):
    """Convert configs (dataclasses, paths, tuples, NumPy scalars) into JSON-friendly values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "tolist") and callable(value.tolist):  # NumPy arrays and scalars
        return _jsonable(value.tolist())
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def write_json(path: str, data) -> None:
    """Write ``data`` as indented JSON, atomically.

    Args:
        path: destination file.
        data: a JSON-serializable value (dataclasses, paths and NumPy scalars are converted).

    Returns:
        None.

    Example:
        >>> write_json("/tmp/llm_tf_example.json", {"a": 1})  # doctest: +SKIP
    """
    atomic_write_bytes(path, (json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n").encode("utf-8"))


@dataclasses.dataclass(frozen=True)
class RunDirectory:
    """Paths of one run directory (see the module docstring for the layout).

    Args:
        path: the run directory, e.g. ``runs/news_classification/20250101-120000``.
        resumed: whether an interrupted run's directory was reused.

    Returns:
        A frozen dataclass with one property per file.

    Example:
        >>> run = RunDirectory("runs/demo/20250101-120000")
        >>> run.metrics_csv
        'runs/demo/20250101-120000/metrics.csv'
    """

    path: str
    resumed: bool = False

    def file(self, name: str) -> str:
        """The path of ``name`` inside the run directory."""
        return os.path.join(self.path, name)

    @property
    def config_json(self) -> str:
        return self.file("config.json")

    @property
    def metrics_csv(self) -> str:
        return self.file("metrics.csv")

    @property
    def metrics_steps_csv(self) -> str:
        return self.file("metrics_steps.csv")

    @property
    def tensorboard_dir(self) -> str:
        return self.file("tensorboard")

    @property
    def best_model(self) -> str:
        return self.file("best.keras")

    @property
    def last_model(self) -> str:
        return self.file("last.keras")

    @property
    def backup_dir(self) -> str:
        return self.file("backup")

    @property
    def backup_file(self) -> str:
        return os.path.join(self.backup_dir, BACKUP_FILE_NAME)

    @property
    def results_json(self) -> str:
        return self.file("results.json")

    @property
    def curves_png(self) -> str:
        return self.file("training_curves.png")

    def read_config(self) -> dict | None:
        """The saved ``config.json`` as a dict, or None when absent."""
        if not os.path.isfile(self.config_json):
            return None
        with open(self.config_json, encoding="utf-8") as file:
            return json.load(file)

    def is_finished(self) -> bool:
        """Whether the run wrote its ``results.json``."""
        return os.path.isfile(self.results_json)


def _new_run_name(parent: str) -> str:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name, suffix = stamp, 1
    while os.path.exists(os.path.join(parent, name)):
        name = f"{stamp}-{suffix}"
        suffix += 1
    return name


def find_resumable_run(
    experiment: str, root: str = "runs", config=None, require_backup: bool = True
) -> RunDirectory | None:
    """The newest unfinished run of ``experiment`` that has a backup and (if given) the same config.

    Args:
        experiment: experiment name.
        root: the runs root.
        config: when given, only a run whose ``config.json`` equals it is returned.
        require_backup: only a run with a training-state backup qualifies. False for a run directory that
            holds several trainings in sub-directories (per seed or fold; see ``llm_tf.tasks.runs``): any
            unfinished one (no ``results.json``) qualifies.

    Returns:
        The run directory (with ``resumed=True``), or None.

    Example:
        >>> find_resumable_run("demo", root="/tmp/no_runs_here") is None
        True
    """
    parent = os.path.join(root, experiment)
    if not os.path.isdir(parent):
        return None
    wanted = None if config is None else json.loads(json.dumps(_jsonable(config)))
    other_configs = []
    for name in sorted(os.listdir(parent), reverse=True):
        run = RunDirectory(os.path.join(parent, name), resumed=True)
        if not os.path.isdir(run.path) or run.is_finished():
            continue
        if require_backup and not os.path.exists(run.backup_file):
            continue
        saved = run.read_config() if wanted is not None else None
        if wanted is not None and saved != wanted:
            other_configs.append((run.path, config_differences(saved or {}, wanted)))
            continue
        return run
    for path, differences in other_configs:
        # Resuming with other settings would mix two configurations in one run; the old run is left untouched.
        warnings.warn(
            f"not resuming the unfinished run {path}: its config.json differs from this command's in "
            f"{', '.join(differences) or 'its format'}; starting a new run beside it (that run is kept as it is).",
            stacklevel=2,
        )
    return None


def config_differences(saved: dict, wanted: dict) -> list[str]:
    """The top-level keys whose values differ between two configs (missing keys included), sorted.

    Example:
        >>> config_differences({"lr": 1e-3, "epochs": 2}, {"lr": 5e-4, "epochs": 2})
        ['lr']
    """
    if not isinstance(saved, dict) or not isinstance(wanted, dict):
        return []
    return sorted(key for key in saved.keys() | wanted.keys() if saved.get(key, ...) != wanted.get(key, ...))


def create_run_dir(
    experiment: str,
    root: str = "runs",
    config=None,
    resume: str = "auto",
    run_name: str | None = None,
    write: bool = True,
) -> RunDirectory:
    """Create ``<root>/<experiment>/<timestamp>/`` and write ``config.json``, or reuse an interrupted run.

    With ``resume="auto"`` the newest unfinished run of the same experiment that has a backup and an identical
    config is reused, so running the same command again after a crash continues that run. ``resume`` may also
    be the path of a run directory to continue.

    Args:
        experiment: experiment name (letters, digits, ``_.-``).
        root: the runs root directory.
        config: the experiment's config: a dataclass or a JSON-serializable dict.
        resume: ``"auto"``, ``"never"``, or the path of an existing run directory.
        run_name: fixed name instead of a timestamp (multi-worker jobs pass the same name on every worker).
        write: create directories and files (False on non-chief workers, which only need the paths).

    Returns:
        The :class:`RunDirectory`.

    Example:
        >>> run = create_run_dir("demo", root="/tmp/llm_tf_runs", config={"lr": 1e-3})  # doctest: +SKIP
        >>> os.path.exists(run.config_json)  # doctest: +SKIP
        True
    """
    if not isinstance(experiment, str) or not _EXPERIMENT_NAME.match(experiment):
        raise ValueError(
            f"experiment must be a name of letters, digits, '_', '.', '-'; got experiment={experiment!r}"
        )
    if run_name is not None and (not isinstance(run_name, str) or not _EXPERIMENT_NAME.match(run_name)):
        raise ValueError(f"run_name must be letters, digits, '_', '.', '-'; got run_name={run_name!r}")
    if resume not in RESUME_MODES:
        if not isinstance(resume, (str, os.PathLike)) or not os.path.isdir(resume):
            raise FileNotFoundError(
                f"resume must be 'auto', 'never' or an existing run directory; got resume={resume!r}"
            )
        return RunDirectory(os.fspath(resume), resumed=True)
    parent = os.path.join(root, experiment)
    if run_name is not None:
        run = RunDirectory(os.path.join(parent, run_name))
        if resume == "auto" and os.path.exists(run.backup_file) and not run.is_finished():
            return RunDirectory(run.path, resumed=True)
    else:
        if resume == "auto":
            previous = find_resumable_run(experiment, root, config)
            if previous is not None:
                return previous
        run = RunDirectory(os.path.join(parent, _new_run_name(parent)))
    if write:
        os.makedirs(run.path, exist_ok=True)
        write_json(run.config_json, config if config is not None else {})
    return run


def cpu_summary(info: dict | None = None) -> str:
    """One line naming the CPU for a report: ``AMD EPYC (AuthenticAMD, family 23 model 1; avx2 fma)``.

    Args:
        info: a :func:`cpu_description` (or :func:`machine_info`) dict; None reads this machine's.

    Returns:
        The model name, then vendor, family / model number and kernel-relevant flags where known.
    """
    info = cpu_description() if info is None else info
    details = [info["cpu_vendor"]] if info.get("cpu_vendor") else []
    if info.get("cpu_family") is not None:
        details.append(f"family {info['cpu_family']} model {info.get('cpu_model_number')}")
    details = ", ".join(details)
    if info.get("cpu_features") is not None:
        details += "; " + (" ".join(info["cpu_features"]) or "no AVX2, AVX-512 or AMX")
    name = info.get("cpu_model") or platform.processor() or platform.machine()
    return f"{name} ({details})" if details else name


def machine_info() -> dict:
    """A description of the machine: host, OS, Python, CPU (model, vendor, family / model number, the flags of
    :data:`llm_tf.runtime.CPU_FEATURES_OF_INTEREST`) and count, ``XLA_FLAGS`` (``llm_tf.runtime`` may have added
    to it), and the accelerators TensorFlow sees.

    Returns:
        A JSON-serializable dict.

    Example:
        >>> "python" in machine_info()
        True
    """
    info = {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    info.update(cpu_description())
    try:
        import tensorflow as tf

        info["gpus"] = [device.name for device in tf.config.list_physical_devices("GPU")]
        info["tpus"] = [device.name for device in tf.config.list_physical_devices("TPU")]
    except ImportError:
        pass
    return info


def library_versions() -> dict:
    """Installed versions of the libraries that influence results (None when a library is missing).

    Returns:
        A dict distribution name -> version string or None.

    Example:
        >>> library_versions()["tensorflow"] is not None
        True
    """
    versions = {}
    for name in _REPORTED_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    if versions.get("llm_tf") is None:  # a source checkout that was not pip-installed
        import llm_tf

        versions["llm_tf"] = llm_tf.__version__
    return versions


def git_commit(directory: str | None = None) -> str | None:
    """The current git commit of ``directory`` (default: this package's checkout), or None outside git.

    Args:
        directory: any directory inside the repository.

    Returns:
        The 40-hex-digit commit id, with ``+dirty`` appended when tracked files have uncommitted changes.

    Example:
        >>> commit = git_commit()
    """
    import subprocess

    directory = directory or os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def write_results(run_dir, metrics: dict, wall_time: float, extra: dict | None = None) -> str:
    """Write ``results.json``: final metrics, wall time, machine description and library versions.

    Args:
        run_dir: a :class:`RunDirectory` or a directory path.
        metrics: final metrics, e.g. ``{"loss": 0.41, "val_accuracy": 0.93}``.
        wall_time: training wall time in seconds.
        extra: more fields to record (e.g. ``{"status": "completed", "epochs": 10}``).

    Returns:
        The path of ``results.json``.

    Example:
        >>> write_results(run, {"val_accuracy": 0.93}, wall_time=812.5)  # doctest: +SKIP
        'runs/news/20250101-120000/results.json'
    """
    run = run_dir if isinstance(run_dir, RunDirectory) else RunDirectory(os.fspath(run_dir))
    if not isinstance(metrics, dict):
        raise ValueError(f"metrics must be a dict name -> value; got metrics={type(metrics).__name__}")
    check_number("wall_time", wall_time, minimum=0, kind="a number of seconds")
    results = {
        "metrics": metrics,
        "wall_time_s": float(wall_time),
        "finished_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "libraries": library_versions(),
        "git_commit": git_commit(),
    }
    results.update(extra or {})
    write_json(run.results_json, results)
    return run.results_json
