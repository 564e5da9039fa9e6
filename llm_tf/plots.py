"""Plots for runs: training curves, confusion matrices and attention heatmaps, written as PNG files.

Every function draws on a fresh ``matplotlib.figure.Figure`` (never through ``pyplot``), so nothing
touches the global backend, no window is ever opened, and the functions are safe to call from a
training callback or a headless CI job. Each function writes one PNG (creating missing parent folders)
and returns its path as a string. The image measures ``figsize * dpi`` pixels exactly: the figures use
a constrained layout instead of ``bbox_inches="tight"`` so that the size stays predictable.

Example:
    >>> from llm_tf.plots import plot_training_curves
    >>> plot_training_curves({"loss": [2.1, 1.7], "val_loss": [2.2, 1.9]}, "runs/demo/curves.png")
    'runs/demo/curves.png'
"""

import csv
import math
import os
import pathlib

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from llm_tf.checks import check_number

# Columns of a CSVLogger file (or keys of a history) that index the curve rather than being a curve.
_INDEX_COLUMNS = ("epoch", "step")
_VALIDATION_PREFIX = "val_"
_MAX_COLUMNS = 3


def _save(figure, path, dpi):
    path = pathlib.Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=dpi)
    return str(path)


def _check_figure_args(figsize, dpi):
    if figsize is not None:
        if len(figsize) != 2 or not all(isinstance(v, int | float) and v > 0 for v in figsize):
            raise ValueError(f"`figsize` must be a (width, height) pair of positive inches; got figsize={figsize!r}.")
    check_number("dpi", dpi, minimum=0, exclusive_minimum=True)


def _parse_csv_value(text):
    # CSVLogger writes "NA"-like or empty cells when a metric is missing for an epoch; keep them as gaps.
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def read_history_csv(path):
    """Read a ``keras.callbacks.CSVLogger`` file into a history dict.

    Args:
        path: the CSV file; its first row names the columns (``epoch`` or ``step`` plus one column per
            metric).

    Returns:
        A dict of column name → list of floats (unparsable cells become NaN), in file order.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the file has no header row.

    Example:
        >>> history = read_history_csv("runs/exp/training_log.csv")
        >>> history["loss"][:2]
        [2.31, 1.87]
    """
    path = pathlib.Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"`history` CSV file not found: history={str(path)!r}.")
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise ValueError(f"`history` CSV file {str(path)!r} is empty; expected a CSVLogger header row.")
        columns = {name: [] for name in header}
        for row in reader:
            if not row:
                continue
            for name, cell in zip(header, row):
                columns[name].append(_parse_csv_value(cell))
    return columns


def _history_as_dict(history):
    if isinstance(history, str | os.PathLike):
        return read_history_csv(history)
    # Accept a keras.callbacks.History object too (duck-typed, so this module never imports keras).
    if not isinstance(history, dict) and isinstance(getattr(history, "history", None), dict):
        history = history.history
    if not isinstance(history, dict):
        raise ValueError(
            "`history` must be a dict of metric name -> list of values, a keras History, or a path to a "
            f"CSVLogger file; got history of type {type(history).__name__}."
        )
    return {str(name): [float(v) for v in np.asarray(values, dtype=float).reshape(-1)] for name, values in history.items()}


def _group_curves(history):
    """Pair each metric ``x`` with ``val_x`` so that both share one set of axes."""
    names = [name for name in history if name not in _INDEX_COLUMNS]
    groups = {}
    for name in names:
        base = name[len(_VALIDATION_PREFIX):] if name.startswith(_VALIDATION_PREFIX) else name
        if name.startswith(_VALIDATION_PREFIX) and base not in history:
            base = name  # a validation-only metric keeps its full name as the panel title
        groups.setdefault(base, []).append(name)
    # Training curve first, validation second, in each panel.
    return {base: sorted(members, key=lambda n: n.startswith(_VALIDATION_PREFIX) and n != base)
            for base, members in groups.items()}


