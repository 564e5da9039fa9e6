"""Tokenizers and `tf.data` pipelines.

Tokenizers (one interface, `Tokenizer`): `WordPieceTokenizer` (tensorflow-text fast ops, graph mode),
`BPETokenizer` (byte-level BPE on Hugging Face `tokenizers`, `tokenizer.json`), `CharTokenizer` (characters;
nanoGPT's vocabulary with `special_tokens=False`). Each is learned with `Class.train(texts, vocabulary_size)`,
saved with `save(directory)` and read back with `Class.load(path)` or `load_tokenizer(path)`.

Pipelines (batched, seeded shuffling, prefetched, auto-shard policy DATA): `make_classification_dataset`,
`make_causal_lm_dataset`, `make_masked_lm_dataset`, `make_seq2seq_dataset`.
"""

from llm_tf.text.bpe import BPETokenizer
from llm_tf.text.char import CharTokenizer
from llm_tf.text.pipelines import (
    make_causal_lm_dataset,
    make_classification_dataset,
    make_masked_lm_dataset,
    make_seq2seq_dataset,
)
from llm_tf.text.tokenizer import Tokenizer, load_tokenizer
from llm_tf.text.wordpiece import WordPieceTokenizer

__all__ = [
    "BPETokenizer",
    "CharTokenizer",
    "Tokenizer",
    "WordPieceTokenizer",
    "load_tokenizer",
    "make_causal_lm_dataset",
    "make_classification_dataset",
    "make_masked_lm_dataset",
    "make_seq2seq_dataset",
]
