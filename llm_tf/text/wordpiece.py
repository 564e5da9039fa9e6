"""WordPiece (BERT-style) tokenizer: encoding with tensorflow-text's fast ops, in eager code and in tf.data.

Why these paths (BBC News, 5 MB; `benchmarks/tokenization.py` runs both sides):

- Learning the vocabulary: Hugging Face `tokenizers`' WordPiece trainer is 20-40x faster than
  tensorflow-text's `bert_vocab_from_dataset` (the issue measured ~1 s against ~40 s; the benchmark on a
  heavily loaded 2-core machine, 9 s against 179 s). A vocabulary file is a vocabulary file, so the default
  learner is `tokenizers`; `learner="tensorflow_text"` is kept for comparison. The vocabulary is learned with
  that library's BPE trainer over a private alphabet for continuation pieces (see `_learn_with_tokenizers`),
  not its WordPiece trainer, whose result changed from process to process: the same texts and settings now
  give a byte-identical `vocab.txt` in any process and with any thread count (2.3 s instead of 0.9 s for
  an 8,000-piece vocabulary of BBC News, with the same 8,000 pieces). Both see the same BERT
  normalization, and on BBC News the fast encoder, tf-text's `BertTokenizer` and HF's WordPiece produce the
  same 1,146,308 tokens with the learned vocabulary.
- Encoding: tensorflow-text's `FastBertTokenizer` (normalizer + `FastWordpieceTokenizer`, linear-time
  end-to-end WordPiece) runs several times faster inside `tf.data` than the classic `BertTokenizer` (the
  issue measured ~17 M against ~1.1 M tokens/s). It is used for both `encode` (eager) and `tf_encode`
  (graph mode).

Normalization (what `decode(encode(text))` gives back): with `lower_case=True` (BERT uncased) the text is
lower-cased, NFD-decomposed and stripped of accents ("Café" -> "cafe"); control characters become spaces;
text is split on whitespace and punctuation, CJK characters stand alone; `decode` joins the words with single
spaces (so "Hello, world!" -> "hello , world !"). With `lower_case=False` only the control-character cleanup and
the optional `unicode_normalization` (NFC, NFKC, NFD or NFKD, applied first) change the text. A word no
vocabulary piece can spell (or longer than `max_bytes_per_word` bytes) becomes one "[UNK]".
"""

from __future__ import annotations

import pathlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from llm_tf.text._common import (
    batched,
    check_choice,
    check_positive_int,
    iterate_texts,
    want_progress,
)
from llm_tf.text.tokenizer import Tokenizer, read_config, register_tokenizer

DEFAULT_WORDPIECE_SPECIAL_TOKENS = {
    "pad": "[PAD]",
    "unk": "[UNK]",
    "cls": "[CLS]",
    "sep": "[SEP]",
    "mask": "[MASK]",
}
UNICODE_FORMS = (None, "NFC", "NFKC", "NFD", "NFKD")
LEARNERS = ("tokenizers", "tensorflow_text")
_TRAIN_BATCH = 1000


