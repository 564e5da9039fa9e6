"""Dataset loaders on small data built here: layouts, quirks, splits, the data-dir lookup, offline errors
and verified downloads (with keras.utils.get_file replaced by a local fake)."""

import csv
import gzip
import hashlib
import io
import pathlib
import zipfile

import numpy as np
import pytest

from llm_tf import datasets
from llm_tf.datasets import _files

# --------------------------------------------------------------------------------------------------
# Builders of tiny datasets in the shared/data layout.


def make_bbc(root: pathlib.Path, per_class: int = 10) -> pathlib.Path:
    for name in datasets.BBC_CLASS_NAMES:
        folder = root / "bbc_news" / "bbc" / name
        folder.mkdir(parents=True)
        for i in range(1, per_class + 1):
            (folder / f"{i:03d}.txt").write_text(f"{name} headline {i}\n\nBody of {name} story {i}.\n")
    # The real quirk: one Latin-1 pound sign in a sport article.
    (root / "bbc_news" / "bbc" / "sport" / "003.txt").write_bytes(b"Mutu sacked\n\nA \xa315.8m signing.\n")
    return root


def make_bbc_summary(root: pathlib.Path, per_class: int = 10) -> pathlib.Path:
    base = root / "bbc_news_summary" / "BBC News Summary"
    for name in datasets.BBC_CLASS_NAMES:
        (base / "News Articles" / name).mkdir(parents=True)
        (base / "Summaries" / name).mkdir(parents=True)
        for i in range(1, per_class + 1):
            article = (
                f"Title {i}\n\nProfits rose to $10.9bn. For the year, sales fell. Shares in the US dipped.\n"
            )
            (base / "News Articles" / name / f"{i:03d}.txt").write_text(article)
            (base / "Summaries" / name / f"{i:03d}.txt").write_text(
                "Profits rose to $10.9bn.For the year, sales fell."
            )
    return root


def gutenberg_book(title: str, author: str, body: str, *, bom: bool = True, crlf: bool = True) -> bytes:
    text = (
        f"The Project Gutenberg EBook of {title}, by {author}\n\nThis eBook is for the use of anyone anywhere.\n\n"
        f"Title: {title}\n\nAuthor: {author}\n\n*** START OF THIS PROJECT GUTENBERG EBOOK {title.upper()} ***\n\n"
        f"Produced by Some Volunteers\n\n{body}\n\nEnd of the Project Gutenberg EBook of {title}\n\n"
        f"*** END OF THIS PROJECT GUTENBERG EBOOK {title.upper()} ***\n\nSection 1. General Terms of Use ...\n"
    )
    if crlf:
        text = text.replace("\n", "\r\n")
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


# --------------------------------------------------------------------------------------------------
# Data directory lookup and offline behaviour.


