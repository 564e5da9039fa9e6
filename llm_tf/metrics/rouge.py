"""ROUGE-1/2/L/Lsum through Google's ``rouge-score`` package, with bootstrap confidence intervals."""

import collections

import numpy as np

from llm_tf.metrics._inputs import as_reference_lists, as_text_list, check_positive_int, check_probability

DEFAULT_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
_MEASURES = ("precision", "recall", "fmeasure")


class _CachedTokenizer:
    """rouge-score's own ``DefaultTokenizer`` with its results remembered (same tokens, computed once per text).

    Tokenizing (with the Porter stemmer) is about a third of scoring, and summarization scores the same
    references and sentences many times (Lead-k for every k, every length budget); the cache keeps the
    ``max_entries`` most recently used texts.
    """

    def __init__(self, use_stemmer, max_entries=200_000):
        from rouge_score import tokenizers  # loads nltk's stemmer (~0.5 s): only when ROUGE is computed

        self.max_entries = max_entries
        self._tokenizer = tokenizers.DefaultTokenizer(use_stemmer)
        self._cache = collections.OrderedDict()

    def tokenize(self, text):
        tokens = self._cache.get(text)
        if tokens is None:
            tokens = tuple(self._tokenizer.tokenize(text))
            self._cache[text] = tokens
            if len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)  # the least recently used text
        else:
            self._cache.move_to_end(text)
        return list(tokens)


_TOKENIZERS = {}


def _cached_tokenizer(use_stemmer):
    if use_stemmer not in _TOKENIZERS:
        _TOKENIZERS[use_stemmer] = _CachedTokenizer(use_stemmer)
    return _TOKENIZERS[use_stemmer]


def _check_rouge_types(rouge_types):
    if isinstance(rouge_types, str):
        rouge_types = (rouge_types,)
    rouge_types = tuple(rouge_types)
    if not rouge_types:
        raise ValueError("`rouge_types` is empty; expected e.g. ('rouge1', 'rouge2', 'rougeL', 'rougeLsum').")
    for rouge_type in rouge_types:
        is_ngram = (
            isinstance(rouge_type, str) and rouge_type.startswith("rouge") and rouge_type[5:].isdigit()
            and len(rouge_type) == 6 and rouge_type[5] != "0"
        )
        if not (is_ngram or rouge_type in ("rougeL", "rougeLsum")):
            raise ValueError(
                "`rouge_types` items must be 'rouge1'..'rouge9', 'rougeL' or 'rougeLsum'; "
                f"got {rouge_type!r} in rouge_types={rouge_types!r}."
            )
    if len(set(rouge_types)) != len(rouge_types):
        raise ValueError(f"`rouge_types` has duplicates; got rouge_types={rouge_types!r}.")
    return rouge_types


def _bootstrap_percentiles(matrix, confidence, num_samples, random_state):
    """Percentiles of ``num_samples`` resampled column means of ``matrix`` ``(n, columns)``."""
    num_rows = matrix.shape[0]
    resampled_means = np.empty((num_samples, matrix.shape[1]))
    for round_index in range(num_samples):
        rows = random_state.choice(num_rows, size=num_rows)
        resampled_means[round_index] = matrix[rows].mean(axis=0)
    tail = (1.0 - confidence) / 2.0
    return np.percentile(resampled_means, [100.0 * tail, 100.0 * (1.0 - tail)], axis=0)


def bootstrap_mean_interval(values, confidence=0.95, num_samples=1000, seed=0):
    """Percentile-bootstrap confidence interval of the mean (rows resampled jointly across columns).

    Each of ``num_samples`` rounds draws ``n`` row indices with replacement from
    ``numpy.random.RandomState(seed)`` (the draws ``rouge_score.scoring.BootstrapAggregator`` makes
    after ``numpy.random.seed(seed)``); the bounds are the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` percentiles of the resampled means.

    Args:
        values: ``(n,)`` or ``(n, columns)`` array of per-example scores, ``n >= 1``.
        confidence: coverage of the interval, in (0, 1).
        num_samples: number of bootstrap rounds.
        seed: seed of the resampling, so that the interval is reproducible.

    Returns:
        ``(low, high)``, each a float (1-D input) or a ``(columns,)`` array.

    Raises:
        ValueError: when ``values`` is empty or an argument is out of range.

    Example:
        >>> low, high = bootstrap_mean_interval([0.2, 0.4, 0.9], num_samples=200)
        >>> bool(low <= 0.5 <= high)
        True
    """
    check_probability("confidence", confidence, allow_zero=False, allow_one=False)
    check_positive_int("num_samples", num_samples)
    matrix = np.asarray(values, dtype=float)
    one_dimensional = matrix.ndim == 1
    if matrix.ndim not in (1, 2) or matrix.shape[0] == 0:
        raise ValueError(f"`values` must be a non-empty (n,) or (n, columns) array; got shape {matrix.shape}.")
    matrix = matrix.reshape(matrix.shape[0], -1)
    low, high = _bootstrap_percentiles(matrix, confidence, num_samples, np.random.RandomState(seed))
    if one_dimensional:
        return float(low[0]), float(high[0])
    return low, high


