"""Project Gutenberg books as an unlabelled pretraining corpus, split into train / validation by book.

Files: every `*.txt` under `<data_dir>/gutenberg/data/` (the project's copy holds 113 English books).
Each book is cleaned before use:

- the UTF-8 byte-order mark is dropped and CRLF line endings become LF;
- the Project Gutenberg header (everything up to the `*** START OF THE/THIS PROJECT GUTENBERG EBOOK ... ***`
  line) and footer (from the first of `*** END OF ...`, "End of the Project Gutenberg EBook ...", an old
  trailer's "The Project Gutenberg Etext of ..." line, or the old "START**THE SMALL PRINT" licence block)
  are removed, as is a leading "Produced by ..." credit paragraph;
  books without a START marker are kept whole and listed in `notes`.

Split: by book, never by line. Books are grouped by the surname of their (last-named) author, so books that
overlap (the three Grimm translations, two-volume works, one author's style) never straddle the split; the
groups are shuffled with `numpy.random.default_rng(seed)` and taken into validation until it holds at least
`round(validation_fraction * number of books)` books.
"""

from __future__ import annotations

import os
import pathlib
import re
from dataclasses import dataclass, field

import numpy as np

from llm_tf.checks import check_non_negative_int, check_probability
from llm_tf.datasets._files import RemoteFile, ensure_dataset, read_text
from llm_tf.datasets._gutenberg_manifest import GUTENBERG_BOOKS

GUTENBERG_SPLIT_SEED = 42
_GUTENBERG_BASE = (
    "https://raw.githubusercontent.com/RU-ECE/ECE451-Parallel/c58dca3a6abedd8041057571c247e9a393cc3b4d/"
)

_START = re.compile(
    r"^[ \t]*\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG E(?:BOOK|TEXT)\b.*$", re.I | re.M
)
_FOOTERS = (
    re.compile(r"^[ \t]*\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG E(?:BOOK|TEXT)\b", re.I | re.M),
    re.compile(r"^[ \t]*End of (?:the |this )?Project Gutenberg(?:'s)?\b", re.I | re.M),
    # Old releases repeat the title line before their trailer: "The Project Gutenberg Etext of ...".
    re.compile(r"^[ \t]*The Project Gutenberg E(?:text|book) of\b", re.I | re.M),
    re.compile(r"^[ \t]*\*+\s*START\*+\s*THE SMALL PRINT", re.I | re.M),
    re.compile(r"^[ \t]*\*END\*?\s*THE SMALL PRINT", re.I | re.M),
)
_CREDITS = re.compile(r"^(?:Produced by|E-?text prepared by|Transcribed (?:from|by)|This e-?text was)", re.I)
_TITLE = re.compile(r"Title:[ \t]*(.+)")
_AUTHOR = re.compile(r"^Author:[ \t]*(.+)$", re.M)


@dataclass
class Book:
    """One cleaned book.

    Attributes:
        title: from the header's "Title:" line (the file name when there is none).
        author: from the header's "Author:" line ("" when there is none).
        path: the file's path relative to the dataset folder.
        text: the book without Gutenberg boilerplate, LF line endings.
        group: the split group (author surname, or the path when the author is unknown).
    """

    title: str
    author: str
    path: str
    text: str
    group: str


@dataclass
class GutenbergCorpus:
    """Books split into train and validation (`train_texts` / `validation_texts` give the texts)."""

    train: list[Book]
    validation: list[Book]
    seed: int
    notes: list[str] = field(default_factory=list)

    @property
    def train_texts(self) -> list[str]:
        return [book.text for book in self.train]

    @property
    def validation_texts(self) -> list[str]:
        return [book.text for book in self.validation]

    @property
    def books(self) -> list[Book]:
        return self.train + self.validation


def strip_gutenberg_boilerplate(text: str) -> tuple[str, bool]:
    """Removes the Project Gutenberg header, footer (licence) and leading credits from a book's text.

    Args:
        text: the book with LF line endings.

    Returns:
        (body, found_start_marker). Without a START marker the text is returned stripped but otherwise whole.

    Example:
        >>> body, found = strip_gutenberg_boilerplate(
        ...     "Header\\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\\nBody.\\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\\nLicence")
        >>> body, found
        ('Body.', True)
    """
    start = _START.search(text)
    if start is None:
        return text.strip(), False
    body = text[start.end() :]
    footer_positions = [match.start() for pattern in _FOOTERS if (match := pattern.search(body))]
    if footer_positions:
        body = body[: min(footer_positions)]
    body = body.strip()
    if _CREDITS.match(body):
        # The credit line(s) end at the first blank line.
        _, _, rest = body.partition("\n\n")
        body = rest.strip()
    return body, True


