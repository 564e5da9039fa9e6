"""Accuracy, precision/recall/F1 (per class, macro and weighted) and the confusion matrix.

The numbers follow scikit-learn's definitions with ``labels=range(num_classes)``: every class named in
``class_names`` is counted, including classes absent from both ``y_true`` and ``y_pred``. When a ratio
has a zero denominator (a class never predicted → precision undefined; a class with no true examples →
recall undefined; a class absent from both → F1 undefined), it takes the value ``zero_division``
(default 0.0, scikit-learn's ``zero_division=0``). F1 is ``2·TP / (2·TP + FP + FN)``, so a class with no
true positive always has F1 0. Macro averages are unweighted means over all classes (with
``zero_division=nan``, undefined values are left out of the mean, as scikit-learn does).
"""

import math

import numpy as np

from llm_tf.checks import check_positive_int, is_number

_ZERO_DIVISION_CHOICES = "0.0, 1.0 or float('nan')"


def _check_zero_division(zero_division):
    valid = is_number(zero_division)
    if valid and not (math.isnan(zero_division) or zero_division in (0, 1)):
        valid = False
    if not valid:
        raise ValueError(f"`zero_division` must be {_ZERO_DIVISION_CHOICES}; got zero_division={zero_division!r}.")
    return float(zero_division)


def _as_label_array(name, labels):
    if hasattr(labels, "numpy") and callable(labels.numpy):
        labels = labels.numpy()  # eager tf.Tensor
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"`{name}` must be a 1-D sequence of integer class ids; got shape {array.shape}. "
            "Take the argmax of scores or one-hot labels first."
        )
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
            array = array.astype(np.int64)
        else:
            raise ValueError(
                f"`{name}` must hold integer class ids; got dtype {array.dtype} (first values {array[:5].tolist()})."
            )
    return array.astype(np.int64)


def _check_class_names(class_names):
    if isinstance(class_names, str):
        raise ValueError(f"`class_names` must be a sequence of names, not one string; got {class_names!r}.")
    names = [str(name) for name in class_names]
    if not names:
        raise ValueError("`class_names` is empty; expected one name per class.")
    if len(set(names)) != len(names):
        raise ValueError(f"`class_names` must be unique; got {names}.")
    return names


def _check_labels(y_true, y_pred, num_classes):
    y_true = _as_label_array("y_true", y_true)
    y_pred = _as_label_array("y_pred", y_pred)
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"`y_true` and `y_pred` must have the same length; got len(y_true)={len(y_true)} and "
            f"len(y_pred)={len(y_pred)}."
        )
    if len(y_true) == 0:
        raise ValueError("`y_true` and `y_pred` are empty; expected at least one example.")
    for name, array in (("y_true", y_true), ("y_pred", y_pred)):
        outside = array[(array < 0) | (array >= num_classes)]
        if outside.size:
            raise ValueError(
                f"`{name}` holds class ids outside [0, {num_classes}) (num_classes from `class_names`/"
                f"`num_classes`); got {sorted(set(outside.tolist()))[:10]}."
            )
    return y_true, y_pred


def confusion_matrix(y_true, y_pred, num_classes):
    """Count matrix ``(num_classes, num_classes)``: entry ``[i][j]`` = examples of true class i predicted as j.

    Args:
        y_true: integer class ids ``(examples,)``.
        y_pred: integer class ids ``(examples,)``.
        num_classes: number of classes; ids must lie in ``[0, num_classes)``.

    Returns:
        An ``int64`` numpy array (rows: true class, columns: predicted class, scikit-learn's layout).

    Raises:
        ValueError: on empty input, different lengths, non-integer ids or ids out of range.

    Example:
        >>> confusion_matrix([0, 1, 1], [0, 1, 0], num_classes=2).tolist()
        [[1, 0], [1, 1]]
    """
    check_positive_int("num_classes", num_classes)
    y_true, y_pred = _check_labels(y_true, y_pred, int(num_classes))
    flat_counts = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat_counts.reshape(num_classes, num_classes)


def _safe_ratio(numerator, denominator, zero_division):
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = numerator / denominator
    return np.where(denominator > 0, ratio, zero_division)


def _average(values, weights=None):
    """Mean that skips NaN entries (scikit-learn's treatment of ``zero_division=nan``)."""
    defined = ~np.isnan(values)
    if not defined.any():
        return math.nan
    if weights is None:
        return float(values[defined].mean())
    weights = weights[defined]
    return float(np.sum(values[defined] * weights) / weights.sum()) if weights.sum() > 0 else 0.0


def classification_report(y_true, y_pred, class_names, zero_division=0.0):
    """Accuracy, per-class and averaged precision/recall/F1, and the confusion matrix, as a plain dict.

    Args:
        y_true: integer class ids ``(examples,)`` (list, numpy array or tensor; ``(examples, 1)`` is
            squeezed).
        y_pred: predicted integer class ids ``(examples,)``.
        class_names: one name per class, index = class id. Classes never seen in the data still get
            a row (with support 0).
        zero_division: value of an undefined ratio (see the module docstring): 0.0 (default, as
            scikit-learn's ``zero_division=0``), 1.0 or ``float("nan")``.

    Returns:
        A JSON-serialisable dict::

            {"accuracy", "macro_precision", "macro_recall", "macro_f1",
             "weighted_precision", "weighted_recall", "weighted_f1",
             "per_class": {name: {"precision", "recall", "f1", "support"}},
             "confusion_matrix": [[int, ...], ...],   # rows true, columns predicted
             "class_names": [...], "num_examples": int}

    Raises:
        ValueError: on empty input, different lengths, ids outside ``[0, len(class_names))``,
            duplicate class names or an unsupported ``zero_division``.

    Example:
        >>> report = classification_report([0, 1, 1, 2], [0, 1, 0, 2], ["neg", "pos", "neutral"])
        >>> report["accuracy"], round(report["macro_f1"], 4), report["per_class"]["pos"]["recall"]
        (0.75, 0.7778, 0.5)
    """
    zero_division = _check_zero_division(zero_division)
    names = _check_class_names(class_names)
    matrix = confusion_matrix(y_true, y_pred, len(names))

    true_positives = np.diag(matrix).astype(float)
    predicted_counts = matrix.sum(axis=0).astype(float)  # TP + FP
    support = matrix.sum(axis=1).astype(float)  # TP + FN
    precision = _safe_ratio(true_positives, predicted_counts, zero_division)
    recall = _safe_ratio(true_positives, support, zero_division)
    f1 = _safe_ratio(2.0 * true_positives, predicted_counts + support, zero_division)

    report = {
        "accuracy": float(true_positives.sum() / matrix.sum()),
        "macro_precision": _average(precision),
        "macro_recall": _average(recall),
        "macro_f1": _average(f1),
        "weighted_precision": _average(precision, support),
        "weighted_recall": _average(recall, support),
        "weighted_f1": _average(f1, support),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        "confusion_matrix": matrix.tolist(),
        "class_names": names,
        "num_examples": int(matrix.sum()),
    }
    return report
