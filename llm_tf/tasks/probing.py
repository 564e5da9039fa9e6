"""Linear probes: how much of a classification task an encoder's frozen features already hold.

Fine-tuning a pretrained encoder pays off when its features separate the task's classes better than the same
architecture's features at a random initialization. A linear probe measures that in seconds, where a
fine-tuning comparison takes minutes per seed, and it shows which layer holds what:

1. every document is cut into the windows the classifier would see (``"all"``: the covering windows; see
   :mod:`llm_tf.tasks.windows`); each window's hidden states (:meth:`TransformerEncoder.hidden_states`:
   embeddings, each block's output, the final LayerNorm) are averaged over its real tokens, and a document's
   feature is the mean over its windows;
2. the features are standardized on the training documents and a multinomial logistic regression is fitted
   on them, its inverse regularization ``C`` chosen by stratified k-fold cross-validation on the training
   documents only (the test split is used once, for the reported figure);
3. the same is done for the same architecture with random weights (``seed``), the reference any pretraining
   has to beat. Two shape statistics of the pooled features come with each probe: the share of their
   variance along the first principal direction, and the mean cosine similarity between documents; a
   representation that collapsed onto a few directions (a masked LM stuck predicting token frequencies) has
   both near 1.

Example:
    >>> from llm_tf.tasks.pretraining import load_pretrained_encoder  # doctest: +SKIP
    >>> pretrained = load_pretrained_encoder("runs/pretrain/20261205-174334")  # doctest: +SKIP
    >>> report = probe_encoder(pretrained.backbone, pretrained.tokenizer, splits.train, splits.test)  # doctest: +SKIP
    >>> report["pretrained"]["final_norm"]["test_accuracy"]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from llm_tf.checks import check_choice, check_positive_int
from llm_tf.tasks.windows import EVAL_WINDOWS, EncodedSplit, average_by_document

#: The inverse regularization strengths the cross-validation chooses from.
DEFAULT_C_VALUES = (0.001, 0.01, 0.1, 1.0, 10.0)


def layer_names(encoder) -> list[str]:
    """Names of :meth:`TransformerEncoder.hidden_states`' entries: ``embeddings``, ``block_1`` …, ``final_norm``."""
    names = ["embeddings"] + [f"block_{index + 1}" for index in range(len(encoder.blocks))]
    return names + (["final_norm"] if encoder.final_norm is not None else [])


