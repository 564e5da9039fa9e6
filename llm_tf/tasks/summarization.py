"""Extractive summarization: sentences, oracle labels, baselines, a Transformer sentence scorer, ROUGE.

Steps (each a function with plain arguments):

1. :func:`prepare_documents` splits every article and its reference into sentences
   (:func:`llm_tf.text.sentences.split_sentences`; BBC summaries first get their glued sentence ends fixed).
2. :func:`oracle_labels` marks the article sentences that make up the reference: a reference sentence that
   equals an article sentence after :func:`~llm_tf.text.sentences.normalize_sentence` picks it (98.5% of BBC
   summary sentences do); when some reference sentence has no exact copy, the exact matches are extended by a
   greedy ROUGE oracle (:func:`greedy_oracle`: add the sentence that most raises ROUGE-1 F + ROUGE-2 F of the
   selection, while it rises).
3. A scorer gives every sentence a score: :func:`lead_scores`, :func:`longest_scores`, :func:`textrank_scores`
   (PageRank over TF-IDF cosine similarities) or the trained :class:`SentenceScorer`.
4. :func:`select_sentences` keeps the best-scored sentences up to a length budget in words
   (``ratio`` × article words, the ratio learned on the training split, or a fixed ``k`` sentences) and returns
   them in article order.
5. :func:`rouge_report` scores the summaries with ``llm_tf.metrics.corpus_rouge`` (rouge-score, Porter stemming
   on, 95% percentile-bootstrap intervals of the F-measure): ROUGE-1, ROUGE-2, ROUGE-L (one LCS over the whole
   summary, newlines ignored) and ROUGE-Lsum (sentence-level union LCS, one sentence per line).

The :class:`SentenceScorer`: each sentence's first ``max_sentence_tokens`` word ids go through one
:class:`llm_tf.models.TransformerEncoder` (shared by all sentences), are mean-pooled over the real tokens, added
to a projection of hand features (:func:`sentence_features`: position, length, in-article word frequency and
similarity to the article) and a learned sentence-position embedding, then ``document_layers``
``TransformerEncoderBlock``s let the sentences of one article attend to each other; a dense layer gives one
logit per sentence, trained with binary cross-entropy against the oracle labels (padding sentences weighted 0).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from llm_tf.text.sentences import normalize_sentence, split_sentences

PAD_ID, UNK_ID = 0, 1
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
_STOPWORDS = frozenset(
    """a an the and or but if of at by for with about against between into through during before after above
    below to from up down in out on off over under again further then once here there when where why how all
    any both each few more most other some such no nor not only own same so than too very s t can will just
    don should now i me my we our you your he him his she her it its they them their what which who whom this
    that these those am is are was were be been being have has had having do does did doing would could said
    says also mr mrs ms""".split()
)
NUM_FEATURES = 10


# ----------------------------------------------------------------------------------------------------------
# Documents and oracle labels


@dataclasses.dataclass
class Document:
    """One article as sentences, with its reference summary's sentences (if any) and oracle labels."""

    sentences: list[str]
    reference_sentences: list[str]
    identifier: str = ""
    labels: np.ndarray | None = None

    @property
    def reference(self) -> str:
        """The reference summary, one sentence per line."""
        return "\n".join(self.reference_sentences)

    @property
    def num_words(self) -> int:
        return sum(len(sentence.split()) for sentence in self.sentences)


def prepare_documents(
    sources: Sequence[str],
    targets: Sequence[str],
    ids: Sequence[str] | None = None,
    *,
    lines_only: bool = False,
    labels: bool = True,
) -> list[Document]:
    """Splits articles and references into sentences and (optionally) labels each article sentence.

    Args:
        sources: the articles (or dialogues).
        targets: their reference summaries (BBC glued sentence ends are fixed before splitting).
        ids: identifiers (default: the positions).
        lines_only: one sentence per line of the source (SAMSum turns).
        labels: compute :func:`oracle_labels`.

    Returns:
        One :class:`Document` per pair.
    """
    if len(sources) != len(targets):
        raise ValueError(f"`sources` and `targets` must have the same length; got {len(sources)} and {len(targets)}.")
    ids = list(ids) if ids is not None else [str(i) for i in range(len(sources))]
    documents = []
    for source, target, identifier in zip(sources, targets, ids):
        sentences = split_sentences(source, lines_only=lines_only)
        if not sentences:
            raise ValueError(f"document {identifier!r} has no sentence; expected a non-empty text.")
        reference = split_sentences(target, fix_glued=True)
        document = Document(sentences, reference, identifier)
        if labels:
            document.labels = oracle_labels(sentences, reference)
        documents.append(document)
    return documents


