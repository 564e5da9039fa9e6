"""Masked-LM pretraining as library steps, and the pretrained encoder a classification run starts from.

The steps of ``experiments/pretrain.py``, in order:

1. :func:`load_pretraining_corpus`: the Gutenberg books split by book (``llm_tf.datasets.load_gutenberg``), plus
   optionally the *training* texts of downstream tasks (``"bbc"``: BBC News training articles of the seeded
   split; ``"sst2"``: SST-2 training sentences minus the sentiment job's validation carve). Held-out text is
   whole books only; validation and test texts of the tasks are never added.
2. A WordPiece vocabulary learned on the training documents; :func:`encode_documents` encodes every document
   once (graph-mode tensorflow-text op, paragraph by paragraph).
3. :func:`pack_sequences`: each split's documents concatenated with ``[SEP]`` between them and cut into
   ``[CLS] <L-2 tokens> [SEP]`` rows. Packing runs on one split at a time, so no row mixes a training book
   with a held-out one.
4. :func:`mask_sequences`: BERT's dynamic masking, drawn again for every interval of training: 15% of the
   non-special tokens (at least one, at most ``max_predictions``) are chosen, of which 80% become
   ``[MASK]``, 10% a random non-special token and 10% stay unchanged; ``whole_word_masking`` chooses whole
   words (a token and its ``##`` continuations) instead of single tokens.
5. :func:`train_masked_lm`: ``MaskedLM`` on a ``TransformerEncoder`` with ``llm_tf.training.train`` (AdamW,
   warmup + cosine decay, exact crash-safe resume): one Keras epoch is one evaluation interval, after which
   :class:`MaskedLMProgress` writes held-out MLM loss, accuracy and perplexity, tokens seen and tokens/s to
   ``pretrain_eval.csv`` and ``pretrain_eval.png``. The backbone is saved as ``backbone.keras`` next to
   ``tokenizer/``.
6. :func:`load_pretrained_encoder`: a pretraining run directory, or a Hugging Face BERT folder
   (``llm_tf.interop.load_hf_bert``), as ``(backbone, tokenizer, source)`` for fine-tuning
   (``llm_tf.tasks.classification.train_classifier(init_from=...)``).

Example:
    >>> import numpy as np
    >>> pack_sequences([np.array([7, 8, 9]), np.array([10, 11])], 5, cls_id=2, sep_id=3).tolist()
    [[2, 7, 8, 9, 3], [2, 3, 10, 11, 3]]
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
import warnings
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from llm_tf.checks import check_choice, check_positive_int, check_probability
from llm_tf.tasks.cli import ExperimentConfig

#: Downstream tasks whose *training* texts ``--add-texts`` may add to the pretraining corpus.
TASK_TEXT_SOURCES = ("bbc", "sst2")
#: The files a finished pretraining run directory holds for fine-tuning.
BACKBONE_FILE, TOKENIZER_DIR = "backbone.keras", "tokenizer"
EVAL_CSV, EVAL_PNG = "pretrain_eval.csv", "pretrain_eval.png"
EVAL_COLUMNS = ("step", "tokens_seen", "val_loss", "val_accuracy", "val_perplexity", "train_loss",
                "learning_rate", "elapsed_s", "tokens_per_s")


@dataclasses.dataclass
class PretrainingCorpus:
    """Documents for pretraining, split so that no held-out document is ever trained on.

    Attributes:
        train, validation: the documents (a book, an article or a sentence each).
        sources: ``{"train": {source: documents}, "validation": {...}}`` counts.
        notes: loader notes (e.g. books without a Gutenberg START marker).
    """

    train: list[str]
    validation: list[str]
    sources: dict[str, dict[str, int]]
    notes: list[str] = dataclasses.field(default_factory=list)


def load_pretraining_corpus(data_dir=None, add_texts: Sequence[str] = (), validation_fraction: float = 0.1,
                            split_seed: int = 42, max_books: int | None = None,
                            max_chars_per_document: int | None = None, books: bool = True) -> PretrainingCorpus:
    """The Gutenberg books split by book, plus the training texts of the tasks named in ``add_texts``.

    Args:
        data_dir: the data directory (None: the loaders' default).
        add_texts: any of :data:`TASK_TEXT_SOURCES`; only their *training* texts are added, to train.
        validation_fraction, split_seed: the book split (``llm_tf.datasets.load_gutenberg``).
        max_books: keep the first ``max_books`` training books and ``max(1, max_books // 8)`` held-out ones
            (smoke runs); None keeps all.
        max_chars_per_document: cut every document to this many characters (smoke runs); None keeps all.
        books: False trains on the task texts alone (task-adaptive pretraining); the held-out books stay the
            validation documents either way.

    Returns:
        A :class:`PretrainingCorpus`.
    """
    from llm_tf.datasets import load_bbc_news, load_gutenberg, load_sst2_splits

    for source in add_texts:
        check_choice("add_texts", source, TASK_TEXT_SOURCES)
    check_positive_int("max_books", max_books, allow_none=True)
    check_positive_int("max_chars_per_document", max_chars_per_document, allow_none=True)
    gutenberg = load_gutenberg(data_dir, validation_fraction=validation_fraction, seed=split_seed)
    train_books, validation_books = gutenberg.train, gutenberg.validation
    if max_books is not None:
        train_books, validation_books = train_books[:max_books], validation_books[:max(1, max_books // 8)]
    train = [book.text for book in train_books] if books else []
    validation = [book.text for book in validation_books]
    sources = {"train": {"gutenberg": len(train)}, "validation": {"gutenberg": len(validation)}}
    for source in add_texts:
        if source == "bbc":
            texts = load_bbc_news(data_dir).train.texts  # the news job's seeded split: training articles only
        else:
            texts = load_sst2_splits(data_dir).train.texts  # minus the sentiment job's validation carve
        train.extend(texts)
        sources["train"][source] = len(texts)
    if max_chars_per_document is not None:
        train = [text[:max_chars_per_document] for text in train]
        validation = [text[:max_chars_per_document] for text in validation]
    return PretrainingCorpus(train=train, validation=validation, sources=sources, notes=list(gutenberg.notes))


def encode_documents(tokenizer, documents: Sequence[str], chunk_size: int = 20000) -> list[np.ndarray]:
    """Every document encoded once (no special tokens), paragraph by paragraph with the graph-mode op.

    A book is one string of ~1 MB; encoding its paragraphs (blank-line separated) in chunks keeps the
    tensorflow-text op's memory small. Returns one int32 id array per document.
    """
    import tensorflow as tf

    paragraphs, owners = [], []
    for index, document in enumerate(documents):
        parts = [part for part in document.split("\n\n") if part.strip()]
        paragraphs.extend(parts)
        owners.extend([index] * len(parts))
    pieces: list[list[np.ndarray]] = [[] for _ in documents]
    for start in range(0, len(paragraphs), chunk_size):
        ragged = tokenizer.tf_encode(tf.constant(paragraphs[start:start + chunk_size]))
        values, splits = ragged.flat_values.numpy().astype(np.int32), ragged.row_splits.numpy()
        for row in range(len(splits) - 1):
            pieces[owners[start + row]].append(values[splits[row]:splits[row + 1]])
    return [np.concatenate(parts) if parts else np.zeros(0, np.int32) for parts in pieces]


def pack_sequences(documents: Sequence[np.ndarray], sequence_length: int, *, cls_id: int, sep_id: int,
                   pad_id: int = 0) -> np.ndarray:
    """Pack documents into ``[CLS] <sequence_length - 2 tokens> [SEP]`` rows ``(rows, sequence_length)``.

    The documents are concatenated with one ``[SEP]`` between neighbours and the stream is cut into chunks of
    ``sequence_length - 2`` tokens; only the last row is padded (with ``pad_id``). Every token of every
    document appears exactly once, in order. Pack each split separately.

    Raises:
        ValueError: for ``sequence_length < 3`` or when the documents hold no token.
    """
    check_positive_int("sequence_length", sequence_length)
    if sequence_length < 3:
        raise ValueError(f"`sequence_length` must leave room for [CLS], [SEP] and a token (>= 3); got "
                         f"sequence_length={sequence_length}.")
    parts = []
    for index, document in enumerate(documents):
        if index:
            parts.append(np.array([sep_id], np.int32))
        parts.append(np.asarray(document, np.int32))
    stream = np.concatenate(parts) if parts else np.zeros(0, np.int32)
    if not len(stream) or not any(len(document) for document in documents):
        raise ValueError(f"no tokens to pack: {len(documents)} document(s), all empty.")
    width = sequence_length - 2
    rows = -(-len(stream) // width)
    body = np.full(rows * width, -1, np.int32)
    body[:len(stream)] = stream
    body = body.reshape(rows, width)
    lengths = np.minimum(width, len(stream) - np.arange(rows) * width)
    packed = np.full((rows, sequence_length), pad_id, np.int32)
    packed[:, 0] = cls_id
    packed[:, 1:1 + width] = np.where(body >= 0, body, pad_id)
    packed[np.arange(rows), lengths + 1] = sep_id
    return packed


def prepare_masked_lm_data(config: PretrainConfig, tokenizer_dir: str):
    """The corpus of ``config``, its tokenizer and its packed rows: ``(tokenizer, {"train", "validation"}, data)``.

    The tokenizer is read from ``tokenizer_dir`` when a resumed run saved it there; otherwise it is the continued
    run's (``config.continue_from``, unchanged) or a WordPiece vocabulary learned on the training documents, and is
    saved to ``tokenizer_dir``. ``data`` describes the corpus (sources, rows, tokens, passes over the training rows).
    """
    from llm_tf.text import WordPieceTokenizer, load_tokenizer

    corpus = load_pretraining_corpus(config.data_dir, config.add_texts, config.validation_fraction, config.split_seed,
                                     config.max_books, config.max_chars_per_document, books=config.books)
    print(f"corpus: {corpus.sources}", flush=True)
    try:
        tokenizer = load_tokenizer(tokenizer_dir)
    except FileNotFoundError:
        if config.continue_from:
            tokenizer = load_tokenizer(os.path.join(config.continue_from, TOKENIZER_DIR))
        else:
            tokenizer = WordPieceTokenizer.train(corpus.train, vocabulary_size=config.vocabulary_size,
                                                 lower_case=config.lower_case)
        tokenizer.save(tokenizer_dir)
    encode_started = time.time()
    packed = {name: pack_sequences(encode_documents(tokenizer, documents), config.sequence_length,
                                   cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id, pad_id=tokenizer.pad_id)
              for name, documents in (("train", corpus.train), ("validation", corpus.validation))}
    data = {"sources": corpus.sources, "notes": corpus.notes, "encode_s": round(time.time() - encode_started, 1),
            "train_rows": len(packed["train"]), "validation_rows": len(packed["validation"]),
            "train_tokens": int((packed["train"] != tokenizer.pad_id).sum()),
            "validation_tokens": int((packed["validation"] != tokenizer.pad_id).sum()),
            "epochs_of_train_data": round(config.total_steps * config.batch_size / len(packed["train"]), 3)}
    return tokenizer, packed, data


def continuation_token_ids(tokenizer, suffix: str = "##") -> np.ndarray:
    """Bool ``(vocabulary_size,)``: which ids are WordPiece continuations (``##...``), for whole-word masking."""
    return np.array([token.startswith(suffix) for token in tokenizer.vocabulary], bool)


def mask_sequences(token_ids: np.ndarray, rng: np.random.Generator, *, mask_id: int, vocabulary_size: int,
                   special_ids: Sequence[int], mask_rate: float = 0.15, max_predictions: int | None = None,
                   continuation: np.ndarray | None = None):
    """BERT's masking of ``token_ids`` ``(n, T)``: choose, then replace 80% [MASK] / 10% random / 10% kept.

    Per row, ``k = min(max_predictions, max(1, round(mask_rate * c)))`` of the ``c`` non-special tokens are
    chosen uniformly (``continuation`` given: whole words — a token and its ``##`` continuations — are chosen in
    random order while they fit in ``k``; a row keeps at least its first word). Random replacements are drawn
    uniformly from the non-special ids.

    Args:
        token_ids: int ``(n, T)``.
        rng: the generator (pass ``np.random.default_rng([seed, interval])`` for reproducible epochs).
        mask_id, vocabulary_size, special_ids: from the tokenizer.
        mask_rate: the fraction of non-special tokens to predict.
        max_predictions: the prediction slots per row ``P`` (default ``ceil(mask_rate * T)``).
        continuation: bool ``(vocabulary_size,)`` from :func:`continuation_token_ids` for whole-word masking.

    Returns:
        ``(inputs, mask_positions, mask_ids, mask_weights)``: the masked ``(n, T)`` ids and ``(n, P)``
        positions, original ids and 1/0 weights (0 = an unused slot, position 0, id 0).
    """
    token_ids = np.asarray(token_ids)
    if token_ids.ndim != 2:
        raise ValueError(f"`token_ids` must be (rows, sequence_length); got shape {token_ids.shape}.")
    check_probability("mask_rate", mask_rate, allow_zero=False, allow_one=False)
    rows, length = token_ids.shape
    slots = max_predictions or math.ceil(mask_rate * length)
    check_positive_int("max_predictions", slots)
    slots = min(slots, length)
    candidate = ~np.isin(token_ids, np.asarray(list(special_ids)))
    count = candidate.sum(axis=1)
    wanted = np.where(count > 0, np.minimum(slots, np.maximum(1, np.rint(mask_rate * count).astype(int))), 0)
    positions = np.broadcast_to(np.arange(length), token_ids.shape)
    if continuation is None:
        scores = np.where(candidate, rng.random(token_ids.shape), 2.0)
        order = np.argsort(scores, axis=1, kind="stable")
        chosen = np.arange(length)[None, :] < wanted[:, None]
    else:
        starts = candidate & ~np.asarray(continuation)[token_ids]
        # Every token takes the random score of the word it belongs to (its last word start).
        word_start = np.maximum.accumulate(np.where(starts, positions, 0), axis=1)
        scores = np.take_along_axis(rng.random(token_ids.shape), word_start, axis=1)
        scores = np.where(candidate, scores, 2.0)
        order = np.lexsort((positions, scores), axis=1)  # a word's tokens stay together, in order
        words = np.take_along_axis(word_start, order, axis=1)
        last = np.ones_like(words, bool)
        last[:, :-1] = words[:, 1:] != words[:, :-1]
        # Tokens chosen up to the end of each token's word; a word is taken whole while that fits in k.
        end = np.minimum.accumulate(np.where(last, np.arange(length), length)[:, ::-1], axis=1)[:, ::-1] + 1
        chosen = (end <= wanted[:, None]) | ((end == end[:, :1]) & (wanted[:, None] > 0))
        chosen &= np.take_along_axis(candidate, order, axis=1)
        chosen[:, slots:] = False
    chosen = chosen[:, :slots]
    mask_positions = np.where(chosen, order[:, :slots], 0).astype(np.int32)
    mask_weights = chosen.astype(np.float32)
    mask_ids = np.where(chosen, np.take_along_axis(token_ids, mask_positions, axis=1), 0)
    allowed = np.setdiff1d(np.arange(vocabulary_size), np.asarray(list(special_ids)))
    draw = rng.random(mask_positions.shape)
    replacement = np.where(draw < 0.8, mask_id, np.where(draw < 0.9, rng.choice(allowed, mask_positions.shape),
                                                          mask_ids))
    inputs = token_ids.copy()
    row_index = np.broadcast_to(np.arange(rows)[:, None], mask_positions.shape)
    inputs[row_index[chosen], mask_positions[chosen]] = replacement[chosen]
    return inputs.astype(np.int32), mask_positions, mask_ids.astype(np.int32), mask_weights


def masked_lm_examples(token_ids, rng, pad_id: int = 0, **masking):
    """``({"token_ids", "padding_mask", "mask_positions"}, mask_ids, mask_weights)`` numpy arrays for ``fit``."""
    inputs, positions, ids, weights = mask_sequences(token_ids, rng, **masking)
    features = {"token_ids": inputs, "padding_mask": (np.asarray(token_ids) != pad_id).astype(np.int32),
                "mask_positions": positions}
    return features, ids, weights


@dataclasses.dataclass
class PretrainConfig(ExperimentConfig):
    """Everything that defines one pretraining run (saved as ``config.json``).

    Args:
        preset: the preset these values started from.
        objective: ``"masked"`` (BERT's masked LM).
        data_dir: the data directory (None: the loaders' default).
        add_texts: task training texts added to the books (:data:`TASK_TEXT_SOURCES`).
        validation_fraction, split_seed: the book split.
        max_books, max_chars_per_document: corpus cuts for smoke runs (None: everything).
        vocabulary_size, lower_case: the WordPiece vocabulary learned on the training documents.
        sequence_length: the packed row length (= the encoder's ``max_sequence_length``).
        hidden_dim, num_layers, num_heads, intermediate_dim, dropout: the encoder. The default is 2 layers × 128
            (the news job's shape), not BERT-Mini's 4 × 256: on 2 CPU cores it runs 3.2× the tokens per second, so
            the 60-minute budget holds 39 M tokens (4,800 steps) instead of 13 M. The 4 × 256 runs stayed near the
            unigram plateau and fine-tuned far below a random start; this one fine-tunes level with it, and faster
            (README: +4.3 points with 10% of BBC News' labels after 15 epochs, −4.0 after 30). ``--hidden-dim 256
            --num-layers 4 --num-heads 4 --intermediate-dim 1024 --max-steps 1600`` is the previous default.
            No dropout by default: at this budget the model underfits (its training loss stays above the
            held-out loss), and dropout only slows it (800-step trials on books + task texts: held-out MLM
            loss 6.343 / accuracy 12.3% without dropout, 6.479 / 10.6% with 0.1). Fine-tuning brings its own
            dropout (the classification recipe's ``dropout``).
        norm_first: a pre-norm encoder (LayerNorm before each sublayer and after the last block; True) or BERT's
            post-norm one (False). Pre-norm takes the higher learning rate (1e-3) without warmup trouble; measured
            at 9.8 M tokens on the same held-out books, pre-norm reached 14.2% held-out MLM accuracy and post-norm
            13.5% (docs/measurements.md): a small gain, not a different regime.
        mask_rate, max_predictions, whole_word_masking: the masking (see :func:`mask_sequences`).
        batch_size: rows per step.
        max_steps: training steps; ``max_tokens`` (packed tokens, ``steps * batch * length``) takes precedence
            when given. Both are rounded up to whole evaluation intervals.
        eval_every_n_steps: one evaluation interval (one Keras epoch).
        max_eval_sequences: held-out rows evaluated (the first ones of a seeded shuffle, masked once).
        learning_rate, warmup_fraction, weight_decay, global_clipnorm: AdamW, warmup then cosine decay to 0.
        seed: weights, order and masking.
        jit_compile, deterministic, strategy, num_cpu_devices, precision: as the other experiments.
        continue_from: a finished masked-LM pretraining run to go on training (its masked LM, encoder and head,
            and its tokenizer): with ``books=False`` and ``add_texts=["bbc"]`` this is task-adaptive pretraining
            (Gururangan et al. 2020), a second phase on the task's own training texts. The model and vocabulary
            fields come from that run (:func:`continued_config`).
        books: train on the training books (True) or on the ``add_texts`` alone (False).
    """

    preset: str = "full"
    objective: str = "masked"
    data_dir: str | None = None
    add_texts: list[str] = dataclasses.field(default_factory=list)
    validation_fraction: float = 0.1
    split_seed: int = 42
    max_books: int | None = None
    max_chars_per_document: int | None = None
    vocabulary_size: int = 16000
    lower_case: bool = True
    sequence_length: int = 128
    hidden_dim: int = 128
    num_layers: int = 2
    num_heads: int = 2
    intermediate_dim: int = 512
    dropout: float = 0.0
    norm_first: bool = True
    mask_rate: float = 0.15
    max_predictions: int = 20
    whole_word_masking: bool = False
    batch_size: int = 64
    max_steps: int = 4800
    max_tokens: int | None = None
    eval_every_n_steps: int = 400
    max_eval_sequences: int = 1024
    learning_rate: float = 1e-3
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    global_clipnorm: float = 1.0
    seed: int = 0
    jit_compile: bool | str = "auto"
    deterministic: bool = False
    strategy: str = "auto"
    num_cpu_devices: int | None = None
    precision: str = "float32"
    optimizer_update: str = "fused"  # --optimizer-update: "per-variable" for Keras's AdamW update
    continue_from: str | None = None
    books: bool = True

    def validate(self) -> None:
        check_choice("objective", self.objective, ("masked",))
        if not self.books and not self.add_texts:
            raise ValueError("books=False (--no-books) leaves nothing to train on: name the task texts to train on "
                             "(--add-texts bbc and/or sst2).")
        for source in self.add_texts:
            check_choice("add_texts", source, TASK_TEXT_SOURCES)
        for name in ("vocabulary_size", "sequence_length", "hidden_dim", "num_layers", "num_heads",
                     "intermediate_dim", "max_predictions", "batch_size", "max_steps", "eval_every_n_steps",
                     "max_eval_sequences"):
            check_positive_int(name, getattr(self, name))
        for name in ("max_books", "max_chars_per_document", "max_tokens", "num_cpu_devices"):
            check_positive_int(name, getattr(self, name), allow_none=True)
        if self.sequence_length < 3:
            raise ValueError(f"`sequence_length` must be >= 3; got sequence_length={self.sequence_length}.")
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"`hidden_dim` must be divisible by `num_heads`; got hidden_dim={self.hidden_dim}, "
                             f"num_heads={self.num_heads}.")
        check_probability("mask_rate", self.mask_rate, allow_zero=False, allow_one=False)
        full_rate_slots = math.ceil(self.mask_rate * self.sequence_length)  # mask_sequences' own default
        if self.max_predictions < full_rate_slots:
            warnings.warn(f"max_predictions={self.max_predictions} caps the masking of {self.sequence_length}-token "
                          f"rows below mask_rate={self.mask_rate}; raise --max-predictions to {full_rate_slots} for "
                          "the full rate.", stacklevel=2)
        check_probability("validation_fraction", self.validation_fraction, allow_zero=False, allow_one=False)
        for name in ("dropout", "warmup_fraction"):
            check_probability(name, getattr(self, name), allow_one=False)
        if not self.learning_rate > 0 or self.weight_decay < 0 or not self.global_clipnorm > 0:
            raise ValueError(f"`learning_rate` and `global_clipnorm` must be > 0 and `weight_decay` >= 0; got "
                             f"{self.learning_rate}, {self.global_clipnorm}, {self.weight_decay}.")

    @property
    def total_steps(self) -> int:
        """The training steps: ``max_tokens`` (or ``max_steps``) rounded up to whole evaluation intervals."""
        steps = self.max_steps
        if self.max_tokens is not None:
            steps = -(-self.max_tokens // (self.batch_size * self.sequence_length))
        return -(-steps // self.eval_every_n_steps) * self.eval_every_n_steps

    def encoder_config(self, vocabulary_size: int):
        from llm_tf.models import TransformerEncoderConfig

        return TransformerEncoderConfig(
            vocabulary_size=vocabulary_size, max_sequence_length=self.sequence_length, hidden_dim=self.hidden_dim,
            num_layers=self.num_layers, num_heads=self.num_heads, intermediate_dim=self.intermediate_dim,
            dropout=self.dropout, num_segments=0, norm_first=self.norm_first, final_norm=self.norm_first,
            embedding_norm=not self.norm_first)


#: What a continued pretraining takes from the run it continues: the model's shape and its vocabulary.
CONTINUED_FIELDS = ("vocabulary_size", "lower_case", "sequence_length", "hidden_dim", "num_layers", "num_heads",
                    "intermediate_dim", "dropout", "norm_first")
CONTINUED_MODEL_FILE = "last.keras"  # the whole masked LM (encoder + head) that training.train writes last


def continued_config(config: PretrainConfig, explicit: Sequence[str] = ()) -> PretrainConfig:
    """``config`` with :data:`CONTINUED_FIELDS` taken from the finished run ``config.continue_from``.

    Args:
        config: a config whose ``continue_from`` names a finished masked-LM pretraining run directory.
        explicit: the fields the user set (flags): one that differs from the continued run is an error, not
            silently replaced — except a longer ``sequence_length``, which lengthens the model (its learned
            positions tiled, :func:`llm_tf.models.lengthen_positions`) to train on longer rows.

    Raises:
        FileNotFoundError: when ``continue_from`` is not a finished masked-LM pretraining run.
        ValueError: when an explicit field contradicts the continued run.
    """
    path = os.path.abspath(config.continue_from)
    needed = ("config.json", CONTINUED_MODEL_FILE, BACKBONE_FILE, TOKENIZER_DIR)
    missing = [name for name in needed if not os.path.exists(os.path.join(path, name))]
    if missing:
        raise FileNotFoundError(f"--continue-from {path!r} is not a finished masked-LM pretraining run: "
                                f"{', '.join(missing)} missing.")
    with open(os.path.join(path, "config.json"), encoding="utf-8") as file:
        saved = json.load(file)
    if saved.get("objective", "masked") != "masked":
        raise ValueError(f"--continue-from {path!r} is a {saved.get('objective')!r} pretraining run; expected masked.")
    values = {"continue_from": path}
    for name in CONTINUED_FIELDS:
        if name == "sequence_length" and name in explicit and config.sequence_length > saved[name]:
            # Longer rows are allowed: train_masked_lm tiles the learned positions over them.
            values[name] = config.sequence_length
            continue
        if name in explicit and getattr(config, name) != saved[name]:
            raise ValueError(f"{name}={getattr(config, name)!r} contradicts the run being continued ({path}): it "
                             f"has {name}={saved[name]!r}; leave the flag out.")
        values[name] = saved[name]
    return dataclasses.replace(config, **values)


class MaskedLMProgress(keras.callbacks.Callback):
    """Held-out masked-LM loss, accuracy and perplexity after every interval, with tokens seen and tokens/s.

    Writes ``csv_path`` (columns :data:`EVAL_COLUMNS`; a resumed run keeps the rows before it) and, with
    ``png_path``, a plot of held-out accuracy and perplexity against tokens seen. The held-out figures are
    ``fit``'s ``val_loss`` / ``val_accuracy`` (the mean over real masks); the row at step 0 is evaluated
    before training.
    """

    def __init__(self, validation_batches, steps_per_interval: int, tokens_per_step: int, csv_path: str,
                 png_path: str | None = None, write: bool = True):
        super().__init__()
        self.validation_batches = validation_batches
        self.steps_per_interval = steps_per_interval
        self.tokens_per_step = tokens_per_step
        self.csv_path, self.png_path, self.write = csv_path, png_path, write
        self.rows = read_progress(csv_path)
        self._interval_started = time.time()
        self._elapsed_before = 0.0

    def _record(self, step: int, loss: float, accuracy: float, train_loss=None, interval_s=None):
        from llm_tf.training import atomic_write_csv, current_learning_rate

        elapsed = self._elapsed_before + (interval_s or 0.0)
        row = {"step": step, "tokens_seen": step * self.tokens_per_step, "val_loss": float(loss),
               "val_accuracy": float(accuracy), "val_perplexity": float(math.exp(min(loss, 50.0))),
               "train_loss": train_loss, "learning_rate": current_learning_rate(self.model),
               "elapsed_s": round(elapsed, 2),
               "tokens_per_s": round(self.steps_per_interval * self.tokens_per_step / interval_s, 1)
               if interval_s else None}
        self._elapsed_before = elapsed
        self.rows = [old for old in self.rows if old["step"] < step] + [row]
        print(f"step {step} ({row['tokens_seen'] / 1e6:.2f} M tokens): held-out MLM loss {loss:.4f}, accuracy "
              f"{accuracy:.4f}, perplexity {row['val_perplexity']:.1f}"
              + (f", {row['tokens_per_s']:.0f} tokens/s" if interval_s else ""), flush=True)
        if not self.write:
            return
        atomic_write_csv(self.csv_path, EVAL_COLUMNS, self.rows)
        if self.png_path:
            plot_pretraining_progress(self.rows, self.png_path)

    def on_train_begin(self, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        self._elapsed_before = max([row["elapsed_s"] for row in self.rows if row["step"] <= step], default=0.0)
        if step == 0:
            result = self.model.evaluate(self.validation_batches, verbose=0, return_dict=True)
            self._record(0, result["loss"], result["accuracy"])
        self._interval_started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self._record((epoch + 1) * self.steps_per_interval, logs["val_loss"], logs["val_accuracy"],
                     train_loss=logs.get("loss"), interval_s=time.time() - self._interval_started)
        self._interval_started = time.time()


def read_progress(path: str) -> list[dict]:
    """The rows of a ``pretrain_eval.csv`` ([] when missing)."""
    if not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8") as file:
        return [{key: (int(value) if key in ("step", "tokens_seen") else float(value))
                 for key, value in row.items() if value != ""} for row in csv.DictReader(file)]


def plot_pretraining_progress(rows: Sequence[dict], path: str) -> str:
    """Held-out MLM accuracy and perplexity against tokens seen, side by side (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tokens = [row["tokens_seen"] / 1e6 for row in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(tokens, [row["val_accuracy"] for row in rows], marker="o")
    left.set(xlabel="tokens seen (millions)", ylabel="held-out masked-token accuracy")
    right.plot(tokens, [row["val_perplexity"] for row in rows], marker="o", color="tab:red")
    right.set(xlabel="tokens seen (millions)", ylabel="held-out MLM perplexity", yscale="log")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    figure.suptitle("masked-LM pretraining, held-out books")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def interval_batches(sequences: np.ndarray, config: PretrainConfig, tokenizer, continuation=None):
    """``interval -> tf.data.Dataset``: the interval's rows (seeded shuffle per pass), freshly masked.

    A pure function of the interval index, so a run resumed mid-interval sees the very same batches.
    """
    import tensorflow as tf

    rows_per_interval = config.eval_every_n_steps * config.batch_size
    masking = dict(mask_id=tokenizer.mask_id, vocabulary_size=tokenizer.vocabulary_size,
                   special_ids=tokenizer.special_ids, mask_rate=config.mask_rate,
                   max_predictions=config.max_predictions, continuation=continuation)

    def batches(interval: int):
        start = interval * rows_per_interval
        positions = np.arange(start, start + rows_per_interval)
        passes = positions // len(sequences)
        index = np.empty(rows_per_interval, np.int64)
        for number in np.unique(passes):
            order = np.random.default_rng([config.seed, int(number)]).permutation(len(sequences))
            index[passes == number] = order[positions[passes == number] % len(sequences)]
        features, ids, weights = masked_lm_examples(sequences[index], np.random.default_rng([config.seed, 1,
                                                                                               interval]), **masking)
        return tf.data.Dataset.from_tensor_slices((features, ids, weights)).batch(config.batch_size)

    return batches


def train_masked_lm(run_dir, config: PretrainConfig, tokenizer, train_sequences: np.ndarray,
                    validation_sequences: np.ndarray, *, strategy=None, log_every_n_steps: int = 50,
                    backup_every_n_steps: int | None = None, verbose=2):
    """Pretrain a ``MaskedLM`` in ``run_dir``; writes the progress CSV/PNG, ``backbone.keras`` and results.

    Returns:
        ``(model, training_result, progress_rows)``.
    """
    import tensorflow as tf

    from llm_tf import training
    from llm_tf.models import MaskedLM, lengthen_positions

    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(config.seed)
    total_steps = config.total_steps
    intervals = total_steps // config.eval_every_n_steps
    continuation = continuation_token_ids(tokenizer) if config.whole_word_masking else None
    held_out = validation_sequences[np.random.default_rng([config.split_seed, 7]).permutation(
        len(validation_sequences))[:config.max_eval_sequences]]
    features, ids, weights = masked_lm_examples(
        held_out, np.random.default_rng([config.seed, 2]), mask_id=tokenizer.mask_id,
        vocabulary_size=tokenizer.vocabulary_size, special_ids=tokenizer.special_ids, mask_rate=config.mask_rate,
        max_predictions=config.max_predictions, continuation=continuation)
    validation_batches = tf.data.Dataset.from_tensor_slices((features, ids, weights)).batch(config.batch_size)
    with strategy.scope():
        if config.continue_from:
            model = keras.saving.load_model(os.path.join(config.continue_from, CONTINUED_MODEL_FILE), compile=False)
            if not isinstance(model, MaskedLM):
                raise ValueError(f"{config.continue_from}/{CONTINUED_MODEL_FILE} holds a {type(model).__name__}, "
                                 "not a MaskedLM.")
            if config.sequence_length > model.config.max_sequence_length:
                model = lengthen_positions(model, config.sequence_length)
        else:
            model = MaskedLM(config=config.encoder_config(tokenizer.vocabulary_size))
        schedule = training.WarmupCosineDecay(config.learning_rate, int(config.warmup_fraction * total_steps),
                                              total_steps)
        model.compile(optimizer=training.build_optimizer(schedule, weight_decay=config.weight_decay,
                                                         global_clipnorm=config.global_clipnorm),
                      jit_compile=training.resolve_jit_compile(config.jit_compile))
    progress = MaskedLMProgress(validation_batches, config.eval_every_n_steps,
                                config.batch_size * config.sequence_length, run_dir.file(EVAL_CSV),
                                run_dir.file(EVAL_PNG), write=training.is_chief(strategy))
    result = training.train(
        model, interval_batches(train_sequences, config, tokenizer, continuation), validation_batches,
        epochs=intervals, run_dir=run_dir, steps_per_epoch=config.eval_every_n_steps, callbacks=[progress],
        log_every_n_steps=log_every_n_steps, backup_every_n_steps=backup_every_n_steps, verbose=verbose,
        strategy=strategy, extra_results={"seed": config.seed},
    )
    if training.is_chief(strategy):
        model.backbone.save(run_dir.file(BACKBONE_FILE))
    return model, result, progress.rows


@dataclasses.dataclass
class PretrainedEncoder:
    """A pretrained encoder for fine-tuning: its backbone, its tokenizer and where they came from."""

    backbone: Any
    tokenizer: Any
    source: str
    kind: str

    @property
    def config(self):
        return self.backbone.config


#: The last encoder loaded, by (path, files' sizes and modification times): a fine-tuning run asks for it to check
#: its flags, for the tokenizer and once per seed; callers only read it (``classifier_from_pretrained`` copies
#: the weights), so one load serves them all until a file changes.
_last_loaded: dict[tuple, PretrainedEncoder] = {}


def _files_signature(path: str) -> tuple:
    entries = []
    for root, _, names in os.walk(path):
        for name in sorted(names):
            status = os.stat(os.path.join(root, name))
            entries.append((os.path.relpath(os.path.join(root, name), path), status.st_size, status.st_mtime_ns))
    return tuple(sorted(entries))


def load_pretrained_encoder(path: str) -> PretrainedEncoder:
    """A pretraining run directory (``backbone.keras`` + ``tokenizer/``) or a Hugging Face BERT folder.

    The result is shared by later calls with the same unchanged files (treat it as read-only).

    Raises:
        FileNotFoundError: when ``path`` is neither (the message lists what was looked for), or a pretraining
            run directory has not finished (no ``backbone.keras`` yet).
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.isdir(path):
        raise FileNotFoundError(f"--init-from {path!r}: no such directory (expected a pretraining run directory or a "
                                "Hugging Face BERT folder).")
    key = (path, _files_signature(path))
    if key not in _last_loaded:
        loaded = _load_pretrained_encoder(path)
        _last_loaded.clear()
        _last_loaded[key] = loaded
    return _last_loaded[key]


def _load_pretrained_encoder(path: str) -> PretrainedEncoder:
    from llm_tf.text import WordPieceTokenizer, load_tokenizer

    backbone_path, tokenizer_path = os.path.join(path, BACKBONE_FILE), os.path.join(path, TOKENIZER_DIR)
    if os.path.isfile(backbone_path):
        from llm_tf.models import TransformerEncoder

        backbone = keras.saving.load_model(backbone_path, custom_objects={"TransformerEncoder": TransformerEncoder})
        return PretrainedEncoder(backbone, load_tokenizer(tokenizer_path), path, "pretraining run")
    if os.path.isfile(os.path.join(path, "config.json")) and os.path.isfile(os.path.join(path, "vocab.txt")):
        import json

        from llm_tf.interop import load_hf_bert

        options = {}
        tokenizer_config = os.path.join(path, "tokenizer_config.json")
        if os.path.isfile(tokenizer_config):
            with open(tokenizer_config, encoding="utf-8") as file:
                options["lower_case"] = bool(json.load(file).get("do_lower_case", True))
        return PretrainedEncoder(load_hf_bert(path, head="encoder"), WordPieceTokenizer.load(path, **options),
                                 path, "Hugging Face BERT")
    if os.path.isdir(tokenizer_path) or os.path.isfile(os.path.join(path, "config.json")):
        raise FileNotFoundError(f"--init-from {path!r}: the pretraining run has not finished (no {BACKBONE_FILE}); "
                                "resume it first.")
    raise FileNotFoundError(f"--init-from {path!r} holds neither {BACKBONE_FILE} + {TOKENIZER_DIR}/ (a pretraining "
                            "run) nor config.json + model.safetensors + vocab.txt (a Hugging Face BERT folder).")


__all__ = [
    "PretrainConfig",
    "PretrainedEncoder",
    "PretrainingCorpus",
    "MaskedLMProgress",
    "TASK_TEXT_SOURCES",
    "continuation_token_ids",
    "continued_config",
    "encode_documents",
    "interval_batches",
    "load_pretrained_encoder",
    "load_pretraining_corpus",
    "mask_sequences",
    "masked_lm_examples",
    "pack_sequences",
    "prepare_masked_lm_data",
    "plot_pretraining_progress",
    "read_progress",
    "train_masked_lm",
]
