"""llm_tf.tasks.runs: per-seed / per-fold run directories, resume lookup, mean ± std and t-intervals."""

import json
import math
import os

import pytest

from llm_tf import training
from llm_tf.tasks import runs


def test_open_run_creates_then_reuses_the_unfinished_run_with_the_same_config(tmp_path):
    config = {"epochs": 2, "seeds": [0, 1]}
    run, used = runs.open_run("demo", str(tmp_path), config)
    assert used == config and not run.resumed
    assert json.load(open(run.config_json)) == config
    # Unfinished (no results.json): the same command continues it, even without a backup at the top level.
    again, _ = runs.open_run("demo", str(tmp_path), config)
    assert again.path == run.path and again.resumed
    other, _ = runs.open_run("demo", str(tmp_path), {"epochs": 3, "seeds": [0, 1]})
    assert other.path != run.path
    never, _ = runs.open_run("demo", str(tmp_path), config, resume="never")
    assert never.path not in (run.path, other.path)
    # A finished run is never reused.
    training.write_results(never, {}, 0.0)
    training.write_results(run, {}, 0.0)
    fresh, _ = runs.open_run("demo", str(tmp_path), config)
    assert fresh.path not in (run.path, never.path)


def test_open_run_with_a_path_returns_the_saved_config(tmp_path):
    run, _ = runs.open_run("demo", str(tmp_path), {"epochs": 5})
    resumed, config = runs.open_run("demo", str(tmp_path), {"epochs": 1}, resume=run.path)
    assert resumed.path == run.path and config == {"epochs": 5}
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        runs.open_run("demo", str(tmp_path), {}, resume=str(empty))
    with pytest.raises(FileNotFoundError, match="resume"):
        runs.open_run("demo", str(tmp_path), {}, resume=str(tmp_path / "absent"))


def test_find_resumable_run_requires_a_backup_unless_told_otherwise(tmp_path):
    run = training.create_run_dir("demo", root=str(tmp_path), config={"a": 1}, resume="never")
    assert training.find_resumable_run("demo", str(tmp_path), {"a": 1}) is None
    found = training.find_resumable_run("demo", str(tmp_path), {"a": 1}, require_backup=False)
    assert found is not None and found.path == run.path


def test_seed_and_fold_directories_keep_their_config_and_report_finished_results(tmp_path):
    run, _ = runs.open_run("demo", str(tmp_path), {"epochs": 2})
    seed_dir = runs.seed_run_dir(run, 3, {"epochs": 2})
    assert seed_dir.path == os.path.join(run.path, "seed_3") and not seed_dir.resumed
    assert seed_dir.read_config() == {"epochs": 2, "seed": 3}
    assert runs.finished_results(seed_dir) is None
    training.write_results(seed_dir, {"loss": 0.1}, 1.0)
    assert runs.finished_results(seed_dir)["metrics"] == {"loss": 0.1}
    assert runs.finished_results(seed_dir, required=["test"]) is None  # training done, evaluation not yet
    again = runs.seed_run_dir(run, 3, {"epochs": 99})
    assert again.resumed and again.read_config() == {"epochs": 2, "seed": 3}  # the first config stays
    fold = runs.fold_run_dir(run, 1, {"epochs": 2}, seed=0)
    assert os.path.basename(fold.path) == "fold_1_seed_0" and fold.read_config()["fold"] == 1
    assert os.path.basename(runs.fold_run_dir(run, 4, {}).path) == "fold_4"
    with pytest.raises(ValueError, match="name"):
        runs.member_run_dir(run, "../x", {})


def test_mean_std_and_t_interval():
    assert runs.mean_and_std([0.97, 0.98, 0.99]) == pytest.approx((0.98, 0.01))
    assert runs.mean_and_std([0.5]) == (0.5, 0.0)
    with pytest.raises(ValueError, match="empty"):
        runs.mean_and_std([])
    # t_{0.975, 2} = 4.3027: half-width 4.3027 * 0.02 / sqrt(3) = 0.04968.
    low, high = runs.confidence_interval([0.9, 0.92, 0.94])
    assert (low, high) == pytest.approx((0.92 - 0.049683, 0.92 + 0.049683), abs=1e-6)
    wider = runs.confidence_interval([0.9, 0.92, 0.94], confidence=0.99)
    assert wider[0] < low and wider[1] > high
    assert all(math.isnan(value) for value in runs.confidence_interval([0.5]))
    with pytest.raises(ValueError, match="confidence"):
        runs.confidence_interval([0.1, 0.2], confidence=1.0)
    summary = runs.summarize_values([0.9, 0.92, 0.94])
    assert summary["n"] == 3 and summary["ci95_low"] == pytest.approx(low)
    assert runs.summarize_values([0.5])["ci95_high"] is None
    assert runs.format_mean_std([0.96, 0.98]) == "0.9700 ± 0.0141"
    assert runs.format_mean_std([0.5]) == "0.5000"
    assert runs.format_mean_std([0.9, 0.92, 0.94], interval=True).endswith("[0.8703, 0.9697]")
