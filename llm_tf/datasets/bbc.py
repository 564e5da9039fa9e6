"""BBC News (topic classification) and BBC News Summary (article -> extractive summary).

BBC News (Greene & Cunningham, 2006): 2,225 articles in 5 topics (business 510, entertainment 386,
politics 417, sport 511, tech 401); the first line of each file is the headline. There is no official split:
`load_bbc_news` makes a stratified, seeded 80/10/10 split (default seed 42, see
`llm_tf.datasets.types.stratified_split_indices`), which gives train 1,779 / validation 223 / test 223.

BBC News Summary (Kaggle, same 2,225 articles): each article comes with an extractive summary. Its split is
the same function over the same files per class, so an article is in the same split in both datasets.

Quirks handled:
- `sport/199.txt` (in both datasets) holds one Latin-1 byte (0xA3, "£"); non-UTF-8 files are decoded as
  Windows-1252, so it reads "£15.8m", and the file is listed in `notes`.
- Summaries run sentences together without a space ("...$10.9bn.For the full-year..."); with
  `fix_summary_spacing=True` (the default) a space is put back (see `fix_sentence_spacing`).
"""

from __future__ import annotations

import os
import re

from llm_tf.datasets._files import RemoteArchive, ensure_dataset, read_text
from llm_tf.datasets.generic import load_text_folder
from llm_tf.datasets.types import ClassificationSplits, PairSplits, TextPairs, stratified_split_indices

BBC_CLASS_NAMES = ["business", "entertainment", "politics", "sport", "tech"]
BBC_CLASS_COUNTS = {"business": 510, "entertainment": 386, "politics": 417, "sport": 511, "tech": 401}
BBC_SPLIT_SEED = 42
BBC_NEWS_URL = "http://mlg.ucd.ie/files/datasets/bbc-fulltext.zip"
# Digest of the 2,225 extracted article files (see llm_tf.datasets._files.tree_digest), computed from the
# verified copy in shared/data, which is byte-identical to bbc-fulltext.zip per its SOURCE.txt.
_BBC_NEWS_DIGEST = "8d95e1ca0a2e18aad77b5e91e9eafd5212b345d5838f6dfbe112d2f29c0447ae"
# Kaggle needs an account; this public GitHub snapshot (pinned commit) holds the same files.
BBC_SUMMARY_URL = (
    "https://github.com/Miguel-G-Soares/PRI_proj1/archive/04750a1fb35aa0e2111e85416e8f54c088cf366a.zip"
)
_BBC_SUMMARY_DIGEST = "aa4bb12d54f3b6136ab233280293cbfd7adbd425c1523aab8d4ab5de1c82d663"
_SUMMARY_ROOT = "BBC News Summary"

# A sentence end glued to the next sentence: ".", "!" or "?", optionally followed by one or two double
# quotes, then the next sentence's first character (a capital letter, or after a quote also a digit).
_GLUED_SENTENCE_END = re.compile(r'[.!?](?:("")(?=[A-Z0-9])|(")(?=[A-Z0-9])|(?=[A-Z]))')
# A capital after one of these is an initial ("J.K.Rowling"), not the end of a word such as "US." or "BBC.".
_BEFORE_INITIAL = ("", " ", ".", "(", "\n", '"', "-")


def fix_sentence_spacing(text: str) -> str:
    """Puts back the space between sentences that BBC News Summary glues together.

    A glued end is ".", "!" or "?" after a lower-case letter, digit, "%", ")", "]", a quote, or a word
    ending in a capital ("US.", "BBC."; single initials such as "J.K." are left alone), followed directly by
    a capital letter. A double quote between the two belongs to the sentence that has an odd number of
    quotes so far (it closes it), otherwise it opens the next sentence; '.""' splits between the quotes.
    Decimals ("$10.9bn") and lower-case continuations ("Amazon.com") are never split. On the real summaries,
    97% of the sentences this produces occur verbatim in the paired article (the rest mostly differ in
    quoting, which the summaries do not keep balanced).

    Args:
        text: a summary such as "Profits rose to $10.9bn.For the full-year, ...".

    Returns:
        The text with one space inserted at each glued sentence end.

    Example:
        >>> fix_sentence_spacing('Profits rose to $10.9bn.For the year, it said."We grew."Sales in the US.Fell.')
        'Profits rose to $10.9bn. For the year, it said. "We grew." Sales in the US. Fell.'
    """
    pieces = []
    last_cut = 0
    for match in _GLUED_SENTENCE_END.finditer(text):
        end = match.start()
        before = text[end - 1] if end >= 1 else ""
        before_that = text[end - 2] if end >= 2 else ""
        if before.isupper():
            if before_that in _BEFORE_INITIAL:
                continue
        elif not (before.islower() or before.isdigit() or before in "%)]\"'"):
            continue
        if match.group(1):
            cut = match.start(1) + 1
        elif match.group(2):
            quote_is_closing = text.count('"', last_cut, match.start(2)) % 2 == 1
            cut = match.end(2) if quote_is_closing else match.start(2)
        else:
            cut = match.end()
        pieces.append(text[last_cut:cut])
        last_cut = cut
    pieces.append(text[last_cut:])
    return " ".join(pieces)


