"""Character-level tokenizer: one id per Unicode code point.

The vocabulary is the sorted set of characters seen in training. With `special_tokens=False` it is exactly
nanoGPT's character vocabulary (Tiny Shakespeare: 65 symbols, ids 0..64, "\\n" = 0, " " = 1, ...). In that
mode the pad-id-0 convention is relaxed (id 0 is the newline; fixed-length char-LM windows need no padding),
there is no unknown token (an unseen character raises `ValueError` in `encode`, and an
`InvalidArgumentError` in `tf_encode`) and no cls/sep/mask.

With the default `special_tokens=True` the ids 0..4 are `[PAD] [UNK] [BOS] [EOS] [MASK]` and the characters
follow from id 5; unseen characters map to `[UNK]`, which `decode` renders as U+FFFD (one character per
unknown character, so lengths are kept).

Round trip: `decode(encode(text)) == text` for every text made of vocabulary characters; invalid UTF-8
bytes become U+FFFD first.
"""

from __future__ import annotations

import collections
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from llm_tf.text._common import REPLACEMENT_CHARACTER, check_positive_int, iterate_texts, want_progress
from llm_tf.text.tokenizer import CONFIG_FILE_NAME, Tokenizer, read_config, register_tokenizer

DEFAULT_CHAR_SPECIAL_TOKENS = {
    "pad": "[PAD]",
    "unk": "[UNK]",
    "cls": "[BOS]",
    "sep": "[EOS]",
    "mask": "[MASK]",
}
_ROLE_ORDER = ("pad", "unk", "cls", "sep", "mask")


