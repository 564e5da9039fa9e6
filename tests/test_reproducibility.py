"""Same inputs, same result: learned vocabularies across processes, and experiments run twice or killed and resumed.

Each check runs fresh Python processes, since what differs between processes (hash seeds, thread pools, the order
of a hash map in a native library) is exactly what a single-process test cannot see. Processes that do not depend
on each other run concurrently (an uninterrupted run beside the killed-then-resumed one), which also shows that
the results do not depend on what else the machine is doing.
"""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

# A corpus where many words and pairs are equally frequent: the tie-breaking of the vocabulary learner decides
# both the order and the membership of the vocabulary. Hugging Face's WordPiece trainer gave a different
# vocab.txt in each of three processes on it.
_TRAIN_SCRIPT = textwrap.dedent(
    """
    import random, sys
    from llm_tf.text import BPETokenizer, CharTokenizer, WordPieceTokenizer
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(3, 7))) for _ in range(300)]
    texts = [" ".join(words[i : i + 10]) for i in range(0, 300, 10)] * 2
    out = sys.argv[1]
    WordPieceTokenizer.train(texts, vocabulary_size=120).save(out + "/wordpiece")
    BPETokenizer.train(texts, vocabulary_size=400).save(out + "/bpe")
    CharTokenizer.train(texts).save(out + "/char")
    """
)


def _file_digests(directory: pathlib.Path) -> dict[str, str]:
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")
    env.update(extra)
    return env


@pytest.mark.slow
def test_tokenizer_training_gives_identical_files_in_fresh_processes_with_any_thread_count(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(_TRAIN_SCRIPT)
    # The three processes run at the same time (they share nothing but the machine).
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / f"run{run}")],
            env=_environment(RAYON_NUM_THREADS=threads, PYTHONHASHSEED=str(run)),
            cwd=REPO_ROOT,
        )
        for run, threads in enumerate(("1", "2", "2"))
    ]
    try:
        assert [process.wait(timeout=600) for process in processes] == [0, 0, 0]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    digests = [_file_digests(tmp_path / f"run{run}") for run in range(3)]
    assert {"wordpiece/vocab.txt", "bpe/tokenizer.json"} <= set(digests[0])
    assert digests[0] == digests[1] == digests[2]


def test_wordpiece_vocabulary_order_is_canonical():
    from llm_tf.text import WordPieceTokenizer

    texts = ["ab ab ba ba cd dc", "ab ba cd dc ee"] * 3
    vocabulary = WordPieceTokenizer.train(texts, vocabulary_size=40).vocabulary
    assert vocabulary[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    # Characters by code point, then the continuation characters by code point, then the merges.
    assert vocabulary[5:10] == ["a", "b", "c", "d", "e"]
    assert vocabulary[10:15] == ["##a", "##b", "##c", "##d", "##e"]
    merged = vocabulary[15:]
    assert merged and all(len(token.removeprefix("##")) > 1 for token in merged)
    # The most frequent words became whole pieces, and no word of the corpus needs [UNK].
    assert {"ab", "ba", "cd", "dc"} <= set(merged)
    tokenizer = WordPieceTokenizer(vocabulary)
    assert 1 not in tokenizer.encode("ab ba cd dc ee", add_special_tokens=False)


def _run_experiment(args: list[str], output_dir: pathlib.Path, timeout: int = 900) -> dict:
    completed = subprocess.run(
        [sys.executable, *args, "--output-dir", str(output_dir)],
        env=_environment(),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return _run_metrics(output_dir)


class _BackgroundExperiment:
    """An experiment started in the background (`finish` waits for it like `_run_experiment`); killed on exit."""

    def __init__(self, args: list[str], output_dir: pathlib.Path):
        output_dir.mkdir(parents=True, exist_ok=True)
        self.output_dir = output_dir
        self.log_path = output_dir.parent / f"{output_dir.name}.log"
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, *args, "--output-dir", str(output_dir)],
                env=_environment(), cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
            )

    def finish(self, timeout: int = 900) -> dict:
        try:
            returncode = self.process.wait(timeout=timeout)
        finally:
            self.kill()
        assert returncode == 0, self.log_path.read_text()[-6000:]
        return _run_metrics(self.output_dir)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.kill()


def _command(script: str, *flags: str) -> list[str]:
    return [str(REPO_ROOT / "experiments" / script), *flags]


