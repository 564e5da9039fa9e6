"""Loaders for a user's own data: a folder of `<label>/*.txt` files, and a CSV / TSV file.

Both read UTF-8 (a byte-order mark is dropped) and fall back to Windows-1252 for files (or CSV lines) that
are not valid UTF-8, noting which ones in `notes`; CRLF becomes LF. Empty texts are left out and listed in
`skipped` (and summarised in one warning), never silently dropped.
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

from llm_tf.datasets._files import decode_bytes, normalize_newlines, read_text
from llm_tf.datasets.types import LabeledTexts


def _warn_skipped(source: str, skipped: list[str]) -> None:
    if skipped:
        shown = "; ".join(skipped[:5]) + (f"; ... ({len(skipped)} in all)" if len(skipped) > 5 else "")
        warnings.warn(f"{source}: left out {len(skipped)} entries: {shown}", stacklevel=3)


def load_text_folder(
    path: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    pattern: str = "*.txt",
    fallback_encoding: str = "cp1252",
    strip: bool = True,
) -> LabeledTexts:
    """Reads a folder laid out as `<path>/<class name>/<file>` into labelled texts.

    Args:
        path: the folder.
        class_names: the classes, in label order; None uses every subfolder holding matching files, sorted.
        pattern: file-name glob within each class folder.
        fallback_encoding: used for files that are not valid UTF-8 (noted in `notes`).
        strip: strip leading/trailing whitespace from each text.

    Returns:
        `LabeledTexts` with files in name order within each class, `ids` = "<class>/<file name>"; empty files
        are listed in `skipped`. Call `.split(...)` for a stratified train/validation/test split.

    Raises:
        FileNotFoundError: when `path` or a named class folder does not exist, or no file matches.

    Example:
        >>> data = load_text_folder("reviews/")  # doctest: +SKIP
        >>> splits = data.split(validation_fraction=0.1, test_fraction=0.1, seed=42)  # doctest: +SKIP
    """
    root = pathlib.Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"`path` is not a folder: {str(root)!r}; expected <path>/<label>/{pattern}.")
    if class_names is None:
        class_names = sorted(d.name for d in root.iterdir() if d.is_dir() and any(d.glob(pattern)))
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
        for file_path in sorted((root / name).glob(pattern)):
            if not file_path.is_file():
                continue
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
    _warn_skipped(str(root), skipped)
    return LabeledTexts(
        texts, np.asarray(labels, np.int32), list(class_names), ids, skipped=skipped, notes=notes
    )


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
    text_column: str | int,
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
    integer labels are kept as they are (`class_names` = "0".."max"), and string labels are numbered in sorted
    order (`class_names` = the sorted distinct labels). With `label_column=None` every label is 0 and
    `class_names` is empty (unlabelled text).

    Rows left out, each listed in `skipped` with its line number and summarised in one warning: blank
    lines, rows whose text is empty, rows with too few fields, rows with an empty or unknown label.
    Lines that are not valid UTF-8 are decoded with `fallback_encoding` and listed in `notes`.

    Args:
        path: the file.
        text_column: the text column's header name, or its 0-based index.
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
        ValueError: for an unknown column, or when no row remains.

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
    text_index = _column_index(header, text_column, "text_column")
    label_index = None if label_column is None else _column_index(header, label_column, "label_column")
    needed = max(text_index, -1 if label_index is None else label_index) + 1

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
        value = row[text_index].strip() if strip else row[text_index]
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
    if raw_labels and all(label.lstrip("-").isdigit() for label in raw_labels):
        values = [int(label) for label in raw_labels]
        if min(values) < 0:
            raise ValueError(f"integer labels must be non-negative; found {min(values)}.")
        return np.asarray(values, np.int32), [str(i) for i in range(max(values) + 1)], set()
    names = sorted(set(raw_labels))
    lookup = {name: index for index, name in enumerate(names)}
    return np.asarray([lookup[label] for label in raw_labels], np.int32), names, set()