def plot_training_curves(history, path, title=None, figsize=None, dpi=100):
    """Plot every metric of a training run against the epoch, one panel per metric.

    A metric ``x`` and its validation counterpart ``val_x`` are drawn on the same axes. The x axis is
    the ``epoch`` (or ``step``) column when the history has one, else 1, 2, 3, ….

    Args:
        history: a dict of metric name → list of per-epoch values (``keras.callbacks.History.history``),
            a ``keras.callbacks.History`` object, or the path of a CSV written by
            ``keras.callbacks.CSVLogger``.
        path: where to write the PNG.
        title: optional figure title.
        figsize: ``(width, height)`` in inches; by default 4.5 × 3.5 inches per panel, up to three panels
            a row.
        dpi: pixels per inch of the PNG.

    Returns:
        The path of the written PNG, as a string.

    Raises:
        ValueError: when the history holds no metric, or the metrics have different lengths.
        FileNotFoundError: when ``history`` is a path that does not exist.

    Example:
        >>> plot_training_curves(model.fit(...).history, "runs/exp/curves.png", title="GPT tiny")
        'runs/exp/curves.png'
    """
    _check_figure_args(figsize, dpi)
    curves = _history_as_dict(history)
    groups = _group_curves(curves)
    if not groups:
        raise ValueError(f"`history` holds no metric to plot; got columns {sorted(curves)}.")
    lengths = {name: len(values) for name, values in curves.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"`history` metrics must all have the same number of values; got lengths {lengths}.")
    num_points = next(iter(lengths.values()))
    if num_points == 0:
        raise ValueError("`history` metrics are empty; expected at least one value per metric.")

    index_name = next((name for name in _INDEX_COLUMNS if name in curves), None)
    if index_name is None:
        x_values, x_label = np.arange(1, num_points + 1), "epoch"
    else:
        x_values, x_label = np.asarray(curves[index_name]), index_name
        if index_name == "epoch":
            # CSVLogger and History count epochs from 0; people count them from 1.
            x_values = x_values + 1

    num_panels = len(groups)
    num_columns = min(_MAX_COLUMNS, num_panels)
    num_rows = math.ceil(num_panels / num_columns)
    if figsize is None:
        figsize = (4.5 * num_columns, 3.5 * num_rows)
    figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    axes = figure.subplots(num_rows, num_columns, squeeze=False).reshape(-1)
    for axis, (base, members) in zip(axes, groups.items()):
        for name in members:
            style = "--" if name.startswith(_VALIDATION_PREFIX) and name != base else "-"
            axis.plot(x_values, curves[name], style, marker="o", markersize=3, label=name)
        axis.set_title(base)
        axis.set_xlabel(x_label)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
    for axis in axes[num_panels:]:
        axis.set_visible(False)
    if title:
        figure.suptitle(title)
    return _save(figure, path, dpi)


def plot_confusion_matrix(matrix, class_names, path, normalize=False, title=None, figsize=None, dpi=100):
    """Draw a confusion matrix as an annotated heatmap (rows: true class, columns: predicted class).

    Args:
        matrix: square array-like ``(num_classes, num_classes)`` of counts, ``matrix[i][j]`` = number
            of examples of true class ``i`` predicted as ``j`` (scikit-learn's convention; the nested
            lists from ``llm_tf.metrics.classification_report`` fit as they are).
        class_names: one label per class, in matrix order.
        path: where to write the PNG.
        normalize: when True, divide each row by its total so that cells read as recall fractions; a
            class with no examples keeps a row of zeros.
        title: optional axes title.
        figsize: ``(width, height)`` in inches; by default grows with the number of classes.
        dpi: pixels per inch of the PNG.

    Returns:
        The path of the written PNG, as a string.

    Raises:
        ValueError: when the matrix is not square, or its size differs from ``len(class_names)``.

    Example:
        >>> plot_confusion_matrix([[5, 1], [2, 7]], ["neg", "pos"], "runs/exp/confusion.png", normalize=True)
        'runs/exp/confusion.png'
    """
    _check_figure_args(figsize, dpi)
    values = np.asarray(matrix, dtype=float)
    class_names = [str(name) for name in class_names]
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise ValueError(f"`matrix` must be square (num_classes, num_classes); got shape {values.shape}.")
    if values.shape[0] != len(class_names):
        raise ValueError(
            f"`class_names` must name every row of `matrix`: matrix has shape {values.shape} but "
            f"len(class_names)={len(class_names)}."
        )
    if values.shape[0] == 0:
        raise ValueError("`matrix` is empty; expected at least one class.")
    if normalize:
        row_totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, row_totals, out=np.zeros_like(values), where=row_totals > 0)

    num_classes = len(class_names)
    if figsize is None:
        side = min(max(4.0, 0.6 * num_classes + 2.5), 16.0)
        figsize = (side + 1.0, side)
    figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    axis = figure.subplots()
    image = axis.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else max(values.max(), 1.0))
    figure.colorbar(image, ax=axis)
    axis.set_xticks(range(num_classes), class_names, rotation=45, ha="right")
    axis.set_yticks(range(num_classes), class_names)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    # Cell labels only while they stay legible.
    if num_classes <= 30:
        threshold = (values.max() if values.size else 0.0) / 2.0
        for row in range(num_classes):
            for column in range(num_classes):
                cell = values[row, column]
                text = f"{cell:.2f}" if normalize else f"{cell:g}"
                axis.text(column, row, text, ha="center", va="center", fontsize="small",
                          color="white" if cell > threshold else "black")
    axis.set_title(title or ("confusion matrix (row-normalized)" if normalize else "confusion matrix"))
    return _save(figure, path, dpi)


