"""Byte-level BPE tokenizer (GPT-2 style) on Hugging Face `tokenizers`, saved as a standard `tokenizer.json`.

- Lossless: every string encodes to byte-level pieces, so `decode(encode(text)) == text` for any text
  (emoji, CJK, control characters), except invalid UTF-8 bytes, which become U+FFFD first. No input is ever
  unknown; the `<unk>` token exists only so the interface is the same as the other tokenizers.
- Any `tokenizer.json` a user brings loads too (`BPETokenizer.load("path/to/tokenizer.json")`), whatever its
  model type; special-token roles are read from the usual names (`<pad>`/`[PAD]`, `<s>`/`[CLS]`,
  `<|endoftext|>`, ...) or given explicitly. Such a file keeps its own ids, so `pad_id` is its padding token's
  id (0 when it has none: then id 0 is also a real token and only `padding_mask` tells padding apart).
- `to_transformers()` wraps it as a `transformers.PreTrainedTokenizerFast`; files saved here add
  `<s> ... </s>` in their post-processor, so `transformers`' `add_special_tokens=True` matches ours.
- Graph mode: `tf_encode` runs the Rust tokenizer through `tf.py_function` (Python in the tf.data loop, not
  serialisable into a SavedModel, and redone every epoch). The pipelines therefore pre-tokenize BPE datasets
  once with the batched `encode` (Hugging Face `encode_batch`) and only slice ids inside `tf.data`.
"""

from __future__ import annotations

import pathlib
import warnings
from collections.abc import Mapping
from typing import Any

from llm_tf.text._common import (
    batched,
    check_choice,
    check_positive_int,
    iterate_texts,
    known_length,
    want_progress,
)
from llm_tf.text.tokenizer import CONFIG_FILE_NAME, Tokenizer, read_config, register_tokenizer

DEFAULT_BPE_SPECIAL_TOKENS = {
    "pad": "<pad>",
    "unk": "<unk>",
    "cls": "<s>",
    "sep": "</s>",
    "mask": "<mask>",
}
# Names by which the roles are recognised in a foreign tokenizer.json (first match wins).
_ROLE_NAMES = {
    "pad": ("<pad>", "[PAD]", "<|pad|>", "<|padding|>", "<PAD>"),
    "unk": ("<unk>", "[UNK]", "<|unk|>", "<UNK>"),
    "cls": ("<s>", "[CLS]", "<bos>", "<|startoftext|>", "<|begin_of_text|>", "<BOS>", "<|endoftext|>"),
    "sep": ("</s>", "[SEP]", "<eos>", "<|end_of_text|>", "<EOS>", "<|endoftext|>"),
    "mask": ("<mask>", "[MASK]", "<|mask|>", "<MASK>"),
}
UNICODE_FORMS = (None, "NFC", "NFKC", "NFD", "NFKD")
_TRAIN_BATCH = 1000


