"""Same inputs, same result: learned vocabularies across processes, and experiments run twice or killed and resumed.

Each check runs fresh Python processes, since what differs between processes (hash seeds, thread pools, the order
of a hash map in a native library) is exactly what a single-process test cannot see.
"""

import hashlib
import json
import os
import pathlib
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
    digests = []
    for run, threads in enumerate(("1", "2", "2")):
        out = tmp_path / f"run{run}"
        subprocess.run(
            [sys.executable, str(script), str(out)],
            check=True,
            env=_environment(RAYON_NUM_THREADS=threads, PYTHONHASHSEED=str(run)),
            cwd=REPO_ROOT,
        )
        digests.append(_file_digests(out))
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
    results = sorted(output_dir.rglob("results.json"))
    assert results, f"no results.json under {output_dir}"
    # The experiment-level results.json is the shallowest one.
    return json.loads(min(results, key=lambda path: len(path.parts)).read_text())
