"""Text classification as library steps: encode a split, augment, train one seed, evaluate, predict, summarize.

The steps of a classification experiment (``experiments/news_classification.py`` calls them in this order;
nothing here knows about BBC News, so a second dataset, e.g. SST-2, uses them unchanged):

1. :func:`encode_split`: every text of a split encoded once with the tokenizer's graph-mode op into an
   :class:`~llm_tf.tasks.windows.EncodedSplit` (windows are cut from it later).
2. :func:`train_classifier`: a ``TextClassifier`` trained from scratch with ``llm_tf.training.train`` in a run
   directory (AdamW + warmup/cosine, optional label smoothing, token-mask augmentation
   (:func:`mask_tokens`) and weight EMA; exact crash-safe resume).
3. :func:`evaluate_splits` / :func:`predict_probabilities`: class probabilities per document (one window, or
   averaged over covering windows) and a :func:`classification_report_present` per split.
4. :func:`run_seed`: steps 2-3 for one seed in ``<run>/seed_<s>/`` (or a fold's directory), with its confusion
   matrix PNG, test predictions CSV and ``results.json``.
5. :func:`summarize_reports` / :func:`summary_tables`: mean ± std and a 95% interval over seeds or folds.

Example:
    >>> import numpy as np
    >>> mask_tokens(np.array([[2, 7, 8, 3, 0]]), 0.99, 4, [0, 2, 3], np.random.default_rng(0)).tolist()
    [[2, 4, 4, 3, 0]]
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from llm_tf.tasks.cli import ExperimentConfig
from llm_tf.tasks.runs import confidence_interval, format_mean_std, mean_and_std
from llm_tf.tasks.windows import (
    EVAL_WINDOWS,
    TRAIN_WINDOWS,
    EncodedSplit,
    model_inputs,
    predict_window_probabilities,
)

# TextClassifier's POOLING_CHOICES (the task's default, mean, first), spelled out so that the command line and
# the config checks run without importing Keras (tests/test_tasks_classification.py keeps the two equal).
POOLINGS = ("mean", "first", "max", "mean_max", "pooler")
#: The keyword arguments of :func:`train_classifier` that make up a recipe (model, optimization, windows):
#: an experiment's config holds fields of these names and passes them on unchanged.
RECIPE_ARGUMENTS = (
    "max_sequence_length", "hidden_dim", "num_layers", "num_heads", "intermediate_dim", "dropout",
    "attention_dropout", "classifier_dropout", "pooling", "batch_size", "epochs", "learning_rate",
    "warmup_fraction", "weight_decay", "label_smoothing", "token_mask_rate", "ema_momentum", "train_windows",
    "eval_windows", "jit_compile", "init_from", "layer_decay", "bucket_by_length", "norm_first",
)
#: The file with a seed's test predictions (written by :func:`run_seed`, same format as ``predict``'s output).
TEST_PREDICTIONS_CSV = "test_predictions.csv"


def encode_split(tokenizer, split) -> EncodedSplit:
    """Encode a split's texts once with the tokenizer's graph-mode (tensorflow-text) op.

    Args:
        tokenizer: a trained ``llm_tf.text`` tokenizer with [CLS] and [SEP] (e.g. ``WordPieceTokenizer``).
        split: ``LabeledTexts``, a list of texts (labels 0), or None for an absent split.

    Returns:
        An :class:`~llm_tf.tasks.windows.EncodedSplit`.
    """
    import tensorflow as tf

    if tokenizer.cls_id is None or tokenizer.sep_id is None:
        raise ValueError("`tokenizer` must have [CLS] and [SEP] tokens (cls_id, sep_id); got None.")
    if split is None:
        texts, labels = [], np.zeros(0, np.int32)
    elif isinstance(split, list | tuple):
        texts, labels = list(split), np.zeros(len(split), np.int32)
    else:
        texts, labels = list(split.texts), np.asarray(split.labels, np.int32)
    if texts:
        ragged = tokenizer.tf_encode(tf.constant(texts))
        ids, offsets = ragged.flat_values.numpy().astype(np.int32), ragged.row_splits.numpy().astype(np.int64)
    else:
        ids, offsets = np.zeros(0, np.int32), np.zeros(1, np.int64)
    return EncodedSplit(ids, offsets, labels, tokenizer.cls_id, tokenizer.sep_id)


def mask_tokens(token_ids, rate: float, mask_id: int, special_ids, rng) -> np.ndarray:
    """A copy of ``token_ids`` with each ordinary token replaced by ``mask_id`` with probability ``rate``.

    Special tokens and padding stay. Used on training windows as augmentation: the model cannot rely on any
    single word, as in BERT's masking but without predicting the masked words.

    Args:
        token_ids: int ``(examples, sequence)``.
        rate: replacement probability in [0, 1).
        mask_id: the replacement id ([MASK]).
        special_ids: ids never replaced (padding, [CLS], [SEP], ...).
        rng: a NumPy ``Generator``.

    Returns:
        The masked ids, same shape and dtype.
    """
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate < 1.0:
        raise ValueError(f"`rate` must be a number in [0, 1); got rate={rate!r}.")
    token_ids = np.asarray(token_ids)
    ordinary = ~np.isin(token_ids, list(special_ids))
    chosen = ordinary & (rng.random(token_ids.shape) < rate)
    return np.where(chosen, mask_id, token_ids).astype(token_ids.dtype)


def examples_dataset(token_ids, labels, num_classes: int | None = None):
    """Un-batched ``({"token_ids", "padding_mask"}, label)`` examples; one-hot float labels given ``num_classes``."""
    import tensorflow as tf

    labels = np.asarray(labels)
    targets = labels.astype("int32") if num_classes is None else np.eye(num_classes, dtype="float32")[labels]
    return tf.data.Dataset.from_tensor_slices((model_inputs(token_ids), targets))


def length_bucketed_batches(token_ids: np.ndarray, labels, batch_size: int, rng: np.random.Generator,
                            chunk_batches: int = 50):
    """One epoch of batches of similar-length windows, each cut to its longest window (short texts: less padding).

    The seeded order is cut into chunks of ``chunk_batches`` batches; each chunk is sorted by length and cut into
    batches, and the batches are shuffled (the last incomplete batch is dropped, as in ``seeded_epoch_batches``).
    A pure function of ``rng``'s state, so a resumed epoch sees the same batches.

    Returns:
        A ``tf.data.Dataset`` of ``({"token_ids", "padding_mask"}, labels)`` batches of shape ``(batch, None)``.
    """
    import tensorflow as tf

    token_ids, labels = np.asarray(token_ids), np.asarray(labels)
    lengths = (token_ids != 0).sum(axis=1)
    order = rng.permutation(len(token_ids))[: len(token_ids) // batch_size * batch_size]
    batches = []
    for start in range(0, len(order), chunk_batches * batch_size):
        chunk = order[start:start + chunk_batches * batch_size]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    batches = [batches[i] for i in rng.permutation(len(batches))]

    def generate():
        for batch in batches:
            ids = token_ids[batch, : max(1, int(lengths[batch].max()))]
            yield model_inputs(ids), labels[batch]

    label_spec = tf.TensorSpec((None,) + labels.shape[1:], tf.as_dtype(labels.dtype))
    signature = ({"token_ids": tf.TensorSpec((None, None), tf.as_dtype(token_ids.dtype)),
                  "padding_mask": tf.TensorSpec((None, None), tf.bool)}, label_spec)
    return tf.data.Dataset.from_generator(generate, output_signature=signature).apply(
        tf.data.experimental.assert_cardinality(len(batches)))


def _check_recipe(batch_size: int, train_size: int, train_windows: str, eval_windows: str, pooling: str) -> None:
    if train_windows not in TRAIN_WINDOWS:
        raise ValueError(f"`train_windows` must be one of {TRAIN_WINDOWS}; got train_windows={train_windows!r}.")
    if eval_windows not in EVAL_WINDOWS:
        raise ValueError(f"`eval_windows` must be one of {EVAL_WINDOWS}; got eval_windows={eval_windows!r}.")
    if pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be one of {POOLINGS}; got pooling={pooling!r}.")
    if batch_size > train_size:
        raise ValueError(
            f"`batch_size` must not exceed the {train_size} training examples; got batch_size={batch_size}."
        )


def train_classifier(
    train: EncodedSplit,
    validation: EncodedSplit | None,
    *,
    num_classes: int,
    vocabulary_size: int,
    mask_id: int | None,
    special_ids: Sequence[int],
    seed: int,
    run_dir=None,
    strategy=None,
    max_sequence_length: int = 256,
    hidden_dim: int = 128,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_dim: int = 512,
    dropout: float = 0.1,
    attention_dropout: float | None = None,
    classifier_dropout: float = 0.1,
    pooling: str = "mean",
    batch_size: int = 32,
    epochs: int = 8,
    learning_rate: float = 1e-3,
    warmup_fraction: float = 0.1,
    weight_decay: float = 0.01,
    label_smoothing: float = 0.0,
    token_mask_rate: float = 0.0,
    ema_momentum: float | None = None,
    train_windows: str = "first",
    eval_windows: str = "first",
    jit_compile: bool | str = "auto",
    init_from: str | None = None,
    layer_decay: float | None = None,
    bucket_by_length: bool = False,
    norm_first: bool = False,
    log_every_n_steps: int = 50,
    backup_every_n_steps: int | None = None,
    verbose="auto",
):
    """Train a ``TextClassifier`` (BERT-style encoder) for one seed with ``llm_tf.training.train``.

    From scratch, or fine-tuned from a pretrained encoder (``init_from``): the backbone starts from the
    pretrained weights (with this recipe's dropout), the pooler and head from a fresh initialization.

    Each epoch's batches are a pure function of ``(seed, epoch)`` (windows, masking and order), so a run
    directory interrupted at any step resumes with the very same batches. The per-epoch validation reads one
    window per document (``"first"`` when ``eval_windows="all"``; the average over all windows is for the final
    report). With ``ema_momentum`` the returned model holds the averaged weights, also saved as ``last.keras``.

    Args:
        train, validation: the encoded splits (validation may be None or empty).
        num_classes: the number of classes.
        vocabulary_size, mask_id, special_ids: from the tokenizer (``mask_id`` is needed for token masking).
        seed: the training seed (weights, dropout, batch order, random windows, masking).
        run_dir: a ``RunDirectory`` (checkpoints, logs, backups, resume) or None.
        strategy: the ``tf.distribute`` strategy (None: the default one).
        max_sequence_length: window length ``T``, [CLS] and [SEP] included.
        hidden_dim, num_layers, num_heads, intermediate_dim, dropout, attention_dropout: encoder sizes.
        classifier_dropout, pooling: the classification head (``"mean"``, ``"first"``, ``"max"``, ``"mean_max"``
            or ``"pooler"``).
        batch_size, epochs, learning_rate, warmup_fraction, weight_decay: AdamW with linear warmup over
            ``warmup_fraction`` of the steps, then cosine decay to 0; biases, norms and embeddings not decayed.
        label_smoothing: cross-entropy label smoothing (0 = none).
        token_mask_rate: replace this fraction of the training tokens by [MASK] each epoch.
        ema_momentum: evaluate an exponential moving average of the weights (None = no average).
        train_windows: ``"first"``, ``"head_tail"`` or ``"random"`` (see ``llm_tf.tasks.windows``).
        eval_windows: ``"first"``, ``"head_tail"`` or ``"all"``.
        jit_compile: True, False or ``"auto"`` (XLA on GPU/TPU only).
        init_from: a pretraining run directory or a Hugging Face BERT folder
            (``llm_tf.tasks.pretraining.load_pretrained_encoder``); its architecture must match
            ``vocabulary_size`` / ``hidden_dim`` / ``num_layers`` / ``num_heads`` / ``intermediate_dim`` and hold
            at least ``max_sequence_length`` positions (use :func:`apply_pretrained` to take them over).
        layer_decay: layer-wise learning-rate decay (e.g. 0.8): the head learns at the full rate, encoder block
            ``i`` of ``N`` at ``layer_decay ** (N - i)``, the embeddings at ``layer_decay ** (N + 1)``.
        bucket_by_length: batch windows of similar length and cut each batch to its longest window
            (:func:`length_bucketed_batches`; for corpora of short texts such as SST-2).
        norm_first: a pre-norm encoder (LayerNorm before each sublayer and after the last block, none after the
            embeddings) instead of BERT's post-norm one; from-scratch only (a pretrained encoder brings its own).
        log_every_n_steps, backup_every_n_steps, verbose: passed to ``llm_tf.training.train``.

    Returns:
        ``(model, training_result)``.
    """
    import keras
    import tensorflow as tf

    from llm_tf import training
    from llm_tf.models import TextClassifier, TransformerEncoderConfig

    _check_recipe(batch_size, len(train), train_windows, eval_windows, pooling)
    if token_mask_rate and mask_id is None:
        raise ValueError(f"token_mask_rate={token_mask_rate} needs a tokenizer with a [MASK] token; got mask_id=None.")
    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(seed)
    steps_per_epoch = len(train) // batch_size
    total_steps = steps_per_epoch * epochs
    fixed_windows = None if train_windows == "random" else train.document_windows(train_windows, max_sequence_length)[0]
    # Keras smooths only one-hot labels, so label smoothing switches the labels to one-hot.
    one_hot_classes = num_classes if label_smoothing else None

    def batches_for_epoch(epoch: int):
        rng = np.random.default_rng([seed, epoch])
        token_ids = train.random_windows(max_sequence_length, rng) if fixed_windows is None else fixed_windows
        if token_mask_rate:
            token_ids = mask_tokens(token_ids, token_mask_rate, mask_id, special_ids, rng)
        if bucket_by_length:
            targets = train.labels if one_hot_classes is None else np.eye(num_classes, dtype="float32")[train.labels]
            return length_bucketed_batches(token_ids, targets.astype(targets.dtype), batch_size, rng)
        return training.seeded_epoch_batches(examples_dataset(token_ids, train.labels, one_hot_classes),
                                             batch_size, seed=seed)(epoch)

    validation_batches = None
    if validation is not None and len(validation):
        kind = "first" if eval_windows == "all" else eval_windows
        windows = validation.document_windows(kind, max_sequence_length)[0]
        validation_batches = examples_dataset(windows, validation.labels, one_hot_classes).batch(batch_size)

    pretrained = None
    if init_from is not None:
        from llm_tf.tasks.pretraining import load_pretrained_encoder

        pretrained = load_pretrained_encoder(init_from)
        check_matches_pretrained(pretrained, vocabulary_size=vocabulary_size, hidden_dim=hidden_dim,
                                 num_layers=num_layers, num_heads=num_heads, intermediate_dim=intermediate_dim,
                                 norm_first=norm_first, max_sequence_length=max_sequence_length)
    else:
        encoder_config = TransformerEncoderConfig(
            vocabulary_size=vocabulary_size, max_sequence_length=max_sequence_length, hidden_dim=hidden_dim,
            num_layers=num_layers, num_heads=num_heads, intermediate_dim=intermediate_dim, dropout=dropout,
            attention_dropout=attention_dropout, num_segments=0, norm_first=norm_first, final_norm=norm_first,
            embedding_norm=not norm_first,
        )
    with strategy.scope():
        if pretrained is not None:
            model = classifier_from_pretrained(pretrained, num_classes, pooling, classifier_dropout, dropout,
                                               attention_dropout)
        else:
            model = TextClassifier(num_classes=num_classes, pooling=pooling, dropout=classifier_dropout,
                                   config=encoder_config)
        schedule = training.WarmupCosineDecay(
            learning_rate, warmup_steps=int(warmup_fraction * total_steps), total_steps=total_steps
        )
        if label_smoothing:
            loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing)
            metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
        else:
            loss, metrics = "auto", "auto"  # sparse cross-entropy and accuracy on integer labels
        # The news preset was measured with Keras's epsilon (1e-7) when averaging weights.
        multipliers = None if layer_decay is None else layerwise_learning_rates(model, layer_decay)
        optimizer = training.build_optimizer(schedule, weight_decay=weight_decay, ema_momentum=ema_momentum,
                                             epsilon=1e-8 if ema_momentum is None else 1e-7,
                                             learning_rate_multipliers=multipliers)
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                      jit_compile=training.resolve_jit_compile(jit_compile))
    result = training.train(
        model, batches_for_epoch, validation_batches, epochs=epochs, run_dir=run_dir,
        steps_per_epoch=steps_per_epoch, log_every_n_steps=log_every_n_steps,
        backup_every_n_steps=backup_every_n_steps, verbose=verbose, strategy=strategy,
        extra_results={"seed": seed},
    )
    if ema_momentum is not None and run_dir is not None:
        # fit swapped the averaged weights in after the last epoch's checkpoint; last.keras gets them too.
        model.save(run_dir.last_model)
    return model, result


def classifier_from_pretrained(pretrained, num_classes: int, pooling: str = "mean", classifier_dropout: float = 0.1,
                               dropout: float | None = None, attention_dropout: float | None = None):
    """A ``TextClassifier`` whose backbone holds the pretrained encoder's weights (with new dropout rates).

    The backbone is rebuilt from the pretrained config (``dropout`` / ``attention_dropout`` replaced when given)
    and takes every pretrained weight, so at inference its outputs equal the pretrained encoder's; the pooler and
    the head start from a fresh initialization.

    Args:
        pretrained: from ``llm_tf.tasks.pretraining.load_pretrained_encoder``.
        num_classes, pooling, classifier_dropout: the head.
        dropout, attention_dropout: the backbone's dropout for fine-tuning (None: the pretrained config's).
    """
    from llm_tf.models import TextClassifier

    changes = {} if dropout is None else {"dropout": dropout, "attention_dropout": attention_dropout}
    model = TextClassifier(num_classes=num_classes, pooling=pooling, dropout=classifier_dropout,
                           config=dataclasses.replace(pretrained.config, **changes))
    model.backbone.set_weights(pretrained.backbone.get_weights())
    return model


ARCHITECTURE_FIELDS = ("vocabulary_size", "hidden_dim", "num_layers", "num_heads", "intermediate_dim",
                       "norm_first")


def check_matches_pretrained(pretrained, **recipe) -> None:
    """Raise a ``ValueError`` naming every recipe value that contradicts the pretrained encoder.

    The architecture (:data:`ARCHITECTURE_FIELDS`) must be equal; ``max_sequence_length`` may be shorter than the
    pretrained position table but not longer.
    """
    config = pretrained.config
    problems = [f"{name}={recipe[name]} (the pretrained encoder has {getattr(config, name)})"
                for name in ARCHITECTURE_FIELDS if name in recipe and recipe[name] != getattr(config, name)]
    if recipe.get("max_sequence_length", 0) > config.max_sequence_length:
        problems.append(f"max_sequence_length={recipe['max_sequence_length']} (the pretrained encoder has "
                        f"{config.max_sequence_length} positions)")
    if problems:
        raise ValueError(f"the recipe contradicts the pretrained encoder at {pretrained.source}: "
                         f"{'; '.join(problems)}. Drop those flags: a fine-tuning run takes them from the model.")


def apply_pretrained(config, pretrained, explicit: Mapping[str, Any]):
    """``config`` with the pretrained encoder's architecture and tokenizer case taken over, its length capped.

    Args:
        config: a :class:`ClassificationConfig` (with ``init_from``).
        pretrained: from ``llm_tf.tasks.pretraining.load_pretrained_encoder``.
        explicit: the flags the user gave (field -> value, None = not given); a given value that contradicts the
            pretrained model is an error, one that was not given is replaced.

    Raises:
        ValueError: naming each contradicting flag.
    """
    given = {name: value for name, value in explicit.items() if value is not None}
    check_matches_pretrained(pretrained, **{name: given[name] for name in ARCHITECTURE_FIELDS + (
        "max_sequence_length",) if name in given})
    lower_case = getattr(pretrained.tokenizer, "lower_case", None)
    if "lower_case" in given and lower_case is not None and given["lower_case"] != lower_case:
        raise ValueError(f"lower_case={given['lower_case']} contradicts the pretrained tokenizer at "
                         f"{pretrained.source} (lower_case={lower_case}).")
    values = {name: getattr(pretrained.config, name) for name in ARCHITECTURE_FIELDS}
    if "max_sequence_length" not in given:  # the preset's length, capped at the pretrained position table
        values["max_sequence_length"] = min(config.max_sequence_length, pretrained.config.max_sequence_length)
    if lower_case is not None:
        values["lower_case"] = lower_case
    return dataclasses.replace(config, **values)


def layerwise_learning_rates(model, layer_decay: float) -> dict[str, float]:
    """Learning-rate multipliers by variable path: head 1, block ``i`` of ``N`` ``decay**(N-i)``, embeddings
    ``decay**(N+1)`` (the recipe of ELECTRA and BEiT fine-tuning).

    Example:
        >>> rates = layerwise_learning_rates(classifier, 0.5)  # doctest: +SKIP
        >>> rates["backbone/block_1/feed_forward/output/kernel"]  # of 2 blocks  # doctest: +SKIP
        0.5
    """
    import re

    if isinstance(layer_decay, bool) or not isinstance(layer_decay, int | float) or not 0 < layer_decay <= 1:
        raise ValueError(f"`layer_decay` must be a number in (0, 1]; got layer_decay={layer_decay!r}.")
    num_layers = model.backbone.config.num_layers
    rates = {}
    for variable in model.trainable_variables:
        path = variable.path
        block = re.search(r"(?:^|/)block_(\d+)/", path)
        if block:
            rates[path] = float(layer_decay ** (num_layers - int(block.group(1))))
        elif path.startswith("backbone/"):
            rates[path] = float(layer_decay ** (num_layers + 1))
        else:
            rates[path] = 1.0
    return rates


def predict_probabilities(model, split: EncodedSplit, eval_windows: str, max_sequence_length: int,
                          batch_size: int = 32) -> np.ndarray:
    """Class probabilities per document ``(n, C)`` (see ``llm_tf.tasks.windows.predict_window_probabilities``)."""
    return predict_window_probabilities(model, split, eval_windows, max_sequence_length, batch_size)


def classification_report_present(y_true, y_pred, class_names: Sequence[str]) -> dict[str, Any]:
    """``llm_tf.metrics.classification_report`` with the macro averages over the classes present in ``y_true``.

    A class absent from the evaluated split has no recall and would count as F1 = 0 in a macro average over
    all classes; here the macro precision/recall/F1 average over the classes that occur in ``y_true`` and the
    report says so (``macro_average_over``, ``classes_absent``). Per-class rows keep every class.

    Example:
        >>> report = classification_report_present([0, 0, 1], [0, 0, 1], ["a", "b", "c"])
        >>> report["macro_f1"], report["classes_absent"]
        (1.0, ['c'])
    """
    from llm_tf.metrics import classification_report

    report = classification_report(y_true, y_pred, list(class_names))
    present = [name for name in class_names if report["per_class"][name]["support"] > 0]
    for metric in ("precision", "recall", "f1"):
        report[f"macro_{metric}"] = float(np.mean([report["per_class"][name][metric] for name in present]))
    report["classes_absent"] = [name for name in class_names if name not in present]
    report["macro_average_over"] = (
        f"the {len(present)} of {len(class_names)} classes present in the evaluated split"
    )
    return report


def evaluate_splits(model, splits: Mapping[str, EncodedSplit | None], class_names: Sequence[str],
                    eval_windows: str, max_sequence_length: int, batch_size: int = 32):
    """Reports and probabilities for each named split (None for an absent or empty split).

    Returns:
        ``(reports, probabilities)``: two dicts split name -> report / ``(n, C)`` array (or None).
    """
    reports, probabilities = {}, {}
    for name, split in splits.items():
        if split is None or not len(split):
            reports[name] = probabilities[name] = None
            continue
        probabilities[name] = predict_probabilities(model, split, eval_windows, max_sequence_length, batch_size)
        reports[name] = classification_report_present(split.labels, probabilities[name].argmax(-1), class_names)
    return reports, probabilities


def misclassified_examples(texts: Sequence[str], labels, probabilities: np.ndarray, class_names: Sequence[str],
                           limit: int = 10, max_characters: int = 300) -> list[dict[str, Any]]:
    """The first ``limit`` misclassified texts (in split order): text (cut), true and predicted class, confidence.

    Example:
        >>> misclassified_examples(["good", "bad"], [1, 0], np.array([[0.2, 0.8], [0.1, 0.9]]), ["neg", "pos"])
        [{'index': 1, 'text': 'bad', 'true': 'neg', 'predicted': 'pos', 'probability': 0.9}]
    """
    predicted = np.asarray(probabilities).argmax(-1)
    rows = []
    for index in np.flatnonzero(predicted != np.asarray(labels))[:limit]:
        text = texts[index]
        rows.append({"index": int(index), "text": text if len(text) <= max_characters else text[:max_characters] + "…",
                     "true": class_names[int(labels[index])], "predicted": class_names[int(predicted[index])],
                     "probability": round(float(probabilities[index].max()), 4)})
    return rows


def write_predictions_csv(path, ids: Sequence[str], probabilities: np.ndarray, class_names: Sequence[str]):
    """A CSV with columns ``id, predicted, p_<class>...`` (probabilities with 6 decimals).

    Args:
        path: the file to write, or an open text stream (e.g. ``sys.stdout``).
        ids, probabilities, class_names: one id and one probability row per text; the class names.

    Returns:
        ``path``.
    """
    probabilities = np.asarray(probabilities)
    if probabilities.shape != (len(ids), len(class_names)):
        raise ValueError(f"`probabilities` must be (len(ids), len(class_names)) = ({len(ids)}, "
                         f"{len(class_names)}); got {probabilities.shape}.")

    def write(file):
        writer = csv.writer(file)
        writer.writerow(["id", "predicted"] + [f"p_{name}" for name in class_names])
        for identifier, row in zip(ids, probabilities):
            writer.writerow([identifier, class_names[int(row.argmax())]] + [f"{value:.6f}" for value in row])

    if hasattr(path, "write"):
        write(path)
        return path
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as file:
        write(file)
    return path


def run_seed(
    run_dir,
    seed: int,
    encoded: Mapping[str, EncodedSplit | None],
    class_names: Sequence[str],
    *,
    vocabulary_size: int,
    mask_id: int | None,
    special_ids: Sequence[int],
    test_ids: Sequence[str] | None = None,
    test_texts: Sequence[str] | None = None,
    strategy=None,
    log_every_n_steps: int = 50,
    backup_every_n_steps: int | None = None,
    verbose=2,
    title: str = "Transformer",
    **recipe,
) -> dict[str, Any]:
    """Train and evaluate one seed in its own run directory (see :func:`train_classifier` for ``recipe``).

    Writes ``confusion_matrix.png``, ``test_predictions.csv`` (when ``test_ids`` are given) and adds the
    validation/test reports to the run's ``results.json``.

    Args:
        run_dir: the seed's (or fold's) ``RunDirectory``.
        seed: the training seed.
        encoded: ``{"train", "validation", "test"}`` -> EncodedSplit (validation/test may be None or empty).
        class_names: the class names.
        vocabulary_size, mask_id, special_ids: from the tokenizer.
        test_ids: one id per test document, for the predictions CSV.
        test_texts: the test texts; the first misclassified ones go to ``results["misclassified"]``.
        strategy, log_every_n_steps, backup_every_n_steps, verbose: as in :func:`train_classifier`.
        title: the model's name in the confusion-matrix title.
        **recipe: the :data:`RECIPE_ARGUMENTS`.

    Returns:
        The seed's results (``seed``, ``test``, ``validation``, ``test_accuracy``, ``test_macro_f1``,
        ``train_time_s``, ``status``, ``num_parameters``, ...), as written to ``results.json``.
    """
    import keras

    from llm_tf import training
    from llm_tf.plots import plot_confusion_matrix

    unknown = sorted(set(recipe) - set(RECIPE_ARGUMENTS))
    if unknown:
        raise ValueError(f"unknown recipe argument(s) {unknown}; expected some of {list(RECIPE_ARGUMENTS)}.")
    model, result = train_classifier(
        encoded["train"], encoded.get("validation"), num_classes=len(class_names),
        vocabulary_size=vocabulary_size, mask_id=mask_id, special_ids=special_ids, seed=seed, run_dir=run_dir,
        strategy=strategy, log_every_n_steps=log_every_n_steps, backup_every_n_steps=backup_every_n_steps,
        verbose=verbose, **recipe,
    )
    if run_dir is not None and os.path.isfile(run_dir.last_model):
        # Evaluate the checkpoint itself, so that predicting with it later reproduces these figures exactly
        # (inference only: its optimizer state is not needed).
        model = keras.saving.load_model(run_dir.last_model, compile=False)
    eval_windows = recipe.get("eval_windows", "first")
    max_sequence_length = recipe.get("max_sequence_length", 256)
    batch_size = recipe.get("batch_size", 32)
    reports, probabilities = evaluate_splits(
        model, {"validation": encoded.get("validation"), "test": encoded.get("test")}, class_names,
        eval_windows, max_sequence_length, batch_size,
    )
    with open(run_dir.results_json, encoding="utf-8") as file:
        results = json.load(file)
    results.update({
        "seed": seed, "test": reports["test"], "validation": reports["validation"],
        "train_time_s": result.wall_time_s, "status": result.status,
        "num_parameters": int(model.count_params()), "evaluated_checkpoint": os.path.basename(run_dir.last_model),
    })
    if reports["test"] is not None:
        results["test_accuracy"] = reports["test"]["accuracy"]
        results["test_macro_f1"] = reports["test"]["macro_f1"]
        results["confusion_matrix_png"] = plot_confusion_matrix(
            reports["test"]["confusion_matrix"], list(class_names), run_dir.file("confusion_matrix.png"),
            title=f"{title}, seed {seed}: test accuracy {reports['test']['accuracy']:.4f}",
        )
        if test_texts is not None:
            results["misclassified"] = misclassified_examples(test_texts, encoded["test"].labels,
                                                              probabilities["test"], class_names)
        if test_ids is not None:
            results["test_predictions_csv"] = write_predictions_csv(
                run_dir.file(TEST_PREDICTIONS_CSV), test_ids, probabilities["test"], class_names
            )
    training.write_json(run_dir.results_json, results)
    return results


def summarize_reports(reports: Sequence[Mapping[str, Any]], class_names: Sequence[str]) -> dict[str, Any]:
    """Mean ± std and a 95% t-interval of accuracy and macro-F1 over seeds or folds, per-class F1 means, and the
    summed confusion matrix.

    Args:
        reports: one test report per seed/fold (as from :func:`classification_report_present`).
        class_names: the class names.

    Returns:
        ``{"accuracy_per_seed", "macro_f1_per_seed", "accuracy_mean", "accuracy_std", "accuracy_ci95",
        "macro_f1_mean", "macro_f1_std", "macro_f1_ci95", "per_class_f1_mean", "confusion_matrix_sum"}``
        (an interval is None for a single run).
    """
    if not reports:
        raise ValueError("`reports` is empty; expected one test report per seed or fold.")
    summary: dict[str, Any] = {}
    for metric in ("accuracy", "macro_f1"):
        values = [report[metric] for report in reports]
        summary[f"{metric}_per_seed"] = values
        summary[f"{metric}_mean"], summary[f"{metric}_std"] = mean_and_std(values)
        interval = confidence_interval(values) if len(values) > 1 else None
        summary[f"{metric}_ci95"] = None if interval is None else list(interval)
    summary["per_class_f1_mean"] = {
        name: mean_and_std([report["per_class"][name]["f1"] for report in reports])[0] for name in class_names
    }
    summary["confusion_matrix_sum"] = np.sum([report["confusion_matrix"] for report in reports], axis=0).tolist()
    return summary


def summary_tables(rows: Sequence[Mapping[str, Any]], class_names: Sequence[str], name: str = "Transformer",
                   baseline: Mapping[str, Any] | None = None, baseline_name: str = "baseline",
                   unit: str = "seed") -> str:
    """The printed comparison: one row per seed/fold, then mean ± std [95% interval] vs the baseline.

    Args:
        rows: per seed/fold: ``{unit: value, "test": report, "validation": report or None, "train_time_s"}``.
        class_names: the class names.
        name: the model's column title.
        baseline: the baseline's results (``{"test": report}``) or None.
        baseline_name: its column title.
        unit: ``"seed"`` or ``"fold"``.
    """
    from llm_tf.tasks.cli import format_table

    per_run = format_table(
        [unit, "test accuracy", "test macro-F1", "val accuracy", "train s"],
        [[row[unit], row["test"]["accuracy"], row["test"]["macro_f1"],
          row["validation"]["accuracy"] if row.get("validation") else "-", f"{row.get('train_time_s') or 0.0:.1f}"]
         for row in rows],
    )
    tests = [row["test"] for row in rows]
    lines = [["accuracy", format_mean_std([t["accuracy"] for t in tests], interval=True)],
             ["macro-F1", format_mean_std([t["macro_f1"] for t in tests], interval=True)]]
    lines += [[f"F1 {label}", format_mean_std([t["per_class"][label]["f1"] for t in tests])] for label in class_names]
    headers = ["test metric", f"{name} ({len(rows)} {unit}{'s' if len(rows) > 1 else ''})"]
    if baseline is not None and baseline.get("test") is not None:
        test = baseline["test"]
        values = [test["accuracy"], test["macro_f1"]] + [test["per_class"][label]["f1"] for label in class_names]
        headers.append(baseline_name)
        lines = [line + [f"{value:.4f}"] for line, value in zip(lines, values)]
    note = ""
    absent = sorted({label for t in tests for label in t.get("classes_absent", [])})
    if absent:
        note = f"\nmacro averages over the classes present in each evaluated split (absent: {', '.join(absent)})"
    return f"{per_run}\n\n{format_table(headers, lines)}{note}"


def load_trained_run(run_path: str, member: str | None = None):
    """A finished classification run's pieces for prediction: config, tokenizer, model and class names.

    Args:
        run_path: the run directory (``<output-dir>/<experiment>/<timestamp>``).
        member: ``"seed_<s>"`` or ``"fold_<k>"``; None takes the first seed (or fold 0 of a cross-validation).

    Returns:
        ``(config dict, tokenizer, model, class_names, member directory)``; the model is the member's
        evaluated checkpoint (``last.keras``: the weights after the last epoch, averaged with EMA).

    Raises:
        FileNotFoundError: when the run is incomplete (no final ``results.json``, tokenizer or checkpoint), naming
            what is missing.
    """
    import keras

    import llm_tf.models  # noqa: F401  (registers the model classes for loading)
    from llm_tf.text import load_tokenizer
    from llm_tf.training import RunDirectory

    run = RunDirectory(os.fspath(run_path))
    config = run.read_config()
    if config is None:
        raise FileNotFoundError(f"--run-dir {run.path!r} is not a run directory (no config.json).")
    if member is None:
        member = "fold_0" if config.get("folds") else f"seed_{config['seeds'][0]}"
    seed_dir = RunDirectory(run.file(member))
    needed = [run.results_json, run.file(os.path.join("tokenizer", "vocab.txt")), seed_dir.results_json,
              seed_dir.last_model]
    missing = [os.path.relpath(path, run.path) for path in needed if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(
            f"the run directory {run.path!r} is incomplete: {', '.join(missing)} missing. Finish the run first "
            "(rerunning its command resumes it) or pass a finished run."
        )
    with open(seed_dir.results_json, encoding="utf-8") as file:
        class_names = json.load(file)["test"]["class_names"]
    tokenizer = load_tokenizer(run.file("tokenizer"))
    return config, tokenizer, keras.saving.load_model(seed_dir.last_model, compile=False), class_names, seed_dir.path


# ------------------------------------------------------------------------------------------------------------
# The experiment configuration.

GENERIC_DATA_FORMATS = ("folder", "csv")


@dataclasses.dataclass
class ClassificationConfig(ExperimentConfig):
    """Everything that defines one classification run (saved as ``config.json``; JSON round-trip).

    An experiment script holds presets of this class and overrides them with its flags
    (``llm_tf.tasks.cli.add_classification_arguments``); the recipe fields (:data:`RECIPE_ARGUMENTS`) are
    documented in :func:`train_classifier`.

    Args:
        preset: the preset these values started from.
        data_format: ``"folder"`` or ``"csv"`` (a user's data, ``llm_tf.datasets.load_classification_splits``),
            or the name of a dataset the script loads itself (e.g. ``"bbc"``).
        data_dir: the data directory of a named dataset (None: the loaders' default).
        data_path: the training folder / CSV (alone: split 80/10/10 by ``split_seed``).
        validation_path, test_path: a dataset's own validation / test folder or CSV (see
            ``load_classification_splits`` for what is carved from train when one is missing).
        text_column: the CSV text column(s), names or 0-based indices written as digits; a list is joined.
        label_column: the CSV label column.
        has_header: the CSV files start with a header row.
        file_pattern: the file-name glob within class folders (default every file).
        split_seed: seed of the stratified splits and folds (42: the project's documented BBC News split).
        validation_fraction, test_fraction: fractions of each class for the carved splits.
        max_train_examples: keep a seeded stratified subset of this many training examples (None: all).
        vocabulary_size, lower_case: the WordPiece vocabulary learned on the training split.
        seeds: the training seeds, one run each (mean ± std reported).
        folds: None, or K >= 2 for stratified K-fold cross-validation over train + validation (one model per
            fold, first seed; the test split stays untouched and evaluates every fold's model).
        deterministic: TensorFlow op determinism (bit-exact reruns; Keras then runs without XLA).
        init_from: fine-tune from this pretraining run directory or Hugging Face BERT folder (its tokenizer,
            architecture and sequence length are used; see :func:`apply_pretrained`); None trains from scratch.
        layer_decay: layer-wise learning-rate decay in (0, 1] for fine-tuning (None: one rate).
        bucket_by_length: batch training windows of similar length, each batch cut to its longest window.
        norm_first: a pre-norm encoder instead of BERT's post-norm one (taken from the model with ``init_from``).
        baseline, baseline_c: also fit the TF-IDF + LinearSVC baseline, with this C.
        strategy, num_cpu_devices, precision: as ``llm_tf.training.setup_training``.
    """

    preset: str = "full"
    data_format: str = "folder"
    data_dir: str | None = None
    data_path: str | None = None
    validation_path: str | None = None
    test_path: str | None = None
    text_column: str | list[str] | None = None
    label_column: str | None = None
    has_header: bool = True
    file_pattern: str = "*"
    split_seed: int = 42
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    max_train_examples: int | None = None
    vocabulary_size: int = 8000
    lower_case: bool = True
    max_sequence_length: int = 256
    hidden_dim: int = 128
    num_layers: int = 2
    num_heads: int = 2
    intermediate_dim: int = 512
    dropout: float = 0.1
    attention_dropout: float | None = None
    classifier_dropout: float = 0.1
    pooling: str = "mean"
    batch_size: int = 32
    epochs: int = 8
    learning_rate: float = 1e-3
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    label_smoothing: float = 0.0
    token_mask_rate: float = 0.0
    ema_momentum: float | None = None
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0, 1, 2])
    folds: int | None = None
    train_windows: str = "first"
    eval_windows: str = "first"
    jit_compile: bool | str = "auto"
    deterministic: bool = False
    init_from: str | None = None
    layer_decay: float | None = None
    bucket_by_length: bool = False
    norm_first: bool = False
    baseline: bool = True
    baseline_c: float = 1.0
    strategy: str = "auto"
    num_cpu_devices: int | None = None
    precision: str = "float32"
    optimizer_update: str = "fused"  # --optimizer-update: "per-variable" for Keras's AdamW update

    def validate(self) -> None:
        """Check every field; raises ``ValueError`` naming the field, its value and what was expected."""
        from llm_tf.tasks.cli import resolve_seeds

        generic = self.data_format in GENERIC_DATA_FORMATS
        if not isinstance(self.data_format, str) or not self.data_format:
            raise ValueError(f"`data_format` must be 'folder', 'csv' or a dataset name; got {self.data_format!r}.")
        if generic and not self.data_path:
            raise ValueError(f"data_format={self.data_format!r} needs `data_path` (--data-path / --train-path): the "
                             f"training {'folder of <label>/<file> files' if self.data_format == 'folder' else 'CSV'}.")
        if not generic and any(getattr(self, name) is not None for name in ("data_path", "validation_path",
                                                                            "test_path")):
            raise ValueError(f"`data_path`/`validation_path`/`test_path` apply to data_format 'folder' or 'csv'; got "
                             f"data_path={self.data_path!r} with data_format={self.data_format!r} (use --data-dir).")
        if self.data_format == "csv" and (self.text_column is None or self.label_column is None):
            raise ValueError("data_format='csv' needs `text_column` and `label_column` (--text-column, --label-column);"
                             f" got text_column={self.text_column!r}, label_column={self.label_column!r}.")
        if self.data_format == "folder" and (self.text_column is not None or self.label_column is not None):
            raise ValueError("`text_column`/`label_column` only apply to CSV data; got data_format='folder'.")
        for name in ("vocabulary_size", "max_sequence_length", "hidden_dim", "num_layers", "num_heads",
                     "intermediate_dim", "batch_size", "epochs"):
            _check_number(self, name, int, 1)
        if self.max_sequence_length < 3:
            raise ValueError("`max_sequence_length` must leave room for [CLS], [SEP] and a token (>= 3); got "
                             f"max_sequence_length={self.max_sequence_length}.")
        for name in ("max_train_examples", "num_cpu_devices"):
            if getattr(self, name) is not None:
                _check_number(self, name, int, 1)
        if self.folds is not None:
            _check_number(self, "folds", int, 2)
        optional = tuple(name for name in ("attention_dropout", "ema_momentum") if getattr(self, name) is not None)
        for name in ("dropout", "classifier_dropout", "warmup_fraction", "label_smoothing", "token_mask_rate",
                     "validation_fraction", "test_fraction") + optional:
            _check_number(self, name, float, 0.0, 1.0)
        for name in ("learning_rate", "baseline_c"):
            _check_number(self, name, float, 0.0, strict=True)
        _check_number(self, "weight_decay", float, 0.0)
        if self.layer_decay is not None:
            _check_number(self, "layer_decay", float, 0.0, 1.0 + 1e-12, strict=True)
        for name, choices in (("train_windows", TRAIN_WINDOWS), ("eval_windows", EVAL_WINDOWS),
                              ("pooling", POOLINGS), ("jit_compile", (True, False, "auto"))):
            if getattr(self, name) not in choices:
                raise ValueError(f"`{name}` must be one of {choices}; got {name}={getattr(self, name)!r}.")
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"`hidden_dim` must be divisible by `num_heads`; got hidden_dim={self.hidden_dim}, "
                             f"num_heads={self.num_heads}.")
        self.seeds = resolve_seeds(None, list(self.seeds), None, default=[])

    def recipe(self) -> dict[str, Any]:
        """The :data:`RECIPE_ARGUMENTS` as keyword arguments for :func:`train_classifier` / :func:`run_seed`."""
        return {name: getattr(self, name) for name in RECIPE_ARGUMENTS}


def _check_number(config, name: str, kind: type, low: float, high: float | None = None, strict: bool = False):
    value = getattr(config, name)
    types = int if kind is int else int | float
    bad = isinstance(value, bool) or not isinstance(value, types)
    bad = bad or (value <= low if strict else value < low) or (high is not None and value >= high)
    if bad:
        what = {(int, 1): "a positive integer", (int, 2): "an integer >= 2"}.get((kind, low))
        if what is None:
            what = f"a number in [{low}, {high})" if high is not None else f"a number {'>' if strict else '>='} {low}"
        raise ValueError(f"`{name}` must be {what}; got {name}={value!r}.")


def tokenizer_for_run(run, texts: Sequence[str], config: ClassificationConfig):
    """The run's tokenizer: saved in ``run/tokenizer`` (resume), else the pretrained model's (``init_from``), else
    a WordPiece vocabulary learned on ``texts``; a new one is saved into the run so ``predict`` finds it."""
    from llm_tf.text import WordPieceTokenizer, load_tokenizer

    directory = run.file("tokenizer")
    if os.path.isdir(directory) and os.listdir(directory):
        return load_tokenizer(directory)
    if config.init_from:
        from llm_tf.tasks.pretraining import load_pretrained_encoder

        tokenizer = load_pretrained_encoder(config.init_from).tokenizer
    else:
        tokenizer = WordPieceTokenizer.train(list(texts), vocabulary_size=config.vocabulary_size,
                                             lower_case=config.lower_case)
    tokenizer.save(directory)
    return tokenizer


def load_splits(config: ClassificationConfig):
    """The train / validation / test splits of a ``"folder"`` / ``"csv"`` config (training subset applied).

    Returns:
        ``(splits, description)``.

    Raises:
        FileNotFoundError: when the data is missing; ValueError: for empty splits, one class, bad columns.
    """
    from llm_tf.datasets import load_classification_splits

    splits = load_classification_splits(
        config.data_path, config.validation_path, config.test_path, text_column=config.text_column,
        label_column=config.label_column, has_header=config.has_header, file_pattern=config.file_pattern,
        validation_fraction=config.validation_fraction, test_fraction=config.test_fraction, seed=config.split_seed,
    )
    paths = [path for path in (config.data_path, config.validation_path, config.test_path) if path]
    return splits, f"{config.data_format} {', '.join(paths)}"


def load_job_splits(config, named_datasets):
    """``(splits, description)`` of a classification job, training subset applied and checked.

    Args:
        config: a ``ClassificationConfig``.
        named_datasets: ``data_format -> (config -> (splits, description))`` for the job's own datasets (BBC News,
            SST-2); any other ``data_format`` is the user's folder / CSV data (:func:`load_splits`).
    """
    if config.data_format in named_datasets:
        splits, description = named_datasets[config.data_format](config)
    else:
        splits, description = load_splits(config)
    return prepare_splits(splits, description, config.max_train_examples, config.split_seed), description


def prepare_splits(splits, description: str, max_train_examples: int | None, seed: int):
    """Apply the training subset and check the splits: train and test non-empty, at least two classes."""
    from llm_tf.datasets import stratified_subset

    if max_train_examples is not None:
        splits.train = stratified_subset(splits.train, max_train_examples, seed)
    for name in ("train", "test"):
        split = getattr(splits, name)
        if split is None or len(split) == 0:
            raise ValueError(f"the {name} split is empty ({description}); expected at least one example per split: "
                             "give more data or larger fractions.")
    if splits.num_classes < 2:
        raise ValueError(f"the data has {splits.num_classes} class(es) {splits.class_names}; expected at least 2.")
    return splits


__all__ = [
    "ARCHITECTURE_FIELDS",
    "GENERIC_DATA_FORMATS",
    "POOLINGS",
    "apply_pretrained",
    "check_matches_pretrained",
    "classifier_from_pretrained",
    "layerwise_learning_rates",
    "length_bucketed_batches",
    "misclassified_examples",
    "tokenizer_for_run",
    "ClassificationConfig",
    "RECIPE_ARGUMENTS",
    "TEST_PREDICTIONS_CSV",
    "classification_report_present",
    "encode_split",
    "evaluate_splits",
    "load_splits",
    "load_trained_run",
    "prepare_splits",
    "load_job_splits",
    "examples_dataset",
    "mask_tokens",
    "predict_probabilities",
    "run_seed",
    "summarize_reports",
    "summary_tables",
    "train_classifier",
    "write_predictions_csv",
]
