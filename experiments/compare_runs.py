"""Pretrained vs scratch: finished classification runs side by side, with paired differences over seeds.

One ``--row`` per task: its label, then ``COLUMN=RUN_DIR`` pairs (a run of ``news_classification.py`` or
``sentiment.py`` each, finished). Columns keep the order of their first appearance; the ``--reference`` column
(default ``scratch``) is paired seed by seed against every other column of its row, with a Student-t 95%
interval; the TF-IDF + LinearSVC column comes from whichever run of the row fitted the baseline. Runs of one row
must be on the same examples (same split, subset and folders), else the command stops and names the field;
recipe fields that differ from the reference are printed under the table (``llm_tf.tasks.comparison``).

Example:
    python experiments/compare_runs.py \\
        --row "BBC News, 10% of training labels" scratch=runs/news_classification/A \\
              "books + task texts"=runs/news_classification/B \\
        --row "SST-2 dev" scratch=runs/sentiment/C "books + task texts"=runs/sentiment/D \\
        --output runs/comparison.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="compare_runs.py", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--row", action="append", nargs="+", required=True, metavar="LABEL COLUMN=RUN",
                        help="a task label, then one COLUMN=RUN_DIR per start (repeat --row per task)")
    parser.add_argument("--reference", default="scratch", help="the column every other one is paired against")
    parser.add_argument("--metric", choices=("accuracy", "macro_f1"), default="accuracy")
    parser.add_argument("--split", choices=("test", "validation"), default="test",
                        help="the held-out split the figures come from (validation: a second estimate; it picks "
                             "no checkpoint)")
    parser.add_argument("--output", default=None,
                        help="also write the table to this Markdown file and its figures to the same path with .json")
    return parser


def parse_rows(parser: argparse.ArgumentParser, raw_rows: list[list[str]]) -> list[tuple[str, dict[str, str]]]:
    rows = []
    for label, *pairs in raw_rows:
        if not pairs:
            parser.error(f"--row {label!r} names no run: give COLUMN=RUN_DIR after the label.")
        members: dict[str, str] = {}
        for pair in pairs:
            column, separator, path = pair.partition("=")
            if not separator or not column or not path:
                parser.error(f"--row {label!r}: {pair!r} is not COLUMN=RUN_DIR.")
            if column in members:
                parser.error(f"--row {label!r}: column {column!r} is given twice.")
            members[column] = path
        rows.append((label, members))
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    rows = parse_rows(parser, args.row)
    from llm_tf.tasks.comparison import compare_runs, format_comparison

    comparison = compare_runs(rows, reference=args.reference, metric=args.metric, split=args.split)
    text = format_comparison(comparison)
    print(text)
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(text + "\n")
        figures_path = os.path.splitext(args.output)[0] + ".json"
        with open(figures_path, "w", encoding="utf-8") as file:
            json.dump(comparison, file, indent=2)
        print(f"written: {args.output}, {figures_path}")
    return comparison


if __name__ == "__main__":
    main()
