"""Run directories holding several trainings (one per seed or cross-validation fold), resume, and summaries.

Layout::

    <root>/<experiment>/<timestamp>/    config.json, the shared artefacts (tokenizer, ...), results.json at the end
        seed_<s>/  or  fold_<k>/         one training each: a ``llm_tf.training.RunDirectory`` of its own
                                          (config.json = the run's config + the seed/fold, checkpoints, backup,
                                          results.json when finished)

:func:`open_run` creates the directory, or continues the newest unfinished run of the same config (the lookup
is :func:`llm_tf.training.find_resumable_run`); :func:`member_run_dir` gives a seed's or fold's directory and
:func:`finished_results` tells whether it still has to run, so an interrupted experiment resumes where it
stopped. :func:`summarize_values` gives the mean, the sample standard deviation and a Student-t 95% confidence
interval of the mean over seeds or folds.

Example:
    >>> summarize_values([0.9, 0.92, 0.94])["mean"]
    0.92
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from llm_tf.checks import check_probability
from llm_tf.training.run_dir import RESUME_MODES, RunDirectory, create_run_dir, find_resumable_run, write_json


def open_run(
    experiment: str, root: str, config: Mapping[str, Any], resume: str = "auto"
) -> tuple[RunDirectory, dict[str, Any]]:
    """Create ``<root>/<experiment>/<timestamp>/`` with ``config.json``, or reuse an interrupted run.

    Args:
        experiment: the experiment name.
        root: the runs root (``--output-dir``).
        config: the run's configuration as a JSON-friendly dict.
        resume: ``"auto"`` (continue the newest unfinished run whose ``config.json`` equals ``config``),
            ``"never"`` (always a new directory), or the path of a run directory to continue.

    Returns:
        ``(run, config)``: the directory and the config to use; resuming a given path returns the config saved
        there (the flags of the new command are ignored), otherwise ``config`` itself.

    Raises:
        FileNotFoundError: when ``resume`` is a path that is not a run directory with a ``config.json``.

    Example:
        >>> run, config = open_run("demo", "/tmp/llm_tf_runs", {"epochs": 2})  # doctest: +SKIP
    """
    config = json.loads(json.dumps(dict(config)))
    if resume not in RESUME_MODES:
        run = create_run_dir(experiment, root=root, resume=resume)
        saved = run.read_config()
        if saved is None:
            raise FileNotFoundError(f"resume={resume!r} holds no config.json; expected a run directory.")
        return run, saved
    if resume == "auto":
        previous = find_resumable_run(experiment, root=root, config=config, require_backup=False)
        if previous is not None:
            return previous, config
    return create_run_dir(experiment, root=root, config=config, resume="never"), config


def member_run_dir(run: RunDirectory | str, name: str, config: Mapping[str, Any]) -> RunDirectory:
    """``<run>/<name>/`` as a :class:`~llm_tf.training.RunDirectory` with its own ``config.json`` (kept if present).

    Args:
        run: the parent run directory.
        name: the member's name, e.g. ``"seed_0"`` or ``"fold_3"``.
        config: the member's config (the run's config plus its seed/fold).

    Returns:
        The member's run directory (``resumed=True`` when it already existed).
    """
    parent = run.path if isinstance(run, RunDirectory) else os.fspath(run)
    if not name or os.sep in name or name.startswith("."):
        raise ValueError(f"`name` must be a plain directory name such as 'seed_0'; got name={name!r}.")
    path = os.path.join(parent, name)
    existed = os.path.isdir(path)
    os.makedirs(path, exist_ok=True)
    member = RunDirectory(path, resumed=existed)
    if not os.path.isfile(member.config_json):
        write_json(member.config_json, dict(config))
    return member


def seed_run_dir(run: RunDirectory | str, seed: int, config: Mapping[str, Any]) -> RunDirectory:
    """``<run>/seed_<seed>/`` (see :func:`member_run_dir`); its config is ``config`` plus ``"seed"``."""
    return member_run_dir(run, f"seed_{int(seed)}", {**config, "seed": int(seed)})


def fold_run_dir(
    run: RunDirectory | str, fold: int, config: Mapping[str, Any], seed: int | None = None
) -> RunDirectory:
    """``<run>/fold_<fold>/`` (or ``fold_<fold>_seed_<seed>/`` with a seed); config plus ``"fold"``/``"seed"``."""
    name = f"fold_{int(fold)}" if seed is None else f"fold_{int(fold)}_seed_{int(seed)}"
    extra = {"fold": int(fold)} if seed is None else {"fold": int(fold), "seed": int(seed)}
    return member_run_dir(run, name, {**config, **extra})


def finished_results(run: RunDirectory | str, required: Sequence[str] = ()) -> dict[str, Any] | None:
    """A finished training's ``results.json`` as a dict, or None when it still has to run.

    Args:
        run: the training's run directory.
        required: keys the results must hold to count as finished (e.g. ``["test"]``: ``llm_tf.training.train``
            writes ``results.json`` before the experiment adds its test report).

    Returns:
        The results, or None.
    """
    run = run if isinstance(run, RunDirectory) else RunDirectory(os.fspath(run))
    if not run.is_finished():
        return None
    with open(run.results_json, encoding="utf-8") as file:
        results = json.load(file)
    return results if all(key in results for key in required) else None


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    """The mean and the sample standard deviation (``ddof=1``; 0.0 for a single value).

    Args:
        values: at least one number.

    Returns:
        ``(mean, std)``, rounded to 12 decimals.

    Example:
        >>> mean_and_std([0.97, 0.98, 0.99])
        (0.98, 0.01)
    """
    values = [float(value) for value in values]
    if not values:
        raise ValueError("`values` is empty; expected at least one number.")
    mean = sum(values) / len(values)
    if len(values) == 1:
        return round(mean, 12), 0.0
    variance = sum((value - mean) ** 2 for value in values) / (len(values) - 1)
    return round(mean, 12), round(math.sqrt(variance), 12)


def confidence_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean: ``mean ± t_{(1+c)/2, n-1} · std / √n``.

    With one value there is no spread to estimate: the interval is ``(nan, nan)``. Seeds or folds of one
    experiment are not independent samples of a population, so read the interval as the run-to-run spread
    of this recipe, not as a guarantee.

    Args:
        values: the per-seed or per-fold figures.
        confidence: the coverage in (0, 1).

    Returns:
        ``(low, high)``.

    Example:
        >>> low, high = confidence_interval([0.9, 0.92, 0.94])
        >>> round(low, 4), round(high, 4)
        (0.8703, 0.9697)
    """
    check_probability("confidence", confidence, allow_zero=False, allow_one=False)
    mean, std = mean_and_std(values)
    count = len(values)
    if count < 2:
        return math.nan, math.nan
    from scipy import stats

    half = float(stats.t.ppf((1 + confidence) / 2, count - 1)) * std / math.sqrt(count)
    return round(mean - half, 12), round(mean + half, 12)


