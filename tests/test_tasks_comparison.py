"""llm_tf.tasks.comparison and experiments/compare_runs.py: pretrained vs scratch over finished runs."""

import json
import math

import pytest

from experiments import compare_runs as compare_script
from llm_tf.tasks import comparison

# Student-t quantile t_{0.975, 2} (3 paired seeds), from a t table.
T_975_2 = 4.302652729911275


def _config(**changes):
    config = {"data_format": "bbc", "split_seed": 42, "max_train_examples": 178, "epochs": 15,
              "learning_rate": 2e-4, "init_from": None, "hidden_dim": 256, "data_dir": "/data", "seeds": [0, 1, 2]}
    config.update(changes)
    return config


def _write_run(path, accuracies, config, baseline=None, macro_f1=None, validation=None):
    """A finished classification run's results.json as the experiments write it (the fields compared).

    ``validation``: ``{seed: accuracy}`` on the validation split (macro-F1 0.1 lower), or None for a run without one.
    """
    path.mkdir(parents=True)
    per_seed = [{"seed": seed, "status": "completed",
                 "test": {"accuracy": value, "macro_f1": (macro_f1 or accuracies)[seed]},
                 "validation": None if validation is None else {"accuracy": validation[seed],
                                                                "macro_f1": validation[seed] - 0.1}}
                for seed, value in accuracies.items()]
    results = {"experiment": "news_classification", "config": config, "transformer": {"per_seed": per_seed},
               "baseline": None if baseline is None else {
                   "test": {"accuracy": baseline, "macro_f1": baseline - 0.01},
                   "validation": {"accuracy": baseline - 0.02, "macro_f1": baseline - 0.03}}}
    (path / "results.json").write_text(json.dumps(results))
    return str(path)


def test_cells_and_the_paired_difference_equal_hand_computed_figures(tmp_path):
    scratch = _write_run(tmp_path / "scratch", {0: 0.90, 1: 0.92, 2: 0.94}, _config(), baseline=0.97)
    pretrained = _write_run(tmp_path / "pretrained", {0: 0.95, 1: 0.93, 2: 0.99},
                            _config(init_from="runs/pretrain/x", hidden_dim=128))
    table = comparison.compare_runs([("BBC 10%", {"scratch": scratch, "books": pretrained})])
    row = table["rows"][0]
    assert table["columns"] == ["scratch", "books"] and row["baseline"] == 0.97
    assert row["cells"]["scratch"]["summary"]["mean"] == pytest.approx(0.92)
    assert row["cells"]["scratch"]["summary"]["std"] == pytest.approx(0.02)
    assert row["cells"]["books"]["init_from"] == "runs/pretrain/x"
    difference = row["differences"]["books"]
    # Differences 0.05, 0.01, 0.05: mean 0.11 / 3, sample std sqrt(((0.04/3)^2 * 2 + (0.08/3)^2) / 2).
    mean = 0.11 / 3
    std = math.sqrt(((0.04 / 3) ** 2 * 2 + (0.08 / 3) ** 2) / 2)
    half = T_975_2 * std / math.sqrt(3)
    assert difference["seeds"] == [0, 1, 2]
    assert difference["differences"] == pytest.approx([0.05, 0.01, 0.05])
    assert difference["mean"] == pytest.approx(mean)
    assert difference["std"] == pytest.approx(std)
    assert (difference["ci95_low"], difference["ci95_high"]) == pytest.approx((mean - half, mean + half))
    # The start and its architecture are not recipe differences; nothing else differs here.
    assert row["recipe_differences"]["books"] == []
    text = comparison.format_comparison(table)
    assert "| BBC 10% | 92.00 ± 2.00 (3 seeds) | 95.67 ± 3.06 (3 seeds) | 97.00 |" in text
    assert f"books − scratch = {100 * mean:+.2f} points [{100 * (mean - half):+.2f}, {100 * (mean + half):+.2f}]" in text


def test_only_shared_seeds_are_paired_and_the_macro_f1_metric_is_read(tmp_path):
    scratch = _write_run(tmp_path / "a", {0: 0.5, 1: 0.6, 2: 0.7}, _config(), macro_f1={0: 0.4, 1: 0.5, 2: 0.6})
    other = _write_run(tmp_path / "b", {1: 0.9, 3: 0.1}, _config(), macro_f1={1: 0.8, 3: 0.0})
    table = comparison.compare_runs([("x", {"scratch": scratch, "other": other})], metric="macro_f1")
    difference = table["rows"][0]["differences"]["other"]
    assert difference["seeds"] == [1] and difference["differences"] == pytest.approx([0.3])
    assert difference["ci95_low"] is None
    assert "[no interval: one seed]" in comparison.format_comparison(table)
    lone = _write_run(tmp_path / "c", {7: 0.9}, _config())
    with pytest.raises(ValueError, match="share no seed"):
        comparison.compare_runs([("x", {"scratch": scratch, "lone": lone})])


