"""SST-2 (GLUE): binary sentiment of movie-review sentences; train 67,349 / dev 872 (the test labels are hidden).

Files: `<data_dir>/sst2/{train,dev}.tsv`, GLUE's format: a header `sentence<TAB>label`, unquoted fields,
label 0 = negative, 1 = positive. GLUE's sentences are already lower-cased and tokenized ("it 's a
charming ... ") and end with a space before the tab; the loader strips that space.
"""

from __future__ import annotations

import csv
import os

from llm_tf.datasets._files import RemoteArchive, ensure_dataset
from llm_tf.datasets.generic import load_csv
from llm_tf.datasets.types import ClassificationSplits

SST2_CLASS_NAMES = ["negative", "positive"]
#: The validation carve of the sentiment job (stratified, seeded); pretraining leaves these texts out too.
SST2_VALIDATION_FRACTION, SST2_SPLIT_SEED = 0.02, 42
SST2_URL = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"
_SST2_SHA256 = {
    "train.tsv": "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1",
    "dev.tsv": "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
}


def load_sst2(data_dir: str | os.PathLike | None = None, *, download: bool = True) -> ClassificationSplits:
    """Loads SST-2 with its GLUE train and dev splits (dev is returned as `validation`; there is no `test`).

    Args:
        data_dir: the data directory; files in `<data_dir>/sst2/{train,dev}.tsv`.
        download: fetch GLUE's SST-2.zip when the files are missing (verified).

    Returns:
        `ClassificationSplits` with `train` and `validation` (`.texts`, `.labels`), `test=None`,
        `class_names` = negative, positive.

    Example:
        >>> sst2 = load_sst2()  # doctest: +SKIP
        >>> len(sst2.train), len(sst2.validation)  # doctest: +SKIP
        (67349, 872)
    """
    dataset_dir = ensure_dataset(
        name="SST-2",
        data_dir=data_dir,
        folder="sst2",
        required=["train.tsv", "dev.tsv"],
        archives=[
            RemoteArchive(
                url=SST2_URL,
                member_prefix="SST-2/",
                file_sha256=tuple(_SST2_SHA256.items()),
            )
        ],
        download=download,
        source_note="(GLUE SST-2.zip; put train.tsv and dev.tsv in the sst2 folder)",
    )
    splits = {}
    for name in ("train", "dev"):
        splits[name] = load_csv(
            dataset_dir / f"{name}.tsv",
            text_column="sentence",
            label_column="label",
            delimiter="\t",
            class_names=SST2_CLASS_NAMES,
            quoting=csv.QUOTE_NONE,
        )
    return ClassificationSplits(
        train=splits["train"],
        validation=splits["dev"],
        test=None,
        class_names=list(SST2_CLASS_NAMES),
        notes=splits["train"].notes + splits["dev"].notes,
        skipped=splits["train"].skipped + splits["dev"].skipped,
    )


def load_sst2_splits(data_dir=None, validation_fraction: float = SST2_VALIDATION_FRACTION,
                      seed: int = SST2_SPLIT_SEED):
    """SST-2 as the sentiment job splits it: GLUE dev is the test split, validation is carved from train.

    GLUE's SST-2 test labels are not public, so the 872 dev sentences are the test split and a seeded,
    stratified ``validation_fraction`` of the 67,349 training phrases is the validation split.

    Returns:
        ``ClassificationSplits`` with train, validation and test (= dev); ``notes`` say where each came from.
    """
    from llm_tf.datasets.types import stratified_split_indices

    sst2 = load_sst2(data_dir)
    train_index, validation_index, _ = stratified_split_indices(
        sst2.train.labels, validation_fraction=validation_fraction, test_fraction=0.0, seed=seed)
    return ClassificationSplits(
        train=sst2.train.subset(train_index), validation=sst2.train.subset(validation_index),
        test=sst2.validation, class_names=list(sst2.class_names),
        notes=list(sst2.notes) + [f"test = GLUE dev ({len(sst2.validation)} sentences; GLUE test labels are not "
                                  f"public); validation = {validation_fraction:.0%} of GLUE train, stratified, "
                                  f"seed {seed}"],
        skipped=list(sst2.skipped),
    )
