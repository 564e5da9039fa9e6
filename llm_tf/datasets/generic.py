"""Loaders for a user's own data: a folder of `<label>/<file>` files, a CSV / TSV file, and their splits.

Both read UTF-8 (a byte-order mark is dropped) and fall back to Windows-1252 for files (or CSV lines) that
are not valid UTF-8, noting which ones in `notes`; CRLF becomes LF. Empty texts are left out and listed in
`skipped` (and summarised in one warning), never silently dropped. Texts are kept as they are (no
dataset-specific cleaning of headers or footers).

Classes are exactly the distinct labels present: integer labels `1..4` give the 4 classes `"1".."4"` (sorted
by value), other labels their sorted names. :func:`load_classification_splits` reads a dataset's own
train / validation / test files or folders, or splits one of them (seeded, stratified), on one set of classes.
"""

from __future__ import annotations

import csv
import io
import os
import pathlib
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from llm_tf.checks import check_positive_int, is_int
from llm_tf.datasets._files import decode_bytes, normalize_newlines, read_text
from llm_tf.datasets.types import ClassificationSplits, LabeledTexts, stratified_split_indices


def _warn_skipped(source: str, skipped: list[str]) -> None:
    if skipped:
        shown = "; ".join(skipped[:5]) + (f"; ... ({len(skipped)} in all)" if len(skipped) > 5 else "")
        warnings.warn(f"{source}: left out {len(skipped)} entries: {shown}", stacklevel=3)


def _is_hidden(path: pathlib.Path) -> bool:
    return path.name.startswith(".")


def _regular_files(folder: pathlib.Path, pattern: str, label: str, skipped: list[str]) -> list[pathlib.Path]:
    """The regular, non-hidden files of ``folder`` matching ``pattern``, by name; the others go to ``skipped``."""
    files = []
    for entry in sorted(folder.glob(pattern)):
        identifier = f"{label}/{entry.name}"
        if _is_hidden(entry):
            skipped.append(f"{identifier}: hidden file")
        elif entry.is_symlink() and not entry.exists():
            skipped.append(f"{identifier}: broken link")
        elif entry.is_dir():
            skipped.append(f"{identifier}: a folder, not read")
        elif not entry.is_file():
            skipped.append(f"{identifier}: not a regular file")
        else:
            files.append(entry)
    return files


