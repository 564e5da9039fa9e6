"""The containers the loaders return: labelled texts, text pairs, their splits, and a seeded stratified split."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from llm_tf.checks import check_non_negative_int, check_probability


def _round_half_up(value: float) -> int:
    # Python's round() rounds halves to even; half-up keeps split sizes easy to state.
    return int(math.floor(value + 0.5))


def stratified_split_indices(
    labels: Sequence[int] | np.ndarray,
    *,
    validation_fraction: float,
    test_fraction: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded stratified split of example indices into train / validation / test.

    For each class c (in label order), its example indices (in their original order) are permuted with
    `numpy.random.default_rng([seed, c])`; the first `round(test_fraction * n_c)` go to test, the next
    `round(validation_fraction * n_c)` to validation (halves round up), the rest to train. Each split keeps the
    original order. The result depends only on the seed and on each class's size and order, so two datasets
    with the same files per class (BBC News and BBC News Summary) split identically.

    Args:
        labels: the class id of every example.
        validation_fraction, test_fraction: fractions in [0, 1) whose sum is below 1.
        seed: the seed.

    Returns:
        (train_indices, validation_indices, test_indices), sorted int64 arrays.

    Example:
        >>> train, val, test = stratified_split_indices([0] * 10 + [1] * 10, validation_fraction=0.1,
        ...                                             test_fraction=0.1, seed=0)
        >>> len(train), len(val), len(test)
        (16, 2, 2)
    """
    check_probability("validation_fraction", validation_fraction, allow_one=False)
    check_probability("test_fraction", test_fraction, allow_one=False)
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"`validation_fraction` + `test_fraction` must be below 1; got {validation_fraction} + {test_fraction}."
        )
    check_non_negative_int("seed", seed)
    labels = np.asarray(labels)
    train, validation, test = [], [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        order = members[np.random.default_rng([seed, int(label)]).permutation(len(members))]
        n_test = _round_half_up(test_fraction * len(members))
        n_validation = _round_half_up(validation_fraction * len(members))
        test.append(order[:n_test])
        validation.append(order[n_test : n_test + n_validation])
        train.append(order[n_test + n_validation :])

    def merged(parts: list[np.ndarray]) -> np.ndarray:
        return np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, np.int64)

    return merged(train), merged(validation), merged(test)


@dataclass
class LabeledTexts:
    """Texts with integer labels.

    Attributes:
        texts: the texts.
        labels: int32 class ids, shape (n,).
        class_names: the name of each class id.
        ids: a stable identifier per example (e.g. "sport/199", or "line 12" for CSV rows).
        skipped: what the loader left out and why (empty rows, unreadable rows).
        notes: anything else worth knowing (e.g. which files were not UTF-8).
    """

    texts: list[str]
    labels: np.ndarray
    class_names: list[str]
    ids: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int32).reshape(-1)
        if not self.ids:
            self.ids = [str(i) for i in range(len(self.texts))]
        if not len(self.texts) == len(self.labels) == len(self.ids):
            raise ValueError(
                f"texts, labels and ids must have the same length; got {len(self.texts)}, {len(self.labels)}, "
                f"{len(self.ids)}."
            )

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int] | np.ndarray) -> LabeledTexts:
        """The examples at `indices`, same class names."""
        indices = [int(i) for i in indices]
        return LabeledTexts(
            texts=[self.texts[i] for i in indices],
            labels=self.labels[indices] if indices else np.zeros(0, np.int32),
            class_names=list(self.class_names),
            ids=[self.ids[i] for i in indices],
        )

    def class_counts(self) -> dict[str, int]:
        """Examples per class name."""
        counts = np.bincount(self.labels, minlength=len(self.class_names)) if len(self.labels) else []
        return {name: int(counts[i]) if len(counts) else 0 for i, name in enumerate(self.class_names)}

    def split(
        self, *, validation_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 42
    ) -> ClassificationSplits:
        """Stratified, seeded split (see `stratified_split_indices`).

        Example:
            >>> data = load_text_folder("my_corpus").split(validation_fraction=0.1, test_fraction=0.1, seed=42)  # doctest: +SKIP
        """
        train, validation, test = stratified_split_indices(
            self.labels, validation_fraction=validation_fraction, test_fraction=test_fraction, seed=seed
        )
        return ClassificationSplits(
            train=self.subset(train),
            validation=self.subset(validation),
            test=self.subset(test) if test_fraction > 0 else None,
            class_names=list(self.class_names),
            seed=seed,
            notes=list(self.notes),
            skipped=list(self.skipped),
        )


@dataclass
class ClassificationSplits:
    """Train / validation / (test) `LabeledTexts` sharing `class_names`.

    Example:
        >>> data = load_bbc_news()  # doctest: +SKIP
        >>> data.train.texts[0], data.train.labels[0], data.class_names  # doctest: +SKIP
    """

    train: LabeledTexts
    validation: LabeledTexts
    test: LabeledTexts | None
    class_names: list[str]
    seed: int | None = None
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __getitem__(self, split: str) -> LabeledTexts:
        if split not in self.split_names:
            raise KeyError(f"no split {split!r}; this dataset has {self.split_names}.")
        return getattr(self, split)

    @property
    def split_names(self) -> list[str]:
        return [name for name in ("train", "validation", "test") if getattr(self, name) is not None]

    def __iter__(self) -> Iterator[LabeledTexts]:
        return iter(getattr(self, name) for name in self.split_names)


@dataclass
class TextPairs:
    """Aligned (source, target) texts, e.g. article/summary, English/German, dialogue/summary.

    Attributes:
        sources, targets: the texts, aligned by index.
        ids: a stable identifier per pair.
        labels: optional int32 per pair (e.g. the BBC topic of a summary pair); None when not applicable.
    """

    sources: list[str]
    targets: list[str]
    ids: list[str] = field(default_factory=list)
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not self.ids:
            self.ids = [str(i) for i in range(len(self.sources))]
        if not len(self.sources) == len(self.targets) == len(self.ids):
            raise ValueError(
                f"sources, targets and ids must have the same length; got {len(self.sources)}, "
                f"{len(self.targets)}, {len(self.ids)}."
            )
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int32).reshape(-1)

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, indices: Sequence[int] | np.ndarray) -> TextPairs:
        indices = [int(i) for i in indices]
        return TextPairs(
            sources=[self.sources[i] for i in indices],
            targets=[self.targets[i] for i in indices],
            ids=[self.ids[i] for i in indices],
            labels=None
            if self.labels is None
            else self.labels[indices]
            if indices
            else np.zeros(0, np.int32),
        )


@dataclass
class PairSplits:
    """Splits of `TextPairs`; a split the dataset does not ship is None (e.g. SAMSum has no train here)."""

    train: TextPairs | None
    validation: TextPairs | None
    test: TextPairs | None
    notes: list[str] = field(default_factory=list)
    class_names: list[str] | None = None
    seed: int | None = None

    def __getitem__(self, split: str) -> TextPairs:
        if split not in self.split_names:
            raise KeyError(f"no split {split!r}; this dataset has {self.split_names}.")
        return getattr(self, split)

    @property
    def split_names(self) -> list[str]:
        return [name for name in ("train", "validation", "test") if getattr(self, name) is not None]


class TextSplits(NamedTuple):
    """Train and validation text for language modelling (unpacks as `train, validation = ...`)."""

    train: str
    validation: str
