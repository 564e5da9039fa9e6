"""Every loader over the real datasets in ../shared/data, checked against the counts in its README.md.

Marked `data`; the `shared_data_dir` fixture skips these tests only when the folder is absent (CI has it).
"""

import collections
import gzip
import hashlib
import re

import numpy as np
import pytest

from llm_tf import datasets
from llm_tf.datasets import _files, bbc, tiny_shakespeare

pytestmark = pytest.mark.data

BBC_COUNTS = {"business": 510, "entertainment": 386, "politics": 417, "sport": 511, "tech": 401}


def test_bbc_news_counts_split_and_latin1_file(shared_data_dir):
    data = datasets.load_bbc_news(shared_data_dir)
    splits = (data.train, data.validation, data.test)
    totals = collections.Counter()
    for split in splits:
        totals.update(split.class_counts())
    assert dict(totals) == BBC_COUNTS
    assert [len(split) for split in splits] == [1779, 223, 223]
    assert data.validation.class_counts() == {
        "business": 51,
        "entertainment": 39,
        "politics": 42,
        "sport": 51,
        "tech": 40,
    }
    ids = [identifier for split in splits for identifier in split.ids]
    assert len(set(ids)) == 2225
    texts = {i: t for split in splits for i, t in zip(split.ids, split.texts)}
    assert "a £15.8m signing" in texts["sport/199.txt"]
    assert data.notes == ["sport/199.txt is not valid UTF-8; decoded as cp1252"]
    assert all("\ufffd" not in text for text in texts.values())
    # The digest used to verify a downloaded bbc-fulltext.zip matches the verified copy.
    root = shared_data_dir / "bbc_news"
    relative = sorted(p.relative_to(root).as_posix() for p in root.glob("bbc/*/*.txt"))
    assert _files.tree_digest(root, relative) == bbc._BBC_NEWS_DIGEST


def test_bbc_news_summary_pairs(shared_data_dir):
    pairs = datasets.load_bbc_news_summary(shared_data_dir)
    news = datasets.load_bbc_news(shared_data_dir)
    assert [len(pairs[name]) for name in ("train", "validation", "test")] == [1779, 223, 223]
    for name in ("train", "validation", "test"):
        assert pairs[name].ids == news[name].ids  # same split by file
    all_pairs = [pairs.train, pairs.validation, pairs.test]
    counts = collections.Counter(pairs.class_names[label] for split in all_pairs for label in split.labels)
    assert dict(counts) == BBC_COUNTS
    summaries = [summary for split in all_pairs for summary in split.targets]
    articles = [" ".join(article.split()) for split in all_pairs for article in split.sources]
    assert not any(re.search(r"[a-z][.!?][A-Z]", summary) for summary in summaries)  # no glued sentences left
    raw = datasets.load_bbc_news_summary(shared_data_dir, fix_summary_spacing=False)
    raw_summaries = [summary for split in (raw.train, raw.validation, raw.test) for summary in split.targets]
    assert sum(bool(re.search(r"[a-z][.!?][A-Z]", summary)) for summary in raw_summaries) > 2000
    # The inserted spaces fall between sentences: most pieces are verbatim article text.
    pieces = found = 0
    for fixed, raw_summary, article in zip(summaries, raw_summaries, articles):
        for piece in _pieces_split_at_inserted_spaces(raw_summary, fixed):
            pieces += 1
            found += " ".join(piece.split()) in article
    assert pieces > 15000 and found / pieces > 0.95


def _pieces_split_at_inserted_spaces(raw, fixed):
    pieces, current, i = [], [], 0
    for character in fixed:
        if i < len(raw) and character == raw[i]:
            current.append(character)
            i += 1
        else:
            pieces.append("".join(current))
            current = []
    pieces.append("".join(current))
    return pieces


def test_sst2_counts(shared_data_dir):
    data = datasets.load_sst2(shared_data_dir)
    assert len(data.train) == 67349 and len(data.validation) == 872
    assert data.train.class_counts() == {"negative": 29780, "positive": 37569}
    assert data.validation.class_counts() == {"negative": 428, "positive": 444}
    assert data.skipped == [] and data.notes == []
    assert all(text == text.strip() and text for text in data.train.texts[:1000])


def test_tiny_shakespeare_and_the_nanogpt_vocabulary(shared_data_dir):
    from llm_tf.text import CharTokenizer

    train, validation = datasets.load_tiny_shakespeare(shared_data_dir)
    text = train + validation
    assert len(text) == 1115394 and text.count("\n") == 40000
    assert (len(train), len(validation)) == (1003854, 111540)
    assert hashlib.sha256(text.encode()).hexdigest() == tiny_shakespeare._TINY_SHAKESPEARE_SHA256
    tokenizer = CharTokenizer.train(text, special_tokens=False)
    # nanoGPT's shakespeare_char vocabulary, as its prepare.py prints it.
    assert (
        "".join(tokenizer.vocabulary) == "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    )
    assert tokenizer.vocabulary_size == 65
    ids = np.asarray(tokenizer.encode(validation))
    assert ids.min() == 0 and ids.max() == 64 and tokenizer.decode(ids) == validation


def test_multi30k_counts(shared_data_dir):
    data = datasets.load_multi30k(shared_data_dir)
    assert (len(data.train), len(data.validation), len(data.test)) == (29000, 1014, 1000)
    assert all(source and target for source, target in zip(data.train.sources, data.train.targets))
    with gzip.open(shared_data_dir / "multi30k" / "val.de.gz", "rt", encoding="utf-8") as handle:
        assert data.validation.targets[-1] == handle.read().splitlines()[-1]


def test_samsum_counts(shared_data_dir):
    data = datasets.load_samsum(shared_data_dir)
    assert data.train is None and (len(data.validation), len(data.test)) == (818, 819)
    assert len(set(data.test.ids)) == 819
    assert not any("\r" in dialogue for dialogue in data.test.sources + data.validation.sources)
    assert sum("\n" in dialogue for dialogue in data.test.sources) > 800  # turns on separate lines


@pytest.mark.slow
def test_gutenberg_books_cleaned_and_split_by_book(shared_data_dir):
    corpus = datasets.load_gutenberg(shared_data_dir)
    books = corpus.books
    assert len(books) == 113 and corpus.notes == []
    assert len(corpus.validation) >= 11 and len(corpus.train) >= 90
    assert not {book.group for book in corpus.train} & {book.group for book in corpus.validation}
    grimm = [book for book in books if "Grimm" in book.author]
    assert len(grimm) == 3 and len({book in corpus.train for book in grimm}) == 1
    for book in books:
        assert "\r" not in book.text and "\ufeff" not in book.text
        assert not re.search(r"\*\*\* ?(START|END) OF|PROJECT GUTENBERG LICENSE", book.text, re.IGNORECASE)
        assert "Project Gutenberg Literary Archive Foundation" not in book.text
        assert len(book.text) > 10000  # the shortest book, The Gift of the Magi, keeps ~11k characters
    words = sum(len(book.text.split()) for book in books)
    assert 11_000_000 < words < 12_770_089  # README: 12,770,089 words including the boilerplate
    manifest_paths = sorted(datasets.gutenberg.GUTENBERG_BOOKS)
    assert sorted(book.path for book in books) == manifest_paths
