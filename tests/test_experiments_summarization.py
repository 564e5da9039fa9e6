"""experiments/summarization.py: flags and presets; the smoke preset end to end on the real BBC News Summary
and SAMSum data (slow), with the resume of a finished training."""

import json
import os
import subprocess
import sys

import pytest

from experiments import summarization as experiment


def test_help_and_presets(capsys):
    with pytest.raises(SystemExit) as exit_info:
        experiment.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--preset", "--dataset", "--model-run", "--epochs", "--hidden-dim", "--output-dir", "--resume"):
        assert flag in text
    smoke, full = experiment.PRESETS["smoke"], experiment.PRESETS["full"]
    assert smoke.train_limit > 0 and full.train_limit == 0 and full.eval_limit == 0
    args = experiment.parse_args(["--preset", "smoke", "--epochs", "5"])
    assert (args.epochs, args.hidden_dim, args.dataset) == (5, None, None)


def _start(repo_root, log_path, *flags):
    """Starts the script in the background, its output going to `log_path`; `_finish` waits for it."""
    with open(log_path, "w", encoding="utf-8") as log, open(f"{log_path}.err", "w", encoding="utf-8") as err:
        return subprocess.Popen([sys.executable, "experiments/summarization.py", *flags], cwd=repo_root,
                                stdout=log, stderr=err)


def _finish(process, log_path):
    """Waits for a script started by `_start`; returns the run directory it printed last."""
    try:
        process.wait(timeout=900)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with open(f"{log_path}.err", encoding="utf-8") as err:
        assert process.returncode == 0, err.read()[-3000:]
    with open(log_path, encoding="utf-8") as log:
        stdout = log.read()
    return stdout.strip().splitlines()[-1].split("run directory: ")[1].rsplit(" (", 1)[0]


def _run(repo_root, log_path, *flags):
    return _finish(_start(repo_root, log_path, *flags), log_path)


@pytest.mark.slow
@pytest.mark.data
def test_smoke_bbc_then_samsum(repo_root, shared_data_dir, tmp_path):
    common = ["--preset", "smoke", "--data-dir", str(shared_data_dir), "--output-dir", str(tmp_path)]
    run = _run(repo_root, tmp_path / "bbc.log", *common)
    with open(os.path.join(run, "results.json"), encoding="utf-8") as file:
        results = json.load(file)
    assert set(results["metrics"]) == {"scorer", "lead-3", f"lead-{results['lead_k']}", "textrank", "oracle",
                                       "abstractive greedy", "abstractive beam2"}
    for report in results["metrics"].values():
        for rouge_type in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
            low, high = report[rouge_type]["ci"]
            assert low <= report[rouge_type]["fmeasure"] <= high
    # The oracle's picks are the references' own sentences: its ROUGE-1 recall is (nearly) complete.
    assert results["metrics"]["oracle"]["rouge1"]["recall"] > 0.99
    assert results["split_sizes"] == [96, 24, 24] and len(results["test_ids"]) == 24
    assert results["budget"] in results["budget_validation_rouge2"]
    with open(os.path.join(run, "examples.md"), encoding="utf-8") as file:
        examples = file.read()
    assert examples.count("| model summary | abstractive (beam) | reference |") == 3
    assert results["test_ids"][0] in examples
    abstractive = results["abstractive"]
    assert abstractive["epochs_trained"] == 1 and abstractive["status"] == "completed"
    assert len(abstractive["validation_rouge"]) == 1  # val_every = min(4, epochs)
    for name in ("abstractive greedy", "abstractive beam2"):
        speed = abstractive[f"speed {name}"]
        assert speed["summaries_per_s"] > 0 and speed["truncated_articles"] == 24  # every article > 96 tokens

    # An interrupted run (no results.json yet) resumes in the same directory and reuses the finished training.
    # Meanwhile the SAMSum run with the trained scorer goes on in the background (it only reads the scorer and
    # the vocabulary, which the resumed run must leave as they are, and starts a run of its own beside it).
    model_path = os.path.join(run, "scorer", "last.keras")
    trained_at = os.path.getmtime(model_path)
    abstractive_path = os.path.join(run, "abstractive", "averaging", "epoch_0001.npz")
    abstractive_at = os.path.getmtime(abstractive_path)
    os.remove(os.path.join(run, "results.json"))
    samsum_process = _start(repo_root, tmp_path / "samsum.log", *common, "--dataset", "samsum", "--model-run", run)
    try:
        assert _run(repo_root, tmp_path / "resume.log", *common) == run
    finally:
        samsum = _finish(samsum_process, tmp_path / "samsum.log")
    assert os.path.getmtime(model_path) == trained_at
    # The finished abstractive training is reloaded, not repeated, and decodes the same summaries again.
    assert os.path.getmtime(abstractive_path) == abstractive_at
    with open(os.path.join(run, "results.json"), encoding="utf-8") as file:
        resumed = json.load(file)
    assert resumed["abstractive"]["status"] == "already_completed"
    assert resumed["abstractive_examples"] == results["abstractive_examples"]
    assert resumed["metrics"]["abstractive beam2"] == results["metrics"]["abstractive beam2"]

    with open(os.path.join(samsum, "results.json"), encoding="utf-8") as file:
        samsum_results = json.load(file)
    assert set(samsum_results["metrics"]) == {"lead-3", "longest-3", "bbc-scorer top-3"}
    assert samsum_results["num_test_documents"] == 24 and samsum_results["model_run"] == run