@register_tokenizer
class WordPieceTokenizer(Tokenizer):
    """BERT-style WordPiece tokenizer encoding with tensorflow-text's `FastBertTokenizer`.

    Build it from a vocabulary (`WordPieceTokenizer(vocabulary)`), learn one (`WordPieceTokenizer.train`),
    or load one (`WordPieceTokenizer.load(dir_or_vocab_txt)`, which also reads any BERT `vocab.txt`).

    Args:
        vocabulary: the tokens by id; continuation pieces start with `suffix_indicator`. The padding token
            must be id 0.
        lower_case: lower-case, NFD and strip accents before splitting (BERT uncased); False keeps case.
        unicode_normalization: None, "NFC", "NFKC", "NFD" or "NFKD", applied before everything else.
        special_tokens: the special-token strings by role (`pad`, `unk`, `cls`, `sep`, `mask`); defaults to
            `[PAD] [UNK] [CLS] [SEP] [MASK]`. Every token named must be in `vocabulary`.
        suffix_indicator: marks a piece that continues a word ("##").
        max_bytes_per_word: longer words become the unknown token.

    Example:
        >>> tokenizer = WordPieceTokenizer.train(texts, vocabulary_size=8000)  # doctest: +SKIP
        >>> tokenizer.encode("Hello, world!", add_special_tokens=True)  # doctest: +SKIP
        [2, 1234, 15, 987, 6, 3]
    """

    type_name = "wordpiece"
    supports_graph_mode = True

    def __init__(
        self,
        vocabulary: Sequence[str],
        *,
        lower_case: bool = True,
        unicode_normalization: str | None = None,
        special_tokens: Mapping[str, str] | None = None,
        suffix_indicator: str = "##",
        max_bytes_per_word: int = 100,
    ):
        if special_tokens is None:
            special_tokens = DEFAULT_WORDPIECE_SPECIAL_TOKENS
        super().__init__(special_tokens)
        check_choice("unicode_normalization", unicode_normalization, UNICODE_FORMS)
        check_positive_int("max_bytes_per_word", max_bytes_per_word)
        if not isinstance(suffix_indicator, str) or not suffix_indicator:
            raise ValueError(
                f"`suffix_indicator` must be a non-empty str; got suffix_indicator={suffix_indicator!r}."
            )
        vocabulary = list(vocabulary)
        if not vocabulary or not all(isinstance(token, str) and token for token in vocabulary):
            raise ValueError("`vocabulary` must be a non-empty sequence of non-empty str tokens.")
        self._token_ids: dict[str, int] = {}
        for index, token in enumerate(vocabulary):
            if token in self._token_ids:
                raise ValueError(
                    f"`vocabulary` has the token {token!r} twice (ids {self._token_ids[token]} and {index})."
                )
            self._token_ids[token] = index
        for role, token in self._special_tokens.items():
            if token not in self._token_ids:
                raise ValueError(
                    f"`special_tokens` names {role}={token!r}, which is not in `vocabulary`; "
                    "expected every special token to be a vocabulary entry."
                )
        if "unk" not in self._special_tokens:
            raise ValueError("`special_tokens` must name an 'unk' token: WordPiece maps unknown words to it.")
        if "pad" in self._special_tokens and self._token_ids[self._special_tokens["pad"]] != 0:
            raise ValueError(
                f"the padding token {self._special_tokens['pad']!r} must have id 0; "
                f"it has id {self._token_ids[self._special_tokens['pad']]} in `vocabulary`."
            )
        self._vocabulary = vocabulary
        self._lower_case = bool(lower_case)
        self._unicode_normalization = unicode_normalization
        self._suffix_indicator = suffix_indicator
        self._max_bytes_per_word = max_bytes_per_word
        self._fast_tokenizer = None  # built on first use: compiling the model takes a moment

    # ----------------------------------------------------------------------------------------------

    @property
    def vocabulary(self) -> list[str]:
        return list(self._vocabulary)

    @property
    def vocabulary_size(self) -> int:
        return len(self._vocabulary)

    @property
    def lower_case(self) -> bool:
        return self._lower_case

    def token_to_id(self, token: str) -> int | None:
        return self._token_ids.get(token)

    def get_config(self) -> dict[str, Any]:
        return {
            "lower_case": self._lower_case,
            "unicode_normalization": self._unicode_normalization,
            "special_tokens": self.special_tokens,
            "suffix_indicator": self._suffix_indicator,
            "max_bytes_per_word": self._max_bytes_per_word,
        }

    # ----------------------------------------------------------------------------------------------

    def _fast_bert_tokenizer(self):
        if self._fast_tokenizer is None:
            import tensorflow as tf
            import tensorflow_text as tf_text

            # Built eagerly even when first used while tracing a tf.data function, so it is reusable.
            with tf.init_scope():
                self._fast_tokenizer = tf_text.FastBertTokenizer(
                    vocab=self._vocabulary,
                    suffix_indicator=self._suffix_indicator,
                    max_bytes_per_word=self._max_bytes_per_word,
                    token_out_type=tf.int32,
                    unknown_token=self._special_tokens["unk"],
                    lower_case_nfd_strip_accents=self._lower_case,
                )
        return self._fast_tokenizer

    def _tf_encode_batch(self, strings):
        import tensorflow_text as tf_text

        if self._unicode_normalization is not None:
            strings = tf_text.normalize_utf8(strings, self._unicode_normalization)
        return self._fast_bert_tokenizer().tokenize(strings)

    def _encode_batch(self, texts: list[str]) -> list[list[int]]:
        import tensorflow as tf

        # One eager call per batch of texts; the kernels are the same ones tf.data runs.
        return self._tf_encode(
            tf.constant([text.encode("utf-8") for text in texts], dtype=tf.string),
            add_special_tokens=False, max_length=None, truncation_side="right",
        ).to_list()

    def decode(self, ids: Any, *, skip_special_tokens: bool = True) -> str:
        """Joins word pieces back into words separated by single spaces.

        Args:
            ids: a sequence of ids (list, numpy array or 1-D tensor).
            skip_special_tokens: drop [PAD], [CLS], [SEP] and [MASK]; the unknown token is always kept.

        Returns:
            The normalized text (see the module docstring).
        """
        ids = self._check_ids(ids)
        skipped = set(self.special_ids) - {self.unk_id} if skip_special_tokens else set()
        words: list[str] = []
        suffix = self._suffix_indicator
        for token_id in ids:
            if token_id in skipped:
                continue
            token = self._vocabulary[token_id]
            if token.startswith(suffix) and words:
                words[-1] += token[len(suffix) :]
            else:
                words.append(token)
        return " ".join(words)

    # ----------------------------------------------------------------------------------------------

    def save(self, path: str | pathlib.Path) -> pathlib.Path:
        """Writes `vocab.txt` (one token per line, BERT format) and `llm_tf_tokenizer.json` into `path`."""
        directory = pathlib.Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        for token in self._vocabulary:
            if "\n" in token or "\r" in token:
                raise ValueError(f"cannot save the token {token!r}: vocab.txt holds one token per line.")
        (directory / "vocab.txt").write_text("\n".join(self._vocabulary) + "\n", encoding="utf-8")
        self._write_config(directory)
        return directory

    @classmethod
    def _from_saved(cls, path: pathlib.Path, **options: Any) -> WordPieceTokenizer:
        config = read_config(path) or {}
        vocab_path = (
            path
            if path.is_file() and path.suffix == ".txt"
            else (path if path.is_dir() else path.parent) / "vocab.txt"
        )
        if not vocab_path.is_file():
            raise FileNotFoundError(
                f"no WordPiece vocabulary at {str(vocab_path)!r}; expected a vocab.txt file."
            )
        # BERT vocab files are UTF-8 with one token per line; blank trailing lines are not tokens.
        vocabulary = vocab_path.read_text(encoding="utf-8").splitlines()
        while vocabulary and vocabulary[-1] == "":
            vocabulary.pop()
        kwargs = {key: value for key, value in config.items() if key != "type"}
        kwargs.update(options)
        if "special_tokens" not in kwargs:
            kwargs["special_tokens"] = {
                role: token
                for role, token in DEFAULT_WORDPIECE_SPECIAL_TOKENS.items()
                if token in set(vocabulary)
            }
        return cls(vocabulary, **kwargs)

    # ----------------------------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        texts: Any,
        vocabulary_size: int = 30000,
        *,
        lower_case: bool = True,
        unicode_normalization: str | None = None,
        special_tokens: Mapping[str, str] | None = None,
        min_frequency: int = 2,
        limit_alphabet: int | None = 1000,
        learner: str = "tokenizers",
        progress: bool | None = None,
        suffix_indicator: str = "##",
        max_bytes_per_word: int = 100,
    ) -> WordPieceTokenizer:
        """Learns a WordPiece vocabulary from a corpus.

        Args:
            texts: a str or any iterable of str (list, generator, numpy array); read once.
            vocabulary_size: the largest vocabulary to learn, special tokens included.
            lower_case, unicode_normalization, special_tokens, suffix_indicator, max_bytes_per_word: as in
                the constructor; the learner sees text normalized the same way.
            min_frequency: the fewest occurrences a merged piece needs ("tokenizers" learner only).
            limit_alphabet: keep at most this many distinct characters (the most frequent); None keeps all
                ("tokenizers" learner only).
            learner: "tokenizers" (Hugging Face WordPiece trainer, fast; the default) or "tensorflow_text"
                (`bert_vocab_from_dataset`, 20-40x slower on BBC News, kept for comparison).
            progress: show a progress bar; None shows one for large corpora when stderr is a terminal.

        Returns:
            A `WordPieceTokenizer` whose special tokens take ids 0..4 in the order pad, unk, cls, sep, mask,
            then the characters and "##" characters by code point, then the learned pieces in the order they
            were merged (most frequent first, ties broken by code point). The same texts and settings give the
            same vocabulary, byte for byte, in any process ("tokenizers" learner).

        Example:
            >>> data = load_bbc_news()  # doctest: +SKIP
            >>> tokenizer = WordPieceTokenizer.train(data.train.texts, vocabulary_size=8000)  # doctest: +SKIP
        """
        check_positive_int("vocabulary_size", vocabulary_size)
        check_choice("learner", learner, LEARNERS)
        check_choice("unicode_normalization", unicode_normalization, UNICODE_FORMS)
        check_positive_int("min_frequency", min_frequency)
        check_positive_int("limit_alphabet", limit_alphabet, allow_none=True)
        if special_tokens is None:
            special_tokens = DEFAULT_WORDPIECE_SPECIAL_TOKENS
        reserved = _ordered_special_tokens(special_tokens)
        if vocabulary_size <= len(reserved):
            raise ValueError(
                f"`vocabulary_size` must exceed the {len(reserved)} special tokens; got vocabulary_size={vocabulary_size}."
            )
        show = want_progress(progress, texts)
        if learner == "tokenizers":
            vocabulary = _learn_with_tokenizers(
                texts,
                vocabulary_size,
                reserved=reserved,
                lower_case=lower_case,
                unicode_normalization=unicode_normalization,
                min_frequency=min_frequency,
                limit_alphabet=limit_alphabet,
                suffix_indicator=suffix_indicator,
                show_progress=show,
            )
        else:
            vocabulary = _learn_with_tensorflow_text(
                texts,
                vocabulary_size,
                reserved=reserved,
                lower_case=lower_case,
                unicode_normalization=unicode_normalization,
                suffix_indicator=suffix_indicator,
                show_progress=show,
            )
        return cls(
            vocabulary,
            lower_case=lower_case,
            unicode_normalization=unicode_normalization,
            special_tokens=special_tokens,
            suffix_indicator=suffix_indicator,
            max_bytes_per_word=max_bytes_per_word,
        )