def plot_attention_heatmaps(weights, tokens, path, title=None, query_tokens=None, figsize=None, dpi=100):
    """Draw the attention weights of one example, one heatmap per head.

    Args:
        weights: array-like ``(heads, query_length, key_length)`` of attention probabilities for a
            single example (take ``scores[0]`` from a ``(batch, heads, q, k)`` tensor first).
        tokens: the key tokens, ``len(tokens) == key_length``; they also label the queries when
            ``query_tokens`` is not given and ``query_length == key_length`` (self-attention).
        path: where to write the PNG.
        title: optional figure title.
        query_tokens: labels of the queries, needed when ``query_length != key_length`` (cross-attention
            or one cached decoding step).
        figsize: ``(width, height)`` in inches; by default 3.5 inches per head, up to four heads a row.
        dpi: pixels per inch of the PNG.

    Returns:
        The path of the written PNG, as a string.

    Raises:
        ValueError: when ``weights`` is not rank 3 or the token lists do not match its shape.

    Example:
        >>> plot_attention_heatmaps(scores[0], ["[CLS]", "the", "cat", "[SEP]"], "runs/exp/attention.png")
        'runs/exp/attention.png'
    """
    _check_figure_args(figsize, dpi)
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 3:
        raise ValueError(
            f"`weights` must have rank 3 (heads, query_length, key_length); got shape {weights.shape}. "
            "Select one example of a batch first."
        )
    num_heads, query_length, key_length = weights.shape
    if num_heads == 0:
        raise ValueError(f"`weights` has no heads; got shape {weights.shape}.")
    tokens = [str(token) for token in tokens]
    if len(tokens) != key_length:
        raise ValueError(
            f"`tokens` must label every key: weights has key_length={key_length} but len(tokens)={len(tokens)}."
        )
    if query_tokens is None:
        if query_length != key_length:
            raise ValueError(
                f"`query_tokens` is required when query_length ({query_length}) != key_length ({key_length})."
            )
        query_tokens = tokens
    query_tokens = [str(token) for token in query_tokens]
    if len(query_tokens) != query_length:
        raise ValueError(
            f"`query_tokens` must label every query: weights has query_length={query_length} but "
            f"len(query_tokens)={len(query_tokens)}."
        )

    num_columns = min(4, num_heads)
    num_rows = math.ceil(num_heads / num_columns)
    if figsize is None:
        figsize = (3.5 * num_columns + 0.8, 3.5 * num_rows)
    figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    axes = figure.subplots(num_rows, num_columns, squeeze=False).reshape(-1)
    # Shared colour scale across heads so that heads can be compared by eye.
    upper = max(float(weights.max()), 1e-12)
    image = None
    for head, axis in enumerate(axes[:num_heads]):
        image = axis.imshow(weights[head], cmap="viridis", vmin=0.0, vmax=upper, aspect="auto")
        axis.set_title(f"head {head}")
        axis.set_xticks(range(key_length), tokens, rotation=90, fontsize="x-small")
        axis.set_yticks(range(query_length), query_tokens, fontsize="x-small")
    for axis in axes[num_heads:]:
        axis.set_visible(False)
    figure.colorbar(image, ax=axes[:num_heads].tolist(), shrink=0.8)
    if title:
        figure.suptitle(title)
    return _save(figure, path, dpi)