def test_the_validation_split_is_read_instead_of_test_when_asked(tmp_path):
    scratch = _write_run(tmp_path / "a", {0: 0.90, 1: 0.92}, _config(), baseline=0.97,
                         validation={0: 0.80, 1: 0.86})
    pretrained = _write_run(tmp_path / "b", {0: 0.95, 1: 0.93}, _config(init_from="p"),
                            validation={0: 0.88, 1: 0.87})
    rows = [("BBC", {"scratch": scratch, "books": pretrained})]
    table = comparison.compare_runs(rows, split="validation")
    row = table["rows"][0]
    assert table["split"] == "validation" and row["baseline"] == pytest.approx(0.95)
    assert row["cells"]["scratch"]["summary"]["mean"] == pytest.approx(0.83)
    assert row["differences"]["books"]["differences"] == pytest.approx([0.08, 0.01])
    f1 = comparison.compare_runs(rows, metric="macro_f1", split="validation")["rows"][0]
    assert f1["cells"]["books"]["summary"]["mean"] == pytest.approx(0.775)
    assert comparison.format_comparison(table).startswith("Validation accuracy, %")
    script = compare_script.main(["--row", "BBC", f"scratch={scratch}", f"books={pretrained}", "--split", "validation"])
    assert script["split"] == "validation" and script["rows"][0]["differences"] == row["differences"]
    assert comparison.compare_runs(rows)["rows"][0]["differences"]["books"]["differences"] == pytest.approx([0.05, 0.01])
    without = _write_run(tmp_path / "c", {0: 0.9}, _config())
    with pytest.raises(ValueError, match="seed 0 has no validation figures"):
        comparison.compare_runs([("BBC", {"scratch": scratch, "other": without})], split="validation")
    with pytest.raises(ValueError, match="split must be one of"):
        comparison.load_classification_run(scratch, split="train")


def test_runs_on_different_data_are_refused_and_recipe_differences_are_listed(tmp_path):
    scratch = _write_run(tmp_path / "a", {0: 0.5}, _config())
    full_data = _write_run(tmp_path / "b", {0: 0.9}, _config(max_train_examples=None))
    with pytest.raises(ValueError, match="different data.*max_train_examples 178 vs None"):
        comparison.compare_runs([("BBC", {"scratch": scratch, "books": full_data})])
    longer = _write_run(tmp_path / "c", {0: 0.9}, _config(epochs=30, data_dir="/elsewhere"))
    table = comparison.compare_runs([("BBC", {"scratch": scratch, "books": longer})])
    assert table["rows"][0]["recipe_differences"]["books"] == ["epochs: 15 → 30"]
    assert "recipe differs from scratch: epochs: 15 → 30" in comparison.format_comparison(table)


def test_missing_unfinished_or_foreign_runs_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        comparison.load_classification_run(tmp_path / "nowhere")
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(FileNotFoundError, match="has not finished"):
        comparison.load_classification_run(tmp_path / "unfinished")
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "results.json").write_text(json.dumps({"experiment": "pretrain", "final": {}}))
    with pytest.raises(ValueError, match="not the results of a classification run"):
        comparison.load_classification_run(tmp_path / "lm")
    with pytest.raises(ValueError, match="metric"):
        comparison.compare_runs([("x", {"scratch": str(tmp_path)})], metric="bleu")


def test_script_prints_and_writes_the_table_and_rejects_malformed_rows(tmp_path, capsys):
    scratch = _write_run(tmp_path / "a", {0: 0.80, 1: 0.82}, _config(), baseline=0.83)
    pretrained = _write_run(tmp_path / "b", {0: 0.85, 1: 0.86}, _config(init_from="p"))
    sst = _write_run(tmp_path / "c", {0: 0.81}, _config(data_format="sst2"))
    output = tmp_path / "out" / "comparison.md"
    result = compare_script.main(["--row", "BBC", f"scratch={scratch}", f"books + task={pretrained}",
                                  "--row", "SST-2", f"scratch={sst}", "--output", str(output)])
    printed = capsys.readouterr().out
    assert "| task | scratch | books + task | TF-IDF + LinearSVC |" in printed
    assert "| SST-2 | 81.00 (1 seed) | — | — |" in printed
    assert output.read_text().strip() in printed
    saved = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert saved["rows"][0]["differences"]["books + task"]["differences"] == pytest.approx([0.05, 0.04])
    assert result["rows"][1]["differences"] == {}
    assert printed.startswith("Test accuracy, %")
    for bad in (["--row", "BBC"], ["--row", "BBC", scratch], ["--row", "BBC", f"a={scratch}", f"a={scratch}"],
                ["--row", "BBC", f"scratch={scratch}", "--split", "train"]):
        with pytest.raises(SystemExit):
            compare_script.main(bad)
