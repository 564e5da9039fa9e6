"""experiments/news_classification.py: command line and config; end-to-end runs (marked slow) on BBC News
(smoke preset with resume and predict, K-fold cross-validation) and on users' own data built here: class
folders with extension-less files and their own train/ and test/ folders, a header-less CSV with integer labels
and title/body columns. The library pieces have their own unit tests (tests/test_tasks_*.py)."""

import csv
import dataclasses
import io
import json
import os
import re
import sys

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
                 "--train-windows", "--eval-windows", "--no-baseline", "--resume", "--train-path",
                 "--validation-path", "--test-path", "--no-header", "--file-pattern", "--folds", "--deterministic"):
        assert flag in text


def test_full_preset_is_the_recipe_and_flags_override_it():
    full = experiment.PRESETS["full"]
    recipe = (full.num_layers, full.hidden_dim, full.pooling, full.max_sequence_length, full.epochs, full.seeds)
    assert recipe == (2, 128, "mean", 512, 5, [0, 1, 2])
    assert (full.bucket_by_length, full.attention_dropout) == (True, 0.0)
    before = experiment.config_from_args(experiment.build_parser().parse_args(
        ["--no-bucket-by-length", "--attention-dropout", "0.1", "--epochs", "8"]))  # the preset before 2026-12-04
    assert (before.bucket_by_length, before.attention_dropout, before.epochs) == (False, 0.1, 8)
    assert (full.train_windows, full.eval_windows) == ("head_tail", "head_tail")
    assert type(full).from_json(full.to_json()) == full

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
    assert (csv_config.text_column, csv_config.label_column, csv_config.data_dir) == ("body", "2", None)
    joined = experiment.config_from_args(parser.parse_args(
        ["--train-path", "t.csv", "--test-path", "u.csv", "--no-header", "--text-column", "1", "--text-column", "2",
         "--label-column", "0", "--folds", "5"]))
    assert (joined.data_format, joined.text_column, joined.has_header, joined.folds) == ("csv", ["1", "2"], False, 5)
    assert joined.test_path == os.path.abspath("u.csv") and joined.validation_path is None


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"num_heads": 3}, "hidden_dim"),
        ({"data_format": ""}, "data_format"),
        ({"data_format": "bbc", "data_path": "x"}, "data_path"),
        ({"folds": 1}, "folds"),
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
        dataclasses.replace(experiment.PRESETS["full"], **overrides)


def test_conflicting_flags_raise_value_error():
    parser = experiment.build_parser()
    with pytest.raises(ValueError, match="num-seeds"):
        experiment.config_from_args(parser.parse_args(["--seeds", "1", "--num-seeds", "2"]))
    with pytest.raises(ValueError, match="--data-dir"):
        experiment.config_from_args(
            parser.parse_args(["--data-format", "folder", "--data-path", "x", "--data-dir", "y"])
        )


# ------------------------------------------------------------------------------------------------------------
# End to end.


def _read_json(path):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def _assert_png(path):
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels[..., :3].std() > 0.01


def _assert_report_is_consistent(report, num_examples, class_names):
    """Accuracy and macro-F1 agree with the confusion matrix and the per-class rows."""
    confusion = np.array(report["confusion_matrix"])
    assert confusion.shape == (len(class_names), len(class_names)) and confusion.sum() == num_examples
    assert report["accuracy"] == pytest.approx(np.trace(confusion) / num_examples)
    present = [name for name in class_names if report["per_class"][name]["support"] > 0]
    assert report["macro_f1"] == pytest.approx(np.mean([report["per_class"][name]["f1"] for name in present]))
    supports = [report["per_class"][name]["support"] for name in class_names]
    assert supports == confusion.sum(axis=1).tolist()


def _printed_float(pattern, text):
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not printed"
    return float(match.group(1))