def _author_group(author: str, fallback: str) -> str:
    name = re.sub(r"\([^)]*\)", " ", author)  # "Mark Twain (Samuel Clemens)" -> "Mark Twain"
    name = re.split(r"\band\b", name)[
        -1
    ]  # the last-named author: "Jacob Grimm and Wilhelm Grimm" -> "Wilhelm Grimm"
    name = name.split(",")[0]  # "Alexandre Dumas, père" -> "Alexandre Dumas"
    words = re.findall(r"[^\W\d_]+", name)
    return words[-1].lower() if words else fallback


def _header_field(pattern: re.Pattern, header: str) -> str:
    match = pattern.search(header)
    return match.group(1).strip() if match else ""


def load_gutenberg(
    data_dir: str | os.PathLike | None = None,
    *,
    validation_fraction: float = 0.1,
    seed: int = GUTENBERG_SPLIT_SEED,
    download: bool = True,
) -> GutenbergCorpus:
    """Loads the Gutenberg books, cleaned and split by book (grouped by author).

    Args:
        data_dir: the data directory; books are the `*.txt` files under `<data_dir>/gutenberg/data/`.
        validation_fraction: the share of books (at least) in validation, in (0, 1).
        seed: the split seed (42 by default).
        download: fetch the project's 113 books when the folder is missing (sha256-verified each).

    Returns:
        A `GutenbergCorpus` with `train` and `validation` lists of `Book`, in path order.

    Example:
        >>> corpus = load_gutenberg()  # doctest: +SKIP
        >>> len(corpus.train) + len(corpus.validation)  # doctest: +SKIP
        113
    """
    check_probability("validation_fraction", validation_fraction, allow_zero=False, allow_one=False)
    check_non_negative_int("seed", seed)
    dataset_dir = ensure_dataset(
        name="Gutenberg books",
        data_dir=data_dir,
        folder="gutenberg",
        required=["data"],
        files=[RemoteFile(_GUTENBERG_BASE + path, path, sha256) for path, sha256 in GUTENBERG_BOOKS.items()],
        download=download,
        source_note="(Project Gutenberg .txt files under gutenberg/data/)",
    )
    paths = sorted((dataset_dir / "data").rglob("*.txt"))
    if not paths:
        raise FileNotFoundError(f"no .txt books under {str(dataset_dir / 'data')!r}.")
    books, notes = [], []
    for path in paths:
        relative = path.relative_to(dataset_dir).as_posix()
        decoded = read_text(path)
        if decoded.fallback_used:
            notes.append(f"{relative} is not valid UTF-8; decoded as cp1252")
        start = _START.search(decoded.text)
        header = decoded.text[: start.start()] if start else decoded.text[:5000]
        body, found_start = strip_gutenberg_boilerplate(decoded.text)
        if not found_start:
            notes.append(f"{relative} has no '*** START OF ... PROJECT GUTENBERG' marker; kept whole")
        author = _header_field(_AUTHOR, header)
        title = _header_field(_TITLE, header) or pathlib.Path(relative).stem
        books.append(Book(title, author, relative, body, _author_group(author, relative)))

    groups = sorted({book.group for book in books})
    order = np.random.default_rng(seed).permutation(len(groups))
    wanted = max(1, int(np.floor(validation_fraction * len(books) + 0.5)))
    validation_groups: set[str] = set()
    count = 0
    for index in order:
        if count >= wanted:
            break
        group = groups[index]
        validation_groups.add(group)
        count += sum(book.group == group for book in books)
    train = [book for book in books if book.group not in validation_groups]
    validation = [book for book in books if book.group in validation_groups]
    if not train:
        raise ValueError(f"validation_fraction={validation_fraction} leaves no book for training.")
    return GutenbergCorpus(train=train, validation=validation, seed=seed, notes=notes)