def _ordered_special_tokens(special_tokens: Mapping[str, str]) -> list[str]:
    """Special tokens in id order: pad first (id 0), then unk, cls, sep, mask, without duplicates."""
    order = ["pad", "unk", "cls", "sep", "mask"]
    tokens: list[str] = []
    for role in order:
        token = special_tokens.get(role)
        if token is not None and token not in tokens:
            tokens.append(token)
    return tokens


# Continuation pieces ("##x") are learned as pieces of a private alphabet: every character that does not start a
# word is mapped to its own code point in Unicode's supplementary private-use planes (U+F0000 + code point), so
# a plain BPE over those symbols learns exactly WordPiece's "word-initial vs ##continuation" pieces. Why not the
# `tokenizers` WordPiece trainer itself: it gives the "##x" symbols ids in hash-map order, which differs from
# process to process, and it breaks ties between equally frequent merges by those ids, so the same corpus gave a
# different vocabulary (order and even membership) in every process. Its BPE trainer over a fixed, sorted
# alphabet is deterministic; ties are then broken by code point.
_CONTINUATION_OFFSET = 0xF0000
_LAST_MAPPABLE = 0x10FFFD - _CONTINUATION_OFFSET


def _mappable(word: str) -> bool:
    return all(ord(char) <= _LAST_MAPPABLE for char in word)


