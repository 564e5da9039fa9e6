"""Pretrained vs scratch, measured: finished classification runs side by side, with paired differences over seeds.

The question of the pretraining experiments is whether a pretrained start beats a random one under the same
fine-tuning recipe. One table row is a task (a dataset and a split, e.g. "BBC News, 10% of training labels");
its columns are finished classification runs (``results.json`` of ``experiments/news_classification.py`` or
``experiments/sentiment.py``), one per start: from scratch, from a pretraining on books, on books + task texts.
For each cell the table gives the mean ± sample std over the run's seeds; for each column other than the
reference (``"scratch"`` by default), the **paired** difference column − reference over the seeds the two runs
share (seed *s* against seed *s*: the same data order and head initialization, so the pretrained start is the
only difference that seeds share), with its Student-t 95% interval; and the TF-IDF + LinearSVC baseline of
the row, from whichever run fitted it. The figures are the test split's, or with ``split="validation"`` the
validation split's: both are scored on the last weights and neither picks a checkpoint, so the second is an
independent estimate of the same difference.

A comparison is only meaningful on the same data: the runs of a row must agree on every field that decides the
training, validation and test examples (:data:`DATA_FIELDS`), or :func:`compare_runs` raises and names the
field. Recipe fields that differ between a column and the reference (other than the start and the architecture
that comes with it) are listed in ``recipe_differences``, so a table never hides an unequal recipe.

Example:
    >>> table = compare_runs([("BBC News", {"scratch": "runs/a", "books": "runs/b"})])  # doctest: +SKIP
    >>> print(format_comparison(table))  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from llm_tf.tasks import runs

# Config fields that select the examples of every split: runs compared in one row must agree on all of them.
DATA_FIELDS = (
    "data_format", "data_path", "validation_path", "test_path", "text_column", "label_column", "has_header",
    "file_pattern", "split_seed", "validation_fraction", "test_fraction", "max_train_examples", "folds",
)
# Fields that a pretrained start decides for itself (tokenizer, architecture, length), so they differ from a
# scratch run's by design and are not reported as recipe differences.
START_FIELDS = (
    "init_from", "vocabulary_size", "lower_case", "max_sequence_length", "hidden_dim", "num_layers", "num_heads",
    "intermediate_dim", "norm_first", "layer_decay",
)
# Fields that describe where or how a run executed, not what it trained.
IGNORED_FIELDS = ("data_dir", "seeds", "baseline", "baseline_c", "strategy", "num_cpu_devices", "preset")
METRICS = ("accuracy", "macro_f1")
# The held-out splits whose figures a run records per seed (see the module docstring).
SPLITS = ("test", "validation")


def load_classification_run(run_dir: str | os.PathLike, split: str = "test") -> dict[str, Any]:
    """The per-seed figures on one held-out split, baseline and config of one finished classification run.

    Args:
        run_dir: a run directory of a classification experiment (``<runs>/<experiment>/<timestamp>``).
        split: ``"test"`` or ``"validation"``.

    Returns:
        ``{"run_dir", "experiment", "config", "accuracy": {seed: value}, "macro_f1": {seed: value},
        "baseline": {"accuracy", "macro_f1"} or None}``.

    Raises:
        FileNotFoundError: the directory or its ``results.json`` is missing (an unfinished run has none).
        ValueError: an unknown split, results that are not a classification run's, hold no seed, or have no
            figures on ``split`` (a run without a validation split).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}.")
    run_dir = os.fspath(run_dir)
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"run directory {run_dir!r} does not exist.")
    results_path = os.path.join(run_dir, "results.json")
    results = runs.finished_results(run_dir)
    if results is None:
        raise FileNotFoundError(
            f"{results_path!r} does not exist: the run has not finished (rerun its command to complete it)."
        )
    transformer = results.get("transformer")
    if not isinstance(transformer, Mapping) or "per_seed" not in transformer or "config" not in results:
        raise ValueError(
            f"{results_path!r} is not the results of a classification run (no 'transformer.per_seed' / 'config'): "
            f"experiment {results.get('experiment')!r}."
        )
    per_metric: dict[str, dict[int, float]] = {metric: {} for metric in METRICS}
    for member in transformer["per_seed"]:
        if "seed" not in member or "test" not in member:
            raise ValueError(f"{results_path!r}: a per-seed entry has no 'seed' or 'test' figures.")
        if not member.get(split):
            raise ValueError(f"{results_path!r}: seed {member['seed']} has no {split} figures (the run had no "
                             f"{split} split); compare on another split.")
        for metric in METRICS:
            per_metric[metric][int(member["seed"])] = float(member[split][metric])
    if not per_metric["accuracy"]:
        raise ValueError(f"{results_path!r} holds no seed (cross-validation runs are not compared here).")
    baseline = (results.get("baseline") or {}).get(split)
    return {
        "run_dir": run_dir,
        "experiment": results.get("experiment"),
        "config": results["config"],
        **per_metric,
        "baseline": None if not baseline else {metric: float(baseline[metric]) for metric in METRICS},
    }