@register_tokenizer
class BPETokenizer(Tokenizer):
    """Byte-level BPE tokenizer wrapping a Hugging Face `tokenizers.Tokenizer`.

    Build it with `BPETokenizer.train(texts, vocabulary_size)`, `BPETokenizer.load(path)` (a directory
    written by `save`, or any `tokenizer.json`), or `BPETokenizer(hf_tokenizer, special_tokens=...)`.

    Args:
        tokenizer: a `tokenizers.Tokenizer`.
        special_tokens: the special-token strings by role (`pad`, `unk`, `cls`/bos, `sep`/eos, `mask`);
            None infers them from the vocabulary by their usual names.

    Example:
        >>> tokenizer = BPETokenizer.train(texts, vocabulary_size=4000)  # doctest: +SKIP
        >>> tokenizer.decode(tokenizer.encode("naïve café 🙂"))  # doctest: +SKIP
        'naïve café 🙂'
    """

    type_name = "bpe"
    supports_graph_mode = False

    def __init__(self, tokenizer: Any, *, special_tokens: Mapping[str, str] | None = None):
        from tokenizers import Tokenizer as HFTokenizer

        if not isinstance(tokenizer, HFTokenizer):
            raise ValueError(
                f"`tokenizer` must be a tokenizers.Tokenizer; got {type(tokenizer).__name__}. "
                "Use BPETokenizer.train(...) or BPETokenizer.load(path) to build one."
            )
        vocabulary_by_id = tokenizer.get_vocab(with_added_tokens=True)
        if special_tokens is None:
            special_tokens = infer_special_tokens(vocabulary_by_id, tokenizer)
        super().__init__(special_tokens)
        for role, token in self._special_tokens.items():
            if token not in vocabulary_by_id:
                raise ValueError(
                    f"`special_tokens` names {role}={token!r}, which is not in the tokenizer's vocabulary."
                )
        # Text that happens to spell a special token ("<s>") is encoded as text, as with the other tokenizers.
        tokenizer.encode_special_tokens = True
        self._tokenizer = tokenizer
        size = tokenizer.get_vocab_size(with_added_tokens=True)
        vocabulary = [""] * size
        for token, index in vocabulary_by_id.items():
            if 0 <= index < size:
                vocabulary[index] = token
        self._vocabulary = vocabulary
        pad = self._special_tokens.get("pad")
        if pad is not None and vocabulary_by_id[pad] != 0:
            warnings.warn(
                f"this tokenizer's padding token {pad!r} has id {vocabulary_by_id[pad]}, not 0; llm_tf pipelines "
                "pad with tokenizer.pad_id and mark real tokens with padding_mask.",
                stacklevel=2,
            )

    @property
    def hf_tokenizer(self):
        """The wrapped `tokenizers.Tokenizer` (with `encode_special_tokens=True`: special-token strings in text stay text)."""
        return self._tokenizer

    @property
    def vocabulary(self) -> list[str]:
        return list(self._vocabulary)

    @property
    def vocabulary_size(self) -> int:
        return len(self._vocabulary)

    def token_to_id(self, token: str) -> int | None:
        return self._tokenizer.token_to_id(token)

    def get_config(self) -> dict[str, Any]:
        return {"special_tokens": self.special_tokens}

    # ----------------------------------------------------------------------------------------------

    def _encode_batch(self, texts: list[str]) -> list[list[int]]:
        # Special tokens are added by `encode` itself so truncation always keeps them.
        return [encoding.ids for encoding in self._tokenizer.encode_batch(texts, add_special_tokens=False)]

    def _tf_encode_batch(self, strings):
        import tensorflow as tf

        def encode_numpy(batch):
            texts = [value.decode("utf-8", errors="replace") for value in batch.numpy()]
            encoded = self._encode_batch(texts)
            flat = [token_id for ids in encoded for token_id in ids]
            return (
                tf.constant(flat, dtype=tf.int32),
                tf.constant([len(ids) for ids in encoded], dtype=tf.int64),
            )

        flat, lengths = tf.py_function(encode_numpy, [strings], Tout=[tf.int32, tf.int64])
        flat.set_shape([None])
        lengths.set_shape([None])
        return tf.RaggedTensor.from_row_lengths(flat, lengths)

    def decode(self, ids: Any, *, skip_special_tokens: bool = True) -> str:
        """Decodes ids back into the exact text (byte-level BPE is lossless).

        Args:
            ids: a sequence of ids (list, numpy array or 1-D tensor).
            skip_special_tokens: drop special tokens (pad, unk, bos, eos, mask).

        Returns:
            The text.
        """
        ids = self._check_ids(ids)
        return self._tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    # ----------------------------------------------------------------------------------------------

    def to_transformers(self):
        """Returns a `transformers.PreTrainedTokenizerFast` over the same tokenizer (a copy).

        Example:
            >>> hf = tokenizer.to_transformers()  # doctest: +SKIP
            >>> hf("Hello")["input_ids"] == tokenizer.encode("Hello", add_special_tokens=True)  # doctest: +SKIP
            True
        """
        from tokenizers import Tokenizer as HFTokenizer
        from transformers import PreTrainedTokenizerFast

        names = {
            "pad": "pad_token",
            "unk": "unk_token",
            "cls": "bos_token",
            "sep": "eos_token",
            "mask": "mask_token",
        }
        kwargs = {names[role]: token for role, token in self._special_tokens.items()}
        copy = HFTokenizer.from_str(self._tokenizer.to_str())
        return PreTrainedTokenizerFast(tokenizer_object=copy, **kwargs)

    def save(self, path: str | pathlib.Path) -> pathlib.Path:
        """Writes `tokenizer.json` (Hugging Face format) and `llm_tf_tokenizer.json` into the directory `path`."""
        directory = pathlib.Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        self._tokenizer.save(str(directory / "tokenizer.json"))
        self._write_config(directory)
        return directory

    @classmethod
    def _from_saved(cls, path: pathlib.Path, **options: Any) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        if path.is_dir():
            json_path = path / "tokenizer.json"
        elif path.name == CONFIG_FILE_NAME:
            json_path = path.parent / "tokenizer.json"
        else:
            json_path = path
        if not json_path.is_file():
            raise FileNotFoundError(
                f"no tokenizer.json at {str(json_path)!r}; expected a Hugging Face tokenizer file."
            )
        try:
            tokenizer = HFTokenizer.from_file(str(json_path))
        except Exception as error:  # the Rust loader raises a bare Exception on malformed files
            raise ValueError(
                f"`path` is not a valid tokenizer.json ({error}); path={str(json_path)!r}"
            ) from None
        config = read_config(json_path) if json_path.name == "tokenizer.json" else None
        special_tokens = options.pop("special_tokens", None)
        if special_tokens is None and config is not None and config.get("type") == cls.type_name:
            special_tokens = config.get("special_tokens")
        if options:
            raise ValueError(
                f"unexpected options for BPETokenizer.load: {sorted(options)}; expected special_tokens."
            )
        return cls(tokenizer, special_tokens=special_tokens)

    @classmethod
    def train(
        cls,
        texts: Any,
        vocabulary_size: int = 32000,
        *,
        min_frequency: int = 2,
        special_tokens: Mapping[str, str] | None = None,
        unicode_normalization: str | None = None,
        max_token_length: int | None = None,
        progress: bool | None = None,
    ) -> BPETokenizer:
        """Learns a byte-level BPE vocabulary with Hugging Face `tokenizers`.

        Args:
            texts: a str or any iterable of str (list, generator, numpy array); read once.
            vocabulary_size: the largest vocabulary, special tokens and the 256 byte symbols included.
            min_frequency: the fewest occurrences a pair needs to be merged.
            special_tokens: the special-token strings by role; defaults to `<pad> <unk> <s> </s> <mask>`,
                which take ids 0..4.
            unicode_normalization: None (bytes kept exactly: lossless), or "NFC"/"NFKC"/"NFD"/"NFKD" applied
                before encoding (then `decode` returns the normalized text).
            max_token_length: the longest token in characters; None for no limit.
            progress: show a progress bar; None shows one for large corpora when stderr is a terminal.

        Returns:
            A `BPETokenizer`.

        Example:
            >>> tokenizer = BPETokenizer.train(load_tiny_shakespeare().train, vocabulary_size=2000)  # doctest: +SKIP
        """
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers

        check_positive_int("vocabulary_size", vocabulary_size)
        check_positive_int("min_frequency", min_frequency)
        check_positive_int("max_token_length", max_token_length, allow_none=True)
        check_choice("unicode_normalization", unicode_normalization, UNICODE_FORMS)
        if special_tokens is None:
            special_tokens = DEFAULT_BPE_SPECIAL_TOKENS
        reserved = list(
            dict.fromkeys(
                special_tokens[role]
                for role in ("pad", "unk", "cls", "sep", "mask")
                if role in special_tokens
            )
        )
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        if vocabulary_size < len(reserved) + len(alphabet):
            raise ValueError(
                f"`vocabulary_size` must be at least {len(reserved) + len(alphabet)} (special tokens plus the "
                f"256 byte symbols); got vocabulary_size={vocabulary_size}."
            )
        model = HFTokenizer(models.BPE(unk_token=special_tokens.get("unk")))
        if unicode_normalization is not None:
            model.normalizer = getattr(normalizers, unicode_normalization)()
        # No prefix space: a leading space would not survive decode, and the round trip must be exact.
        model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        model.decoder = decoders.ByteLevel()
        trainer_options = {
            "vocab_size": vocabulary_size,
            "min_frequency": min_frequency,
            "special_tokens": reserved,
            "initial_alphabet": alphabet,
            "show_progress": want_progress(progress, texts),
        }
        if max_token_length is not None:
            trainer_options["max_token_length"] = max_token_length
        length = known_length(texts)
        model.train_from_iterator(
            batched(iterate_texts(texts), _TRAIN_BATCH),
            trainer=trainers.BpeTrainer(**trainer_options),
            length=None if length is None else -(-length // _TRAIN_BATCH),
        )
        bos, eos = special_tokens.get("cls"), special_tokens.get("sep")
        if bos is not None and eos is not None:
            # Makes transformers' add_special_tokens=True produce the same ids as encode(add_special_tokens=True).
            model.post_processor = processors.TemplateProcessing(
                single=f"{bos} $A {eos}",
                pair=f"{bos} $A {eos} $B:1 {eos}:1",
                special_tokens=[(bos, model.token_to_id(bos)), (eos, model.token_to_id(eos))],
            )
        return cls(model, special_tokens=special_tokens)


def infer_special_tokens(vocabulary: Mapping[str, int], tokenizer: Any = None) -> dict[str, str]:
    """Guesses special-token roles in a foreign vocabulary from their usual names.

    Args:
        vocabulary: token -> id (with added tokens).
        tokenizer: the `tokenizers.Tokenizer`, whose padding settings (if any) name the padding token.

    Returns:
        Role -> token string for the roles found.
    """
    roles: dict[str, str] = {}
    padding = getattr(tokenizer, "padding", None)
    if isinstance(padding, dict) and padding.get("pad_token") in vocabulary:
        roles["pad"] = padding["pad_token"]
    for role, names in _ROLE_NAMES.items():
        if role in roles:
            continue
        for name in names:
            if name in vocabulary:
                roles[role] = name
                break
    return roles