def _to_symbols(word: str) -> str:
    return word[0] + "".join(chr(_CONTINUATION_OFFSET + ord(char)) for char in word[1:])


def _from_symbols(token: str, suffix_indicator: str) -> str:
    if ord(token[0]) < _CONTINUATION_OFFSET:
        return token[0] + "".join(chr(ord(char) - _CONTINUATION_OFFSET) for char in token[1:])
    return suffix_indicator + "".join(chr(ord(char) - _CONTINUATION_OFFSET) for char in token)


def _count_words(texts: Any, normalizer: Any, pre_tokenizer: Any) -> Counter:
    counts: Counter = Counter()
    for text in iterate_texts(texts):
        words = pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
        counts.update(word for word, _ in words)
    return counts


def _limit_alphabet(counts: Counter, limit_alphabet: int | None) -> Counter:
    """Keeps the `limit_alphabet` most frequent characters (ties by code point); drops the others from words."""
    characters: Counter = Counter()
    for word, count in counts.items():
        for char in word:
            characters[char] += count
    if limit_alphabet is None or len(characters) <= limit_alphabet:
        return counts
    kept = {char for char, _ in sorted(characters.items(), key=lambda item: (-item[1], item[0]))[:limit_alphabet]}
    limited: Counter = Counter()
    for word, count in counts.items():
        word = "".join(char for char in word if char in kept)
        if word:
            limited[word] += count
    return limited