def document_features(encoder, split: EncodedSplit, max_sequence_length: int, windows: str = "all",
                      batch_size: int = 32) -> dict[str, np.ndarray]:
    """Each layer's masked-mean feature of every document, averaged over its windows.

    Args:
        encoder: a :class:`~llm_tf.models.TransformerEncoder`.
        split: the documents (:func:`llm_tf.tasks.classification.encode_split`).
        max_sequence_length: window length ``T`` (at most the encoder's).
        windows: ``"first"``, ``"head_tail"`` or ``"all"``.
        batch_size: windows per forward pass.

    Returns:
        ``{layer name: float64 (n, hidden_dim)}`` in :func:`layer_names` order.
    """
    import keras
    import tensorflow as tf

    check_choice("windows", windows, EVAL_WINDOWS)
    check_positive_int("batch_size", batch_size)
    if not len(split):
        raise ValueError("cannot probe an empty split: it has no documents.")
    if max_sequence_length > encoder.config.max_sequence_length:
        raise ValueError(f"max_sequence_length={max_sequence_length} is longer than the encoder's "
                         f"{encoder.config.max_sequence_length} positions.")
    ops = keras.ops

    # One graph per batch width (eager layer calls cost ~10x more on a CPU).
    @tf.function(reduce_retracing=True)
    def masked_means(token_ids, padding_mask):
        states = encoder.hidden_states(*encoder.unpack_inputs({"token_ids": token_ids, "padding_mask": padding_mask}),
                                       training=False)
        weights = ops.expand_dims(ops.cast(padding_mask, "float32"), -1)
        return [ops.sum(ops.cast(state, "float32") * weights, axis=1) / ops.sum(weights, axis=1) for state in states]

    token_ids, documents = split.document_windows(windows, max_sequence_length)
    lengths = (token_ids != 0).sum(axis=1)
    # Short windows (sentences) are cut to their batch's longest row, rounded up to a multiple of 16 so that few
    # widths are traced: padding adds nothing to a masked mean.
    order = np.argsort(lengths, kind="stable")
    pooled = {name: np.zeros((len(token_ids), encoder.config.hidden_dim)) for name in layer_names(encoder)}
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        width = min(-(-int(lengths[rows].max()) // 16) * 16, token_ids.shape[1])
        batch = token_ids[rows, :width]
        means = masked_means(tf.constant(batch), tf.constant(batch != 0))
        for name, values in zip(pooled, means):
            pooled[name][rows] = values.numpy()
    return {name: average_by_document(values, documents, len(split)) for name, values in pooled.items()}


def fit_linear_probe(train_features, train_labels, test_features, test_labels,
                     c_values: Sequence[float] = DEFAULT_C_VALUES, folds: int = 5, seed: int = 0) -> dict[str, Any]:
    """Standardize, choose ``C`` by stratified ``folds``-fold cross-validation on the training rows, score on test.

    Returns:
        ``{"c", "cross_validation_accuracy", "test_accuracy", "test_macro_f1", "top_direction_variance",
        "mean_cosine"}`` (accuracies as fractions; the last two describe the training features).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    from llm_tf.tasks.classification import classification_report_present

    train_features, test_features = np.asarray(train_features, np.float64), np.asarray(test_features, np.float64)
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    if train_features.ndim != 2 or test_features.ndim != 2 or train_features.shape[1] != test_features.shape[1]:
        raise ValueError(f"features must be (n, d) with the same d; got train {train_features.shape} and "
                         f"test {test_features.shape}.")
    if len(train_features) != len(train_labels) or len(test_features) != len(test_labels):
        raise ValueError(f"one label per row: train {len(train_features)} rows / {len(train_labels)} labels, "
                         f"test {len(test_features)} rows / {len(test_labels)} labels.")
    smallest_class = int(np.bincount(np.unique(train_labels, return_inverse=True)[1]).min())
    if smallest_class < folds:
        raise ValueError(f"{folds}-fold cross-validation needs at least {folds} training examples per class; the "
                         f"smallest class has {smallest_class}. Probe with more training examples or fewer folds.")

    def fit(features, labels, c):
        scaler = StandardScaler().fit(features)  # fitted on the rows the probe trains on, never on held-out rows
        return scaler, LogisticRegression(C=c, max_iter=5000).fit(scaler.transform(features), labels)

    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    cross_validation = {}
    for c in c_values:
        correct = 0
        for fitted_rows, held_rows in splitter.split(train_features, train_labels):
            scaler, model = fit(train_features[fitted_rows], train_labels[fitted_rows], c)
            correct += int(np.sum(model.predict(scaler.transform(train_features[held_rows])) == train_labels[held_rows]))
        cross_validation[float(c)] = correct / len(train_labels)
    best_c = max(cross_validation, key=lambda c: (cross_validation[c], -c))  # ties: the stronger regularization
    scaler, model = fit(train_features, train_labels, best_c)
    predicted = model.predict(scaler.transform(test_features))
    # The macro-F1 the classification jobs report (over the classes present in the test labels).
    num_classes = int(max(train_labels.max(), test_labels.max(), predicted.max())) + 1
    test_report = classification_report_present(test_labels, predicted, [str(k) for k in range(num_classes)])
    centered = train_features - train_features.mean(axis=0)
    singular_values = np.linalg.svd(centered, compute_uv=False)
    unit = train_features / np.maximum(np.linalg.norm(train_features, axis=1, keepdims=True), 1e-12)
    count = len(unit)
    # The sum of all pairwise cosines without the (n, n) matrix: |sum of unit rows|^2 minus the n self-pairs.
    cosine = float(np.sum(unit.sum(axis=0) ** 2)) - count
    return {
        "c": best_c,
        "cross_validation_accuracy": cross_validation[best_c],
        "test_accuracy": float(np.mean(predicted == test_labels)),
        "test_macro_f1": float(test_report["macro_f1"]),
        "top_direction_variance": float(singular_values[0] ** 2 / max((singular_values ** 2).sum(), 1e-300)),
        "mean_cosine": float(cosine / max(count * (count - 1), 1)),
    }


def probe_encoder(encoder, tokenizer, train, test, max_sequence_length: int | None = None, windows: str = "all",
                  seed: int = 0, folds: int = 5, c_values: Sequence[float] = DEFAULT_C_VALUES,
                  batch_size: int = 32) -> dict[str, Any]:
    """Linear probes of every layer of ``encoder`` and of the same architecture with random weights.

    Args:
        encoder: a :class:`~llm_tf.models.TransformerEncoder` (e.g. ``load_pretrained_encoder(path).backbone``).
        tokenizer: its tokenizer (with [CLS] and [SEP]).
        train, test: ``LabeledTexts`` (``.texts``, ``.labels``).
        max_sequence_length: window length (default: the encoder's).
        windows, batch_size: see :func:`document_features`.
        seed: the random reference's initialization and the cross-validation folds.
        folds, c_values: see :func:`fit_linear_probe`.

    Returns:
        ``{"pretrained": {layer: probe}, "random_init": {layer: probe}, "layers", "train_size", "test_size",
        "max_sequence_length", "windows", "seed"}`` with each probe as from :func:`fit_linear_probe`.
    """
    import keras

    from llm_tf.models import TransformerEncoder
    from llm_tf.tasks.classification import encode_split

    length = encoder.config.max_sequence_length if max_sequence_length is None else int(max_sequence_length)
    encoded = {"train": encode_split(tokenizer, train), "test": encode_split(tokenizer, test)}
    keras.utils.set_random_seed(seed)
    reference = TransformerEncoder(encoder.config, dtype=encoder.dtype_policy)
    report: dict[str, Any] = {"layers": layer_names(encoder), "train_size": len(encoded["train"]),
                              "test_size": len(encoded["test"]), "max_sequence_length": length, "windows": windows,
                              "seed": seed}
    for name, model in (("pretrained", encoder), ("random_init", reference)):
        features = {split: document_features(model, encoded[split], length, windows, batch_size) for split in encoded}
        report[name] = {layer: fit_linear_probe(features["train"][layer], encoded["train"].labels,
                                                features["test"][layer], encoded["test"].labels, c_values, folds, seed)
                        for layer in report["layers"]}
    return report


#: The tasks :func:`probe_task_splits` loads, as their classification jobs split them.
PROBE_TASKS = ("bbc", "sst2")


def probe_task_splits(task: str, data_dir=None, max_train_examples: int | None = None, split_seed: int = 42):
    """``(train, test)`` of a named task, split exactly as its classification job splits it.

    ``"bbc"``: the news job's stratified BBC News split (``split_seed``), its test split; ``"sst2"``: the
    sentiment job's split (GLUE dev as test). ``max_train_examples`` keeps the same seeded stratified training
    subset as the jobs' ``--max-train-examples`` (so a probe on 178 BBC articles sees the 178 a 10%-labels
    fine-tuning run trains on).
    """
    from llm_tf.datasets import load_bbc_news
    from llm_tf.datasets.sst2 import load_sst2_splits
    from llm_tf.tasks.classification import prepare_splits

    check_choice("task", task, PROBE_TASKS)
    check_positive_int("max_train_examples", max_train_examples, allow_none=True)
    splits = load_bbc_news(data_dir, seed=split_seed) if task == "bbc" else load_sst2_splits(data_dir, seed=split_seed)
    splits = prepare_splits(splits, task, max_train_examples, split_seed)  # the jobs' subset and checks
    return splits.train, splits.test


def probe_table(report: dict[str, Any]) -> tuple[list[str], list[tuple]]:
    """``(header, rows)`` of a :func:`probe_encoder` report, one row per layer (percent figures)."""
    header = ["layer", "pretrained test acc", "random-init test acc", "pretrained top-direction var",
              "random-init top-direction var", "pretrained mean cos"]
    rows = []
    for layer in report["layers"]:
        tuned, reference = report["pretrained"][layer], report["random_init"][layer]
        rows.append((layer, f"{100 * tuned['test_accuracy']:.2f}", f"{100 * reference['test_accuracy']:.2f}",
                     f"{tuned['top_direction_variance']:.3f}", f"{reference['top_direction_variance']:.3f}",
                     f"{tuned['mean_cosine']:.3f}"))
    return header, rows


__all__ = [
    "DEFAULT_C_VALUES",
    "PROBE_TASKS",
    "document_features",
    "fit_linear_probe",
    "layer_names",
    "probe_encoder",
    "probe_table",
    "probe_task_splits",
]
