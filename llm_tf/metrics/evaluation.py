"""Standalone evaluation: a classifier over a dataset, and a text generator against references.

Generation is always reached through a plain callable ``generate_fn(list_of_source_strings) ->
list_of_strings`` (greedy or beam decoding, detokenization included), so this module knows nothing of
model classes and runs entirely outside any compiled training step.
"""

import math

import numpy as np

from llm_tf.checks import check_choice
from llm_tf.metrics._inputs import as_reference_lists, as_text_list, check_positive_int
from llm_tf.metrics.classification import _check_class_names, classification_report
from llm_tf.metrics.rouge import DEFAULT_ROUGE_TYPES, corpus_rouge
from llm_tf.metrics.translation import corpus_bleu, corpus_chrf

GENERATION_METRICS = ("bleu", "chrf", "rouge")


def _to_numpy(name, value):
    if isinstance(value, dict):
        raise ValueError(
            f"`{name}` must be a single array; got a dict with keys {sorted(value)}. Evaluate a single-output "
            "classifier."
        )
    if hasattr(value, "numpy") and callable(value.numpy):
        value = value.numpy()
    return np.asarray(value)


def _split_batch(batch, index):
    if isinstance(batch, tuple | list) and len(batch) in (2, 3):
        return batch[0], batch[1]
    raise ValueError(
        f"`dataset` must yield (inputs, labels) or (inputs, labels, sample_weight) batches; batch {index} is "
        f"a {type(batch).__name__}" + (f" of length {len(batch)}." if hasattr(batch, "__len__") else ".")
    )


def _label_ids(labels, num_classes, index):
    labels = _to_numpy("labels", labels)
    if labels.ndim == 2 and labels.shape[1] == num_classes and num_classes > 1:
        return labels.argmax(axis=-1)  # one-hot (or soft) labels
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            f"labels of batch {index} must be class ids (batch,) or one-hot (batch, {num_classes}); "
            f"got shape {labels.shape}."
        )
    return labels


def evaluate_classifier(model, dataset, class_names, max_batches=None, zero_division=0.0):
    """Run a classifier over a dataset and report accuracy, precision/recall/F1 and the confusion matrix.

    Args:
        model: a Keras model (``predict_on_batch`` is used) or any callable ``inputs -> scores`` returning
            ``(batch, num_classes)`` logits or probabilities; the predicted class is the argmax.
        dataset: an iterable of ``(inputs, labels)`` or ``(inputs, labels, sample_weight)`` batches, e.g.
            a batched ``tf.data.Dataset``; labels are class ids ``(batch,)`` or one-hot
            ``(batch, num_classes)``. Sample weights are ignored: every example counts once.
        class_names: one name per class, index = class id.
        max_batches: stop after this many batches (None: the whole dataset).
        zero_division: see ``classification_report``.

    Returns:
        The ``classification_report`` dict.

    Raises:
        ValueError: when the dataset is empty, a batch is malformed, or the model's output does not
            have ``len(class_names)`` columns.

    Example:
        >>> report = evaluate_classifier(classifier, test_dataset.batch(32), ["negative", "positive"])
        >>> report["accuracy"], report["macro_f1"]
    """
    names = _check_class_names(class_names)
    check_positive_int("max_batches", max_batches, allow_none=True)
    predict = getattr(model, "predict_on_batch", None) or model
    true_ids, predicted_ids = [], []
    for index, batch in enumerate(dataset):
        if max_batches is not None and index >= max_batches:
            break
        inputs, labels = _split_batch(batch, index)
        scores = _to_numpy("model output", predict(inputs))
        if scores.ndim != 2 or scores.shape[-1] != len(names):
            raise ValueError(
                f"model output must be scores of shape (batch, {len(names)}) to match `class_names`; "
                f"got shape {scores.shape} for batch {index}."
            )
        label_ids = _label_ids(labels, len(names), index)
        if len(label_ids) != len(scores):
            raise ValueError(
                f"batch {index} has {len(label_ids)} labels but the model returned {len(scores)} predictions."
            )
        true_ids.append(label_ids)
        predicted_ids.append(scores.argmax(axis=-1))
    if not true_ids:
        raise ValueError("`dataset` yielded no batch; expected at least one (inputs, labels) batch.")
    return classification_report(np.concatenate(true_ids), np.concatenate(predicted_ids), names, zero_division)


def generate_texts(generate_fn, sources, batch_size=None):
    """Call ``generate_fn`` on ``sources`` (in chunks of ``batch_size``) and check what it returns.

    Args:
        generate_fn: callable ``list[str] -> list[str]`` (bytes or a string tensor are accepted and
            decoded as UTF-8).
        sources: the input texts.
        batch_size: number of sources per call (None: all in one call).

    Returns:
        The list of generated strings, one per source.

    Raises:
        ValueError: when ``generate_fn`` is not callable or returns the wrong number of texts.

    Example:
        >>> generate_texts(lambda texts: [t.upper() for t in texts], ["a b", "c"], batch_size=1)
        ['A B', 'C']
    """
    if not callable(generate_fn):
        raise ValueError(f"`generate_fn` must be callable list[str] -> list[str]; got {generate_fn!r}.")
    check_positive_int("batch_size", batch_size, allow_none=True)
    sources = as_text_list("sources", sources)
    step = batch_size or len(sources)
    hypotheses = []
    for start in range(0, len(sources), step):
        chunk = sources[start : start + step]
        generated = as_text_list("generate_fn output", generate_fn(chunk), allow_empty_list=True)
        if len(generated) != len(chunk):
            raise ValueError(
                f"`generate_fn` must return one text per source; it returned {len(generated)} texts for "
                f"{len(chunk)} sources (sources[{start}:{start + len(chunk)}])."
            )
        hypotheses.extend(generated)
    return hypotheses


