"""Multi30k (task 1): English-German image-caption translation; train 29,000 / val 1,014 / test2016 1,000 pairs.

Files: `<data_dir>/multi30k/{train,val,test_2016_flickr}.{en,de}.gz`, gzip-compressed UTF-8, one sentence
per line, line-aligned between the two languages (as the official repository ships them).
"""

from __future__ import annotations

import gzip
import os

from llm_tf.checks import check_choice
from llm_tf.datasets._files import RemoteFile, ensure_dataset
from llm_tf.datasets.types import PairSplits, TextPairs

_MULTI30K_BASE = "https://raw.githubusercontent.com/multi30k/dataset/a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task1/raw/"
_MULTI30K_SHA256 = {
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
}
# Our split name -> the file stem upstream.
MULTI30K_SPLITS = {"train": "train", "validation": "val", "test": "test_2016_flickr"}
LANGUAGES = ("en", "de")


def _read_lines(path) -> list[str]:
    with gzip.open(path, "rb") as handle:
        text = handle.read().decode("utf-8")
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last sentence; it does not start a new one
    return lines


def load_multi30k(
    data_dir: str | os.PathLike | None = None,
    *,
    source_language: str = "en",
    target_language: str = "de",
    download: bool = True,
) -> PairSplits:
    """Loads Multi30k sentence pairs.

    Args:
        data_dir: the data directory; files in `<data_dir>/multi30k/`.
        source_language, target_language: "en" and "de" (either direction).
        download: fetch the six .gz files from the official repository when missing (sha256-verified).

    Returns:
        `PairSplits` with `train` (29,000), `validation` (val, 1,014) and `test` (test_2016_flickr, 1,000)
        `TextPairs` (`sources`, `targets`, `ids` = "<split>:<line number>").

    Raises:
        ValueError: for an unknown language, or when the two languages' files differ in line count.

    Example:
        >>> pairs = load_multi30k().train  # doctest: +SKIP
        >>> pairs.sources[0], pairs.targets[0]  # doctest: +SKIP
    """
    for name, value in (("source_language", source_language), ("target_language", target_language)):
        check_choice(name, value, list(LANGUAGES))
    if source_language == target_language:
        raise ValueError(
            f"`source_language` and `target_language` must differ; both are {source_language!r}."
        )
    dataset_dir = ensure_dataset(
        name="Multi30k",
        data_dir=data_dir,
        folder="multi30k",
        required=list(_MULTI30K_SHA256),
        files=[RemoteFile(_MULTI30K_BASE + name, name, sha256) for name, sha256 in _MULTI30K_SHA256.items()],
        download=download,
    )
    splits = {}
    for split, stem in MULTI30K_SPLITS.items():
        sources = _read_lines(dataset_dir / f"{stem}.{source_language}.gz")
        targets = _read_lines(dataset_dir / f"{stem}.{target_language}.gz")
        if len(sources) != len(targets):
            raise ValueError(
                f"Multi30k {stem}: {len(sources)} {source_language} lines but {len(targets)} {target_language} "
                "lines; expected line-aligned files."
            )
        splits[split] = TextPairs(sources, targets, [f"{stem}:{i + 1}" for i in range(len(sources))])
    return PairSplits(**splits)
