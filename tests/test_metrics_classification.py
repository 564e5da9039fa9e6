"""Classification metrics equal scikit-learn's (``labels=range(n)``); perplexity from cross-entropy."""

import math
import re

import numpy as np
import pytest
from sklearn import metrics as sklearn_metrics

from llm_tf.metrics import classification_report, confusion_matrix, perplexity

CLASS_NAMES = ["negative", "neutral", "positive"]


def _sklearn_report(y_true, y_pred, num_classes, zero_division):
    labels = list(range(num_classes))
    per_class = sklearn_metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=zero_division
    )
    averaged = {
        average: sklearn_metrics.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=zero_division
        )[:3]
        for average in ("macro", "weighted")
    }
    return per_class, averaged


def _assert_matches_sklearn(y_true, y_pred, class_names, zero_division=0.0):
    report = classification_report(y_true, y_pred, class_names, zero_division=zero_division)
    (precision, recall, f1, support), averaged = _sklearn_report(y_true, y_pred, len(class_names), zero_division)
    assert report["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(y_true, y_pred))
    for index, name in enumerate(class_names):
        entry = report["per_class"][name]
        assert entry["support"] == support[index]
        np.testing.assert_allclose(
            [entry["precision"], entry["recall"], entry["f1"]], [precision[index], recall[index], f1[index]]
        )
    for average, values in averaged.items():
        mine = [report[f"{average}_precision"], report[f"{average}_recall"], report[f"{average}_f1"]]
        np.testing.assert_allclose(mine, values)
    expected_matrix = sklearn_metrics.confusion_matrix(y_true, y_pred, labels=list(range(len(class_names))))
    assert report["confusion_matrix"] == expected_matrix.tolist()
    return report


@pytest.mark.parametrize("zero_division", [0.0, 1.0, float("nan")])
def test_random_cases_equal_scikit_learn(zero_division):
    rng = np.random.default_rng(42)
    for _ in range(25):
        num_classes = int(rng.integers(2, 6))
        size = int(rng.integers(1, 40))
        # Labels drawn from fewer ids than classes, so that absent classes occur often.
        y_true = rng.integers(0, num_classes - int(rng.integers(0, 2)), size)
        y_pred = rng.integers(0, num_classes, size)
        _assert_matches_sklearn(y_true, y_pred, [f"class_{i}" for i in range(num_classes)], zero_division)


def test_known_case_by_hand():
    report = _assert_matches_sklearn([0, 1, 1, 2], [0, 1, 0, 2], CLASS_NAMES)
    assert report["accuracy"] == 0.75
    assert report["per_class"]["negative"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert report["per_class"]["neutral"]["recall"] == 0.5
    assert report["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert report["num_examples"] == 4 and report["class_names"] == CLASS_NAMES


def test_class_absent_from_true_and_predicted_labels_has_f1_zero_and_counts_in_macro():
    y_true, y_pred = [0, 0, 2, 2], [0, 2, 2, 2]
    report = _assert_matches_sklearn(y_true, y_pred, CLASS_NAMES, zero_division=0.0)
    assert report["per_class"]["neutral"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    present_f1 = [report["per_class"][name]["f1"] for name in ("negative", "positive")]
    assert report["macro_f1"] == pytest.approx(sum(present_f1) / 3)


def test_class_never_predicted_and_class_never_true():
    # "neutral" occurs in y_true only: precision undefined -> 0; "positive" is predicted but never true.
    report = _assert_matches_sklearn([0, 1, 1], [0, 2, 0], CLASS_NAMES)
    assert report["per_class"]["neutral"]["precision"] == 0.0 and report["per_class"]["neutral"]["f1"] == 0.0
    assert report["per_class"]["positive"]["recall"] == 0.0 and report["per_class"]["positive"]["support"] == 0


def test_single_example_and_array_like_inputs():
    report = _assert_matches_sklearn(np.array([[2]]), np.array([2.0]), CLASS_NAMES)
    assert report["accuracy"] == 1.0 and report["per_class"]["positive"]["f1"] == 1.0
    assert report["macro_f1"] == pytest.approx(1 / 3)


def test_confusion_matrix_layout_rows_true_columns_predicted():
    matrix = confusion_matrix([0, 1, 1, 2, 2, 2], [0, 0, 1, 2, 2, 1], num_classes=4)
    assert matrix.shape == (4, 4)
    assert matrix.tolist() == sklearn_metrics.confusion_matrix(
        [0, 1, 1, 2, 2, 2], [0, 0, 1, 2, 2, 1], labels=[0, 1, 2, 3]
    ).tolist()
    assert matrix[1, 0] == 1 and matrix.sum() == 6


@pytest.mark.parametrize(
    ("y_true", "y_pred", "class_names", "kwargs", "message"),
    [
        ([0, 1], [0], CLASS_NAMES, {}, "len(y_true)=2 and len(y_pred)=1"),
        ([], [], CLASS_NAMES, {}, "are empty"),
        ([0, 3], [0, 1], CLASS_NAMES, {}, "`y_true` holds class ids outside [0, 3)"),
        ([0, 1], [0, -1], CLASS_NAMES, {}, "`y_pred` holds class ids outside [0, 3)"),
        ([0, 1], [0, 1], ["a", "a", "b"], {}, "`class_names` must be unique"),
        ([0, 1], [0, 1], [], {}, "`class_names` is empty"),
        ([0.5, 1], [0, 1], CLASS_NAMES, {}, "`y_true` must hold integer class ids"),
        ([[0.1, 0.9]], [1], CLASS_NAMES, {}, "`y_true` must be a 1-D sequence"),
        ([0, 1], [0, 1], CLASS_NAMES, {"zero_division": 0.5}, "zero_division=0.5"),
    ],
)
def test_bad_input_raises_value_error(y_true, y_pred, class_names, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        classification_report(y_true, y_pred, class_names, **kwargs)


def test_confusion_matrix_rejects_bad_num_classes():
    with pytest.raises(ValueError, match="num_classes=0"):
        confusion_matrix([0], [0], num_classes=0)


# ---------------------------------------------------------------- perplexity


def test_perplexity_is_exp_of_mean_cross_entropy():
    assert perplexity(math.log(50.0)) == pytest.approx(50.0)
    assert perplexity(0.0) == 1.0
    assert perplexity(np.float32(2.0)) == pytest.approx(math.e**2, rel=1e-6)
    # A uniform distribution over V tokens has cross-entropy log V and perplexity V.
    vocab_size = 1000
    assert perplexity(-math.log(1.0 / vocab_size)) == pytest.approx(vocab_size)


def test_perplexity_edge_values():
    assert perplexity(1e6) == math.inf
    assert math.isnan(perplexity(float("nan")))
    with pytest.raises(ValueError, match=re.escape("mean_cross_entropy=-0.5")):
        perplexity(-0.5)
    with pytest.raises(ValueError, match="must be a scalar number"):
        perplexity("high")
