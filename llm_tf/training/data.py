"""Training data streams whose order is a pure function of ``(seed, epoch)``, so a run can resume mid-epoch.

Keras shuffles a ``tf.data`` pipeline anew on every pass, and a restarted process would replay the first
pass's order. Here every epoch's batches come from ``dataset_fn(epoch)``; :func:`resumable_dataset`
concatenates the epochs still to run into one stream and skips the batches a previous (interrupted) run
already consumed.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from llm_tf.checks import check_int, check_non_negative_int, check_positive_int, require_tensorflow_backend

DatasetFn = Callable[[int], tf.data.Dataset]


def epoch_seed(seed: int, epoch: int) -> int:
    """A shuffle seed derived from ``(seed, epoch)``; distinct epochs give distinct seeds.

    Args:
        seed: the run's seed.
        epoch: 0-based epoch index.

    Returns:
        A non-negative integer below 2**31.

    Example:
        >>> epoch_seed(7, 0) != epoch_seed(7, 1)
        True
    """
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 17) % (2**31 - 1)


def seeded_epoch_batches(
    examples: tf.data.Dataset,
    batch_size: int,
    seed: int,
    shuffle_buffer: int | None = None,
    drop_remainder: bool = True,
) -> DatasetFn:
    """Turn a dataset of single examples into ``epoch -> batched dataset`` with a per-epoch shuffle.

    TensorFlow backend only (``tf.data``): raises ValueError under another Keras backend.

    The order of epoch ``e`` depends only on ``(seed, e)`` (and TensorFlow's global seed, which
    :func:`llm_tf.training.enable_determinism` sets), never on how many passes the process already made.

    Args:
        examples: un-batched examples (any structure, e.g. ``({"token_ids": ..., "padding_mask": ...},
            labels)``).
        batch_size: the global batch size.
        seed: the run's seed.
        shuffle_buffer: shuffle buffer size; ``None`` uses the whole dataset (its cardinality must be known),
            0 disables shuffling.
        drop_remainder: drop the last incomplete batch (keeps batch shapes static and epochs equally long).

    Returns:
        A function ``epoch -> tf.data.Dataset`` of batches.

    Example:
        >>> examples = tf.data.Dataset.range(10)
        >>> batches_for_epoch = seeded_epoch_batches(examples, batch_size=5, seed=0)
        >>> [len(batch) for batch in batches_for_epoch(0)]
        [5, 5]
    """
    require_tensorflow_backend("seeded_epoch_batches (tf.data)")
    if not isinstance(examples, tf.data.Dataset):
        raise ValueError(f"examples must be a tf.data.Dataset; got examples={type(examples).__name__}")
    check_positive_int("batch_size", batch_size)
    if shuffle_buffer is None:
        cardinality = int(examples.cardinality())
        if cardinality < 0:
            raise ValueError(
                "shuffle_buffer=None needs a dataset of known size, but examples.cardinality() is "
                f"{cardinality}; pass shuffle_buffer explicitly"
            )
        shuffle_buffer = max(cardinality, 1)
    check_non_negative_int("shuffle_buffer", shuffle_buffer, allow_none=True)

    def batches_for_epoch(epoch: int) -> tf.data.Dataset:
        dataset = examples
        if shuffle_buffer > 0:
            dataset = dataset.shuffle(
                shuffle_buffer, seed=epoch_seed(seed, epoch), reshuffle_each_iteration=False
            )
        return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)

    return batches_for_epoch


def infer_steps_per_epoch(dataset: tf.data.Dataset) -> int:
    """The number of batches in one epoch's dataset, from its cardinality.

    TensorFlow backend only (``tf.data``): raises ValueError under another Keras backend.

    Args:
        dataset: one epoch of batches.

    Returns:
        The number of batches.

    Example:
        >>> infer_steps_per_epoch(tf.data.Dataset.range(10).batch(4))
        3
    """
    require_tensorflow_backend("infer_steps_per_epoch (tf.data)")
    cardinality = int(dataset.cardinality())
    if cardinality == int(tf.data.INFINITE_CARDINALITY):
        raise ValueError("the training dataset is infinite (cardinality=-1); pass steps_per_epoch explicitly")
    if cardinality < 0:
        raise ValueError(
            f"the training dataset's size is unknown (cardinality={cardinality}); "
            "pass steps_per_epoch explicitly"
        )
    if cardinality == 0:
        raise ValueError(
            "the training dataset is empty (cardinality=0); expected at least one batch per epoch"
        )
    return cardinality


def _concatenate_balanced(datasets: list[tf.data.Dataset]) -> tf.data.Dataset:
    # A balanced tree keeps the pipeline's nesting depth logarithmic in the number of epochs.
    while len(datasets) > 1:
        paired = [datasets[i].concatenate(datasets[i + 1]) for i in range(0, len(datasets) - 1, 2)]
        if len(datasets) % 2:
            paired.append(datasets[-1])
        datasets = paired
    return datasets[0]


def resumable_dataset(
    dataset_fn: DatasetFn,
    epochs: int,
    steps_per_epoch: int,
    start_epoch: int = 0,
    skip_batches: int = 0,
) -> tf.data.Dataset:
    """One stream of epochs ``start_epoch .. epochs-1`` of ``dataset_fn``, the first ``skip_batches`` skipped.

    TensorFlow backend only (``tf.data``): raises ValueError under another Keras backend.

    Feed it to ``model.fit(stream, epochs=epochs, initial_epoch=start_epoch,
    steps_per_epoch=steps_per_epoch)`` together with :class:`llm_tf.training.ResumableBackup`, which ends the
    resumed (shorter) epoch at the right batch. Each epoch is cut to ``steps_per_epoch`` batches.

    Args:
        dataset_fn: ``epoch -> tf.data.Dataset`` of batches; its order must depend only on the epoch.
        epochs: total number of epochs of the run.
        steps_per_epoch: batches per epoch.
        start_epoch: first epoch to include (where the run resumes).
        skip_batches: batches of ``start_epoch`` already consumed by the interrupted run.

    Returns:
        The concatenated ``tf.data.Dataset``.

    Example:
        >>> batches_for_epoch = lambda e: tf.data.Dataset.range(3).map(lambda i: i + 10 * e)
        >>> stream = resumable_dataset(batches_for_epoch, 2, 3, 0, 1)
        >>> [int(x) for x in stream]
        [1, 2, 10, 11, 12]
    """
    require_tensorflow_backend("resumable_dataset (tf.data)")
    if not callable(dataset_fn):
        raise ValueError(
            f"dataset_fn must be a callable epoch -> tf.data.Dataset; got dataset_fn={dataset_fn!r}"
        )
    for name, value, low in (
        ("epochs", epochs, 1),
        ("steps_per_epoch", steps_per_epoch, 1),
        ("start_epoch", start_epoch, 0),
        ("skip_batches", skip_batches, 0),
    ):
        check_int(name, value, minimum=low)
    if start_epoch >= epochs:
        raise ValueError(f"start_epoch must be below epochs; got start_epoch={start_epoch}, epochs={epochs}")
    if skip_batches >= steps_per_epoch:
        raise ValueError(
            f"skip_batches must be below steps_per_epoch; got skip_batches={skip_batches}, "
            f"steps_per_epoch={steps_per_epoch}"
        )
    parts = []
    for epoch in range(start_epoch, epochs):
        dataset = dataset_fn(epoch)
        if not isinstance(dataset, tf.data.Dataset):
            raise ValueError(
                f"dataset_fn({epoch}) must return a tf.data.Dataset; got {type(dataset).__name__}"
            )
        cardinality = int(dataset.cardinality())
        if 0 <= cardinality < steps_per_epoch:
            raise ValueError(
                f"dataset_fn({epoch}) has {cardinality} batches, fewer than steps_per_epoch={steps_per_epoch}"
            )
        dataset = dataset.take(steps_per_epoch)
        if epoch == start_epoch and skip_batches:
            dataset = dataset.skip(skip_batches)
        parts.append(dataset)
    return _concatenate_balanced(parts)