def load_text_folder(
    path: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    pattern: str = "*",
    fallback_encoding: str = "cp1252",
    strip: bool = True,
) -> LabeledTexts:
    """Reads a folder laid out as `<path>/<class name>/<file>` into labelled texts.

    Every regular file is read whatever its name (e.g. `comp.graphics/38242` without an extension); hidden
    files (`.DS_Store`), sub-folders, links to nothing and other non-regular entries are left out and listed
    in `skipped`. `pattern` narrows the files read (e.g. `"*.txt"`).

    Args:
        path: the folder.
        class_names: the classes, in label order; None uses every non-hidden subfolder holding a matching
            file, sorted (as numbers when every name is an integer).
        pattern: file-name glob within each class folder (default: every file).
        fallback_encoding: used for files that are not valid UTF-8 (noted in `notes`).
        strip: strip leading/trailing whitespace from each text.

    Returns:
        `LabeledTexts` with files in name order within each class, `ids` = "<class>/<file name>"; empty and
        left-out files are listed in `skipped`. Call `.split(...)` for a stratified train/validation/test split.

    Raises:
        FileNotFoundError: when `path` or a named class folder does not exist, or no file matches.

    Example:
        >>> data = load_text_folder("reviews/")  # doctest: +SKIP
        >>> splits = data.split(validation_fraction=0.1, test_fraction=0.1, seed=42)  # doctest: +SKIP
    """
    root = pathlib.Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"`path` is not a folder: {str(root)!r}; expected <path>/<label>/{pattern}.")
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"`pattern` must be a file-name glob such as '*' or '*.txt'; got pattern={pattern!r}.")
    if class_names is None:
        folders = [d for d in root.iterdir() if d.is_dir() and not _is_hidden(d)]
        class_names = sort_class_names(d.name for d in folders if _regular_files(d, pattern, d.name, []))
        if not class_names:
            raise FileNotFoundError(
                f"no class folders with {pattern} files under {str(root)!r}; expected <path>/<label>/{pattern}."
            )
    else:
        class_names = list(class_names)
        if len(set(class_names)) != len(class_names):
            raise ValueError(f"`class_names` must be unique; got {class_names}.")
        absent = [name for name in class_names if not (root / name).is_dir()]
        if absent:
            raise FileNotFoundError(
                f"class folders {absent} are missing under {str(root)!r}; expected one folder per class in "
                f"class_names={class_names}."
            )
    texts, labels, ids, skipped, notes = [], [], [], [], []
    for label, name in enumerate(class_names):
        for file_path in _regular_files(root / name, pattern, name, skipped):
            decoded = read_text(file_path, fallback_encoding=fallback_encoding)
            identifier = f"{name}/{file_path.name}"
            if decoded.fallback_used:
                notes.append(f"{identifier} is not valid UTF-8; decoded as {fallback_encoding}")
            text = decoded.text.strip() if strip else decoded.text
            if not text.strip():
                skipped.append(f"{identifier}: empty")
                continue
            texts.append(text)
            labels.append(label)
            ids.append(identifier)
    if not texts:
        raise FileNotFoundError(
            f"no non-empty {pattern} files under {str(root)!r} for classes {class_names}."
        )
    _warn_skipped(str(root), [entry for entry in skipped if not entry.endswith(": hidden file")])
    return LabeledTexts(
        texts, np.asarray(labels, np.int32), list(class_names), ids, skipped=skipped, notes=notes
    )


def sort_class_names(names) -> list[str]:
    """Distinct class names, sorted: by value when every name is an integer ("2" before "10"), else as text.

    Example:
        >>> sort_class_names(["10", "2", "1"]), sort_class_names(["b", "a", "b"])
        (['1', '2', '10'], ['a', 'b'])
    """
    names = set(names)
    if names and all(_is_integer(name) for name in names):
        return sorted(names, key=int)
    return sorted(names)


def _is_integer(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _decode_lines(data: bytes, fallback_encoding: str) -> tuple[str, list[int]]:
    """Decodes line by line so one bad line does not garble the file; returns the text and fallback lines."""
    decoded = decode_bytes(data, fallback_encoding=fallback_encoding)
    if not decoded.fallback_used:
        return decoded.text, []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    pieces, fallback_lines = [], []
    # A newline byte never occurs inside a multi-byte UTF-8 sequence, so splitting on it is safe.
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            pieces.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            pieces.append(line.decode(fallback_encoding, errors="replace"))
            fallback_lines.append(number)
    return "\n".join(pieces), fallback_lines


def _column_index(header: list[str] | None, column: str | int, argument: str) -> int:
    if isinstance(column, bool):
        raise ValueError(f"`{argument}` must be a column name or index; got {column!r}.")
    if isinstance(column, int):
        if column < 0 or (header is not None and column >= len(header)):
            raise ValueError(f"`{argument}`={column} is out of range; the file has columns {header}.")
        return column
    if header is None:
        raise ValueError(f"`{argument}`={column!r} is a name but has_header=False; pass a column index.")
    if column not in header:
        raise ValueError(f"`{argument}`={column!r} is not a column; the header has {header}.")
    return header.index(column)


def _infer_delimiter(path: pathlib.Path, sample: str) -> str:
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".tab"):
        return "\t"
    if suffix == ".csv":
        return ","
    try:
        return csv.Sniffer().sniff(sample[:65536], delimiters=",\t;|").delimiter
    except csv.Error:
        return ","