@pytest.mark.slow
@pytest.mark.data
def test_smoke_preset_on_bbc_news_writes_the_run_resumes_and_predicts(shared_data_dir, tmp_path, capsys):
    results = experiment.main(
        ["--preset", "smoke", "--output-dir", str(tmp_path), "--data-dir", str(shared_data_dir)]
    )
    printed = capsys.readouterr().out
    run_dir = results["run_dir"]
    class_names = ["business", "entertainment", "politics", "sport", "tech"]
    assert os.path.dirname(run_dir) == str(tmp_path / "news_classification")
    for name in ("config.json", "results.json", "summary.txt", "tokenizer/vocab.txt"):
        assert os.path.isfile(os.path.join(run_dir, name)), name
    for name in ("confusion_matrix.png", "confusion_matrix_baseline.png"):
        _assert_png(os.path.join(run_dir, name))
    seed_dir = os.path.join(run_dir, "seed_0")
    for name in ("config.json", "metrics.csv", "best.keras", "last.keras", "results.json", "test_predictions.csv"):
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
    assert results["data"]["class_names"] == class_names
    metrics = results["metrics"]
    per_seed = results["transformer"]["per_seed"][0]
    _assert_report_is_consistent(per_seed["test"], 223, class_names)
    _assert_report_is_consistent(results["baseline"]["test"], 223, class_names)
    assert metrics["test_accuracy_mean"] == pytest.approx(per_seed["test"]["accuracy"], abs=1e-11)
    assert metrics["test_macro_f1_mean"] == pytest.approx(per_seed["test"]["macro_f1"], abs=1e-11)
    assert metrics["test_accuracy_std"] == 0.0 and metrics["test_accuracy_ci95"] is None
    assert metrics["baseline_test_accuracy"] == results["baseline"]["test"]["accuracy"]
    assert results["transformer"]["confusion_matrix_sum"] == per_seed["test"]["confusion_matrix"]
    assert results["wall_time_s"] > 0 and "machine" in results and "libraries" in results
    seed_results = _read_json(os.path.join(seed_dir, "results.json"))
    assert seed_results["test_accuracy"] == per_seed["test"]["accuracy"]
    assert "TF-IDF + LinearSVC" in printed and "F1 politics" in printed
    printed_accuracy = _printed_float(r"seed 0: test accuracy (\d\.\d{4})", printed)
    assert printed_accuracy == round(per_seed["test"]["accuracy"], 4)

    # predict with the finished run reproduces the run's own test predictions exactly.
    output = experiment.main(["predict", "--run-dir", run_dir, "--output", str(tmp_path / "again.csv")])
    with open(os.path.join(seed_dir, "test_predictions.csv"), encoding="utf-8") as file:
        expected = file.read()
    with open(output, encoding="utf-8") as file:
        assert file.read() == expected
    predicted = [row["predicted"] for row in csv.DictReader(io.StringIO(expected))]
    assert len(predicted) == 223 and set(predicted) <= set(class_names)
    hits = sum(p == class_names[label] for p, label in zip(
        predicted, [class_names.index(i.split("/")[0]) for i in [r["id"] for r in csv.DictReader(io.StringIO(expected))]]))
    assert hits == np.trace(np.array(per_seed["test"]["confusion_matrix"]))

    # An interrupted run (no final results.json) continues from its directory: the finished seed is reused.
    os.remove(os.path.join(run_dir, "results.json"))
    with pytest.raises(FileNotFoundError, match="incomplete: results.json missing"):
        experiment.main(["predict", "--run-dir", run_dir])
    last_model_time = os.path.getmtime(os.path.join(seed_dir, "last.keras"))
    capsys.readouterr()
    resumed = experiment.main(["--resume", run_dir, "--output-dir", str(tmp_path)])
    assert "seed 0: already finished" in capsys.readouterr().out
    assert resumed["run_dir"] == run_dir
    assert os.path.getmtime(os.path.join(seed_dir, "last.keras")) == last_model_time
    assert resumed["metrics"]["test_accuracy_mean"] == metrics["test_accuracy_mean"]


