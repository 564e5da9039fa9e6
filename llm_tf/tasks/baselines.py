"""Non-neural baselines fit on the same split as the Transformer: TF-IDF + LinearSVC (scikit-learn).

Example:
    >>> baseline = tfidf_svm_baseline(["good film", "bad film", "great plot", "awful plot"], [1, 0, 1, 0],
    ...                               {"test": (["good plot"], [1])}, ["neg", "pos"])  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from llm_tf.checks import check_number

NAME = "TF-IDF + LinearSVC"


def make_tfidf_svm(c: float = 1.0, lower_case: bool = True, min_df: int = 2):
    """A scikit-learn pipeline: TF-IDF over word 1-2-grams (sublinear tf, accents stripped) + LinearSVC(C=c)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    check_number("c", c, minimum=0, exclusive_minimum=True)
    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min_df, strip_accents="unicode",
                        lowercase=lower_case),
        LinearSVC(C=c),
    )


def tfidf_svm_baseline(
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    evaluate: Mapping[str, tuple[Sequence[str], Sequence[int]] | None],
    class_names: Sequence[str],
    c: float = 1.0,
    lower_case: bool = True,
) -> dict[str, Any]:
    """Fit TF-IDF + LinearSVC on the training texts and report on each split of ``evaluate``.

    ``min_df=2`` (a term must occur in two documents) needs a corpus of some size: with fewer than 20 training
    texts every term is kept.

    Args:
        train_texts, train_labels: the training split.
        evaluate: split name -> ``(texts, labels)``, or None for an absent split.
        class_names: the class names (index = class id).
        c: the LinearSVC regularization constant.
        lower_case: lower-case before counting terms.

    Returns:
        ``{"name", "settings", "fit_time_s", <split>: report or None}`` with the reports of
        ``llm_tf.tasks.classification.classification_report_present``.
    """
    from llm_tf.tasks.classification import classification_report_present

    min_df = 2 if len(train_texts) >= 20 else 1
    pipeline = make_tfidf_svm(c=c, lower_case=lower_case, min_df=min_df)
    started = time.time()
    pipeline.fit(list(train_texts), list(train_labels))
    result: dict[str, Any] = {
        "name": NAME,
        "settings": {
            "vectorizer": f"TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df={min_df}, "
            "strip_accents='unicode')",
            "classifier": f"LinearSVC(C={c})",
            "fit_on": "train split",
        },
        "fit_time_s": round(time.time() - started, 3),
    }
    for name, split in evaluate.items():
        if split is None or len(split[0]) == 0:
            result[name] = None
            continue
        texts, labels = split
        result[name] = classification_report_present(list(labels), pipeline.predict(list(texts)), class_names)
    return result


__all__ = ["NAME", "make_tfidf_svm", "tfidf_svm_baseline"]
