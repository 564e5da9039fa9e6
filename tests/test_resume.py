"""Crash-safe resume and determinism, with real processes.

A seeded run (tests/_training_scripts/resume_run.py) is SIGKILLed mid-epoch after a backup was written and
then started again with the same command: it must resume from the backup and end with weights bit-identical to
an uninterrupted run. Two uninterrupted runs with the same seed must give identical loss histories.
"""

import json
import os
import time

import numpy as np
import pytest

from llm_tf import training
from tests._training_scripts.processes import Script, kill_all, wait_all

EPOCHS, STEPS_PER_EPOCH, BACKUP_EVERY = 3, 10, 3  # resume_run.py: 40 examples, batch 4
STEP_DELAY = 0.15  # seconds per step in the run that gets killed, so the kill lands mid-epoch


def _run_args(base, name, *extra):
    return [
        "--runs-root",
        base / name / "runs",
        "--out-dir",
        base / name / "out",
        "--seed",
        11,
        "--epochs",
        EPOCHS,
        "--backup-every-n-steps",
        BACKUP_EVERY,
        "--log-every-n-steps",
        2,
        *extra,
    ]


def _backup_position(runs_root):
    """(epoch, step_in_epoch, global_step) of the newest backup under runs_root, or None."""
    parent = runs_root / "resume_test"
    if not parent.is_dir():
        return None
    for run in sorted(parent.iterdir()):
        path = run / "backup" / training.resume.BACKUP_FILE_NAME
        if path.exists():
            try:
                metadata, _ = training.read_backup(str(path))
            except (FileNotFoundError, training.CheckpointError):
                return None  # replaced between listing and reading; look again
            return metadata["epoch"], metadata["step_in_epoch"], metadata["global_step"]
    return None


