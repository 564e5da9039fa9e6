"""SAMSum: messenger-style dialogues with human-written summaries; validation 818 / test 819.

The training split (14,732) is not in the project's data copy, so this loader returns validation and test
only (`train=None`). Files: `<data_dir>/samsum/{val,test}.csv` with header `id,summary,dialogue`; turns
inside the quoted dialogue field are separated by CRLF, which the loader turns into "\\n".
"""

from __future__ import annotations

import csv
import io
import os

from llm_tf.datasets._files import RemoteFile, decode_bytes, ensure_dataset, normalize_newlines
from llm_tf.datasets.types import PairSplits, TextPairs

_SAMSUM_BASE = "https://raw.githubusercontent.com/BinWang28/LA-BART/10db0f0ca99970aefc6e547b2c3c56ab4c161e66/data/samsum/"
_SAMSUM_SHA256 = {
    "val.csv": "6a7604df2c4abcac7787944a8bdbf8b249fe6ccbf22e6881daefa44fc9b9b086",
    "test.csv": "0ae3ed7bf18b9eee2646267001314597c9b7e0def3f30823f8458264711a59de",
}


def _read_samsum(path) -> TextPairs:
    text = decode_bytes(path.read_bytes()).text
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = {"id", "summary", "dialogue"} - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"{str(path)!r} lacks the columns {sorted(missing)}; expected id,summary,dialogue.")
    dialogues, summaries, ids = [], [], []
    for row in reader:
        dialogue = normalize_newlines(row["dialogue"] or "").strip()
        summary = normalize_newlines(row["summary"] or "").strip()
        if not dialogue or not summary:
            raise ValueError(f"{str(path)!r}: row id={row['id']!r} has an empty dialogue or summary.")
        dialogues.append(dialogue)
        summaries.append(summary)
        ids.append(row["id"])
    return TextPairs(dialogues, summaries, ids)


def load_samsum(data_dir: str | os.PathLike | None = None, *, download: bool = True) -> PairSplits:
    """Loads SAMSum dialogue -> summary pairs (validation and test).

    Args:
        data_dir: the data directory; files in `<data_dir>/samsum/{val,test}.csv`.
        download: fetch the CSV files when missing (a pinned public copy, sha256-verified).

    Returns:
        `PairSplits` with `train=None`, `validation` (818) and `test` (819) `TextPairs`: `sources` are the
        dialogues (one "Speaker: text" turn per line), `targets` the summaries, `ids` the SAMSum ids.

    Example:
        >>> samsum = load_samsum()  # doctest: +SKIP
        >>> print(samsum.test.sources[0])  # doctest: +SKIP
    """
    dataset_dir = ensure_dataset(
        name="SAMSum",
        data_dir=data_dir,
        folder="samsum",
        required=list(_SAMSUM_SHA256),
        files=[RemoteFile(_SAMSUM_BASE + name, name, sha256) for name, sha256 in _SAMSUM_SHA256.items()],
        download=download,
        source_note="(SAMSum validation/test as CSV with columns id,summary,dialogue)",
    )
    return PairSplits(
        train=None,
        validation=_read_samsum(dataset_dir / "val.csv"),
        test=_read_samsum(dataset_dir / "test.csv"),
    )