def _news_metrics(output_dir: pathlib.Path) -> dict:
    """What must repeat exactly: the test metrics and every logged loss and accuracy of the seed's training."""
    results = _run_metrics(output_dir)
    csv_files = sorted(output_dir.rglob("seed_*/metrics.csv"))
    assert csv_files, f"no per-seed metrics.csv under {output_dir}"
    history = [_csv_columns(path, ("loss", "accuracy", "val_loss", "val_accuracy")) for path in csv_files]
    return {"metrics": results["metrics"], "history": history}


def _csv_columns(path: pathlib.Path, names: tuple[str, ...]) -> list[list[str]]:
    """The named columns of a CSV file, row by row, as the exact text written (no float round trip)."""
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    indices = [header.index(name) for name in names]
    return [[row.split(",")[index] for index in indices] for row in lines[1:]]


def _run_metrics(output_dir: pathlib.Path) -> dict:
    """The experiment-level results.json: the shallowest one under `output_dir`."""
    results = sorted(output_dir.rglob("results.json"), key=lambda path: len(path.parts))
    assert results, f"no results.json under {output_dir}"
    return json.loads(results[0].read_text())


def _kill_after_first_backup(command: list[str], output_dir: pathlib.Path, timeout: float = 600) -> pathlib.Path:
    """Starts `command`, SIGKILLs it as soon as a training-state backup exists, returns the backup's path."""
    import time

    process = subprocess.Popen(
        [sys.executable, *command, "--output-dir", str(output_dir)],
        env=_environment(),
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            backups = list(output_dir.rglob("backup.npz"))
            if backups:
                process.kill()
                process.wait()
                return backups[0]
            if process.poll() is not None:
                pytest.fail(f"the run ended (exit {process.returncode}) before writing a backup")
            time.sleep(0.05)
        pytest.fail("no backup written in time")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _uninterrupted_and_resumed(command, tmp_path, run_glob, resumed_results_glob, backup_step, metrics):
    """Runs `command` once through, and once SIGKILLed after its first backup then rerun; returns both metrics.

    The uninterrupted run goes on in the background meanwhile. Checks on the way that the rerun continued the same
    run directory from the backup (its training results say `resumed_from.global_step == backup_step`), not from
    scratch, while the uninterrupted run never resumed.
    """
    with _BackgroundExperiment(command, tmp_path / "uninterrupted") as uninterrupted:
        backup = _kill_after_first_backup(command, tmp_path / "resumed")
        _run_experiment(command, tmp_path / "resumed")
        uninterrupted.finish()
    (run,) = [path for path in (tmp_path / "resumed").glob(run_glob) if path.is_dir()]
    assert run in backup.parents
    for name, expected in (("resumed", backup_step), ("uninterrupted", None)):
        (results,) = (tmp_path / name).glob(resumed_results_glob)
        resumed_from = json.loads(results.read_text())["resumed_from"]
        assert (resumed_from and resumed_from["global_step"]) == expected
    return metrics(tmp_path / "uninterrupted"), metrics(tmp_path / "resumed")


NEWS_SMOKE = ("news_classification.py", "--preset", "smoke", "--no-baseline", "--deterministic",
              "--backup-every-n-steps", "5")


@pytest.fixture(scope="module")
def news_command(shared_data_dir):
    return _command(*NEWS_SMOKE, "--data-dir", str(shared_data_dir))


@pytest.fixture(scope="module")
def uninterrupted_news_run(news_command, tmp_path_factory):
    """The news smoke run through once, started in the background (requested before `killed_news_run`, it runs
    while the other run is started and killed)."""
    with _BackgroundExperiment(news_command, tmp_path_factory.mktemp("uninterrupted_news") / "runs") as run:
        yield run


@pytest.fixture(scope="module")
def killed_news_run(news_command, tmp_path_factory):
    """An output directory whose news smoke run was SIGKILLed right after its first backup (after 5 of the first
    epoch's 12 steps), and that backup's path. Tests work on copies (`_copy_killed_run`)."""
    output_dir = tmp_path_factory.mktemp("killed_news") / "runs"
    backup = _kill_after_first_backup(news_command, output_dir)
    assert not list(output_dir.rglob("results.json"))
    return output_dir, backup


def _copy_killed_run(killed_news_run, output_dir: pathlib.Path) -> pathlib.Path:
    """Copies the killed run's output directory to `output_dir`; returns the backup's path in the copy."""
    source, backup = killed_news_run
    shutil.copytree(source, output_dir)
    return output_dir / backup.relative_to(source)


@pytest.mark.slow
@pytest.mark.data
def test_news_smoke_repeats_exactly_and_resumes_exactly_after_sigkill(
    tmp_path, news_command, uninterrupted_news_run, killed_news_run
):
    command = news_command
    # The run killed mid-epoch (the first backup comes after 5 of the epoch's 12 steps), then the same command
    # again, in other processes than the uninterrupted run (which ran meanwhile): it must repeat that run exactly,
    # i.e. the same results from different processes, and a resume that changes nothing.
    backup = _copy_killed_run(killed_news_run, tmp_path / "resumed")
    assert not list((tmp_path / "resumed").rglob("results.json"))
    _run_experiment(command, tmp_path / "resumed")
    uninterrupted_news_run.finish()
    first = _news_metrics(uninterrupted_news_run.output_dir)
    (first_seed_results,) = uninterrupted_news_run.output_dir.rglob("seed_0/results.json")
    assert not json.loads(first_seed_results.read_text())["resumed_from"]
    runs = [path for path in (tmp_path / "resumed" / "news_classification").iterdir() if path.is_dir()]
    assert len(runs) == 1, "the second command must continue the interrupted run, not start another"
    assert runs[0] in backup.parents
    # It continued from the backup (after 5 of the epoch's 12 steps), not from scratch.
    (seed_results,) = (tmp_path / "resumed").rglob("seed_0/results.json")
    assert json.loads(seed_results.read_text())["resumed_from"]["global_step"] == 5
    assert _news_metrics(tmp_path / "resumed") == first


@pytest.mark.slow
@pytest.mark.data
def test_news_rerun_with_a_corrupt_backup_or_a_changed_config_loses_nothing(tmp_path, news_command,
                                                                            killed_news_run):
    command = news_command
    output_dir = tmp_path / "runs"
    backup = _copy_killed_run(killed_news_run, output_dir)
    run_dir = next(path for path in backup.parents if path.parent.name == "news_classification")
    before = {str(path): path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}

    # A truncated backup: a clear error naming the file, and every file of the run left as it was.
    backup.write_bytes(backup.read_bytes()[: backup.stat().st_size // 2])
    truncated = backup.read_bytes()
    completed = subprocess.run(
        [sys.executable, *command, "--output-dir", str(output_dir)],
        env=_environment(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode != 0
    assert "corrupt or truncated" in completed.stderr and str(backup) in completed.stderr
    after = {str(path): path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    before[str(backup)] = truncated
    assert after == before

    # A changed config: the interrupted run is not resumed with other settings, a new run starts beside it,
    # the command says so, and the interrupted run's files stay as they were.
    completed = subprocess.run(
        [sys.executable, *command, "--learning-rate", "0.004", "--epochs", "1", "--output-dir", str(output_dir)],
        env=_environment(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    message = completed.stdout + completed.stderr
    assert str(run_dir) in message and "learning_rate" in message, message[-3000:]
    runs = sorted(path for path in run_dir.parent.iterdir() if path.is_dir())
    assert len(runs) == 2 and run_dir in runs
    assert {str(path): path.read_bytes() for path in run_dir.rglob("*") if path.is_file()} == after


GPT_SMOKE = ("gpt_shakespeare.py", "--preset", "smoke", "--deterministic", "--steps-per-execution", "5",
             "--backup-every-n-steps", "10")


def _lm_metrics(output_dir: pathlib.Path) -> dict:
    """The final losses, every evaluation's losses (elapsed times left out) and the sampled text."""
    results = _run_metrics(output_dir)
    (eval_csv,) = output_dir.rglob("eval_losses.csv")
    evaluations = _csv_columns(eval_csv, ("iteration", "train_loss", "val_loss"))
    return {"metrics": results["metrics"], "evaluations": evaluations, "sample": results["sample"]}


@pytest.mark.slow
@pytest.mark.data
def test_gpt_smoke_resumed_after_sigkill_equals_an_uninterrupted_run(tmp_path, shared_data_dir):
    command = _command(*GPT_SMOKE, "--data-dir", str(shared_data_dir))
    # The first backup comes after 10 of the first epoch's 20 steps.
    uninterrupted, resumed = _uninterrupted_and_resumed(
        command, tmp_path, "gpt_shakespeare/*", "gpt_shakespeare/*/results.json", 10, _lm_metrics
    )
    assert len(uninterrupted["evaluations"]) == 3
    assert resumed == uninterrupted


TRANSLATION_SMOKE = ("translation.py", "--preset", "smoke", "--deterministic", "--backup-every-n-steps", "2")


def _translation_metrics(output_dir: pathlib.Path) -> dict:
    """BLEU/chrF of every decoding (timings left out), the decoded test sets and every logged loss."""
    (results_file,) = output_dir.rglob("translation_results.json")
    scores = {
        decoding: {name: value for name, value in values.items() if name not in ("decode_s", "sentences_per_s")}
        for decoding, values in json.loads(results_file.read_text())["test"].items()
    }
    outputs = {path.name: path.read_text() for path in sorted(output_dir.rglob("test_*.txt"))}
    (metrics_csv,) = output_dir.rglob("metrics.csv")
    losses = _csv_columns(metrics_csv, ("loss", "val_loss"))
    return {"scores": scores, "outputs": outputs, "losses": losses}


def _check_translation_smoke_results(output_dir: pathlib.Path):
    """What the smoke preset must produce: scores of both decodings, the run's files, the validation BLEU after
    every epoch and the averaged epoch checkpoints (the smoke test of experiments/translation.py)."""
    (results_file,) = output_dir.rglob("translation_results.json")
    results = json.loads(results_file.read_text())
    run_dir = pathlib.Path(results["run_dir"])
    assert results["train_status"] == "completed"
    for scores in (results["test"]["greedy"], results["test"]["beam3"]):
        assert scores["bleu_lowercase"] >= scores["bleu"]  # lowercasing only adds matches
        assert "case:mixed" in scores["bleu_signature"] and "case:lc" in scores["bleu_lowercase_signature"]
        assert scores["sentences_per_s"] > 0
    for name in ("summary.md", "bleu_vs_time.png", "cross_attention_1.png", "cross_attention_2.png",
                 "test_greedy.txt", "test_beam3.txt", "best.keras", "tokenizer", "results.json"):
        assert (run_dir / name).exists(), name
    assert len((run_dir / "test_greedy.txt").read_text().splitlines()) == 30  # the whole (smoke-sized) test set
    assert [row[0] for row in results["bleu_timeline"]] == [1, 2]  # validation BLEU after every epoch
    assert results["averaged_checkpoints"] == ["epoch_0001.npz", "epoch_0002.npz"]
    summary = (run_dir / "summary.md").read_text()
    assert "| 10 |" in summary.replace("  ", " ") or "\n 10 |" in summary  # the table of 10 example sentences


@pytest.mark.slow
@pytest.mark.data
def test_translation_smoke_trains_decodes_scores_and_resumes_exactly_after_sigkill(tmp_path, shared_data_dir):
    # One smoke run through serves as the end-to-end test of the script and as the reference of the resume.
    command = _command(*TRANSLATION_SMOKE, "--data-dir", str(shared_data_dir))
    uninterrupted, resumed = _uninterrupted_and_resumed(
        command, tmp_path, "translation_*/*", "translation_*/*/results.json", 2, _translation_metrics
    )
    _check_translation_smoke_results(tmp_path / "uninterrupted")
    assert uninterrupted["outputs"] and uninterrupted["losses"]
    assert resumed == uninterrupted


# The summarization script always trains with op determinism on (it has no `--deterministic` flag to forget).
# The kill comes in the scorer's training, so the abstractive model (whose finished training is reloaded on
# resume, tests/test_experiments_summarization.py) is left out of both runs.
SUMMARIZATION_SMOKE = ("summarization.py", "--preset", "smoke", "--backup-every-n-steps", "2",
                       "--abstractive-minutes", "0")


def _summarization_metrics(output_dir: pathlib.Path) -> dict:
    """ROUGE of every method, the sentences the model selected, and every logged loss of the scorer."""
    results = _run_metrics(output_dir)
    (metrics_csv,) = output_dir.rglob("scorer/metrics.csv")
    losses = _csv_columns(metrics_csv, ("loss", "val_loss"))
    return {"metrics": results["metrics"], "selections": results["selections"], "losses": losses}


@pytest.mark.slow
@pytest.mark.data
def test_summarization_smoke_resumed_after_sigkill_equals_an_uninterrupted_run(tmp_path, shared_data_dir):
    command = _command(*SUMMARIZATION_SMOKE, "--data-dir", str(shared_data_dir))
    uninterrupted, resumed = _uninterrupted_and_resumed(
        command, tmp_path, "summarization/*", "summarization/*/scorer/results.json", 2, _summarization_metrics
    )
    assert uninterrupted["selections"] and uninterrupted["losses"]
    assert resumed == uninterrupted