def paired_difference(reference: Mapping[int, float], other: Mapping[int, float]) -> dict[str, Any]:
    """``other − reference`` seed by seed over the seeds both have, summarized with a Student-t 95% interval.

    Args:
        reference: ``{seed: value}`` of the reference run (e.g. from scratch).
        other: ``{seed: value}`` of the compared run.

    Returns:
        ``{"seeds", "differences", "mean", "std", "ci95_low", "ci95_high", "n", "values"}`` (the interval is None
        for a single shared seed).

    Raises:
        ValueError: when the runs share no seed.

    Example:
        >>> paired_difference({0: 0.90, 1: 0.80}, {0: 0.95, 1: 0.85, 2: 0.5})["differences"]
        [0.05, 0.05]
    """
    seeds = sorted(set(reference) & set(other))
    if not seeds:
        raise ValueError(
            f"the runs share no seed (reference seeds {sorted(reference)}, other {sorted(other)}): a paired "
            "difference needs the same seeds; run the missing ones with --seeds."
        )
    differences = [round(other[seed] - reference[seed], 12) for seed in seeds]
    return {"seeds": seeds, "differences": differences, **runs.summarize_values(differences)}


def _data_mismatch(reference: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    return [field for field in DATA_FIELDS if reference.get(field) != other.get(field)]


def _recipe_differences(reference: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    skipped = set(DATA_FIELDS) | set(START_FIELDS) | set(IGNORED_FIELDS)
    fields = sorted((set(reference) | set(other)) - skipped)
    return [f"{field}: {reference.get(field)!r} → {other.get(field)!r}" for field in fields
            if reference.get(field) != other.get(field)]


def compare_runs(
    rows: Sequence[tuple[str, Mapping[str, str | os.PathLike]]],
    reference: str = "scratch",
    metric: str = "accuracy",
    split: str = "test",
) -> dict[str, Any]:
    """The pretrained-vs-scratch table over finished classification runs.

    Args:
        rows: ``(label, {column: run_dir})`` per task, columns in display order; a row may leave columns out.
        reference: the column the others are paired against (a row without it gets no differences).
        metric: ``"accuracy"`` or ``"macro_f1"``.
        split: the held-out split the figures come from, ``"test"`` or ``"validation"``.

    Returns:
        ``{"metric", "split", "reference", "columns", "rows": [{"label", "cells": {column: {"run_dir", "seeds",
        "summary", "init_from"}}, "baseline", "differences": {column: paired summary},
        "recipe_differences": {column: [...]}}]}``.

    Raises:
        ValueError: an unknown metric or split, an empty row, runs of one row on different data (names the
            field), or a run without figures on ``split``.
        FileNotFoundError: a run directory or its results are missing.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}; got {metric!r}.")
    if not rows:
        raise ValueError("no rows to compare.")
    columns: list[str] = []
    table_rows = []
    for label, members in rows:
        if not members:
            raise ValueError(f"row {label!r} names no run.")
        loaded = {column: load_classification_run(path, split) for column, path in members.items()}
        columns.extend(column for column in members if column not in columns)
        first_column, first = next(iter(loaded.items()))
        for column, run in loaded.items():
            mismatch = _data_mismatch(first["config"], run["config"])
            if mismatch:
                details = ", ".join(f"{field} {first['config'].get(field)!r} vs {run['config'].get(field)!r}"
                                    for field in mismatch)
                raise ValueError(
                    f"row {label!r}: runs {first_column!r} ({first['run_dir']}) and {column!r} ({run['run_dir']}) "
                    f"are on different data ({details}); a row compares starts on the same examples."
                )
        baselines = [run["baseline"][metric] for run in loaded.values() if run["baseline"] is not None]
        cells = {
            column: {
                "run_dir": run["run_dir"],
                "seeds": sorted(run[metric]),
                "summary": runs.summarize_values([run[metric][seed] for seed in sorted(run[metric])]),
                "init_from": run["config"].get("init_from"),
            }
            for column, run in loaded.items()
        }
        differences, recipe = {}, {}
        if reference in loaded:
            for column, run in loaded.items():
                if column != reference:
                    differences[column] = paired_difference(loaded[reference][metric], run[metric])
                    recipe[column] = _recipe_differences(loaded[reference]["config"], run["config"])
        table_rows.append({
            "label": label,
            "cells": cells,
            # Every run that fitted the baseline did so on the same split (checked above): the first one is it.
            "baseline": baselines[0] if baselines else None,
            "differences": differences,
            "recipe_differences": recipe,
        })
    return {"metric": metric, "split": split, "reference": reference, "columns": columns, "rows": table_rows}


def _percent(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"


def format_comparison(comparison: Mapping[str, Any]) -> str:
    """The comparison as a Markdown table (percent), then one line per paired difference and recipe difference.

    Cells read ``mean ± std (n seeds)``; a difference reads ``mean [95% interval] points over seeds …``.
    """
    columns = list(comparison["columns"])
    reference = comparison["reference"]
    header = ["task", *columns, "TF-IDF + LinearSVC"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes = []
    for row in comparison["rows"]:
        cells = []
        for column in columns:
            cell = row["cells"].get(column)
            if cell is None:
                cells.append("—")
                continue
            summary = cell["summary"]
            spread = f" ± {_percent(summary['std'])}" if summary["n"] > 1 else ""
            cells.append(f"{_percent(summary['mean'])}{spread} ({summary['n']} seed{'s' if summary['n'] > 1 else ''})")
        lines.append("| " + " | ".join([row["label"], *cells, _percent(row["baseline"])]) + " |")
        for column, difference in row["differences"].items():
            interval = (f"[{_percent(difference['ci95_low'], True)}, {_percent(difference['ci95_high'], True)}]"
                        if difference["ci95_low"] is not None else "[no interval: one seed]")
            per_seed = ", ".join(f"{seed}: {_percent(value, True)}"
                                 for seed, value in zip(difference["seeds"], difference["differences"]))
            notes.append(f"- {row['label']}: {column} − {reference} = {_percent(difference['mean'], True)} points "
                         f"{interval} (paired by seed; {per_seed})")
            if row["recipe_differences"].get(column):
                notes.append(f"  - recipe differs from {reference}: " + "; ".join(row["recipe_differences"][column]))
    metric = comparison["metric"].replace("_", "-")
    split = comparison.get("split", "test").capitalize()
    return "\n".join([f"{split} {metric}, % (mean ± sample std over seeds):", "", *lines, "", *notes])


__all__ = [
    "DATA_FIELDS",
    "SPLITS",
    "compare_runs",
    "format_comparison",
    "load_classification_run",
    "paired_difference",
]
