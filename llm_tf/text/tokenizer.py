"""The interface shared by every llm_tf tokenizer (WordPiece, byte-level BPE, characters).

Conventions, the same for all implementations:

- `pad_id` is 0 for every vocabulary built by llm_tf. Two documented exceptions: `CharTokenizer` built with
  `special_tokens=False` (nanoGPT's vocabulary, where id 0 is the newline character), and a foreign
  `tokenizer.json` loaded into `BPETokenizer` whose padding token sits elsewhere (or that has none). Pipelines
  always read the padding id from `tokenizer.pad_id` and mark real tokens with `padding_mask`, so they stay correct.
- Special-token roles: `pad`, `unk`, `cls` (= `bos`), `sep` (= `eos`) and `mask`. A role a vocabulary lacks
  reports `None`.
- `encode` never turns text into special tokens: a literal "[CLS]" in the text is split like any other text.
  `add_special_tokens=True` wraps each sequence as `[cls/bos] ... [sep/eos]`.
- Truncation: `max_length` counts every id, special tokens included; the text part is cut at the end
  (`truncation_side="right"`, the default) or at the start (`"left"`), special tokens are always kept.
- Invalid UTF-8: texts given as `bytes` are decoded as UTF-8 and invalid byte sequences become U+FFFD
  (`errors="replace"`, the default) or raise `ValueError` (`errors="strict"`). `tf_encode` always replaces.
- Saving: `save(directory)` writes the vocabulary files plus `llm_tf_tokenizer.json` (the type and options);
  `Tokenizer.load(path)` / `load_tokenizer(path)` reads any of them back and picks the right class.
"""

from __future__ import annotations

import abc
import json
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from llm_tf.checks import is_int, require_tensorflow_backend
from llm_tf.text._common import as_id_list, check_choice, check_positive_int, is_single_text, to_text_list

CONFIG_FILE_NAME = "llm_tf_tokenizer.json"
SPECIAL_ROLES = ("pad", "unk", "cls", "sep", "mask")
TRUNCATION_SIDES = ("right", "left")