def load_csv(
    path: str | os.PathLike,
    text_column: str | int | Sequence[str | int],
    label_column: str | int | None,
    delimiter: str | None = None,
    *,
    has_header: bool = True,
    class_names: Sequence[str] | None = None,
    quoting: int = csv.QUOTE_MINIMAL,
    fallback_encoding: str = "cp1252",
    strip: bool = True,
) -> LabeledTexts:
    """Reads texts and labels from a CSV / TSV file.

    Labels: with `class_names`, each label must be one of those names or an int index into them; without,
    the classes are exactly the distinct labels present, sorted (by value when all are integers: labels
    1..4 give the classes "1".."4" with ids 0..3; never an empty class). With `label_column=None` every label
    is 0 and `class_names` is empty (unlabelled text).

    Several text columns (`text_column=["title", "body"]`) are joined into one text, one line each (empty
    fields left out). With `has_header=True`, a first row that looks like data (its label is also a label of
    other rows, or every label including the header's is an integer) is an error that suggests
    `has_header=False`; with `has_header=False`, a first row that looks like a header (a non-integer label
    among integer ones) gives a warning. Unlabelled, with the text columns given by position, the header row is
    named in a warning (nothing tells it from data).

    Rows left out, each listed in `skipped` with its line number and summarised in one warning: blank
    lines, rows whose text is empty, rows with too few fields, rows with an empty or unknown label.
    Lines that are not valid UTF-8 are decoded with `fallback_encoding` and listed in `notes`.

    Args:
        path: the file.
        text_column: the text column's header name or 0-based index, or a list of them (joined).
        label_column: the label column's name or index, or None.
        delimiter: the field separator; None picks tab for .tsv/.tab, comma for .csv, else sniffs.
        has_header: the first row is a header.
        class_names: the classes in label order (see above).
        quoting: a `csv.QUOTE_*` constant; use `csv.QUOTE_NONE` for unquoted TSV files such as GLUE's.
        fallback_encoding: for lines that are not UTF-8.
        strip: strip whitespace around texts.

    Returns:
        `LabeledTexts` with `ids` = "line N" (the row's first line in the file).

    Raises:
        FileNotFoundError: when `path` does not exist.
        ValueError: for an unknown column, a header row that looks like data, or when no row remains.

    Example:
        >>> data = load_csv("reviews.csv", text_column="review", label_column="sentiment")  # doctest: +SKIP
    """
    file_path = pathlib.Path(path)
    if not file_path.is_file():
        raise FileNotFoundError(f"`path` is not a file: {str(file_path)!r}; expected a CSV or TSV file.")
    text, fallback_lines = _decode_lines(file_path.read_bytes(), fallback_encoding)
    text = normalize_newlines(text)
    if delimiter is None:
        delimiter = _infer_delimiter(file_path, text)
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ValueError(f"`delimiter` must be a single character; got delimiter={delimiter!r}.")
    # Long documents in one field exceed csv's default 128 KiB field limit.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    header = None
    if has_header:
        header = next(reader, None)
        if header is None:
            raise ValueError(f"`path` is empty: {str(file_path)!r}; expected a header row.")
    columns = [text_column] if isinstance(text_column, str | int) else list(text_column)
    if not columns:
        raise ValueError("`text_column` must name at least one column; got an empty list.")
    text_indices = [_column_index(header, column, "text_column") for column in columns]
    label_index = None if label_column is None else _column_index(header, label_column, "label_column")
    if header is not None and label_index is None and all(isinstance(index, int) for index in columns):
        # Columns given by position and no label to check the header against (`_check_header_row`): nothing
        # tells a header from a first text, so say which row was left out as the header.
        shown = ", ".join(repr(field[:30]) for field in header[:4]) + (", ..." if len(header) > 4 else "")
        warnings.warn(f"{str(file_path)}: line 1 ({shown}) was read as the header row, not as a text; if it is "
                      "data, pass has_header=False (--no-header).", stacklevel=2)
    needed = max(text_indices + [-1 if label_index is None else label_index]) + 1

    rows_text, rows_label, ids, skipped = [], [], [], []
    line_number = reader.line_num
    for row in reader:
        first_line = line_number + 1
        line_number = reader.line_num
        if not row or all(not field.strip() for field in row):
            skipped.append(f"line {first_line}: empty row")
            continue
        if len(row) < needed:
            skipped.append(f"line {first_line}: {len(row)} fields, expected at least {needed}")
            continue
        parts = [row[index].strip() if strip else row[index] for index in text_indices]
        value = "\n".join(part for part in parts if part.strip()) if len(parts) > 1 else parts[0]
        if not value.strip():
            skipped.append(f"line {first_line}: empty text")
            continue
        label = None
        if label_index is not None:
            label = row[label_index].strip()
            if not label:
                skipped.append(f"line {first_line}: empty label")
                continue
        rows_text.append(value)
        rows_label.append(label)
        ids.append(f"line {first_line}")

    if label_index is not None and class_names is None:
        _check_header_row(file_path, header, label_index, rows_label, rows_text)
    labels, names, unknown = _labels_to_ids(rows_label, class_names, label_index is not None)
    if unknown:
        keep = [i for i in range(len(rows_text)) if i not in unknown]
        skipped.extend(f"{ids[i]}: label {rows_label[i]!r} not in class_names" for i in sorted(unknown))
        rows_text = [rows_text[i] for i in keep]
        ids = [ids[i] for i in keep]
        labels = labels[keep]
    if not rows_text:
        raise ValueError(f"no usable rows in {str(file_path)!r}; skipped: {skipped[:5]}.")
    notes = [f"line {n} is not valid UTF-8; decoded as {fallback_encoding}" for n in fallback_lines]
    _warn_skipped(str(file_path), skipped)
    return LabeledTexts(rows_text, labels, names, ids, skipped=skipped, notes=notes)