def _check_metric(metric):
    check_choice("metric", metric, list(GENERATION_METRICS))


def score_generation(hypotheses, references, metric="bleu", metric_options=None):
    """Score already generated texts with ``corpus_bleu``, ``corpus_chrf`` or ``corpus_rouge``.

    Args:
        hypotheses: generated texts.
        references: one reference string (or list of strings) per hypothesis.
        metric: ``"bleu"`` (BLEU + chrF), ``"chrf"`` or ``"rouge"``.
        metric_options: keyword arguments for the scoring function, e.g. ``{"tokenize": "intl"}`` or
            ``{"rouge_types": ["rougeL"], "bootstrap": False}``.

    Returns:
        The scoring function's dict.

    Example:
        >>> score_generation(["a cat"], ["a cat"], metric="chrf")["score"]
        100.0
    """
    _check_metric(metric)
    options = dict(metric_options or {})
    if metric == "bleu":
        return corpus_bleu(hypotheses, references, **options)
    if metric == "chrf":
        return corpus_chrf(hypotheses, references, **options)
    return corpus_rouge(hypotheses, references, **options)


def flatten_generation_scores(scores, metric):
    """The headline numbers of a ``score_generation`` result as a flat ``{name: float}`` dict.

    ``bleu`` → ``{"bleu", "chrf"}`` (chrF when computed); ``chrf`` → ``{"chrf"}``; ``rouge`` →
    ``{"rouge1": F, "rouge2": F, "rougeL": F, "rougeLsum": F}`` (mean F-measures). Scores keep their
    scales (BLEU/chrF 0–100, ROUGE 0–1).

    Example:
        >>> flatten_generation_scores({"score": 31.2, "chrf": 55.0}, "bleu")
        {'bleu': 31.2, 'chrf': 55.0}
    """
    _check_metric(metric)
    if metric == "bleu":
        flat = {"bleu": scores["score"]}
        if "chrf" in scores:
            flat["chrf"] = scores["chrf"]
        return flat
    if metric == "chrf":
        return {"chrf": scores["score"]}
    return {name: entry["fmeasure"] for name, entry in scores.items() if isinstance(entry, dict)}


def evaluate_generation(
    generate_fn,
    sources,
    references,
    metric="bleu",
    batch_size=None,
    metric_options=None,
    return_hypotheses=False,
):
    """Generate a text for each source and score the texts against the references.

    Args:
        generate_fn: callable ``list[str] -> list[str]`` returning detokenized text, one per source.
        sources: input texts (non-empty).
        references: one reference string, or list of reference strings, per source.
        metric: ``"bleu"`` (``corpus_bleu``, which includes chrF), ``"chrf"`` or ``"rouge"``
            (``corpus_rouge``).
        batch_size: sources per ``generate_fn`` call (None: one call).
        metric_options: keyword arguments for the scoring function (see ``score_generation``).
        return_hypotheses: also return the generated texts.

    Returns:
        The scoring function's dict, or ``(scores, hypotheses)`` when ``return_hypotheses``.

    Raises:
        ValueError: on an unknown metric, empty ``sources``, mismatched lengths, or a ``generate_fn``
            that returns the wrong number of texts.

    Example:
        >>> scores = evaluate_generation(translate, ["ein Haus"], ["a house"], metric="bleu")
        >>> scores["score"], scores["signature"]
    """
    _check_metric(metric)
    sources = as_text_list("sources", sources)
    as_reference_lists("references", references, len(sources), "sources")  # fail before generating
    hypotheses = generate_texts(generate_fn, sources, batch_size)
    scores = score_generation(hypotheses, references, metric, metric_options)
    return (scores, hypotheses) if return_hypotheses else scores


def placeholder_scores(metric, metric_options=None):
    """The keys ``flatten_generation_scores`` will produce for ``metric``, each set to NaN.

    Used on epochs where generation is skipped, so that every epoch's logs hold the same keys (a
    ``CSVLogger`` fixes its columns at the first epoch).

    Example:
        >>> placeholder_scores("rouge", {"rouge_types": ["rougeL"]})
        {'rougeL': nan}
    """
    _check_metric(metric)
    options = metric_options or {}
    if metric == "bleu":
        keys = ["bleu", "chrf"] if options.get("include_chrf", True) else ["bleu"]
    elif metric == "chrf":
        keys = ["chrf"]
    else:
        rouge_types = options.get("rouge_types", DEFAULT_ROUGE_TYPES)
        keys = [rouge_types] if isinstance(rouge_types, str) else list(rouge_types)
    return dict.fromkeys(keys, math.nan)