def load_bbc_news(
    data_dir: str | os.PathLike | None = None,
    *,
    seed: int = BBC_SPLIT_SEED,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    include_headline: bool = True,
    download: bool = True,
) -> ClassificationSplits:
    """Loads BBC News topic classification with a stratified, seeded split.

    Args:
        data_dir: the data directory (see `resolve_data_dir`); files in `<data_dir>/bbc_news/bbc/<class>/`.
        seed: split seed (42 by default; the split depends only on it and on the files).
        validation_fraction, test_fraction: split fractions per class (10% / 10%).
        include_headline: keep the first line (the headline) in each text.
        download: fetch the dataset when missing (from mlg.ucd.ie, verified).

    Returns:
        `ClassificationSplits` with `train`, `validation`, `test` (`.texts`, `.labels`, `.ids` like
        "sport/199.txt") and `class_names` = business, entertainment, politics, sport, tech.

    Example:
        >>> data = load_bbc_news()  # doctest: +SKIP
        >>> len(data.train), len(data.validation), len(data.test)  # doctest: +SKIP
        (1779, 223, 223)
    """
    dataset_dir = ensure_dataset(
        name="BBC News",
        data_dir=data_dir,
        folder="bbc_news",
        required=[f"bbc/{name}" for name in BBC_CLASS_NAMES],
        archives=[
            RemoteArchive(
                url=BBC_NEWS_URL,
                files_glob="bbc/*/*.txt",
                file_count=sum(BBC_CLASS_COUNTS.values()),
                digest=_BBC_NEWS_DIGEST,
            )
        ],
        download=download,
        source_note="(bbc-fulltext.zip, unzipped so that bbc/<class>/NNN.txt exists)",
    )
    articles = load_text_folder(dataset_dir / "bbc", class_names=BBC_CLASS_NAMES)
    if not include_headline:
        articles.texts = [text.split("\n", 1)[1].strip() if "\n" in text else text for text in articles.texts]
    splits = articles.split(validation_fraction=validation_fraction, test_fraction=test_fraction, seed=seed)
    return splits


def load_bbc_news_summary(
    data_dir: str | os.PathLike | None = None,
    *,
    seed: int = BBC_SPLIT_SEED,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    fix_summary_spacing: bool = True,
    download: bool = True,
) -> PairSplits:
    """Loads BBC News Summary: (article, extractive summary) pairs, split like `load_bbc_news`.

    Args:
        data_dir: the data directory; files in `<data_dir>/bbc_news_summary/BBC News Summary/
            {News Articles,Summaries}/<class>/NNN.txt`.
        seed, validation_fraction, test_fraction: as in `load_bbc_news` (same seed -> same articles per split).
        fix_summary_spacing: put back the missing space between summary sentences.
        download: fetch the dataset when missing (a pinned public GitHub snapshot of the Kaggle files).

    Returns:
        `PairSplits` whose `TextPairs` hold `sources` (articles, headline first), `targets` (summaries),
        `ids` ("business/001.txt") and `labels` (topic ids); `class_names` as in `load_bbc_news`.

    Raises:
        ValueError: when an article has no summary file or the other way round.

    Example:
        >>> pairs = load_bbc_news_summary().train  # doctest: +SKIP
        >>> pairs.sources[0][:40], pairs.targets[0][:40]  # doctest: +SKIP
    """
    dataset_dir = ensure_dataset(
        name="BBC News Summary",
        data_dir=data_dir,
        folder="bbc_news_summary",
        required=[
            f"{_SUMMARY_ROOT}/{kind}/{name}"
            for kind in ("News Articles", "Summaries")
            for name in BBC_CLASS_NAMES
        ],
        archives=[
            RemoteArchive(
                url=BBC_SUMMARY_URL,
                member_prefix="PRI_proj1-04750a1fb35aa0e2111e85416e8f54c088cf366a/",
                files_glob=f"{_SUMMARY_ROOT}/*/*/*.txt",
                file_count=2 * sum(BBC_CLASS_COUNTS.values()),
                digest=_BBC_SUMMARY_DIGEST,
            )
        ],
        download=download,
        source_note="(Kaggle 'BBC News Summary'; unzip so that 'BBC News Summary/News Articles/<class>/' exists)",
    )
    root = dataset_dir / _SUMMARY_ROOT
    articles = load_text_folder(root / "News Articles", class_names=BBC_CLASS_NAMES)
    summaries, summary_notes = [], []
    for identifier in articles.ids:
        summary_path = root / "Summaries" / identifier
        if not summary_path.is_file():
            raise ValueError(f"article {identifier} has no summary: {str(summary_path)!r} is missing.")
        decoded = read_text(summary_path)
        if decoded.fallback_used:
            summary_notes.append(f"Summaries/{identifier} is not valid UTF-8; decoded as cp1252")
        summary = decoded.text.strip()
        summaries.append(fix_sentence_spacing(summary) if fix_summary_spacing else summary)
    extra = sorted(
        f"{path.parent.name}/{path.name}"
        for path in (root / "Summaries").glob("*/*.txt")
        if f"{path.parent.name}/{path.name}" not in set(articles.ids)
    )
    if extra:
        raise ValueError(f"summaries without an article: {extra[:5]} ({len(extra)} in all).")
    pairs = TextPairs(articles.texts, summaries, articles.ids, labels=articles.labels)
    train, validation, test = stratified_split_indices(
        articles.labels, validation_fraction=validation_fraction, test_fraction=test_fraction, seed=seed
    )
    return PairSplits(
        train=pairs.subset(train),
        validation=pairs.subset(validation),
        test=pairs.subset(test) if test_fraction > 0 else None,
        notes=[f"News Articles/{note}" for note in articles.notes] + summary_notes,
        class_names=list(BBC_CLASS_NAMES),
        seed=seed,
    )


__all__ = ["BBC_CLASS_NAMES", "fix_sentence_spacing", "load_bbc_news", "load_bbc_news_summary"]