def summarize_values(values: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """``{"values", "n", "mean", "std", "ci95_low", "ci95_high"}`` of per-seed or per-fold figures.

    Args:
        values: at least one number.
        confidence: the interval's coverage (the keys say ``ci95`` only for 0.95; otherwise ``ci<pct>``).

    Returns:
        A JSON-friendly dict (an undefined interval is None).

    Example:
        >>> summarize_values([0.5])["ci95_low"] is None
        True
    """
    mean, std = mean_and_std(values)
    low, high = confidence_interval(values, confidence)
    tag = f"ci{round(confidence * 100):d}"
    return {
        "values": [float(value) for value in values],
        "n": len(values),
        "mean": mean,
        "std": std,
        f"{tag}_low": None if math.isnan(low) else low,
        f"{tag}_high": None if math.isnan(high) else high,
    }


def format_mean_std(values: Sequence[float], interval: bool = False, digits: int = 4) -> str:
    """``"0.9700 ± 0.0050"`` (one value: ``"0.9700"``); with ``interval`` also ``" [0.9576, 0.9824]"``.

    Example:
        >>> format_mean_std([0.96, 0.98])
        '0.9700 ± 0.0141'
    """
    mean, std = mean_and_std(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    text = f"{mean:.{digits}f} ± {std:.{digits}f}"
    if interval:
        low, high = confidence_interval(values)
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


__all__ = [
    "confidence_interval",
    "finished_results",
    "fold_run_dir",
    "format_mean_std",
    "mean_and_std",
    "member_run_dir",
    "open_run",
    "seed_run_dir",
    "summarize_values",
]