def corpus_rouge(
    predictions,
    references,
    rouge_types=DEFAULT_ROUGE_TYPES,
    bootstrap=True,
    confidence=0.95,
    num_samples=1000,
    seed=0,
    use_stemmer=True,
):
    """ROUGE scores of a set of predictions: per-example scores averaged, with a bootstrap 95% CI.

    Each prediction is scored against its reference(s) with ``rouge_score.rouge_scorer.RougeScorer``
    (against several references, the one with the best F-measure counts, as in ``score_multi``); the
    reported score is the plain mean over examples. ``rougeLsum`` treats each line of a text as one
    sentence, so put one sentence per line (``"\\n".join(sentences)``) for summaries; on single-line
    texts it equals ``rougeL``.

    Args:
        predictions: list of predicted texts (empty strings are valid and score 0); non-empty.
        references: one entry per prediction: a reference string or a list of reference strings.
        rouge_types: which scores to compute, among ``rouge1``…``rouge9``, ``rougeL``, ``rougeLsum``.
        bootstrap: also compute a percentile-bootstrap confidence interval of the mean F-measure.
        confidence: coverage of the interval (0.95 → 2.5th and 97.5th percentiles).
        num_samples: bootstrap rounds.
        seed: seed of the bootstrap resampling (the interval is deterministic given the seed).
        use_stemmer: apply the Porter stemmer before matching (the usual choice for English
            summarisation; ``RougeScorer`` itself defaults to False).

    Returns:
        ``{rouge_type: {"fmeasure": mean F, "precision": mean P, "recall": mean R,
        "ci": (low, high) of the F-measure or None without bootstrap}}`` plus ``"num_examples"``.
        Scores are fractions in [0, 1] (multiply by 100 for the usual tables).

    Raises:
        ValueError: when ``predictions`` is empty, the lengths differ, an item is not a string, or an
            argument is out of range.

    Example:
        >>> scores = corpus_rouge(["the cat sat"], ["the cat sat down"], rouge_types=["rouge1"])
        >>> round(scores["rouge1"]["fmeasure"], 4), scores["rouge1"]["ci"]
        (0.8571, (0.8571428571428571, 0.8571428571428571))
    """
    rouge_types = _check_rouge_types(rouge_types)
    if bootstrap:
        check_probability("confidence", confidence, allow_zero=False, allow_one=False)
        check_positive_int("num_samples", num_samples)
    predictions = as_text_list("predictions", predictions)
    reference_lists = as_reference_lists("references", references, len(predictions), "predictions")

    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(rouge_types), tokenizer=_cached_tokenizer(bool(use_stemmer)))
    # per_example[i, t, m]: measure m of rouge type t for example i.
    per_example = np.zeros((len(predictions), len(rouge_types), len(_MEASURES)))
    for index, (prediction, alternatives) in enumerate(zip(predictions, reference_lists)):
        if len(alternatives) == 1:
            scores = scorer.score(alternatives[0], prediction)
        else:
            scores = scorer.score_multi(alternatives, prediction)
        for type_index, rouge_type in enumerate(rouge_types):
            score = scores[rouge_type]
            per_example[index, type_index] = (score.precision, score.recall, score.fmeasure)

    means = per_example.mean(axis=0)
    fmeasure_column = _MEASURES.index("fmeasure")
    intervals = None
    if bootstrap:
        # One random stream, rouge types resampled one after the other in order: the same draws as
        # rouge_score's BootstrapAggregator after numpy.random.seed(seed), so the bounds match it exactly.
        random_state = np.random.RandomState(seed)
        bounds = [
            _bootstrap_percentiles(per_example[:, type_index, :], confidence, num_samples, random_state)
            for type_index in range(len(rouge_types))
        ]
        intervals = [(float(low[fmeasure_column]), float(high[fmeasure_column])) for low, high in bounds]

    report = {}
    for type_index, rouge_type in enumerate(rouge_types):
        entry = {measure: float(means[type_index, m]) for m, measure in enumerate(_MEASURES)}
        entry["ci"] = None
        if intervals is not None:
            entry["ci"] = intervals[type_index]
        report[rouge_type] = entry
    report["num_examples"] = len(predictions)
    return report