def _labels_to_ids(
    raw_labels: list[Any], class_names: Sequence[str] | None, labelled: bool
) -> tuple[np.ndarray, list[str], set[int]]:
    if not labelled:
        return np.zeros(len(raw_labels), np.int32), [], set()
    unknown: set[int] = set()
    if class_names is not None:
        names = list(class_names)
        lookup = {name: index for index, name in enumerate(names)}
        ids = []
        for position, label in enumerate(raw_labels):
            if label in lookup:
                ids.append(lookup[label])
            elif label.lstrip("-").isdigit() and 0 <= int(label) < len(names):
                ids.append(int(label))
            else:
                unknown.add(position)
                ids.append(-1)
        return np.asarray(ids, np.int32), names, unknown
    if raw_labels and all(_is_integer(label) for label in raw_labels):
        raw_labels = [str(int(label)) for label in raw_labels]  # "01" and "1" are one class
    names = sort_class_names(raw_labels)
    lookup = {name: index for index, name in enumerate(names)}
    return np.asarray([lookup[label] for label in raw_labels], np.int32), names, set()


def _check_header_row(path: pathlib.Path, header: list[str] | None, label_index: int, labels: list, texts: list):
    """Header rows that look like data are errors; data rows that look like a header get a warning."""
    if header is not None and label_index < len(header):
        first = header[label_index].strip()
        integers = bool(labels) and all(_is_integer(label) for label in labels)
        if first and (first in set(labels) or (integers and _is_integer(first))):
            raise ValueError(
                f"the first row of {str(path)!r} looks like data, not a header: its label field {first!r} is a "
                f"label like the other rows'. If the file has no header row, pass has_header=False "
                "(--no-header) and give the columns by 0-based index."
            )
    elif header is None and len(labels) > 2:
        rest = labels[1:]
        if all(_is_integer(label) for label in rest) and not _is_integer(labels[0]) and labels[0] not in rest:
            warnings.warn(
                f"the first row of {str(path)!r} looks like a header (label {labels[0]!r} among integer labels, "
                f"text {texts[0][:40]!r}); it is read as data because has_header=False.",
                stacklevel=3,
            )


