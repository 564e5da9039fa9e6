"""Plots: each function writes a readable PNG of the expected pixel size; bad input raises ValueError."""

import math
import re

import matplotlib.image
import numpy as np
import pytest

from llm_tf.plots import (
    plot_attention_heatmaps,
    plot_confusion_matrix,
    plot_training_curves,
    read_history_csv,
)

HISTORY = {
    "loss": [2.3, 1.8, 1.5, 1.4],
    "val_loss": [2.4, 2.0, 1.8, 1.9],
    "accuracy": [0.2, 0.4, 0.5, 0.55],
    "val_accuracy": [0.2, 0.35, 0.45, 0.44],
    "learning_rate": [1e-3, 1e-3, 5e-4, 2.5e-4],
}


def _read_png(path):
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4)
    # Something was drawn: the image is not one flat colour.
    assert pixels[..., :3].std() > 0.01
    return pixels


def test_training_curves_from_history_dict(tmp_path):
    path = plot_training_curves(HISTORY, tmp_path / "nested" / "curves.png", title="run", figsize=(6, 4), dpi=50)
    assert path == str(tmp_path / "nested" / "curves.png")
    assert (tmp_path / "nested" / "curves.png").stat().st_size > 0
    assert _read_png(path).shape[:2] == (4 * 50, 6 * 50)


@pytest.mark.parametrize(
    ("history", "panels"),
    [
        ({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}, (1, 1)),  # x and val_x share one panel
        ({"loss": [1.0, 0.5], "accuracy": [0.1, 0.3]}, (1, 2)),
        (HISTORY, (1, 3)),  # loss, accuracy, learning_rate
        ({f"m{i}": [1.0, 2.0] for i in range(4)}, (2, 3)),  # at most three panels a row
        ({"val_bleu": [10.0, 12.0]}, (1, 1)),  # validation-only metric
    ],
)
def test_training_curves_default_size_follows_the_metric_pairing(tmp_path, history, panels):
    rows, columns = panels
    pixels = _read_png(plot_training_curves(history, tmp_path / "curves.png", dpi=20))
    assert pixels.shape[:2] == (round(3.5 * rows * 20), round(4.5 * columns * 20))


class _FakeHistory:
    """Stands in for keras.callbacks.History, which keeps the dict in `.history`."""

    def __init__(self, history):
        self.history = history


def test_training_curves_from_a_history_object(tmp_path):
    path = plot_training_curves(_FakeHistory(HISTORY), tmp_path / "curves.png", figsize=(5, 3), dpi=40)
    assert _read_png(path).shape[:2] == (120, 200)


def test_training_curves_from_csv_logger_file_with_missing_cells(tmp_path):
    csv_path = tmp_path / "training_log.csv"
    csv_path.write_text("epoch,loss,val_bleu,val_loss\n0,2.0,nan,2.1\n1,1.5,12.5,1.7\n2,1.2,NA,1.6\n")
    columns = read_history_csv(csv_path)
    assert columns["epoch"] == [0.0, 1.0, 2.0] and columns["loss"] == [2.0, 1.5, 1.2]
    assert math.isnan(columns["val_bleu"][0]) and columns["val_bleu"][1] == 12.5 and math.isnan(columns["val_bleu"][2])
    pixels = _read_png(plot_training_curves(csv_path, tmp_path / "curves.png", dpi=20))
    assert pixels.shape[:2] == (70, 2 * 90)  # panels: loss (+ val_loss), val_bleu
    step_csv = tmp_path / "steps.csv"
    step_csv.write_text("step,loss\n100,2.0\n200,1.0\n")
    assert _read_png(plot_training_curves(str(step_csv), tmp_path / "steps.png", dpi=20)).shape[:2] == (70, 90)