def _load(out_dir):
    with open(out_dir / "summary.json") as file:
        summary = json.load(file)
    with np.load(out_dir / "final_weights.npz") as weights:
        summary["weights"] = [weights[key] for key in weights.files]
    return summary


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two uninterrupted runs and one killed-then-resumed run, all with the same seed."""
    base = tmp_path_factory.mktemp("resume")
    scripts, observed = [], {}
    try:
        killed = Script(
            "resume_run.py", _run_args(base, "killed", "--step-delay", STEP_DELAY), base / "killed.log"
        )
        scripts.append(killed)
        for name in ("reference", "repeat"):
            scripts.append(Script("resume_run.py", _run_args(base, name), base / f"{name}.log"))
        # Kill once a mid-epoch backup exists after one whole epoch was logged (normally inside epoch 2).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and killed.running():
            position = _backup_position(base / "killed" / "runs")
            if position is not None and position[0] >= 1 and position[1] > 0:
                time.sleep(STEP_DELAY * 0.7)  # let it run past the backup, so the resumed run must redo steps
                killed.kill()
                observed["backup_at_kill"] = position
                break
            time.sleep(0.02)
        assert "backup_at_kill" in observed, f"the run was never killed mid-epoch:\n{killed.output()}"
        assert killed.process.returncode == -9
        run_dir = next((base / "killed" / "runs" / "resume_test").iterdir())
        observed["epoch_rows_before_resume"] = (run_dir / "metrics.csv").read_text().strip().splitlines()
        observed["backup_after_kill"] = _backup_position(base / "killed" / "runs")
        observed["leftover_temporary_files"] = [
            p.name for p in (run_dir / "backup").iterdir() if ".tmp-" in p.name
        ]
        # The same command again: it finds the interrupted run directory and resumes it.
        resumed = Script("resume_run.py", _run_args(base, "killed"), base / "resumed.log")
        scripts.append(resumed)
        wait_all(scripts[1:], timeout=150)
        observed["resumed_output"] = resumed.output()
        observed["run_dir"] = run_dir
    finally:
        kill_all(scripts)
    for name in ("reference", "repeat", "killed"):
        observed[name] = _load(base / name / "out")
    return observed


@pytest.mark.slow
def test_killed_run_resumes_to_bit_identical_weights(runs):
    reference, resumed = runs["reference"], runs["killed"]
    epoch, step_in_epoch, global_step = runs["backup_after_kill"]
    # The kill happened after a mid-epoch backup, once at least one epoch was complete (normally in epoch 2).
    assert epoch >= 1 and 0 < step_in_epoch < STEPS_PER_EPOCH
    assert resumed["resumed_from"] == {
        "epoch": epoch,
        "step_in_epoch": step_in_epoch,
        "global_step": global_step,
    }
    assert f"resuming from {runs['run_dir']}" in runs["resumed_output"]
    assert resumed["status"] == reference["status"] == "completed"
    assert resumed["optimizer_iterations"] == reference["optimizer_iterations"] == EPOCHS * STEPS_PER_EPOCH
    differences = [float(np.max(np.abs(a - b))) for a, b in zip(reference["weights"], resumed["weights"])]
    print(
        f"resumed from {runs['backup_after_kill']}: max |weight diff| vs uninterrupted = {max(differences)}"
    )
    assert len(reference["weights"]) == len(resumed["weights"])
    assert all(np.array_equal(a, b) for a, b in zip(reference["weights"], resumed["weights"]))
    # The metric state was restored too: the resumed epoch's averages equal the uninterrupted run's.
    assert resumed["history"] == reference["history"]


@pytest.mark.slow
def test_kill_leaves_a_complete_backup_and_clean_logs(runs):
    assert runs["backup_after_kill"] is not None  # readable: read_backup verified every member's CRC
    assert runs["leftover_temporary_files"] == []
    header, *rows = runs["epoch_rows_before_resume"]
    completed_epochs = runs["backup_after_kill"][0]
    assert header.startswith("epoch,")
    assert [int(row.split(",")[0]) for row in rows] == list(range(completed_epochs))
    # After the resume, metrics.csv reads as if the run had never stopped, and the backup is gone.
    logger = training.MetricsCSVLogger(
        str(runs["run_dir"] / "metrics.csv"), str(runs["run_dir"] / "metrics_steps.csv")
    )
    logger.epochs_table.load()
    logger.steps_table.load()
    assert [row["epoch"] for row in logger.epochs_table.rows] == list(range(EPOCHS))
    steps = [row["global_step"] for row in logger.steps_table.rows]
    assert steps == list(range(2, EPOCHS * STEPS_PER_EPOCH + 1, 2))
    assert not (runs["run_dir"] / "backup").exists()
    with open(runs["run_dir"] / "results.json") as file:
        results = json.load(file)
    assert results["status"] == "completed" and results["resumed_from"] == runs["killed"]["resumed_from"]


@pytest.mark.slow
def test_same_seed_gives_identical_loss_history(runs):
    first, second = runs["reference"], runs["repeat"]
    assert first["history"]["loss"] == second["history"]["loss"]
    assert first["history"]["val_loss"] == second["history"]["val_loss"]
    assert len(first["history"]["loss"]) == EPOCHS
    assert all(np.array_equal(a, b) for a, b in zip(first["weights"], second["weights"]))
    # The runs really trained (dropout, weight decay and the schedule were all active).
    assert first["history"]["loss"][-1] < first["history"]["loss"][0]


@pytest.mark.slow
def test_resume_cli_leaves_finished_runs_alone(runs, tmp_path):
    # A finished run has results.json and no backup: a new run with the same config starts a new directory.
    root = runs["run_dir"].parent.parent
    config = json.loads((runs["run_dir"] / "config.json").read_text())
    assert training.find_resumable_run("resume_test", root=str(root), config=config) is None
    fresh = training.create_run_dir("resume_test", root=str(root), config=config)
    assert not fresh.resumed and os.path.basename(fresh.path) != runs["run_dir"].name