def _learn_with_tokenizers(
    texts: Any,
    vocabulary_size: int,
    *,
    reserved: list[str],
    lower_case: bool,
    unicode_normalization: str | None,
    min_frequency: int,
    limit_alphabet: int | None,
    suffix_indicator: str,
    show_progress: bool,
) -> list[str]:
    """The vocabulary, identical for the same texts and settings in any process and with any thread count."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, normalizers, pre_tokenizers, trainers

    # The same normalization FastBertTokenizer applies at encoding time, so learned pieces match what it sees.
    steps = [] if unicode_normalization is None else [getattr(normalizers, unicode_normalization)()]
    steps.append(
        normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=lower_case, lowercase=lower_case
        )
    )
    counts = _count_words(texts, normalizers.Sequence(steps), pre_tokenizers.BertPreTokenizer())
    # Characters beyond U+1FFFD (rare CJK extensions) have no private-use twin; they encode as [UNK].
    counts = Counter({word: count for word, count in counts.items() if _mappable(word)})
    counts = _limit_alphabet(counts, limit_alphabet)
    model = HFTokenizer(models.BPE())
    model.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(
        vocab_size=vocabulary_size,
        min_frequency=min_frequency,
        special_tokens=reserved,
        show_progress=show_progress,
    )
    # Each distinct word once, repeated by its count: the trainer counts words, so this is the same corpus.
    words = sorted(counts)
    lines = (" ".join([_to_symbols(word)] * counts[word]) for word in words)
    model.train_from_iterator(batched(lines, _TRAIN_BATCH), trainer=trainer, length=-(-len(words) // _TRAIN_BATCH))
    learned = [token for token, _ in sorted(model.get_vocab().items(), key=lambda item: item[1])]
    if learned[: len(reserved)] != reserved:
        raise RuntimeError(f"the trainer did not put the special tokens first: {learned[:8]}")
    vocabulary = reserved + [_from_symbols(token, suffix_indicator) for token in learned[len(reserved) :]]
    return list(dict.fromkeys(vocabulary))


def _learn_with_tensorflow_text(
    texts: Any,
    vocabulary_size: int,
    *,
    reserved: list[str],
    lower_case: bool,
    unicode_normalization: str | None,
    suffix_indicator: str,
    show_progress: bool,
) -> list[str]:
    import tensorflow as tf
    from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset as vocab_lib
    from tqdm.auto import tqdm

    text_list = [
        text.encode("utf-8") for text in tqdm(iterate_texts(texts), disable=not show_progress, desc="texts")
    ]
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(text_list, dtype=tf.string)).batch(_TRAIN_BATCH)
    tokenizer_params = {"lower_case": lower_case}
    if unicode_normalization is not None and not lower_case:
        tokenizer_params["normalization_form"] = unicode_normalization
    vocabulary = vocab_lib.bert_vocab_from_dataset(
        dataset.prefetch(tf.data.AUTOTUNE),
        vocab_size=vocabulary_size,
        reserved_tokens=reserved,
        bert_tokenizer_params=tokenizer_params,
        learn_params={"joiner": suffix_indicator},
    )
    return list(dict.fromkeys(vocabulary))