@register_tokenizer
class CharTokenizer(Tokenizer):
    """Maps each character (Unicode code point) to an id.

    Args:
        characters: the characters, in id order after the special tokens (a str or a sequence of
            one-character strings); `train` passes them sorted.
        special_tokens: True for `[PAD] [UNK] [BOS] [EOS] [MASK]` (ids 0..4), False for none (nanoGPT's
            vocabulary), or a mapping role -> token string (tokens must be longer than one character).

    Example:
        >>> tokenizer = CharTokenizer.train("hello world", special_tokens=False)
        >>> tokenizer.vocabulary
        [' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w']
        >>> tokenizer.encode("hello")
        [3, 2, 4, 4, 5]
    """

    type_name = "char"
    supports_graph_mode = True

    def __init__(self, characters: Sequence[str] | str, *, special_tokens: bool | Mapping[str, str] = True):
        if special_tokens is True:
            special_tokens = DEFAULT_CHAR_SPECIAL_TOKENS
        elif special_tokens is False or special_tokens is None:
            special_tokens = {}
        elif not isinstance(special_tokens, Mapping):
            raise ValueError(
                f"`special_tokens` must be True, False or a mapping role -> token; got {special_tokens!r}."
            )
        super().__init__(special_tokens)
        characters = list(characters)
        for character in characters:
            if not isinstance(character, str) or len(character) != 1:
                raise ValueError(
                    f"`characters` must hold single characters (one code point each); got {character!r}."
                )
        if len(set(characters)) != len(characters):
            duplicates = sorted(c for c, n in collections.Counter(characters).items() if n > 1)
            raise ValueError(f"`characters` must be unique; got duplicates {duplicates!r}.")
        specials = list(
            dict.fromkeys(self._special_tokens[role] for role in _ROLE_ORDER if role in self._special_tokens)
        )
        for token in specials:
            if not isinstance(token, str) or len(token) < 2:
                raise ValueError(
                    f"special tokens must be strings longer than one character (so they never collide with a "
                    f"character); got {token!r}."
                )
        self._vocabulary = specials + characters
        self._token_ids = {token: index for index, token in enumerate(self._vocabulary)}
        self._character_ids = {character: len(specials) + index for index, character in enumerate(characters)}
        self._characters = characters
        self._table = None

    @property
    def vocabulary(self) -> list[str]:
        return list(self._vocabulary)

    @property
    def vocabulary_size(self) -> int:
        return len(self._vocabulary)

    @property
    def characters(self) -> list[str]:
        """The characters (without special tokens), in id order."""
        return list(self._characters)

    def token_to_id(self, token: str) -> int | None:
        return self._token_ids.get(token)

    def get_config(self) -> dict[str, Any]:
        return {"special_tokens": self.special_tokens, "characters": list(self._characters)}

    # ----------------------------------------------------------------------------------------------

    def _encode_batch(self, texts: list[str]) -> list[list[int]]:
        lookup = self._character_ids
        unk = self.unk_id
        if unk is not None:
            return [[lookup.get(character, unk) for character in text] for text in texts]
        encoded = []
        for text in texts:
            try:
                encoded.append([lookup[character] for character in text])
            except KeyError as error:
                character = error.args[0]
                raise ValueError(
                    f"`texts` contains the character {character!r} (U+{ord(character):04X}) at position "
                    f"{text.index(character)}, which is not in this CharTokenizer's vocabulary, and the tokenizer "
                    "has no unknown token; expected only vocabulary characters, or build it with "
                    "special_tokens=True."
                ) from None
        return encoded

    def _lookup_table(self):
        if self._table is None:
            import tensorflow as tf

            # Created eagerly even when first used while tracing a tf.data function, so it is reusable.
            with tf.init_scope():
                keys = tf.constant([ord(character) for character in self._characters], dtype=tf.int64)
                values = tf.constant(list(self._character_ids.values()), dtype=tf.int32)
                default = -1 if self.unk_id is None else self.unk_id
                self._table = tf.lookup.StaticHashTable(
                    tf.lookup.KeyValueTensorInitializer(keys, values), default_value=default
                )
        return self._table

    def _tf_encode_batch(self, strings):
        import tensorflow as tf

        code_points = tf.strings.unicode_decode(strings, "UTF-8", errors="replace", replacement_char=0xFFFD)
        ids = tf.ragged.map_flat_values(self._lookup_table().lookup, tf.cast(code_points, tf.int64))
        if self.unk_id is None:
            check = tf.debugging.assert_non_negative(
                ids.flat_values,
                message="CharTokenizer.tf_encode: a character is not in the vocabulary and there is no unknown token",
            )
            with tf.control_dependencies([check]):
                ids = ids.with_flat_values(tf.identity(ids.flat_values))
        return ids

    def decode(self, ids: Any, *, skip_special_tokens: bool = True) -> str:
        """Joins the characters of `ids`.

        Args:
            ids: a sequence of ids (list, numpy array or 1-D tensor).
            skip_special_tokens: drop pad/bos/eos/mask and render the unknown token as U+FFFD; False writes
                every special token out as its string ("[PAD]", "[UNK]", ...).

        Returns:
            The text.
        """
        ids = self._check_ids(ids)
        vocabulary = self._vocabulary
        if not self._special_tokens:
            return "".join(vocabulary[i] for i in ids)
        unk = self.unk_id
        specials = set(self.special_ids)
        pieces = []
        for token_id in ids:
            if token_id in specials and skip_special_tokens:
                if token_id == unk:
                    pieces.append(REPLACEMENT_CHARACTER)
                continue
            pieces.append(vocabulary[token_id])
        return "".join(pieces)

    # ----------------------------------------------------------------------------------------------

    def save(self, path: str | pathlib.Path) -> pathlib.Path:
        """Writes `llm_tf_tokenizer.json` (characters and special tokens) into the directory `path`."""
        directory = pathlib.Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        self._write_config(directory)
        return directory

    @classmethod
    def _from_saved(cls, path: pathlib.Path, **options: Any) -> CharTokenizer:
        config = read_config(path)
        if config is None:
            raise FileNotFoundError(
                f"no {CONFIG_FILE_NAME} at {str(path)!r}; expected a directory from CharTokenizer.save."
            )
        if options:
            raise ValueError(f"unexpected options for CharTokenizer.load: {sorted(options)}.")
        try:
            return cls(config["characters"], special_tokens=config.get("special_tokens") or False)
        except KeyError:
            raise ValueError(f"{CONFIG_FILE_NAME} at {str(path)!r} has no 'characters' list.") from None

    @classmethod
    def train(
        cls,
        texts: Any,
        vocabulary_size: int | None = None,
        *,
        special_tokens: bool | Mapping[str, str] = True,
        progress: bool | None = None,
    ) -> CharTokenizer:
        """Builds the vocabulary: the sorted set of characters in `texts`.

        Args:
            texts: a str (one document, e.g. all of Tiny Shakespeare) or any iterable of str.
            vocabulary_size: None keeps every character; otherwise the total size (special tokens included):
                the most frequent characters are kept (ties broken by code point) and sorted, the rest map to
                the unknown token (so this needs special tokens).
            special_tokens: see the class docstring; False gives nanoGPT's vocabulary.
            progress: show a progress bar; None shows one for large corpora when stderr is a terminal.

        Returns:
            A `CharTokenizer`.

        Example:
            >>> text = load_tiny_shakespeare().text  # doctest: +SKIP
            >>> CharTokenizer.train(text, special_tokens=False).vocabulary_size  # doctest: +SKIP
            65
        """
        from tqdm.auto import tqdm

        check_positive_int("vocabulary_size", vocabulary_size, allow_none=True)
        counts: collections.Counter[str] = collections.Counter()
        for text in tqdm(
            iterate_texts(texts), disable=not want_progress(progress, texts), desc="counting characters"
        ):
            counts.update(text)
        characters = sorted(counts)
        if vocabulary_size is not None:
            probe = cls([], special_tokens=special_tokens)
            room = vocabulary_size - probe.vocabulary_size
            if room <= 0:
                raise ValueError(
                    f"`vocabulary_size` must exceed the {probe.vocabulary_size} special tokens; "
                    f"got vocabulary_size={vocabulary_size}."
                )
            if len(characters) > room:
                if probe.unk_id is None:
                    raise ValueError(
                        f"`vocabulary_size`={vocabulary_size} is smaller than the {len(characters)} distinct "
                        "characters, and without an unknown token nothing may be dropped; pass "
                        "vocabulary_size=None or special_tokens=True."
                    )
                most_frequent = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:room]
                characters = sorted(character for character, _ in most_frequent)
        return cls(characters, special_tokens=special_tokens)