_TOKENIZER = None


def rouge_tokens(text: str) -> list[str]:
    """The tokens rouge-score matches (lower-cased, Porter-stemmed), so the oracle optimises the reported metric."""
    global _TOKENIZER
    if _TOKENIZER is None:
        from rouge_score import tokenizers

        _TOKENIZER = tokenizers.DefaultTokenizer(use_stemmer=True)
    return _TOKENIZER.tokenize(text)


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _f_measure(candidate: Counter, reference: Counter) -> float:
    overlap = sum((candidate & reference).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / sum(candidate.values()), overlap / sum(reference.values())
    return 2 * precision * recall / (precision + recall)


def greedy_oracle(
    sentences: Sequence[str], reference: str, *, initial: Sequence[int] = (), max_sentences: int | None = None
) -> list[int]:
    """Greedy extractive oracle: add the sentence that most raises ROUGE-1 F + ROUGE-2 F, while it rises.

    Args:
        sentences: the article sentences.
        reference: the reference summary.
        initial: indices selected before the search starts (e.g. the exact matches).
        max_sentences: stop at this many sentences (default: no limit).

    Returns:
        The selected indices in article order.

    Example:
        >>> greedy_oracle(["The cat sat.", "Rain fell.", "A dog ran."], "The cat sat. A dog ran.")
        [0, 2]
    """
    tokens = [rouge_tokens(sentence) for sentence in sentences]
    reference_tokens = rouge_tokens(reference)
    targets = (_ngrams(reference_tokens, 1), _ngrams(reference_tokens, 2))
    chosen = sorted(set(int(i) for i in initial))

    def score(indices):
        # Bigrams across sentence boundaries are not counted (each sentence's n-grams are added up).
        grams1, grams2 = Counter(), Counter()
        for index in indices:
            grams1 += _ngrams(tokens[index], 1)
            grams2 += _ngrams(tokens[index], 2)
        return _f_measure(grams1, targets[0]) + _f_measure(grams2, targets[1])

    best = score(chosen) if chosen else 0.0
    limit = len(sentences) if max_sentences is None else max_sentences
    while len(chosen) < limit:
        candidates = [(score(chosen + [i]), -i) for i in range(len(sentences)) if i not in chosen]
        if not candidates:
            break
        value, negative_index = max(candidates)
        if value <= best:
            break
        best = value
        chosen = sorted(chosen + [-negative_index])
    return chosen


def oracle_labels(sentences: Sequence[str], reference_sentences: Sequence[str]) -> np.ndarray:
    """0/1 label per article sentence: 1 when it belongs to the reference.

    Each reference sentence picks the first unpicked article sentence equal to it after
    :func:`~llm_tf.text.sentences.normalize_sentence`; if any reference sentence has no such copy, the picks are
    extended by :func:`greedy_oracle` against the whole reference.

    Example:
        >>> oracle_labels(["Title", "Sales rose.", "It rained.", '"Good," he said.'], ["Good, he said.", "Sales rose."])
        array([0, 1, 0, 1], dtype=int32)
    """
    normalized = [normalize_sentence(sentence) for sentence in sentences]
    chosen, complete = [], True
    for reference in reference_sentences:
        target = normalize_sentence(reference)
        match = next((i for i, text in enumerate(normalized) if text == target and i not in chosen), None)
        if match is None:
            complete = False
        else:
            chosen.append(match)
    if not complete:
        chosen = greedy_oracle(sentences, "\n".join(reference_sentences), initial=chosen)
    labels = np.zeros(len(sentences), np.int32)
    labels[chosen] = 1
    return labels


# ----------------------------------------------------------------------------------------------------------
# Selection and baselines


def sentence_lengths(sentences: Sequence[str]) -> np.ndarray:
    """Words (whitespace-separated) per sentence."""
    return np.array([len(sentence.split()) for sentence in sentences], np.int64)


def select_sentences(
    scores: Sequence[float], lengths: Sequence[int], *, budget: float | None = None, k: int | None = None
) -> list[int]:
    """Best-scored sentences up to a length budget (or the best ``k``), returned in article order.

    With ``budget`` (in words), sentences are taken by decreasing score (ties: earlier first) as long as the
    total stays within the budget; the best sentence is always taken, even when it alone is longer. Sentences
    with a score of ``-inf`` are never taken.

    Args:
        scores: one score per sentence.
        lengths: words per sentence.
        budget: the most words (exactly one of ``budget`` and ``k``).
        k: the number of sentences.

    Returns:
        Sorted sentence indices.

    Example:
        >>> select_sentences([0.1, 0.9, 0.5, 0.7], [5, 10, 4, 8], budget=18)
        [1, 3]
    """
    if (budget is None) == (k is None):
        raise ValueError(f"give exactly one of `budget` and `k`; got budget={budget!r}, k={k!r}.")
    scores = np.asarray(scores, dtype=float)
    lengths = np.asarray(lengths)
    if scores.shape != lengths.shape or scores.ndim != 1:
        raise ValueError(f"`scores` and `lengths` must be 1-D of the same length; got {scores.shape}, {lengths.shape}.")
    order = [int(i) for i in np.argsort(-scores, kind="stable") if np.isfinite(scores[i]) or scores[i] > 0]
    if k is not None:
        if k < 1:
            raise ValueError(f"`k` must be a positive int; got k={k!r}.")
        return sorted(order[:k])
    chosen, total = [], 0
    for index in order:
        if chosen and total + lengths[index] > budget:
            break
        chosen.append(index)
        total += int(lengths[index])
    return sorted(chosen)


def lead_scores(sentences: Sequence[str]) -> np.ndarray:
    """Earlier is better (Lead-k)."""
    return -np.arange(len(sentences), dtype=float)


def longest_scores(sentences: Sequence[str]) -> np.ndarray:
    """Longer (in words) is better; ties by position (Longest-k of Gliwa et al. 2019)."""
    return sentence_lengths(sentences) - np.arange(len(sentences)) * 1e-6


def fit_idf(documents: Sequence[Document]):
    """A scikit-learn ``TfidfVectorizer`` (sublinear tf, English stop words) fit on the documents' sentences."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True, stop_words="english")
    vectorizer.fit([sentence for document in documents for sentence in document.sentences])
    return vectorizer


def textrank_scores(sentences: Sequence[str], vectorizer, damping: float = 0.85, iterations: int = 50) -> np.ndarray:
    """TextRank (Mihalcea & Tarau 2004) with TF-IDF cosine similarities as edge weights (PageRank by power iteration)."""
    vectors = vectorizer.transform(list(sentences))
    similarity = (vectors @ vectors.T).toarray()
    np.fill_diagonal(similarity, 0.0)
    return _pagerank(similarity, damping, iterations) - np.arange(len(sentences)) * 1e-9


def learn_length_ratio(documents: Sequence[Document]) -> float:
    """Median of reference words / article words over the documents (the budget ratio)."""
    ratios = [sum(sentence_lengths(d.reference_sentences)) / max(d.num_words, 1) for d in documents]
    return float(np.median(ratios))


def summarize(documents: Sequence[Document], scores: Sequence[np.ndarray], *, ratio: float | None = None,
              k: int | None = None) -> list[list[int]]:
    """:func:`select_sentences` for every document, with ``budget = ratio * article words`` or a fixed ``k``."""
    selections = []
    for document, document_scores in zip(documents, scores):
        lengths = sentence_lengths(document.sentences)
        if ratio is not None:
            selections.append(select_sentences(document_scores, lengths, budget=ratio * lengths.sum()))
        else:
            selections.append(select_sentences(document_scores, lengths, k=k))
    return selections


def summary_texts(documents: Sequence[Document], selections: Sequence[Sequence[int]]) -> list[str]:
    """The selected sentences of each document, one per line."""
    return ["\n".join(d.sentences[i] for i in selection) for d, selection in zip(documents, selections)]


def rouge_report(predictions: Sequence[str], references: Sequence[str], *, bootstrap: bool = True,
                 seed: int = 0, rouge_types: Sequence[str] | None = None) -> dict[str, Any]:
    """ROUGE-1/2/L/Lsum F (with precision, recall and a 95% bootstrap interval of F), stemming on.

    Texts hold one sentence per line: ROUGE-Lsum uses the lines, ROUGE-L ignores them. ``rouge_types`` narrows
    the report (default: all four; tuning on ROUGE-2 alone skips the costly longest-common-subsequence scores).
    """
    from llm_tf.metrics import DEFAULT_ROUGE_TYPES, corpus_rouge

    return corpus_rouge(list(predictions), list(references), rouge_types=tuple(rouge_types or DEFAULT_ROUGE_TYPES),
                        bootstrap=bootstrap, seed=seed, use_stemmer=True)


def evaluate_selections(documents: Sequence[Document], selections, *, bootstrap: bool = True,
                        rouge_types: Sequence[str] | None = None) -> dict[str, Any]:
    """:func:`rouge_report` of the selected sentences against each document's reference."""
    return rouge_report(summary_texts(documents, selections), [d.reference for d in documents], bootstrap=bootstrap,
                        rouge_types=rouge_types)


def validation_rouge2(documents: Sequence[Document], selections) -> float:
    """Mean ROUGE-2 F of the selections (no interval): what Lead-k and the length budget are tuned on."""
    return evaluate_selections(documents, selections, bootstrap=False, rouge_types=("rouge2",))["rouge2"]["fmeasure"]


def tune_lead_k(documents: Sequence[Document], candidates: Sequence[int] = tuple(range(1, 31))) -> tuple[int, dict]:
    """The k of Lead-k with the best mean ROUGE-2 F on ``documents`` (validation); returns ``(k, {k: R2})``."""
    table = {}
    for k in candidates:
        selections = summarize(documents, [lead_scores(d.sentences) for d in documents], k=k)
        table[int(k)] = validation_rouge2(documents, selections)
    return max(table, key=lambda k: (table[k], -k)), table


def choose_budget(documents: Sequence[Document], scores: Sequence[np.ndarray], ratio: float,
                  fixed_k: Sequence[int] = tuple(range(2, 21))) -> tuple[str, dict, dict[str, float]]:
    """The summary budget with the best mean ROUGE-2 F on ``documents`` (validation): ``ratio`` × article words,
    or each fixed ``k`` of ``fixed_k``.

    Returns:
        ``(name, budget, table)``: ``name`` is ``"ratio"`` or ``"k=<k>"``, ``budget`` the keyword arguments of
        :func:`summarize` (``{"ratio": r}`` or ``{"k": k}``), ``table`` the ROUGE-2 F of every candidate.
    """
    budgets = {"ratio": {"ratio": ratio}, **{f"k={k}": {"k": int(k)} for k in fixed_k}}
    table = {name: validation_rouge2(documents, summarize(documents, scores, **budget))
             for name, budget in budgets.items()}
    name = max(table, key=table.get)
    return name, budgets[name], table


def write_examples(path: str, documents: Sequence[Document], selections: Sequence[Sequence[int]],
                   abstractive: Sequence[str] | None = None, count: int = 3) -> str:
    """``examples.md``: the first ``count`` documents' extracted summaries (and abstractive ones, when given)
    beside their references, one Markdown table per document; returns ``path``."""
    lines = []
    for k, (document, chosen) in enumerate(list(zip(documents, selections))[:count]):
        columns = ["<br>".join(document.sentences[i] for i in chosen)]
        columns += [abstractive[k].replace("\n", "<br>")] if abstractive else []
        columns.append("<br>".join(document.reference_sentences))
        header = "| model summary |" + (" abstractive (beam) |" if abstractive else "") + " reference |"
        lines += [f"## {document.identifier}", "", header, "|---" * len(columns) + "|",
                  "| " + " | ".join(c.replace("|", "/") for c in columns) + " |", ""]
    with open(path, "w", encoding="utf-8") as file:
        file.write("\n".join(lines))
    return path


# ----------------------------------------------------------------------------------------------------------
# Features, vocabulary and arrays for the scorer


def words(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens."""
    return _WORD.findall(text.lower())


def build_vocabulary(documents: Sequence[Document], max_size: int = 20000, min_count: int = 2) -> list[str]:
    """Word list: "[PAD]", "[UNK]", then words by decreasing frequency (ties alphabetical), at most ``max_size``."""
    counts = Counter(token for d in documents for sentence in d.sentences for token in words(sentence))
    ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return ["[PAD]", "[UNK]"] + ranked[: max(max_size - 2, 0)]


def sentence_features(sentences: Sequence[str]) -> np.ndarray:
    """``(sentences, NUM_FEATURES)`` float32 features of each sentence within its article.

    Columns: relative position, 1/(position+1), is-first (the BBC headline), words/40, mean and summed
    in-article frequency of its content words (each divided by the article's maximum), cosine similarity of its
    content-word counts with the article's, log(number of sentences)/5, and within-article TextRank over the
    content-word count vectors (PageRank score divided by the article's maximum) and mean similarity to the other
    sentences (degree centrality).
    """
    tokens = [[w for w in words(s) if w[0].isalnum() and w not in _STOPWORDS] for s in sentences]
    article = Counter(w for sentence in tokens for w in sentence)
    top = max(article.values()) if article else 1
    article_norm = math.sqrt(sum(c * c for c in article.values())) or 1.0
    count = len(sentences)
    rows = []
    for index, sentence in enumerate(tokens):
        frequency = [article[w] / top for w in sentence]
        own = Counter(sentence)
        dot = sum(c * article[w] for w, c in own.items())
        norm = math.sqrt(sum(c * c for c in own.values())) or 1.0
        rows.append([
            index / max(count - 1, 1), 1.0 / (index + 1), float(index == 0), min(len(sentences[index].split()) / 40, 3.0),
            float(np.mean(frequency)) if frequency else 0.0, sum(frequency), dot / (norm * article_norm),
            math.log(count) / 5,
        ])
    vectors = np.zeros((count, len(article)), np.float32)
    columns = {w: i for i, w in enumerate(article)}
    for row, sentence in enumerate(tokens):
        for w in sentence:
            vectors[row, columns[w]] += 1.0
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-6)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, 0.0)
    rank = _pagerank(similarity)
    features = np.concatenate([np.array(rows, np.float32),
                               np.stack([rank / max(rank.max(), 1e-12), similarity.mean(axis=1)], axis=1)], axis=1)
    features[:, 5] /= max(features[:, 5].max(), 1e-6)
    return features.astype(np.float32)


def _pagerank(similarity: np.ndarray, damping: float = 0.85, iterations: int = 50) -> np.ndarray:
    count = len(similarity)
    totals = similarity.sum(axis=1, keepdims=True)
    transition = np.where(totals > 0, similarity / np.maximum(totals, 1e-12), 1.0 / count)
    rank = np.full(count, 1.0 / count)
    for _ in range(iterations):
        rank = (1 - damping) / count + damping * transition.T @ rank
    return rank


def encode_documents(documents: Sequence[Document], vocabulary: Sequence[str], max_sentences: int,
                     max_sentence_tokens: int) -> dict[str, np.ndarray]:
    """Fixed-shape arrays: ``token_ids (n, S, T)``, ``features (n, S, F)``, ``sentence_mask (n, S)``, ``labels (n, S)``.

    Sentences past ``max_sentences`` and tokens past ``max_sentence_tokens`` are cut (those sentences are never
    selected by the model); labels are 0 where a document has none.
    """
    index = {word: i for i, word in enumerate(vocabulary)}
    n = len(documents)
    token_ids = np.zeros((n, max_sentences, max_sentence_tokens), np.int32)
    features = np.zeros((n, max_sentences, NUM_FEATURES), np.float32)
    mask = np.zeros((n, max_sentences), bool)
    labels = np.zeros((n, max_sentences), np.float32)
    for row, document in enumerate(documents):
        kept = document.sentences[:max_sentences]
        features[row, : len(kept)] = sentence_features(document.sentences)[: len(kept)]
        mask[row, : len(kept)] = True
        if document.labels is not None:
            labels[row, : len(kept)] = document.labels[: len(kept)]
        for column, sentence in enumerate(kept):
            ids = [index.get(w, UNK_ID) for w in words(sentence)][:max_sentence_tokens] or [UNK_ID]
            token_ids[row, column, : len(ids)] = ids
    return {"token_ids": token_ids, "features": features, "sentence_mask": mask, "labels": labels}


# ----------------------------------------------------------------------------------------------------------
# The model


@dataclasses.dataclass
class ScorerConfig:
    """Sizes of a :class:`SentenceScorer` (JSON-friendly)."""

    vocabulary_size: int
    max_sentences: int = 48
    max_sentence_tokens: int = 40
    hidden_dim: int = 64
    num_layers: int = 1
    num_heads: int = 2
    intermediate_dim: int = 128
    document_layers: int = 2
    dropout: float = 0.1
    num_features: int = NUM_FEATURES


def _keras():
    import keras

    return keras


def build_scorer(config: ScorerConfig):
    """A :class:`SentenceScorer` built for ``config`` (imports Keras on first use)."""
    return _scorer_class()(config=dataclasses.asdict(config))


_SCORER_CLASS = None


def _scorer_class():
    global _SCORER_CLASS
    if _SCORER_CLASS is not None:
        return _SCORER_CLASS
    keras = _keras()
    from keras import ops

    from llm_tf.layers import TransformerEncoderBlock
    from llm_tf.models import TransformerEncoder, TransformerEncoderConfig

    @keras.saving.register_keras_serializable(package="llm_tf.summarization")
    class SentenceScorer(keras.Model):
        """Sentence logits ``(batch, S)`` from ``token_ids (batch, S, T)``, ``features``, ``sentence_mask``."""

        def __init__(self, config, **kwargs):
            super().__init__(**kwargs)
            self.scorer_config = dict(config)
            c = ScorerConfig(**config)
            self.encoder = TransformerEncoder(TransformerEncoderConfig(
                vocabulary_size=c.vocabulary_size, max_sequence_length=c.max_sentence_tokens, hidden_dim=c.hidden_dim,
                num_layers=c.num_layers, num_heads=c.num_heads, intermediate_dim=c.intermediate_dim,
                dropout=c.dropout, num_segments=0), name="sentence_encoder")
            self.feature_projection = keras.layers.Dense(c.hidden_dim, name="feature_projection")
            self.sentence_positions = keras.layers.Embedding(c.max_sentences, c.hidden_dim, name="sentence_positions")
            self.document_blocks = [
                TransformerEncoderBlock(num_heads=c.num_heads, intermediate_dim=c.intermediate_dim, dropout=c.dropout,
                                        name=f"document_block_{i}")
                for i in range(c.document_layers)
            ]
            self.head = keras.layers.Dense(1, name="head")
            self.config_values = c

        def call(self, inputs, training=None):
            c = self.config_values
            token_ids = ops.cast(inputs["token_ids"], "int32")
            sentences, tokens = c.max_sentences, c.max_sentence_tokens
            flat = ops.reshape(token_ids, (-1, tokens))
            # Padding sentences have no token: keep position 0 visible so attention never sees an empty row.
            token_mask = ops.logical_or(ops.not_equal(flat, PAD_ID), ops.arange(tokens)[None, :] == 0)
            hidden = self.encoder({"token_ids": flat, "padding_mask": token_mask}, training=training)
            weights = ops.cast(token_mask, hidden.dtype)[:, :, None]
            pooled = ops.sum(hidden * weights, axis=1) / ops.sum(weights, axis=1)
            pooled = ops.reshape(pooled, (-1, sentences, c.hidden_dim))
            x = pooled + self.feature_projection(inputs["features"]) + self.sentence_positions(ops.arange(sentences))[None]
            mask = ops.cast(inputs["sentence_mask"], "bool")
            for block in self.document_blocks:
                x = block(x, padding_mask=mask, training=training)
            return self.head(x)

        def get_config(self):
            return {**super().get_config(), "config": self.scorer_config}

    _SCORER_CLASS = SentenceScorer
    return SentenceScorer


def scorer_inputs(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model-input part of :func:`encode_documents`' arrays."""
    return {key: arrays[key] for key in ("token_ids", "features", "sentence_mask")}


def train_scorer(arrays, validation_arrays, config: ScorerConfig, *, epochs: int = 10, batch_size: int = 16,
                 learning_rate: float = 1e-3, weight_decay: float = 0.01, warmup_fraction: float = 0.1, seed: int = 0,
                 run_dir=None, verbose="auto", log_every_n_steps: int = 50, backup_every_n_steps: int | None = None):
    """Trains a :class:`SentenceScorer` with ``llm_tf.training.train`` (run directory, checkpoints, exact resume).

    Args:
        arrays, validation_arrays: :func:`encode_documents` outputs of the training and validation documents.
        config: the model sizes.
        epochs, batch_size, learning_rate, weight_decay, warmup_fraction, seed: the recipe (AdamW, linear warmup
            then cosine decay to 0).
        run_dir: a ``llm_tf.training.RunDirectory`` (logs, best/last .keras, backups, resume), or None.
        verbose, log_every_n_steps, backup_every_n_steps: passed to ``llm_tf.training.train`` (None: a backup at
            every epoch end).

    Returns:
        ``(model, TrainingResult)``.
    """
    import tensorflow as tf

    from llm_tf import training

    keras = _keras()
    keras.utils.set_random_seed(seed)

    def examples(a):
        return tf.data.Dataset.from_tensor_slices(
            (scorer_inputs(a), a["labels"][..., None], a["sentence_mask"].astype(np.float32)))

    steps = max(len(arrays["labels"]) // batch_size, 1)
    model = build_scorer(config)
    schedule = training.WarmupCosineDecay(learning_rate, warmup_steps=int(warmup_fraction * steps * epochs),
                                          total_steps=steps * epochs)
    model.compile(optimizer=training.build_optimizer(schedule, weight_decay=weight_decay),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True), weighted_metrics=[])
    result = training.train(
        model, training.seeded_epoch_batches(examples(arrays), batch_size, seed=seed),
        examples(validation_arrays).batch(batch_size), epochs=epochs, run_dir=run_dir, steps_per_epoch=steps,
        verbose=verbose, tensorboard=False, plot=run_dir is not None,
        log_every_n_steps=log_every_n_steps, backup_every_n_steps=backup_every_n_steps,
    )
    return model, result


def predict_scores(model, documents: Sequence[Document], arrays, batch_size: int = 32) -> list[np.ndarray]:
    """One score array per document (length = its sentence count; cut sentences get ``-inf``)."""
    logits = np.asarray(model.predict(scorer_inputs(arrays), batch_size=batch_size, verbose=0))[..., 0]
    scores = []
    for row, document in enumerate(documents):
        values = np.full(len(document.sentences), -np.inf)
        kept = min(len(document.sentences), logits.shape[1])
        values[:kept] = logits[row, :kept]
        scores.append(values)
    return scores


def load_scorer(path: str):
    """A saved :class:`SentenceScorer` (``.keras``)."""
    _scorer_class()
    return _keras().saving.load_model(path, compile=False)


__all__ = [
    "Document", "NUM_FEATURES", "ScorerConfig", "build_scorer", "build_vocabulary", "choose_budget",
    "encode_documents",
    "evaluate_selections", "fit_idf", "greedy_oracle", "lead_scores", "learn_length_ratio", "load_scorer",
    "longest_scores", "oracle_labels", "predict_scores", "prepare_documents", "rouge_report", "scorer_inputs",
    "select_sentences", "sentence_features", "sentence_lengths", "summarize", "summary_texts", "textrank_scores",
    "train_scorer", "tune_lead_k", "words", "write_examples",
]
