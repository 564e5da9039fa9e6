"""experiments/news_classification.py: command line and config, article windows, and end-to-end smoke runs on
BBC News (with resume) and on generated folder / CSV data."""

import csv
import json
import os

import matplotlib.image
import numpy as np
import pytest

from experiments import news_classification as experiment

# ------------------------------------------------------------------------------------------------------------
# Command line and config.


def test_help_lists_the_data_model_and_common_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        experiment.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--preset", "--data-dir", "--output-dir", "--strategy", "--precision", "--seed", "--seeds",
                 "--num-seeds", "--data-format", "--data-path", "--text-column", "--label-column",
                 "--train-windows", "--eval-windows", "--no-baseline", "--resume"):
        assert flag in text


def test_full_preset_is_the_recipe_and_flags_override_it():
    full = experiment.PRESETS["full"]
    recipe = (full.num_layers, full.hidden_dim, full.pooling, full.max_sequence_length, full.epochs, full.seeds)
    assert recipe == (2, 128, "mean", 512, 8, [0, 1, 2])
    assert (full.train_windows, full.eval_windows) == ("head_tail", "head_tail")
    assert experiment.NewsClassificationConfig.from_json(full.to_json()) == full

    parser = experiment.build_parser()
    args = parser.parse_args(["--preset", "smoke", "--epochs", "3", "--seeds", "4", "5", "--output-dir", "/tmp/x"])
    config = experiment.config_from_args(args)
    assert (config.epochs, config.seeds, config.hidden_dim, args.runs_root) == (3, [4, 5], 64, "/tmp/x")
    assert experiment.config_from_args(parser.parse_args(["--seed", "7"])).seeds == [7]
    assert experiment.config_from_args(parser.parse_args(["--seed", "4", "--num-seeds", "3"])).seeds == [4, 5, 6]
    assert experiment.config_from_args(parser.parse_args([])).seeds == [0, 1, 2]
    csv_args = parser.parse_args(["--data-format", "csv", "--data-path", "d.csv", "--text-column", "body",
                                  "--label-column", "2", "--jit-compile", "false"])
    csv_config = experiment.config_from_args(csv_args)
    assert (csv_config.data_path, csv_config.jit_compile) == (os.path.abspath("d.csv"), False)
    assert (experiment._column(csv_config.text_column), experiment._column(csv_config.label_column)) == ("body", 2)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"num_heads": 3}, "hidden_dim"),
        ({"data_format": "xml"}, "data_format"),
        ({"data_format": "csv", "data_path": "d.csv"}, "text_column"),
        ({"data_format": "folder"}, "data_path"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"dropout": 1.0}, "dropout"),
        ({"train_windows": "middle"}, "train_windows"),
        ({"max_sequence_length": 2}, "max_sequence_length"),
        ({"seeds": [1, 1]}, "distinct"),
        ({"jit_compile": "yes"}, "jit_compile"),
        ({"max_train_examples": 0}, "max_train_examples"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"ema_momentum": 1.0}, "ema_momentum"),
        ({"token_mask_rate": -0.1}, "token_mask_rate"),
    ],
)
def test_bad_config_values_raise_value_error_naming_the_field(overrides, named):
    with pytest.raises(ValueError, match=named):
        experiment.NewsClassificationConfig(**overrides)


def test_conflicting_flags_raise_value_error():
    parser = experiment.build_parser()
    with pytest.raises(ValueError, match="num-seeds"):
        experiment.config_from_args(parser.parse_args(["--seeds", "1", "--num-seeds", "2"]))
    with pytest.raises(ValueError, match="--data-dir"):
        experiment.config_from_args(
            parser.parse_args(["--data-format", "folder", "--data-path", "x", "--data-dir", "y"])
        )


# ------------------------------------------------------------------------------------------------------------
# Windows over articles.


def _encoded(lengths, labels=None):
    pieces = [np.arange(100 * (i + 1), 100 * (i + 1) + length, dtype=np.int32) for i, length in enumerate(lengths)]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    labels = np.zeros(len(lengths), np.int32) if labels is None else np.asarray(labels, np.int32)
    return experiment.EncodedSplit(np.concatenate(pieces), offsets, labels, cls_id=2, sep_id=3)


def test_first_windows_wrap_truncate_and_pad():
    windows = _encoded([3, 10]).first_windows(max_sequence_length=6)
    assert windows.tolist() == [[2, 100, 101, 102, 3, 0], [2, 200, 201, 202, 203, 3]]