class Tokenizer(abc.ABC):
    """Base class: maps text to lists of int ids and back.

    Subclasses implement `vocabulary`, `_encode_batch`, `decode`, `get_config`, `save`, `_from_saved`,
    `train` and, for graph mode, `_tf_encode_batch`. Construction: each subclass's constructor takes a ready
    vocabulary; `Subclass.train(texts, vocabulary_size, ...)` is a classmethod that learns one from a corpus.

    Example:
        >>> from llm_tf.text import CharTokenizer
        >>> tokenizer = CharTokenizer.train(["hello world"])
        >>> ids = tokenizer.encode("hello", add_special_tokens=True)
        >>> tokenizer.decode(ids)
        'hello'
    """

    type_name: ClassVar[str] = ""
    # Tokenizers whose `tf_encode` runs as native TensorFlow ops (no Python in the tf.data hot path).
    supports_graph_mode: ClassVar[bool] = False

    def __init__(self, special_tokens: Mapping[str, str] | None):
        special_tokens = dict(special_tokens or {})
        for role in special_tokens:
            check_choice("special_tokens key", role, SPECIAL_ROLES)
        self._special_tokens = special_tokens

    # ----------------------------------------------------------------------------------------------
    # Vocabulary and special tokens.

    @property
    @abc.abstractmethod
    def vocabulary(self) -> list[str]:
        """The tokens, indexed by id."""

    @property
    def vocabulary_size(self) -> int:
        """Number of ids (the embedding table size a model needs)."""
        return len(self.vocabulary)

    @abc.abstractmethod
    def token_to_id(self, token: str) -> int | None:
        """The id of `token`, or None when it is not in the vocabulary."""

    def id_to_token(self, token_id: int) -> str:
        """The token string for `token_id`."""
        vocabulary = self.vocabulary
        if not is_int(token_id) or not 0 <= token_id < len(vocabulary):
            raise ValueError(
                f"`token_id` must be an int in [0, {len(vocabulary)}); got token_id={token_id!r}."
            )
        return vocabulary[token_id]

    @property
    def special_tokens(self) -> dict[str, str]:
        """The special-token strings by role (`pad`, `unk`, `cls`, `sep`, `mask`); missing roles are absent."""
        return dict(self._special_tokens)

    def _role_id(self, role: str) -> int | None:
        token = self._special_tokens.get(role)
        return None if token is None else self.token_to_id(token)

    @property
    def pad_id(self) -> int:
        """Padding id: 0 (see the module docstring for the two documented exceptions)."""
        pad = self._role_id("pad")
        return 0 if pad is None else pad

    @property
    def unk_id(self) -> int | None:
        return self._role_id("unk")

    @property
    def cls_id(self) -> int | None:
        return self._role_id("cls")

    @property
    def sep_id(self) -> int | None:
        return self._role_id("sep")

    @property
    def bos_id(self) -> int | None:
        """Start-of-sequence id; the same token as `cls_id`."""
        return self.cls_id

    @property
    def eos_id(self) -> int | None:
        """End-of-sequence id; the same token as `sep_id`."""
        return self.sep_id

    @property
    def mask_id(self) -> int | None:
        return self._role_id("mask")

    @property
    def special_ids(self) -> list[int]:
        """Sorted ids of all special tokens (never selected for masking, dropped by `decode`)."""
        ids = {self._role_id(role) for role in self._special_tokens}
        return sorted(i for i in ids if i is not None)

    # ----------------------------------------------------------------------------------------------
    # Encoding.

    @abc.abstractmethod
    def _encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Encodes clean `str` texts without special tokens or truncation."""

    def encode(
        self,
        texts: Any,
        *,
        add_special_tokens: bool = False,
        max_length: int | None = None,
        truncation_side: str = "right",
        errors: str = "replace",
    ) -> list[int] | list[list[int]]:
        """Encodes one text or a batch of texts into token ids.

        Args:
            texts: a `str` (or UTF-8 `bytes`), or an iterable of them.
            add_special_tokens: wrap each sequence as `[cls/bos] ... [sep/eos]` (whichever exist).
            max_length: the most ids per sequence, special tokens included; None keeps everything.
            truncation_side: "right" keeps the start of the text, "left" keeps its end.
            errors: "replace" (invalid UTF-8 becomes U+FFFD) or "strict" (raise `ValueError`).

        Returns:
            A list of ints for one text, a list of lists of ints for a batch.

        Example:
            >>> tokenizer.encode(["a b", "c"], add_special_tokens=True, max_length=8)  # doctest: +SKIP
        """
        check_positive_int("max_length", max_length, allow_none=True)
        check_choice("truncation_side", truncation_side, TRUNCATION_SIDES)
        single = is_single_text(texts)
        text_list = to_text_list(texts, errors=errors)
        start, end = self._special_wrappers(add_special_tokens, max_length)
        encoded = self._encode_batch(text_list) if text_list else []
        budget = None if max_length is None else max_length - len(start) - len(end)
        result = []
        for ids in encoded:
            if budget is not None and len(ids) > budget:
                ids = ids[:budget] if truncation_side == "right" else ids[len(ids) - budget :]
            result.append(start + list(ids) + end)
        return result[0] if single else result

    def _special_wrappers(
        self, add_special_tokens: bool, max_length: int | None
    ) -> tuple[list[int], list[int]]:
        if not add_special_tokens:
            return [], []
        start = [] if self.cls_id is None else [self.cls_id]
        end = [] if self.sep_id is None else [self.sep_id]
        if not start and not end:
            raise ValueError(
                f"add_special_tokens=True needs a cls/bos or sep/eos token, but this {type(self).__name__} "
                f"has special tokens {self.special_tokens}; build it with special tokens or pass "
                "add_special_tokens=False."
            )
        if max_length is not None and max_length < len(start) + len(end):
            raise ValueError(
                f"`max_length` must leave room for the {len(start) + len(end)} special tokens; "
                f"got max_length={max_length}."
            )
        return start, end

    # ----------------------------------------------------------------------------------------------
    # Decoding.

    @abc.abstractmethod
    def decode(self, ids: Any, *, skip_special_tokens: bool = True) -> str:
        """Turns a sequence of ids back into text (see each subclass for what is normalized away)."""

    def batch_decode(self, batch_ids: Any, *, skip_special_tokens: bool = True) -> list[str]:
        """Decodes a batch (list of id lists, 2-D array or RaggedTensor) into a list of strings."""
        if hasattr(batch_ids, "to_list"):
            batch_ids = batch_ids.to_list()
        elif hasattr(batch_ids, "numpy"):
            batch_ids = batch_ids.numpy().tolist()
        elif hasattr(batch_ids, "tolist"):
            batch_ids = batch_ids.tolist()
        return [self.decode(ids, skip_special_tokens=skip_special_tokens) for ids in batch_ids]

    def _check_ids(self, ids: Any) -> list[int]:
        ids = as_id_list(ids)
        size = self.vocabulary_size
        for value in ids:
            if not 0 <= value < size:
                raise ValueError(f"`ids` must hold ids in [0, {size}); got an id {value}.")
        return ids

    # ----------------------------------------------------------------------------------------------
    # Graph mode.

    def _tf_encode_batch(self, strings):  # pragma: no cover - overridden
        raise NotImplementedError

    def tf_encode(
        self,
        strings,
        *,
        add_special_tokens: bool = False,
        max_length: int | None = None,
        truncation_side: str = "right",
    ):
        """Encodes a string tensor inside TensorFlow (usable in `tf.data.Dataset.map` and `tf.function`).

        TensorFlow backend only (graph-mode TensorFlow ops for ``tf.data``): raises ValueError under another Keras
        backend. The eager `encode` / `decode` work on every backend.

        Invalid UTF-8 bytes are replaced by U+FFFD before tokenization.

        Args:
            strings: a scalar or 1-D `tf.string` tensor (or anything convertible to one).
            add_special_tokens, max_length, truncation_side: as in `encode`.

        Returns:
            For a 1-D input of shape (batch,): a `tf.RaggedTensor` of int32 ids, shape (batch, None).
            For a scalar input: a 1-D int32 `tf.Tensor` of ids.

        Example:
            >>> dataset = tf.data.Dataset.from_tensor_slices(texts).batch(32)  # doctest: +SKIP
            >>> dataset = dataset.map(tokenizer.tf_encode)  # doctest: +SKIP
        """
        require_tensorflow_backend("Tokenizer.tf_encode (tf.data graph mode)")
        return self._tf_encode(
            strings, add_special_tokens=add_special_tokens, max_length=max_length, truncation_side=truncation_side
        )

    def _tf_encode(self, strings, *, add_special_tokens: bool, max_length: int | None, truncation_side: str):
        """`tf_encode` without the backend check (WordPiece's eager `encode` runs these kernels on any backend)."""
        import tensorflow as tf

        check_positive_int("max_length", max_length, allow_none=True)
        check_choice("truncation_side", truncation_side, TRUNCATION_SIDES)
        start, end = self._special_wrappers(add_special_tokens, max_length)
        strings = tf.convert_to_tensor(strings, dtype=tf.string)
        scalar = strings.shape.rank == 0
        if strings.shape.rank not in (0, 1):
            raise ValueError(
                f"`strings` must be a scalar or 1-D string tensor; got a tensor of shape {strings.shape}."
            )
        batch = tf.reshape(strings, [-1])
        batch = tf.strings.unicode_transcode(
            batch, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
        )
        ids = self._tf_encode_batch(batch)
        ids = truncate_and_wrap(
            ids,
            start=start,
            end=end,
            max_length=max_length,
            truncation_side=truncation_side,
        )
        return ids[0] if scalar else ids

    # ----------------------------------------------------------------------------------------------
    # Persistence.

    @abc.abstractmethod
    def get_config(self) -> dict[str, Any]:
        """The JSON-serialisable options (without the vocabulary) that rebuild this tokenizer."""

    @abc.abstractmethod
    def save(self, path: str | pathlib.Path) -> pathlib.Path:
        """Writes the tokenizer into the directory `path` (created when missing); returns the directory."""

    @classmethod
    def load(cls, path: str | pathlib.Path, **options: Any) -> Tokenizer:
        """Loads a tokenizer saved by `save` (or, per subclass, a plain vocab.txt / tokenizer.json).

        Called on `Tokenizer` itself it picks the class from the saved files; called on a subclass it
        checks that the files hold that kind of tokenizer.

        Args:
            path: the directory given to `save`, or one of the files in it.
            **options: passed to the subclass loader (for example `lower_case` for a bare vocab.txt).

        Returns:
            The tokenizer.
        """
        path = pathlib.Path(path)
        saved_type = _saved_type(path)
        implementation = _TOKENIZER_TYPES.get(saved_type)
        if implementation is None:
            raise ValueError(
                f"`path` holds a tokenizer of unknown type {saved_type!r}; expected one of "
                f"{sorted(_TOKENIZER_TYPES)}. path={str(path)!r}"
            )
        if cls is not Tokenizer and not issubclass(implementation, cls):
            raise ValueError(
                f"`path` holds a {implementation.__name__} ({saved_type!r}), not a {cls.__name__}. "
                f"path={str(path)!r}"
            )
        return implementation._from_saved(path, **options)

    @classmethod
    @abc.abstractmethod
    def _from_saved(cls, path: pathlib.Path, **options: Any) -> Tokenizer:
        """Builds the tokenizer from `path` (a directory or one of its files)."""

    @classmethod
    @abc.abstractmethod
    def train(cls, texts: Any, vocabulary_size: int | None, **options: Any) -> Tokenizer:
        """Learns a vocabulary from `texts` (any iterable of strings) and returns a tokenizer."""

    def _write_config(self, directory: pathlib.Path, extra: Mapping[str, Any] | None = None) -> None:
        config = {"type": self.type_name, **self.get_config(), **dict(extra or {})}
        (directory / CONFIG_FILE_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocabulary_size={self.vocabulary_size}, special_tokens={self.special_tokens})"


_TOKENIZER_TYPES: dict[str, type[Tokenizer]] = {}


def register_tokenizer(cls: type[Tokenizer]) -> type[Tokenizer]:
    """Class decorator: makes `Tokenizer.load` able to rebuild `cls` from its saved `type`."""
    _TOKENIZER_TYPES[cls.type_name] = cls
    return cls


def read_config(path: pathlib.Path) -> dict[str, Any] | None:
    """The saved `llm_tf_tokenizer.json` next to (or inside) `path`, or None when there is none."""
    directory = path if path.is_dir() else path.parent
    config_path = directory / CONFIG_FILE_NAME
    if not config_path.is_file():
        return None
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"`path` has a corrupt {CONFIG_FILE_NAME} ({error}); path={str(config_path)!r}"
        ) from None
    if not isinstance(config, dict) or "type" not in config:
        raise ValueError(f"{CONFIG_FILE_NAME} must be a JSON object with a 'type'; path={str(config_path)!r}")
    return config