def test_data_dir_lookup_order(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_TF_DATA_DIR", str(tmp_path / "from_env"))
    assert datasets.resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert datasets.resolve_data_dir() == tmp_path / "from_env"
    monkeypatch.delenv("LLM_TF_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.resolve_data_dir() == tmp_path / "home" / ".cache" / "llm_tf" / "datasets"


def test_loader_reads_the_environment_variable(tmp_path, monkeypatch):
    make_bbc(tmp_path)
    monkeypatch.setenv("LLM_TF_DATA_DIR", str(tmp_path))
    assert len(datasets.load_bbc_news().train) > 0


@pytest.mark.parametrize(
    ("loader", "expected_file"),
    [
        (datasets.load_bbc_news, "bbc/business"),
        (datasets.load_bbc_news_summary, "News Articles/business"),
        (datasets.load_sst2, "train.tsv"),
        (datasets.load_tiny_shakespeare, "input.txt"),
        (datasets.load_multi30k, "train.en.gz"),
        (datasets.load_samsum, "val.csv"),
        (datasets.load_gutenberg, "data"),
    ],
)
def test_offline_error_names_the_files_and_the_variable(loader, expected_file, tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_TF_OFFLINE", "1")
    with pytest.raises(FileNotFoundError) as error:
        loader(tmp_path)
    message = str(error.value)
    assert expected_file in message and "LLM_TF_DATA_DIR" in message and str(tmp_path) in message
    assert "unreachable" in message
    with pytest.raises(FileNotFoundError, match="download=False"):
        loader(tmp_path, download=False)


# --------------------------------------------------------------------------------------------------
# Downloads through a fake keras.utils.get_file.


@pytest.fixture
def fake_server(monkeypatch):
    """Serves `files[url] = bytes` through keras.utils.get_file, hash checks included, without a network."""
    import keras

    files = {}
    requested = []

    def get_file(fname=None, origin=None, file_hash=None, cache_dir=None, cache_subdir="datasets", **_):
        requested.append(origin)
        target = pathlib.Path(cache_dir) / cache_subdir / fname
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files[origin])
        if file_hash is not None and hashlib.sha256(files[origin]).hexdigest() != file_hash:
            raise ValueError("Incomplete or corrupted file detected.")
        return str(target)

    monkeypatch.setattr(keras.utils, "get_file", get_file)
    monkeypatch.setattr(_files, "network_reachable", lambda url, timeout=3.0: True)
    monkeypatch.delenv("LLM_TF_OFFLINE", raising=False)
    return files, requested


def test_download_verifies_a_single_file(tmp_path, fake_server, monkeypatch):
    files, requested = fake_server
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20
    from llm_tf.datasets import tiny_shakespeare

    monkeypatch.setattr(
        tiny_shakespeare, "_TINY_SHAKESPEARE_SHA256", hashlib.sha256(text.encode()).hexdigest()
    )
    files[tiny_shakespeare.TINY_SHAKESPEARE_URL] = text.encode()
    train, validation = datasets.load_tiny_shakespeare(tmp_path)
    assert train + validation == text
    assert (tmp_path / "tiny_shakespeare" / "input.txt").read_text() == text
    assert requested == [tiny_shakespeare.TINY_SHAKESPEARE_URL]
    datasets.load_tiny_shakespeare(tmp_path)  # present now: no second download
    assert len(requested) == 1


def test_download_rejects_a_corrupt_file(tmp_path, fake_server):
    files, _ = fake_server
    from llm_tf.datasets import tiny_shakespeare

    files[tiny_shakespeare.TINY_SHAKESPEARE_URL] = b"not shakespeare"
    with pytest.raises(ValueError, match="verification"):
        datasets.load_tiny_shakespeare(tmp_path)
    assert not (tmp_path / "tiny_shakespeare" / "input.txt").exists()  # nothing half-done left in place


def _zip_of(folder: pathlib.Path, prefix: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                bundle.write(path, prefix + path.relative_to(folder).as_posix())
    return buffer.getvalue()


def test_download_unpacks_and_verifies_an_archive(tmp_path, fake_server):
    files, _ = fake_server
    source = make_bbc(tmp_path / "source") / "bbc_news"
    relative = sorted(p.relative_to(source).as_posix() for p in source.glob("bbc/*/*.txt"))
    archive = _files.RemoteArchive(
        url="https://example.org/bbc.zip",
        member_prefix="top/",
        files_glob="bbc/*/*.txt",
        file_count=len(relative),
        digest=_files.tree_digest(source, relative),
    )
    files[archive.url] = _zip_of(source, "top/")
    target = tmp_path / "data" / "bbc_news"
    _files.download_archive(target, archive)
    assert _files.tree_digest(target, relative) == archive.digest

    (source / "bbc" / "tech" / "001.txt").write_text("tampered")
    files[archive.url] = _zip_of(source, "top/")
    with pytest.raises(ValueError, match="digest"):
        _files.download_archive(tmp_path / "other", archive)
    files[archive.url] = _zip_of(source, "../")
    with pytest.raises(ValueError, match="unsafe"):
        _files.download_archive(
            tmp_path / "evil", _files.RemoteArchive(url=archive.url, files_glob="*", file_count=1)
        )


# --------------------------------------------------------------------------------------------------
# BBC News and BBC News Summary.


def test_bbc_news_split_is_stratified_seeded_and_handles_latin1(tmp_path):
    make_bbc(tmp_path, per_class=20)
    data = datasets.load_bbc_news(tmp_path)
    assert data.class_names == ["business", "entertainment", "politics", "sport", "tech"]
    for split, expected in ((data.train, 16), (data.validation, 2), (data.test, 2)):
        assert split.class_counts() == {name: expected for name in data.class_names}
        assert split.labels.dtype == np.int32
    all_ids = data.train.ids + data.validation.ids + data.test.ids
    assert len(set(all_ids)) == len(all_ids) == 100
    texts = dict(zip(all_ids, data.train.texts + data.validation.texts + data.test.texts))
    assert "£15.8m" in texts["sport/003.txt"]
    assert any("sport/003.txt" in note for note in data.notes)
    assert texts["tech/007.txt"].startswith("tech headline 7\n\nBody of tech story 7.")
    again, other = datasets.load_bbc_news(tmp_path), datasets.load_bbc_news(tmp_path, seed=1)
    assert again.test.ids == data.test.ids and other.test.ids != data.test.ids
    no_headline = datasets.load_bbc_news(tmp_path, include_headline=False)
    assert all(not text.startswith(("business", "tech")) for text in no_headline.train.texts)


def test_bbc_summary_pairs_share_the_news_split_and_fix_spacing(tmp_path):
    make_bbc(tmp_path, per_class=10)
    make_bbc_summary(tmp_path, per_class=10)
    news = datasets.load_bbc_news(tmp_path)
    pairs = datasets.load_bbc_news_summary(tmp_path)
    assert pairs.test.ids == news.test.ids and pairs.train.ids == news.train.ids
    assert pairs.train.targets[0] == "Profits rose to $10.9bn. For the year, sales fell."
    assert pairs.train.sources[0].startswith("Title ")
    raw = datasets.load_bbc_news_summary(tmp_path, fix_summary_spacing=False)
    assert raw.train.targets[0] == "Profits rose to $10.9bn.For the year, sales fell."
    np.testing.assert_array_equal(pairs.train.labels, news.train.labels)
    (tmp_path / "bbc_news_summary" / "BBC News Summary" / "Summaries" / "tech" / "004.txt").unlink()
    with pytest.raises(ValueError, match="tech/004.txt"):
        datasets.load_bbc_news_summary(tmp_path)


@pytest.mark.parametrize(
    ("glued", "fixed"),
    [
        ("It rose 3%.Shares fell.", "It rose 3%. Shares fell."),
        ("Sales in the US.Texas sued.", "Sales in the US. Texas sued."),
        ('He said."It is fine."Then he left.', 'He said. "It is fine." Then he left.'),
        (
            'It was "a difficult year"."2005 will be better."',
            'It was "a difficult year". "2005 will be better."',
        ),
        ('End of the quote.""Next quote."', 'End of the quote." "Next quote."'),
        ("J.K.Rowling wrote it.", "J.K.Rowling wrote it."),
        ("Visit Amazon.com today. Prices at $10.9bn.", "Visit Amazon.com today. Prices at $10.9bn."),
    ],
)
def test_fix_sentence_spacing(glued, fixed):
    assert datasets.fix_sentence_spacing(glued) == fixed


# --------------------------------------------------------------------------------------------------
# SST-2, Tiny Shakespeare, Multi30k, SAMSum.


def test_sst2_reads_glue_tsv(tmp_path):
    folder = tmp_path / "sst2"
    folder.mkdir()
    (folder / "train.tsv").write_text("sentence\tlabel\nit 's a charming journey \t1\nbad , bad movie \t0\n")
    (folder / "dev.tsv").write_text('sentence\tlabel\n" quoted " start \t1\n')
    data = datasets.load_sst2(tmp_path)
    assert data.train.texts == ["it 's a charming journey", "bad , bad movie"]
    assert data.train.labels.tolist() == [1, 0] and data.class_names == ["negative", "positive"]
    assert data.validation.texts == ['" quoted " start'] and data.test is None


def test_tiny_shakespeare_splits_by_position(tmp_path):
    folder = tmp_path / "tiny_shakespeare"
    folder.mkdir()
    text = "".join(chr(ord("a") + i % 26) for i in range(1001))
    (folder / "input.txt").write_text(text)
    train, validation = datasets.load_tiny_shakespeare(tmp_path)
    assert train == text[:900] and validation == text[900:]
    with pytest.raises(ValueError, match="train_fraction"):
        datasets.load_tiny_shakespeare(tmp_path, train_fraction=1.5)


def test_multi30k_pairs_lines_in_both_directions(tmp_path):
    folder = tmp_path / "multi30k"
    folder.mkdir()
    for stem, count in (("train", 3), ("val", 2), ("test_2016_flickr", 1)):
        for language in ("en", "de"):
            lines = "".join(f"{language} {stem} sentence {i}\n" for i in range(count))
            with gzip.open(folder / f"{stem}.{language}.gz", "wb") as handle:
                handle.write(lines.encode())
    data = datasets.load_multi30k(tmp_path)
    assert (len(data.train), len(data.validation), len(data.test)) == (3, 2, 1)
    assert data.train.sources[1] == "en train sentence 1" and data.train.targets[1] == "de train sentence 1"
    reverse = datasets.load_multi30k(tmp_path, source_language="de", target_language="en")
    assert reverse.test.sources == ["de test_2016_flickr sentence 0"]
    with gzip.open(folder / "val.de.gz", "wb") as handle:
        handle.write(b"only one line\n")
    with pytest.raises(ValueError, match="line-aligned"):
        datasets.load_multi30k(tmp_path)
    with pytest.raises(ValueError, match="source_language"):
        datasets.load_multi30k(tmp_path, source_language="fr")


def test_samsum_keeps_multiline_dialogues(tmp_path):
    folder = tmp_path / "samsum"
    folder.mkdir()
    for name, count in (("val.csv", 2), ("test.csv", 3)):
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(["id", "summary", "dialogue"])
        for i in range(count):
            writer.writerow(
                [f"{name}-{i}", f"Summary {i}.", f'Amanda: Hi {i}\r\nTom: Hello, "you"\r\nAmanda: Bye']
            )
        (folder / name).write_bytes(buffer.getvalue().encode())
    data = datasets.load_samsum(tmp_path)
    assert data.train is None and (len(data.validation), len(data.test)) == (2, 3)
    assert data.test.sources[2] == 'Amanda: Hi 2\nTom: Hello, "you"\nAmanda: Bye'
    assert data.test.targets[0] == "Summary 0." and data.test.ids[1] == "test.csv-1"


# --------------------------------------------------------------------------------------------------
# Gutenberg.


def test_gutenberg_strips_boilerplate_and_splits_by_author(tmp_path):
    folder = tmp_path / "gutenberg" / "data" / "books"
    folder.mkdir(parents=True)
    authors = [
        "Jane Austen",
        "Charles Dickens",
        "Mark Twain (Samuel Clemens)",
        "Jacob Grimm and Wilhelm Grimm",
    ]
    for i in range(20):
        author = authors[i % 4] if i < 8 else f"Author Number{i}"
        (folder / f"{i}.txt").write_bytes(
            gutenberg_book(f"Book {i}", author, f"Chapter I.\n\nStory {i} text.")
        )
    (folder / "grimm.txt").write_bytes(
        gutenberg_book("Household Stories", "The Brothers Grimm", "Once upon a time.")
    )
    (folder / "plain.txt").write_bytes(b"A file without any markers.\r\n")
    corpus = datasets.load_gutenberg(tmp_path, validation_fraction=0.2, seed=3)
    books = corpus.books
    assert len(books) == 22
    assert len(corpus.validation) >= round(0.2 * 22)
    by_path = {book.path: book for book in books}
    assert by_path["data/books/5.txt"].text == "Chapter I.\n\nStory 5 text."
    assert (
        by_path["data/books/5.txt"].author == "Charles Dickens"
        and by_path["data/books/5.txt"].title == "Book 5"
    )
    assert by_path["data/books/plain.txt"].text == "A file without any markers."
    assert any("plain.txt" in note for note in corpus.notes)
    train_groups = {book.group for book in corpus.train}
    assert not train_groups & {book.group for book in corpus.validation}
    grimm = [book for book in books if "Grimm" in book.author]
    assert len(grimm) == 3 and len({book in corpus.train for book in grimm}) == 1
    assert corpus.train_texts == [book.text for book in corpus.train]
    assert datasets.load_gutenberg(tmp_path, validation_fraction=0.2, seed=3).validation == corpus.validation


def test_strip_gutenberg_old_small_print_footer():
    text = "*** START OF THE PROJECT GUTENBERG ETEXT OF X ***\nBody line.\n\n***START**THE SMALL PRINT!**\nLegal."
    assert datasets.strip_gutenberg_boilerplate(text) == ("Body line.", True)


# --------------------------------------------------------------------------------------------------
# Generic loaders.


def test_load_text_folder(tmp_path):
    for label, texts in {"pos": ["great", "fine\r\nday"], "neg": ["awful", "   "]}.items():
        (tmp_path / label).mkdir()
        for i, text in enumerate(texts):
            (tmp_path / label / f"{i}.txt").write_text(text)
    (tmp_path / "neg" / "latin.txt").write_bytes(b"caf\xe9")
    with pytest.warns(UserWarning, match="left out 1"):
        data = datasets.load_text_folder(tmp_path)
    assert data.class_names == ["neg", "pos"]
    assert list(zip(data.ids, data.texts, data.labels.tolist())) == [
        ("neg/0.txt", "awful", 0),
        ("neg/latin.txt", "café", 0),
        ("pos/0.txt", "great", 1),
        ("pos/1.txt", "fine\nday", 1),
    ]
    assert data.skipped == ["neg/1.txt: empty"] and "neg/latin.txt" in data.notes[0]
    with pytest.raises(FileNotFoundError, match="missing"):
        datasets.load_text_folder(tmp_path, class_names=["pos", "neutral"])
    with pytest.raises(FileNotFoundError, match="not a folder"):
        datasets.load_text_folder(tmp_path / "none")


def test_load_csv_reports_empty_rows_and_decodes_bad_bytes(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_bytes(
        b"id,review,sentiment\n"
        b'1,"Loved it, truly",pos\n'
        b"\n"
        b"2,,neg\n"
        b"3,Caf\xe9 was bad,neg\n"
        b"4,No label,\n"
        b'5,"multi\nline text",pos\n'
        b"6\n"
    )
    with pytest.warns(UserWarning, match="left out 4"):
        data = datasets.load_csv(path, text_column="review", label_column="sentiment")
    assert data.texts == ["Loved it, truly", "Café was bad", "multi\nline text"]
    assert data.class_names == ["neg", "pos"] and data.labels.tolist() == [1, 0, 1]
    assert data.ids == ["line 2", "line 5", "line 7"]
    assert data.skipped == [
        "line 3: empty row",
        "line 4: empty text",
        "line 6: empty label",
        "line 9: 1 fields, expected at least 3",
    ]
    assert data.notes == ["line 5 is not valid UTF-8; decoded as cp1252"]


def test_load_csv_tsv_indices_and_label_mapping(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("a text\t2\nanother\t0\n")
    data = datasets.load_csv(path, text_column=0, label_column=1, has_header=False)
    # The classes are the labels present: 0 and 2 (never an empty class 1).
    assert data.labels.tolist() == [1, 0] and data.class_names == ["0", "2"]
    named = datasets.load_csv(path, 0, 1, has_header=False, class_names=["neg", "neu", "pos"])
    assert named.labels.tolist() == [2, 0]
    unlabelled = datasets.load_csv(path, 0, None, has_header=False)
    assert unlabelled.class_names == [] and unlabelled.texts == ["a text", "another"]
    with pytest.raises(ValueError, match="text_column"):
        datasets.load_csv(path, text_column="missing", label_column=None, has_header=True)
    with pytest.raises(FileNotFoundError, match="not a file"):
        datasets.load_csv(tmp_path / "none.csv", "a", "b")


def test_load_text_folder_reads_any_file_name_and_lists_what_it_leaves_out(tmp_path):
    import os

    for label in ("sci.space", "rec.autos"):
        (tmp_path / label).mkdir()
        for name in ("38001", "38002.txt"):
            (tmp_path / label / name).write_text(f"{label} {name}")
    (tmp_path / "rec.autos" / ".DS_Store").write_bytes(b"\x00")
    (tmp_path / "rec.autos" / "nested").mkdir()
    os.mkfifo(tmp_path / "rec.autos" / "pipe")
    (tmp_path / "rec.autos" / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    with pytest.warns(UserWarning, match="left out 3"):  # hidden files are listed, not warned about
        data = datasets.load_text_folder(tmp_path)
    assert data.class_names == ["rec.autos", "sci.space"]
    assert data.ids == ["rec.autos/38001", "rec.autos/38002.txt", "sci.space/38001", "sci.space/38002.txt"]
    assert sorted(data.skipped) == ["rec.autos/.DS_Store: hidden file", "rec.autos/dangling: broken link",
                                    "rec.autos/nested: a folder, not read", "rec.autos/pipe: not a regular file"]
    narrowed = datasets.load_text_folder(tmp_path, pattern="*.txt")
    assert narrowed.ids == ["rec.autos/38002.txt", "sci.space/38002.txt"]
    with pytest.raises(ValueError, match="pattern"):
        datasets.load_text_folder(tmp_path, pattern="")


def test_integer_class_folders_sort_by_value():
    assert datasets.sort_class_names(["10", "2", "1", "2"]) == ["1", "2", "10"]
    assert datasets.sort_class_names(["b", "a", "10"]) == ["10", "a", "b"]


def test_load_csv_joins_text_columns_and_numbers_integer_labels_as_present(tmp_path):
    path = tmp_path / "news.csv"
    path.write_text("3,Title one,Body one\n1,Title two,\n4,,Body three\n3,T,B\n")
    data = datasets.load_csv(path, text_column=[1, 2], label_column=0, has_header=False)
    assert data.texts == ["Title one\nBody one", "Title two", "Body three", "T\nB"]
    assert data.class_names == ["1", "3", "4"] and data.labels.tolist() == [1, 0, 2, 1]
    with pytest.raises(ValueError, match="looks like data.*has_header=False"):
        datasets.load_csv(path, text_column=[1, 2], label_column=0)
    named = tmp_path / "named.csv"
    named.write_text("label,title,body\nsport,a,b\nsport,c,d\ntech,e,f\n")
    assert datasets.load_csv(named, ["title", "body"], "label").class_names == ["sport", "tech"]
    headered = tmp_path / "headered.csv"
    headered.write_text("label,text\n1,a\n2,b\n1,c\n")
    with pytest.warns(UserWarning, match="looks like a header"):
        datasets.load_csv(headered, 1, 0, has_header=False)
    with pytest.raises(ValueError, match="at least one column"):
        datasets.load_csv(path, [], 0, has_header=False)


def _folder_split(root, counts):
    for label, count in counts.items():
        (root / label).mkdir(parents=True)
        for index in range(count):
            (root / label / f"{index}").write_text(f"{label} text {index}")


def test_load_classification_splits_from_own_folders_and_carved_splits(tmp_path):
    _folder_split(tmp_path / "train", {"a": 20, "b": 10})
    _folder_split(tmp_path / "test", {"a": 4, "b": 2})
    _folder_split(tmp_path / "dev", {"a": 3, "b": 3})
    only_train = datasets.load_classification_splits(tmp_path / "train", seed=42)
    assert [len(only_train[name]) for name in ("train", "validation", "test")] == [24, 3, 3]
    carved = datasets.load_classification_splits(tmp_path / "train", test_path=tmp_path / "test", seed=42)
    assert carved.validation.class_counts() == {"a": 2, "b": 1}  # 10% of each class, stratified
    assert carved.train.class_counts() == {"a": 18, "b": 9} and carved.test.class_counts() == {"a": 4, "b": 2}
    assert not set(carved.validation.ids) & set(carved.train.ids)
    again = datasets.load_classification_splits(tmp_path / "train", test_path=tmp_path / "test", seed=42)
    assert again.validation.ids == carved.validation.ids
    other_seed = datasets.load_classification_splits(tmp_path / "train", test_path=tmp_path / "test", seed=7)
    assert other_seed.validation.ids != carved.validation.ids
    test_carved = datasets.load_classification_splits(tmp_path / "train", tmp_path / "dev", seed=42)
    assert len(test_carved.test) == 3 and len(test_carved.validation) == 6
    given = datasets.load_classification_splits(tmp_path / "train", tmp_path / "dev", tmp_path / "test")
    assert [len(given[name]) for name in ("train", "validation", "test")] == [30, 6, 6]
    assert any("carved" in note for note in carved.notes) and not any("carved" in note for note in given.notes)


def test_load_classification_splits_unifies_classes_and_names_a_class_missing_from_train(tmp_path):
    _folder_split(tmp_path / "train", {"a": 10, "b": 10})
    _folder_split(tmp_path / "test", {"b": 2})
    splits = datasets.load_classification_splits(tmp_path / "train", test_path=tmp_path / "test")
    assert splits.class_names == ["a", "b"] and splits.test.labels.tolist() == [1, 1]
    _folder_split(tmp_path / "test2", {"a": 1, "c": 2})
    with pytest.raises(ValueError, match=r"\['c'\] have no training example.*test"):
        datasets.load_classification_splits(tmp_path / "train", test_path=tmp_path / "test2")
    csv_path = tmp_path / "test.csv"
    csv_path.write_text("text,label\nsome a,a\n")
    with pytest.raises(ValueError, match="text_column"):
        datasets.load_classification_splits(tmp_path / "train", test_path=csv_path)
    mixed = datasets.load_classification_splits(tmp_path / "train", test_path=csv_path, text_column="text",
                                                label_column="label")
    assert mixed.test.labels.tolist() == [0] and mixed.test.texts == ["some a"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datasets.load_classification_splits(tmp_path / "absent")


def test_stratified_folds_partition_and_balance():
    labels = [0] * 13 + [1] * 7
    folds = datasets.stratified_folds(labels, 5, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(20))
    assert [len(fold) for fold in folds] == [4, 4, 4, 4, 4]
    for fold in folds:
        assert np.bincount(np.asarray(labels)[fold], minlength=2).tolist() in ([3, 1], [2, 2])
    assert [f.tolist() for f in datasets.stratified_folds(labels, 5, seed=0)] == [f.tolist() for f in folds]
    with pytest.raises(ValueError, match="num_folds"):
        datasets.stratified_folds(labels, 1, seed=0)
    train = datasets.LabeledTexts([f"t{i}" for i in range(20)], labels, ["x", "y"])
    validation = datasets.LabeledTexts(["v0", "v1"], [0, 1], ["x", "y"], ids=["v0", "v1"])
    parts = datasets.cross_validation_folds(train, validation, 4, seed=1)
    held_out = [identifier for _, fold in parts for identifier in fold.ids]
    assert sorted(held_out) == sorted(train.ids + validation.ids)
    for training_part, fold in parts:
        assert not set(training_part.ids) & set(fold.ids) and len(training_part) + len(fold) == 22
    subset = datasets.stratified_subset(train, 10, seed=0)
    # Each class keeps round(size / n * its count), halves up: 13 / 2 = 6.5 -> 7 and 7 / 2 = 3.5 -> 4.
    assert subset.class_counts() == {"x": 7, "y": 4} and set(subset.ids) <= set(train.ids)
    assert datasets.stratified_subset(train, 50, seed=0) is train


def test_read_texts_for_prediction(tmp_path):
    _folder_split(tmp_path / "docs", {"a": 2})
    (tmp_path / "docs" / "loose").write_text("  loose text ")
    ids, texts = datasets.read_texts(tmp_path / "docs")
    assert ids == ["loose", "a/0", "a/1"] and texts[0] == "loose text"
    (tmp_path / "in.csv").write_text("title,body\nA,b\nC,d\n")
    assert datasets.read_texts(tmp_path / "in.csv", text_column=["title", "body"]) == (
        ["line 2", "line 3"], ["A\nb", "C\nd"])
    with pytest.raises(ValueError, match="text_column"):
        datasets.read_texts(tmp_path / "in.csv")
    # Columns by position and no label: a first row of data would be taken as the header; it is named, not dropped
    # silently.
    (tmp_path / "rows.csv").write_text("1,first text\n2,second text\n")
    with pytest.warns(UserWarning, match=r"line 1 \('1', 'first text'\) was read as the header row"):
        assert datasets.read_texts(tmp_path / "rows.csv", text_column=1) == (["line 2"], ["second text"])
    assert datasets.read_texts(tmp_path / "rows.csv", text_column=1, has_header=False)[1] == ["first text",
                                                                                              "second text"]
    (tmp_path / "one.txt").write_text("one document")
    assert datasets.read_texts(tmp_path / "one.txt") == (["one.txt"], ["one document"])
    assert datasets.read_texts("-", stdin=io.StringIO("first\n\nthird\n")) == (["line 1", "line 3"],
                                                                                 ["first", "third"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datasets.read_texts(tmp_path / "absent")


def test_split_helper_is_stratified_and_validates_fractions():
    labels = [0] * 30 + [1] * 10
    train, validation, test = datasets.stratified_split_indices(
        labels, validation_fraction=0.2, test_fraction=0.1, seed=0
    )
    assert sorted(np.concatenate([train, validation, test]).tolist()) == list(range(40))
    assert np.bincount(np.asarray(labels)[validation]).tolist() == [6, 2]
    assert np.bincount(np.asarray(labels)[test]).tolist() == [3, 1]
    with pytest.raises(ValueError, match="below 1"):
        datasets.stratified_split_indices(labels, validation_fraction=0.5, test_fraction=0.5, seed=0)