def test_covering_windows_are_full_overlapping_and_reach_the_end():
    encoded = _encoded([3, 10, 8])
    windows, articles = encoded.covering_windows(max_sequence_length=6)  # 4 article tokens per window
    assert articles.tolist() == [0, 1, 1, 1, 2, 2]
    article_1 = windows[articles == 1]
    assert article_1[:, 1:5].tolist() == [[200, 201, 202, 203], [203, 204, 205, 206], [206, 207, 208, 209]]
    covered = set(article_1[:, 1:5].ravel().tolist())
    assert covered == set(range(200, 210))
    assert windows[articles == 2][:, 1:5].tolist() == [[300, 301, 302, 303], [304, 305, 306, 307]]


def test_head_tail_windows_keep_the_start_and_end_of_long_articles():
    encoded = _encoded([3, 10, 5])
    windows = encoded.head_tail_windows(max_sequence_length=7)  # 5 article tokens: 2 head + 3 tail
    assert windows[0].tolist() == [2, 100, 101, 102, 3, 0, 0]  # shorter than a window: whole, padded
    assert windows[1].tolist() == [2, 200, 201, 207, 208, 209, 3]
    assert windows[2].tolist() == [2, 300, 301, 302, 303, 304, 3]  # exactly one window: unchanged
    np.testing.assert_array_equal(windows[[0, 2]], encoded.first_windows(7)[[0, 2]])


def test_random_windows_stay_inside_each_article_and_follow_the_seed():
    encoded = _encoded([3, 50, 9])
    first = encoded.random_windows(8, np.random.default_rng([0, 1]))
    again = encoded.random_windows(8, np.random.default_rng([0, 1]))
    other_epoch = [encoded.random_windows(8, np.random.default_rng([0, e])) for e in range(2, 6)]
    np.testing.assert_array_equal(first, again)
    assert any(not np.array_equal(first, windows) for windows in other_epoch)
    for windows in [first] + other_epoch:
        assert windows[0].tolist() == [2, 100, 101, 102, 3, 0, 0, 0]  # shorter than a window: all of it
        for row, base, length in ((1, 200, 50), (2, 300, 9)):
            body = windows[row, 1:7]
            assert windows[row, 0] == 2 and windows[row, 7] == 3
            assert np.all(np.diff(body) == 1) and base <= body[0] and body[-1] < base + length


def test_mask_tokens_replaces_about_the_rate_and_never_special_tokens():
    rng = np.random.default_rng(0)
    token_ids = rng.integers(5, 100, size=(64, 32)).astype(np.int32)
    token_ids[:, 0], token_ids[:, -3], token_ids[:, -2:] = 2, 3, 0  # [CLS] ... [SEP] [PAD] [PAD]
    masked = experiment.mask_tokens(token_ids, 0.3, 4, [0, 1, 2, 3, 4], np.random.default_rng(1))
    again = experiment.mask_tokens(token_ids, 0.3, 4, [0, 1, 2, 3, 4], np.random.default_rng(1))
    np.testing.assert_array_equal(masked, again)
    assert masked.dtype == token_ids.dtype
    special = np.isin(token_ids, [0, 2, 3])
    np.testing.assert_array_equal(masked[special], token_ids[special])
    changed = masked != token_ids
    assert np.all(masked[changed] == 4)
    assert 0.25 < changed[~special].mean() < 0.35
    np.testing.assert_array_equal(experiment.mask_tokens(token_ids, 0.0, 4, [0], rng), token_ids)


# ------------------------------------------------------------------------------------------------------------
# End to end.


def _read_json(path):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def _assert_png(path):
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels[..., :3].std() > 0.01