def _saved_type(path: pathlib.Path) -> str:
    if not path.exists():
        raise FileNotFoundError(
            f"`path` does not exist: {str(path)!r}; expected a directory written by Tokenizer.save, "
            f"or a {CONFIG_FILE_NAME}, tokenizer.json or vocab.txt file."
        )
    config = read_config(path)
    if config is not None and (
        path.is_dir() or path.name in (CONFIG_FILE_NAME, _primary_file(config["type"]))
    ):
        return str(config["type"])
    directory = path if path.is_dir() else path.parent
    name = path.name if path.is_file() else None
    if name == "tokenizer.json" or (name is None and (directory / "tokenizer.json").is_file()):
        return "bpe"
    if (name is not None and name.endswith(".txt")) or (name is None and (directory / "vocab.txt").is_file()):
        return "wordpiece"
    raise FileNotFoundError(
        f"`path` holds no tokenizer files: {str(path)!r}; expected {CONFIG_FILE_NAME}, tokenizer.json "
        "or vocab.txt."
    )


def _primary_file(type_name: str) -> str:
    return {"bpe": "tokenizer.json", "wordpiece": "vocab.txt"}.get(type_name, CONFIG_FILE_NAME)


def load_tokenizer(path: str | pathlib.Path, **options: Any) -> Tokenizer:
    """Loads any llm_tf tokenizer (or a bare tokenizer.json / vocab.txt); see `Tokenizer.load`.

    Example:
        >>> tokenizer = load_tokenizer("runs/news/tokenizer")  # doctest: +SKIP
    """
    return Tokenizer.load(path, **options)


def truncate_and_wrap(
    ids, *, start: Sequence[int], end: Sequence[int], max_length: int | None, truncation_side: str
):
    """Truncates a (batch, None) RaggedTensor of ids to fit `max_length` and adds start/end ids (graph mode)."""
    import tensorflow as tf

    if max_length is not None:
        budget = max_length - len(start) - len(end)
        ids = ids[:, :budget] if truncation_side == "right" else ids[:, -budget:] if budget else ids[:, :0]
    if start or end:
        rows = ids.nrows()
        pieces = []
        if start:
            pieces.append(
                tf.RaggedTensor.from_tensor(tf.fill([rows, len(start)], tf.constant(start[0], ids.dtype)))
            )
        pieces.append(ids)
        if end:
            pieces.append(
                tf.RaggedTensor.from_tensor(tf.fill([rows, len(end)], tf.constant(end[0], ids.dtype)))
            )
        ids = tf.concat(pieces, axis=1)
    return ids