@pytest.mark.slow
@pytest.mark.data
def test_three_fold_cross_validation_on_the_smoke_preset(shared_data_dir, tmp_path, capsys):
    args = ["--preset", "smoke", "--folds", "3", "--epochs", "1", "--no-baseline", "--output-dir", str(tmp_path),
            "--data-dir", str(shared_data_dir)]
    results = experiment.main(args)
    printed = capsys.readouterr().out
    run_dir = results["run_dir"]
    folds = results["transformer"]["per_fold"]
    assert [fold["fold"] for fold in folds] == [0, 1, 2]
    # train (400) + validation (223) pooled: 623 examples, held-out folds of 207-208, the test split untouched.
    held_out = [fold["validation"]["num_examples"] for fold in folds]
    assert sum(held_out) == 623 and set(held_out) <= {207, 208}
    for fold in folds:
        _assert_report_is_consistent(fold["test"], 223, results["data"]["class_names"])
        assert os.path.isfile(os.path.join(run_dir, f"fold_{fold['fold']}", "last.keras"))
    cv = results["cross_validation"]
    accuracies = [fold["validation"]["accuracy"] for fold in folds]
    assert cv["held_out_accuracy"]["values"] == accuracies and cv["test"] == "untouched"
    assert cv["held_out_accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert cv["held_out_accuracy"]["std"] == pytest.approx(np.std(accuracies, ddof=1))
    low, high = cv["held_out_accuracy"]["ci95_low"], cv["held_out_accuracy"]["ci95_high"]
    assert low < cv["held_out_accuracy"]["mean"] < high
    test_mean = results["metrics"]["test_accuracy_mean"]
    assert test_mean == pytest.approx(np.mean([fold["test"]["accuracy"] for fold in folds]))
    assert results["tokenizer"]["learned_on"] == "train + validation"
    assert "Transformer (3 folds)" in printed and " fold |" in printed
    # predict uses fold 0's model by default and reproduces its test predictions.
    output = experiment.main(["predict", "--run-dir", run_dir, "--output", str(tmp_path / "fold0.csv")])
    with open(output, encoding="utf-8") as produced, open(os.path.join(run_dir, "fold_0", "test_predictions.csv"),
                                                          encoding="utf-8") as expected:
        assert produced.read() == expected.read()
    # Fold directories resume like seeds: a rerun of an interrupted run reuses every finished fold.
    os.remove(os.path.join(run_dir, "results.json"))
    capsys.readouterr()
    experiment.main(args)
    assert capsys.readouterr().out.count("already finished") == 3


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


TINY = ["--preset", "smoke", "--epochs", "2", "--batch-size", "8", "--max-sequence-length", "16",
        "--vocabulary-size", "100"]


@pytest.mark.slow
@pytest.mark.parametrize("data_format", ["folder", "csv"])
def test_generic_folder_and_csv_data(data_format, tmp_path, capsys):
    class_names = _write_topic_data(tmp_path)
    data_args = ["--data-format", data_format]
    if data_format == "folder":
        data_args += ["--data-path", str(tmp_path / "folder")]
    else:
        data_args += ["--data-path", str(tmp_path / "data.csv"), "--text-column", "body", "--label-column", "topic"]
    results = experiment.main(TINY + ["--output-dir", str(tmp_path / "runs")] + data_args)
    capsys.readouterr()
    # The same seeded stratified 80/10/10 split: 2 of each topic's 20 documents to validation and to test.
    assert results["data"]["sizes"] == {"train": 48, "validation": 6, "test": 6}
    assert results["data"]["class_names"] == class_names
    assert results["data"]["test_class_counts"] == {name: 2 for name in class_names}
    _assert_report_is_consistent(results["transformer"]["per_seed"][0]["test"], 6, class_names)
    assert results["metrics"]["baseline_test_accuracy"] == 1.0  # the topics share no content word
    assert os.path.isfile(os.path.join(results["run_dir"], "seed_0", "last.keras"))
    assert results["config"]["data_format"] == data_format


def _write_newsgroup_folders(root):
    """A 20-Newsgroups-like corpus: train/ and test/ folders of class folders, files without extensions,
    plus a hidden file and a sub-folder that must be left out."""
    rng = np.random.default_rng(1)
    topics = {"comp.graphics": "pixel render shader polygon bitmap texture",
              "rec.autos": "engine brake clutch sedan tire gearbox",
              "sci.space": "orbit rocket shuttle launch lunar probe"}
    for split, count in (("train", 12), ("test", 4)):
        for topic, words in topics.items():
            folder = root / split / topic
            folder.mkdir(parents=True)
            for index in range(count):
                text = "From: someone@example.com\nSubject: re\n\n" + " ".join(rng.choice(words.split(), 20))
                (folder / f"{38000 + index}").write_text(text, encoding="utf-8")
    (root / "train" / "rec.autos" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "train" / "rec.autos" / "attachments").mkdir()
    return sorted(topics)


@pytest.mark.slow
def test_own_train_and_test_folders_with_extensionless_files(tmp_path, capsys):
    class_names = _write_newsgroup_folders(tmp_path)
    results = experiment.main(TINY + ["--train-path", str(tmp_path / "train"), "--test-path", str(tmp_path / "test"),
                                      "--output-dir", str(tmp_path / "runs")])
    printed = capsys.readouterr().out
    assert f"3 classes {class_names}" in printed
    # Validation is carved from train (10% of each class of 12: 1), the test folder is used as it is.
    assert results["data"]["sizes"] == {"train": 33, "validation": 3, "test": 12}
    assert "  test: {'comp.graphics': 4, 'rec.autos': 4, 'sci.space': 4}" in printed
    assert "  train: {'comp.graphics': 11, 'rec.autos': 11, 'sci.space': 11}" in printed
    assert set(results["data"]["skipped"]) == {"rec.autos/.DS_Store: hidden file",
                                               "rec.autos/attachments: a folder, not read"}
    assert re.search(r"  left out: rec.autos/(.DS_Store: hidden file|attachments: a folder, not read); ", printed)
    report = results["transformer"]["per_seed"][0]["test"]
    _assert_report_is_consistent(report, 12, class_names)
    assert _printed_float(r"macro-F1\s+\|\s+(\d\.\d{4})", printed) == round(report["macro_f1"], 4)
    # predict on the test folder gives the run's own test predictions (same ids: <class>/<file>).
    run_dir = results["run_dir"]
    output = experiment.main(["predict", "--run-dir", run_dir, "--input", str(tmp_path / "test"),
                              "--output", str(tmp_path / "p.csv")])
    with open(output, encoding="utf-8") as produced, open(os.path.join(run_dir, "seed_0", "test_predictions.csv"),
                                                          encoding="utf-8") as expected:
        assert produced.read() == expected.read()


@pytest.mark.slow
def test_headerless_csv_with_integer_labels_and_title_body_columns(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(2)
    vocabularies = {1: "bank stocks market shares profit", 2: "goal match league cup striker",
                    3: "chip software phone internet laptop", 4: "election minister vote party labour"}
    with open(tmp_path / "news.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        for index in range(60):
            label = index % 4 + 1
            words = vocabularies[label].split()
            writer.writerow([label, " ".join(rng.choice(words, 3)), " ".join(rng.choice(words, 15))])
    flags = TINY + ["--train-path", str(tmp_path / "news.csv"), "--label-column", "0", "--text-column", "1",
                    "--text-column", "2", "--output-dir", str(tmp_path / "runs")]
    with pytest.raises(ValueError, match="looks like data.*--no-header"):
        experiment.main(flags)
    results = experiment.main(flags + ["--no-header"])
    printed = capsys.readouterr().out
    assert "4 classes ['1', '2', '3', '4']" in printed  # labels 1..4: four classes, no empty class 0
    # 15 rows per label; 10% of 15 = 1.5 rounds up to 2 per class for validation and for test.
    assert results["data"]["sizes"] == {"train": 44, "validation": 8, "test": 8}
    assert "  test: {'1': 2, '2': 2, '3': 2, '4': 2}" in printed
    assert results["data"]["test_class_counts"] == {"1": 2, "2": 2, "3": 2, "4": 2}
    report = results["transformer"]["per_seed"][0]["test"]
    _assert_report_is_consistent(report, 8, ["1", "2", "3", "4"])
    assert _printed_float(r"macro-F1\s+\|\s+(\d\.\d{4})", printed) == round(report["macro_f1"], 4)
    # predict reads standard input, one text per line, and writes the CSV to standard output.
    monkeypatch.setattr(sys, "stdin", io.StringIO("goal match cup\nbank profit shares\n"))
    experiment.main(["predict", "--run-dir", results["run_dir"], "--input", "-", "--output", "-"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "id,predicted,p_1,p_2,p_3,p_4" and [line.split(",")[0] for line in lines[1:]] == [
        "line 1", "line 2"]


@pytest.mark.slow
def test_a_class_without_training_examples_is_an_error_naming_it(tmp_path):
    _write_newsgroup_folders(tmp_path)
    (tmp_path / "test" / "talk.politics").mkdir()
    (tmp_path / "test" / "talk.politics" / "1").write_text("vote election", encoding="utf-8")
    with pytest.raises(ValueError, match=r"\['talk.politics'\] have no training example"):
        experiment.main(TINY + ["--train-path", str(tmp_path / "train"), "--test-path", str(tmp_path / "test"),
                                "--output-dir", str(tmp_path / "runs")])
    # The data are checked before the run directory is made: a failed command leaves no half-made run behind.
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_missing_or_too_small_data_and_incomplete_runs_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        experiment.main(["--data-format", "folder", "--data-path", str(tmp_path / "absent"),
                         "--output-dir", str(tmp_path / "runs")])
    assert not (tmp_path / "runs").exists()
    _write_topic_data(tmp_path)
    with pytest.raises(ValueError, match="batch_size"):
        experiment.main(["--preset", "smoke", "--data-format", "folder", "--data-path", str(tmp_path / "folder"),
                         "--batch-size", "64", "--no-baseline", "--output-dir", str(tmp_path / "runs")])
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        experiment.main(["predict", "--run-dir", str(tmp_path / "folder")])
    # The run above stopped before training: config.json and the tokenizer only.
    parent = tmp_path / "runs" / "news_classification"
    run_dir = next(str(path) for path in parent.iterdir() if (path / "tokenizer").is_dir())
    with pytest.raises(FileNotFoundError, match="incomplete: results.json, seed_0/results.json, seed_0/last.keras"):
        experiment.main(["predict", "--run-dir", run_dir])


@pytest.mark.slow
@pytest.mark.parametrize("form", [["experiments/news_classification.py"], ["-m", "experiments.news_classification"]])
def test_script_runs_as_a_file_and_as_a_module(form, repo_root):
    import subprocess

    completed = subprocess.run([sys.executable, *form, "--help"], cwd=repo_root, capture_output=True, text=True,
                               timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "--train-path" in completed.stdout and "--folds" in completed.stdout