@pytest.mark.data
def test_smoke_preset_on_bbc_news_writes_the_run_and_resumes(shared_data_dir, tmp_path, capsys):
    results = experiment.main(
        ["--preset", "smoke", "--output-dir", str(tmp_path), "--data-dir", str(shared_data_dir)]
    )
    printed = capsys.readouterr().out
    run_dir = results["run_dir"]
    assert os.path.dirname(run_dir) == str(tmp_path / "news_classification")
    for name in ("config.json", "results.json", "summary.txt", "tokenizer/vocab.txt"):
        assert os.path.isfile(os.path.join(run_dir, name)), name
    for name in ("confusion_matrix.png", "confusion_matrix_baseline.png"):
        _assert_png(os.path.join(run_dir, name))
    seed_dir = os.path.join(run_dir, "seed_0")
    for name in ("config.json", "metrics.csv", "best.keras", "last.keras", "results.json"):
        assert os.path.isfile(os.path.join(seed_dir, name)), name
    _assert_png(os.path.join(seed_dir, "training_curves.png"))
    _assert_png(os.path.join(seed_dir, "confusion_matrix.png"))
    assert os.listdir(os.path.join(seed_dir, "tensorboard"))
    with open(os.path.join(seed_dir, "metrics.csv"), newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 8 and "val_accuracy" in rows[0]

    config = _read_json(os.path.join(run_dir, "config.json"))
    assert config["preset"] == "smoke" and config["seeds"] == [0]
    assert results["data"]["sizes"] == {"train": 400, "validation": 223, "test": 223}
    assert results["data"]["class_names"] == ["business", "entertainment", "politics", "sport", "tech"]
    metrics = results["metrics"]
    # Chance is 0.23; the tiny model reaches ~0.9 in 8 short epochs, TF-IDF + SVM ~0.96 on 400 articles.
    assert 0.5 <= metrics["test_accuracy_mean"] <= 1.0 and metrics["test_accuracy_std"] == 0.0
    assert 0.0 <= metrics["test_macro_f1_mean"] <= 1.0
    assert 0.9 <= metrics["baseline_test_accuracy"] <= 1.0
    per_seed = results["transformer"]["per_seed"][0]
    assert np.sum(per_seed["test"]["confusion_matrix"]) == 223
    assert set(per_seed["test"]["per_class"]) == set(results["data"]["class_names"])
    assert results["baseline"]["test"]["num_examples"] == 223
    assert results["wall_time_s"] > 0 and "machine" in results and "libraries" in results
    seed_results = _read_json(os.path.join(seed_dir, "results.json"))
    assert seed_results["test_accuracy"] == pytest.approx(metrics["test_accuracy_mean"])
    assert "TF-IDF + LinearSVC" in printed and "macro-F1" in printed and "F1 politics" in printed

    # An interrupted run (no final results.json) continues from its directory: the finished seed is reused.
    os.remove(os.path.join(run_dir, "results.json"))
    last_model_time = os.path.getmtime(os.path.join(seed_dir, "last.keras"))
    resumed = experiment.main(["--resume", run_dir, "--output-dir", str(tmp_path)])
    assert "seed 0: already finished" in capsys.readouterr().out
    assert resumed["run_dir"] == run_dir
    assert os.path.getmtime(os.path.join(seed_dir, "last.keras")) == last_model_time
    assert resumed["metrics"]["test_accuracy_mean"] == metrics["test_accuracy_mean"]


def _write_topic_data(root):
    """Three topics with distinct vocabularies, 20 short documents each, as a folder tree and as a CSV."""
    rng = np.random.default_rng(0)
    topics = {
        "astronomy": "star planet orbit telescope galaxy comet nebula moon",
        "cooking": "oven recipe flour butter simmer garlic pasta sauce",
        "football": "goal striker match referee league penalty keeper coach",
    }
    shared = "the a report said today new week people".split()
    rows = []
    for topic, words in topics.items():
        os.makedirs(root / "folder" / topic)
        for index in range(20):
            text = " ".join(rng.choice(words.split() + shared, size=30))
            (root / "folder" / topic / f"{index:03d}.txt").write_text(text, encoding="utf-8")
            rows.append({"id": f"{topic}-{index}", "body": text, "topic": topic})
    with open(root / "data.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=["id", "body", "topic"])
        writer.writeheader()
        writer.writerows(rows)
    return sorted(topics)


@pytest.mark.parametrize("data_format", ["folder", "csv"])
def test_generic_folder_and_csv_data(data_format, tmp_path, capsys):
    class_names = _write_topic_data(tmp_path)
    data_args = ["--data-format", data_format]
    if data_format == "folder":
        data_args += ["--data-path", str(tmp_path / "folder")]
    else:
        data_args += ["--data-path", str(tmp_path / "data.csv"), "--text-column", "body", "--label-column", "topic"]
    results = experiment.main(
        ["--preset", "smoke", "--output-dir", str(tmp_path / "runs"), "--epochs", "2", "--batch-size", "8",
         "--max-sequence-length", "16", "--vocabulary-size", "100"] + data_args
    )
    capsys.readouterr()
    # The same seeded stratified 80/10/10 split: 2 of each topic's 20 documents to validation and to test.
    assert results["data"]["sizes"] == {"train": 48, "validation": 6, "test": 6}
    assert results["data"]["class_names"] == class_names
    assert results["data"]["test_class_counts"] == {name: 2 for name in class_names}
    assert 0.0 <= results["metrics"]["test_accuracy_mean"] <= 1.0
    assert results["metrics"]["baseline_test_accuracy"] == 1.0  # the topics share no content word
    assert os.path.isfile(os.path.join(results["run_dir"], "seed_0", "last.keras"))
    assert results["config"]["data_format"] == data_format


def test_missing_or_too_small_data_raises_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        experiment.main(["--data-format", "folder", "--data-path", str(tmp_path / "absent"),
                         "--output-dir", str(tmp_path / "runs")])
    _write_topic_data(tmp_path)
    with pytest.raises(ValueError, match="batch_size"):
        experiment.main(["--preset", "smoke", "--data-format", "folder", "--data-path", str(tmp_path / "folder"),
                         "--batch-size", "64", "--no-baseline", "--output-dir", str(tmp_path / "runs")])