@pytest.mark.parametrize(
    ("history", "error", "message"),
    [
        ({"loss": [1.0, 2.0], "val_loss": [1.0]}, ValueError, "same number of values"),
        ({"epoch": [0, 1]}, ValueError, "holds no metric"),
        ({"loss": []}, ValueError, "are empty"),
        ([1.0, 2.0], ValueError, "history of type list"),
    ],
)
def test_training_curves_bad_history(tmp_path, history, error, message):
    with pytest.raises(error, match=message):
        plot_training_curves(history, tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()


def test_training_curves_missing_csv_and_bad_figure_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such.csv"):
        plot_training_curves(tmp_path / "no_such.csv", tmp_path / "curves.png")
    with pytest.raises(ValueError, match=re.escape("figsize=(0, 3)")):
        plot_training_curves(HISTORY, tmp_path / "curves.png", figsize=(0, 3))
    with pytest.raises(ValueError, match="dpi=-1"):
        plot_training_curves(HISTORY, tmp_path / "curves.png", dpi=-1)


@pytest.mark.parametrize("normalize", [False, True])
def test_confusion_matrix_png(tmp_path, normalize):
    matrix = [[5, 1, 0], [2, 7, 1], [0, 0, 0]]  # the last class has no examples
    path = plot_confusion_matrix(matrix, ["neg", "neu", "pos"], tmp_path / "cm.png", normalize=normalize,
                                 figsize=(5, 4), dpi=40)
    assert _read_png(path).shape[:2] == (160, 200)


def test_confusion_matrix_images_differ_when_normalized(tmp_path):
    matrix = np.array([[50, 1], [30, 30]])
    raw = _read_png(plot_confusion_matrix(matrix, ["a", "b"], tmp_path / "raw.png", dpi=30))
    normalized = _read_png(plot_confusion_matrix(matrix, ["a", "b"], tmp_path / "norm.png", normalize=True, dpi=30))
    assert raw.shape == normalized.shape and not np.array_equal(raw, normalized)


@pytest.mark.parametrize(
    ("matrix", "class_names", "message"),
    [
        ([[1, 2], [3, 4]], ["a", "b", "c"], "len(class_names)=3"),
        ([[1, 2, 3], [4, 5, 6]], ["a", "b"], "must be square"),
        ([1, 2], ["a", "b"], "must be square"),
    ],
)
def test_confusion_matrix_shape_mismatch_raises(tmp_path, matrix, class_names, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        plot_confusion_matrix(matrix, class_names, tmp_path / "cm.png")


def test_attention_heatmaps_one_panel_per_head(tmp_path):
    rng = np.random.default_rng(0)
    weights = rng.random((3, 4, 4))
    weights /= weights.sum(-1, keepdims=True)
    tokens = ["[CLS]", "the", "cat", "[SEP]"]
    path = plot_attention_heatmaps(weights, tokens, tmp_path / "attention.png", title="layer 0", figsize=(9, 3), dpi=40)
    assert _read_png(path).shape[:2] == (120, 360)
    # Default size: 3.5 inches per head (up to four a row) plus room for the colour bar.
    six_heads = _read_png(plot_attention_heatmaps(np.ones((6, 4, 4)) / 4, tokens, tmp_path / "six.png", dpi=20))
    assert six_heads.shape[:2] == (round(2 * 3.5 * 20), round((4 * 3.5 + 0.8) * 20))


def test_attention_heatmaps_cross_attention_needs_query_tokens(tmp_path):
    weights = np.full((2, 1, 3), 1 / 3)  # one decoding step over three keys
    with pytest.raises(ValueError, match="`query_tokens` is required"):
        plot_attention_heatmaps(weights, ["a", "b", "c"], tmp_path / "x.png")
    path = plot_attention_heatmaps(weights, ["a", "b", "c"], tmp_path / "x.png", query_tokens=["d"], dpi=20)
    assert _read_png(path).ndim == 3


@pytest.mark.parametrize(
    ("shape", "tokens", "message"),
    [
        ((1, 2, 4, 4), list("abcd"), "must have rank 3"),
        ((4, 4), list("abcd"), "must have rank 3"),
        ((2, 4, 4), list("abc"), "len(tokens)=3"),
        ((0, 4, 4), list("abcd"), "has no heads"),
    ],
)
def test_attention_heatmaps_bad_input_raises(tmp_path, shape, tokens, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        plot_attention_heatmaps(np.zeros(shape), tokens, tmp_path / "attention.png")
