"""Tokenization throughput on the BBC News corpus (2,225 articles, ~5 MB): the paths llm_tf chose and the
alternatives it did not, side by side in one run.

1. Learning a WordPiece vocabulary: Hugging Face `tokenizers`' WordPiece trainer (llm_tf's default) against
   tensorflow-text's `bert_vocab_from_dataset`.
2. Encoding, same vocabulary: tensorflow-text's `FastBertTokenizer` inside `tf.data` (what
   `WordPieceTokenizer.tf_encode` runs) against the classic `BertTokenizer`, and HF's batched WordPiece.
3. Byte-level BPE: the batched Hugging Face encode (what `BPETokenizer.encode` and the pipelines use, once
   per dataset) against the same tokenizer called through `tf.py_function` inside `tf.data` (per epoch).

Usage:
    python benchmarks/tokenization.py [--data-dir ../shared/data] [--vocabulary-size 8000] [--skip-slow-learner]

Prints a Markdown table of texts/s and tokens/s (best of `--repeats` timed passes after one warm-up pass).
Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import tensorflow as tf  # noqa: E402
import tensorflow_text as tf_text  # noqa: E402

from llm_tf.datasets import load_bbc_news  # noqa: E402
from llm_tf.text import BPETokenizer, WordPieceTokenizer  # noqa: E402


def best_time(function, repeats: int) -> tuple[float, int]:
    """Runs `function` once to warm up, then `repeats` times; returns (best seconds, its token count)."""
    function()
    best, tokens = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        tokens = function()
        best = min(best, time.perf_counter() - start)
    return best, tokens


def tf_data_token_count(texts: list[str], batch_size: int, tokenize) -> int:
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(batch_size)
    dataset = dataset.map(lambda batch: tokenize(batch).row_lengths(), num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return int(sum(int(lengths.numpy().sum()) for lengths in dataset))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", default=None, help="data directory (default: $LLM_TF_DATA_DIR, ../shared/data)"
    )
    parser.add_argument("--vocabulary-size", type=int, default=8000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--skip-slow-learner", action="store_true", help="skip bert_vocab_from_dataset (~40 s)"
    )
    args = parser.parse_args()

    data_dir = args.data_dir
    if data_dir is None and not os.environ.get("LLM_TF_DATA_DIR"):
        shared = REPO_ROOT.parent / "shared" / "data"
        data_dir = shared if shared.is_dir() else None
    from _machine import machine_line

    print(machine_line())
    data = load_bbc_news(data_dir)
    texts = data.train.texts + data.validation.texts + data.test.texts
    megabytes = sum(len(text.encode("utf-8")) for text in texts) / 1e6
    print(
        f"BBC News: {len(texts)} articles, {megabytes:.1f} MB; TensorFlow {tf.__version__}, "
        f"tensorflow-text {tf_text.__version__}, {os.cpu_count()} CPUs\n"
    )

    # 1. Learning the vocabulary.
    learn_rows = []
    start = time.perf_counter()
    wordpiece = WordPieceTokenizer.train(texts, args.vocabulary_size, progress=False)
    learn_rows.append(
        (
            "HF tokenizers WordPieceTrainer (llm_tf default)",
            time.perf_counter() - start,
            wordpiece.vocabulary_size,
        )
    )
    if not args.skip_slow_learner:
        start = time.perf_counter()
        slow = WordPieceTokenizer.train(
            texts, args.vocabulary_size, learner="tensorflow_text", progress=False
        )
        learn_rows.append(
            ("tensorflow-text bert_vocab_from_dataset", time.perf_counter() - start, slow.vocabulary_size)
        )
    print("| WordPiece vocabulary learner | seconds | vocabulary |")
    print("|---|---:|---:|")
    for name, seconds, size in learn_rows:
        print(f"| {name} | {seconds:.2f} | {size} |")
    print()

    # 2./3. Encoding throughput with one vocabulary.
    vocabulary = wordpiece.vocabulary
    classic = tf_text.BertTokenizer(
        tf.lookup.StaticVocabularyTable(
            tf.lookup.KeyValueTensorInitializer(vocabulary, tf.range(len(vocabulary), dtype=tf.int64)), 1
        ),
        token_out_type=tf.int64,
        lower_case=True,
    )
    hf_wordpiece = _hf_wordpiece(vocabulary)
    bpe = BPETokenizer.train(texts, args.vocabulary_size, progress=False)
    batch = args.batch_size

    def fast_wordpiece_tf_data():
        return tf_data_token_count(texts, batch, wordpiece.tf_encode)

    def classic_bert_tf_data():
        return tf_data_token_count(texts, batch, lambda b: classic.tokenize(b).merge_dims(-2, -1))

    def hf_wordpiece_batched():
        return sum(
            len(encoding.ids) for encoding in hf_wordpiece.encode_batch(texts, add_special_tokens=False)
        )

    def bpe_batched():
        return sum(len(ids) for ids in bpe.encode(texts))

    def bpe_py_function_tf_data():
        return tf_data_token_count(texts, batch, bpe.tf_encode)

    runs = [
        (
            "WordPiece: tf-text FastBertTokenizer in tf.data (llm_tf WordPieceTokenizer.tf_encode)",
            fast_wordpiece_tf_data,
        ),
        ("WordPiece: tf-text BertTokenizer in tf.data (not used)", classic_bert_tf_data),
        ("WordPiece: HF tokenizers encode_batch (reference)", hf_wordpiece_batched),
        ("BPE: HF tokenizers batched encode (llm_tf BPETokenizer.encode, pipelines)", bpe_batched),
        ("BPE: tf.py_function in tf.data (BPETokenizer.tf_encode, redone every epoch)", bpe_py_function_tf_data),
    ]
    print(
        f"| encoding path (batch {batch}, best of {args.repeats}) | seconds | texts/s | tokens/s | tokens |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, function in runs:
        seconds, tokens = best_time(function, args.repeats)
        print(
            f"| {name} | {seconds:.3f} | {len(texts) / seconds:,.0f} | {tokens / seconds:,.0f} | {tokens:,} |"
        )


def _hf_wordpiece(vocabulary: list[str]):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    tokenizer = Tokenizer(
        models.WordPiece({token: i for i, token in enumerate(vocabulary)}, unk_token="[UNK]")
    )
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tokenizer


if __name__ == "__main__":
    main()