# --------------------------------------------------------------------------------------------------
# A dataset's splits, subsets and folds.


def load_labeled(
    path: str | os.PathLike,
    *,
    text_column: str | int | Sequence[str | int] | None = None,
    label_column: str | int | None = None,
    has_header: bool = True,
    file_pattern: str = "*",
    delimiter: str | None = None,
) -> LabeledTexts:
    """A folder (:func:`load_text_folder`) or a CSV / TSV file (:func:`load_csv`), chosen by what `path` is.

    Args:
        path: a `<label>/<file>` folder, or a CSV / TSV file.
        text_column, label_column: the CSV columns (names, or 0-based indices; digit strings count as indices
            when `has_header=False`); required for a file.
        has_header, delimiter: as in :func:`load_csv`.
        file_pattern: as `pattern` in :func:`load_text_folder`.

    Returns:
        `LabeledTexts`.

    Raises:
        FileNotFoundError: when `path` does not exist.
        ValueError: when a CSV's columns are not given or wrong.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        return load_text_folder(path, pattern=file_pattern)
    if not path.is_file():
        raise FileNotFoundError(f"`path` does not exist: {str(path)!r}; expected a class folder or a CSV file.")
    if text_column is None or label_column is None:
        raise ValueError(
            f"{str(path)!r} is a file: give its `text_column` and `label_column` (--text-column, --label-column); "
            f"got text_column={text_column!r}, label_column={label_column!r}."
        )
    columns = [text_column] if isinstance(text_column, str | int) else list(text_column)
    return load_csv(path, [column_index(c) for c in columns], column_index(label_column),
                    delimiter, has_header=has_header)


def column_index(value: str | int) -> str | int:
    """A column given on the command line: an int or a digit string is a 0-based index, anything else a name.

    Example:
        >>> column_index("2"), column_index("title"), column_index(3)
        (2, 'title', 3)
    """
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def _relabel(data: LabeledTexts, class_names: list[str]) -> LabeledTexts:
    lookup = {name: index for index, name in enumerate(class_names)}
    labels = np.asarray([lookup[data.class_names[label]] for label in data.labels], np.int32)
    return LabeledTexts(list(data.texts), labels, list(class_names), list(data.ids), skipped=list(data.skipped),
                        notes=list(data.notes))


def stratified_subset(data: LabeledTexts, size: int, seed: int) -> LabeledTexts:
    """About `size` examples of `data` with the class proportions kept (seeded), in their original order.

    Each class keeps `size / len(data)` of its examples, rounded half up, so the total can differ from
    `size` by up to one per class (BBC News, 400 of 1,779: exactly 400).

    Example:
        >>> small = stratified_subset(load_text_folder("corpus"), 100, seed=42)  # doctest: +SKIP
    """
    check_positive_int("size", size)
    if size >= len(data):
        return data
    # The "test" part of a split with test_fraction=size/n is a stratified sample of that size.
    _, _, chosen = stratified_split_indices(data.labels, validation_fraction=0.0, test_fraction=size / len(data),
                                            seed=seed)
    return data.subset(chosen)


def stratified_folds(labels, num_folds: int, seed: int) -> list[np.ndarray]:
    """Seeded stratified K-fold: `num_folds` sorted index arrays that partition the examples.

    Each class's examples are permuted with `numpy.random.default_rng([seed, class])` and dealt to the folds
    in turn, continuing where the previous class stopped, so fold sizes differ by at most one and every
    class is spread as evenly as its size allows.

    Example:
        >>> [fold.tolist() for fold in stratified_folds([0, 0, 0, 1, 1, 1], 3, seed=0)]
        [[2, 5], [0, 3], [1, 4]]
    """
    labels = np.asarray(labels)
    if not is_int(num_folds) or not 2 <= num_folds <= len(labels):
        raise ValueError(f"`num_folds` must be an integer in [2, {len(labels)}] (the number of examples); "
                         f"got num_folds={num_folds!r}.")
    folds: list[list[int]] = [[] for _ in range(num_folds)]
    position = 0
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        for index in members[np.random.default_rng([seed, int(label)]).permutation(len(members))]:
            folds[position % num_folds].append(int(index))
            position += 1
    return [np.sort(np.asarray(fold, np.int64)) for fold in folds]


def _concatenate(parts: Sequence[LabeledTexts]) -> LabeledTexts:
    return LabeledTexts(
        [text for part in parts for text in part.texts],
        np.concatenate([part.labels for part in parts]) if parts else np.zeros(0, np.int32),
        list(parts[0].class_names), [identifier for part in parts for identifier in part.ids],
        skipped=[entry for part in parts for entry in part.skipped],
        notes=[note for part in parts for note in part.notes],
    )


def cross_validation_folds(
    train: LabeledTexts, validation: LabeledTexts | None, num_folds: int, seed: int
) -> list[tuple[LabeledTexts, LabeledTexts]]:
    """Stratified K-fold over train + validation pooled: ``(training part, held-out fold)`` per fold.

    The test split is not involved: it stays untouched for the final evaluation of every fold's model.

    Example:
        >>> folds = cross_validation_folds(splits.train, splits.validation, 5, seed=42)  # doctest: +SKIP
    """
    pool = _concatenate([part for part in (train, validation) if part is not None and len(part)])
    folds = stratified_folds(pool.labels, num_folds, seed)
    everything = np.arange(len(pool))
    return [(pool.subset(np.setdiff1d(everything, fold)), pool.subset(fold)) for fold in folds]


def load_classification_splits(
    train_path: str | os.PathLike,
    validation_path: str | os.PathLike | None = None,
    test_path: str | os.PathLike | None = None,
    *,
    text_column: str | int | Sequence[str | int] | None = None,
    label_column: str | int | None = None,
    has_header: bool = True,
    file_pattern: str = "*",
    delimiter: str | None = None,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 42,
) -> ClassificationSplits:
    """Train / validation / test from a dataset's own files or folders, or split from one of them.

    - only `train_path`: the seeded stratified split of :meth:`LabeledTexts.split` (80/10/10 by default);
    - `train_path` and `test_path`: validation is carved from train, `validation_fraction` of each class's
      training examples (seeded, stratified);
    - `train_path` and `validation_path`: test is carved from train the same way (`test_fraction`);
    - all three: used as they are.

    The classes are the distinct labels of all the splits read (sorted as in :func:`sort_class_names`); a
    class with no training example is an error naming it.

    Args:
        train_path, validation_path, test_path: class folders or CSV / TSV files (see :func:`load_labeled`).
        text_column, label_column, has_header, file_pattern, delimiter: as in :func:`load_labeled`.
        validation_fraction, test_fraction: fractions of the examples per class for a carved split.
        seed: the split seed.

    Returns:
        `ClassificationSplits` (its `notes` and `skipped` say where each split came from and what was left out).

    Example:
        >>> splits = load_classification_splits("20news/train", test_path="20news/test")  # doctest: +SKIP
    """
    options = dict(text_column=text_column, label_column=label_column, has_header=has_header,
                   file_pattern=file_pattern, delimiter=delimiter)
    given = {"train": train_path, "validation": validation_path, "test": test_path}
    parts = {name: None if path is None else load_labeled(path, **options) for name, path in given.items()}
    present = {name: {part.class_names[i] for i in np.unique(part.labels)} for name, part in parts.items()
               if part is not None}
    class_names = sort_class_names(set().union(*present.values()))
    missing = [name for name in class_names if name not in present["train"]]
    if missing:
        found_in = [split for split in ("validation", "test") if set(missing) & present.get(split, set())]
        raise ValueError(
            f"class(es) {missing} have no training example in {str(train_path)!r} but occur in the "
            f"{' and '.join(found_in)} data; every class needs training examples (add them, or drop those rows)."
        )
    parts = {name: None if part is None else _relabel(part, class_names) for name, part in parts.items()}
    notes = [f"{name}: {given[name]}" for name in given if given[name] is not None]
    if validation_path is None and test_path is None:
        splits = parts["train"].split(validation_fraction=validation_fraction, test_fraction=test_fraction,
                                      seed=seed)
        splits.notes = notes + [f"seeded (seed {seed}) stratified split {1 - validation_fraction - test_fraction:.0%}"
                                f"/{validation_fraction:.0%}/{test_fraction:.0%} of the train data"] + splits.notes
        return splits
    train = parts["train"]
    for carved, fraction in (("validation", validation_fraction), ("test", test_fraction)):
        if parts[carved] is None:
            keep, chosen, _ = stratified_split_indices(train.labels, validation_fraction=fraction, test_fraction=0.0,
                                                       seed=seed)
            parts[carved] = train.subset(chosen)
            train = train.subset(keep)
            notes.append(f"{carved}: carved from train, {fraction:.0%} of each class (seed {seed}, stratified)")
    everything = [part for part in parts.values() if part is not None]
    return ClassificationSplits(
        train=train, validation=parts["validation"], test=parts["test"], class_names=class_names, seed=seed,
        notes=notes + [note for part in everything for note in part.notes],
        skipped=[entry for part in everything for entry in part.skipped],
    )


def read_texts(
    path: str | os.PathLike,
    *,
    text_column: str | int | Sequence[str | int] | None = None,
    has_header: bool = True,
    file_pattern: str = "*",
    delimiter: str | None = None,
    stdin=None,
) -> tuple[list[str], list[str]]:
    """Texts to classify, with ids: `-` (standard input, one text per line), a folder, a CSV/TSV or a text file.

    - a folder: every regular, non-hidden file matching `file_pattern`, directly in it or one level down
      (a `<label>/<file>` tree), ids = the relative path;
    - a `.csv` / `.tsv` / `.tab` file, or any file when `text_column` is given: the text column(s), ids =
      "line N";
    - another file: its whole text, one document, id = the file name.

    Returns:
        `(ids, texts)`.
    """
    if os.fspath(path) == "-":
        import sys

        lines = [line.rstrip("\n") for line in (stdin or sys.stdin)]
        kept = [(f"line {number}", line) for number, line in enumerate(lines, start=1) if line.strip()]
        return [identifier for identifier, _ in kept], [text for _, text in kept]
    path = pathlib.Path(path)
    if path.is_dir():
        ids, texts = [], []
        for entry in _regular_files(path, file_pattern, path.name, []):
            ids.append(entry.name)
            texts.append(read_text(entry).text.strip())
        for folder in sorted(d for d in path.iterdir() if d.is_dir() and not _is_hidden(d)):
            for entry in _regular_files(folder, file_pattern, folder.name, []):
                ids.append(f"{folder.name}/{entry.name}")
                texts.append(read_text(entry).text.strip())
        if not ids:
            raise FileNotFoundError(f"no {file_pattern} files in {str(path)!r} or its sub-folders.")
        return ids, texts
    if not path.is_file():
        raise FileNotFoundError(f"`path` does not exist: {str(path)!r}; expected '-', a folder, a CSV or a text file.")
    if text_column is not None or path.suffix.lower() in (".csv", ".tsv", ".tab"):
        if text_column is None:
            raise ValueError(f"{str(path)!r} is a CSV/TSV file: give its `text_column` (--text-column).")
        columns = [text_column] if isinstance(text_column, str | int) else list(text_column)
        data = load_csv(path, [column_index(c) for c in columns], None, delimiter, has_header=has_header)
        return list(data.ids), list(data.texts)
    return [path.name], [read_text(path).text.strip()]
