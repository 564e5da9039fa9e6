"""News-topic classification on BBC News: a small Transformer encoder from scratch vs TF-IDF + linear SVM.

The main job of the project (``make run``). The seed article's steps, each a library call (``llm_tf.tasks``):

1. Preprocess: BBC News, 2,225 articles in 5 topics, seeded stratified 80/10/10 split (seed 42: 1,779 / 223 /
   223); or your own data (``--train-path`` folder or CSV, optionally ``--validation-path`` / ``--test-path``).
   A WordPiece vocabulary is learned on the training split; every split is encoded once and cut into
   ``[CLS] ... [SEP]`` windows (``llm_tf.tasks.windows``).
2. Fine-tune: a BERT-style ``TextClassifier`` trained from scratch with ``model.fit`` per seed
   (``classification.run_seed``), in ``seed_<s>/`` run directories that resume after a crash.
3. Evaluate: test accuracy, macro-F1 (over the classes present in the split), per-class F1 and confusion
   matrices, mean ± std and a 95% t-interval over seeds, against TF-IDF + LinearSVC fit on the same training
   split.
   ``--folds K``: stratified K-fold cross-validation over train + validation pooled (the vocabulary is learned
   on that pool; one model per fold with the first seed; the test split is never used for training or
   selection and evaluates every fold's model).

Presets: ``full`` (default; 2 layers, 128 wide, masked mean pooling, 512-token head + tail windows, 8 epochs,
batch 16, 20% token masking, weight EMA 0.99, seeds 0 1 2; about 7 min per seed on 2 CPU cores) and ``smoke``
(a 1-layer, 64-wide model on 400 training articles, 64-token windows, one seed; about 20 s). Flags given
explicitly override the preset. How the preset was chosen, with every variant measured, is in docs/results.md.

Run directory ``<output-dir>/news_classification/<timestamp>/``: ``config.json``, ``tokenizer/``,
``seed_<s>/`` or ``fold_<k>/`` (metrics CSVs, TensorBoard, best/last ``.keras``, ``confusion_matrix.png``,
``test_predictions.csv``, ``results.json``), ``confusion_matrix.png`` (summed), ``confusion_matrix_baseline.png``,
``summary.txt`` and ``results.json``. Rerunning the same command continues an interrupted run (``--resume auto``).

Use a trained model: ``predict --run-dir RUN [--input FILE|DIR|CSV|-] [--output OUT.csv]`` writes id, predicted
label and class probabilities with the run's tokenizer, windows and evaluated checkpoint (``last.keras``);
without ``--input`` it predicts the run's own test split.

Example:
    python experiments/news_classification.py                       # full preset, seeds 0 1 2
    python experiments/news_classification.py --preset smoke --output-dir /tmp/runs
    python experiments/news_classification.py --train-path 20news/train --test-path 20news/test
    python experiments/news_classification.py --train-path agnews.csv --no-header --label-column 0 \\
        --text-column 1 --text-column 2
    python experiments/news_classification.py --preset smoke --folds 5
    python experiments/news_classification.py predict --run-dir runs/news_classification/<time> --input docs/
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from llm_tf.tasks import cli, runs
from llm_tf.tasks.classification import ClassificationConfig

EXPERIMENT = "news_classification"
NAMED_FORMATS = ("bbc",)
TRANSFORMER, BASELINE = "Transformer", "TF-IDF + LinearSVC"

PRESETS = {
    # The recipe with head + tail windows of 512 tokens and the tuned batch size and regularization.
    "full": ClassificationConfig(
        preset="full", data_format="bbc", max_sequence_length=512, train_windows="head_tail",
        eval_windows="head_tail", batch_size=16, token_mask_rate=0.2, ema_momentum=0.99,
    ),
    # Small enough for the test suite: a 400-article training subset, 64-token windows, one narrow layer.
    "smoke": ClassificationConfig(
        preset="smoke", data_format="bbc", max_train_examples=400, vocabulary_size=2000, max_sequence_length=64,
        hidden_dim=64, num_layers=1, num_heads=2, intermediate_dim=128, classifier_dropout=0.0, dropout=0.0,
        batch_size=32, epochs=8, learning_rate=5e-3, seeds=[0],
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (``--help`` lists every flag; recipe flags default to the preset's value)."""
    parser = argparse.ArgumentParser(
        prog="news_classification.py", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="News-topic classification on BBC News (or your own folder/CSV data): a Transformer encoder "
        "trained from scratch, compared with TF-IDF + LinearSVC on the same split. "
        "'predict --run-dir RUN' classifies new texts with a finished run.",
    )
    cli.add_common_arguments(parser, presets=list(PRESETS), default_preset="full")
    return cli.add_classification_arguments(parser, data_formats=NAMED_FORMATS + ("folder", "csv"))


def config_from_args(args: argparse.Namespace) -> ClassificationConfig:
    """The preset named by ``--preset`` with every explicitly given flag applied."""
    return cli.classification_config(vars(args), PRESETS[args.preset], named_formats=NAMED_FORMATS)


def load_data(config: ClassificationConfig):
    """``(splits, description)``: BBC News or the user's folder / CSV data, training subset applied."""
    from llm_tf.datasets import load_bbc_news
    from llm_tf.tasks import classification

    if config.data_format == "bbc":
        splits = load_bbc_news(config.data_dir, seed=config.split_seed,
                               validation_fraction=config.validation_fraction, test_fraction=config.test_fraction)
        description = "BBC News (Greene & Cunningham 2006), 5 topics"
    else:
        splits, description = classification.load_splits(config)
    return classification.prepare_splits(splits, description, config.max_train_examples, config.split_seed), description


def tokenizer_for(run, texts, config: ClassificationConfig):
    """The run's WordPiece tokenizer: loaded when saved (resume), else learned on ``texts`` and saved."""
    from llm_tf.text import WordPieceTokenizer

    directory = run.file("tokenizer")
    if os.path.isfile(os.path.join(directory, "vocab.txt")):
        return WordPieceTokenizer.load(directory)
    tokenizer = WordPieceTokenizer.train(texts, vocabulary_size=config.vocabulary_size, lower_case=config.lower_case)
    tokenizer.save(directory)
    return tokenizer


def train_members(run, config, splits, tokenizer, strategy, args) -> tuple[list[dict], str]:
    """One model per seed (``seed_<s>/``) or per fold (``fold_<k>/``); finished ones are reused."""
    from llm_tf.datasets import cross_validation_folds
    from llm_tf.tasks import classification

    if config.folds:
        parts = cross_validation_folds(splits.train, splits.validation, config.folds, config.split_seed)
        members = [("fold", k, runs.fold_run_dir(run, k, config.to_dict()), train, held_out, config.seeds[0])
                   for k, (train, held_out) in enumerate(parts)]
    else:
        members = [("seed", s, runs.seed_run_dir(run, s, config.to_dict()), splits.train, splits.validation, s)
                   for s in config.seeds]
    test = classification.encode_split(tokenizer, splits.test)
    results = []
    for unit, value, member_dir, train, validation, seed in members:
        done = runs.finished_results(member_dir, required=["test"])
        if done is None:
            print(f"{unit} {value}: training in {member_dir.path}", flush=True)
            encoded = {"train": classification.encode_split(tokenizer, train), "test": test,
                       "validation": classification.encode_split(tokenizer, validation)}
            done = classification.run_seed(
                member_dir, seed, encoded, splits.class_names, vocabulary_size=tokenizer.vocabulary_size,
                mask_id=tokenizer.mask_id, special_ids=tokenizer.special_ids, test_ids=splits.test.ids,
                strategy=strategy, log_every_n_steps=args.log_every_n_steps,
                backup_every_n_steps=args.backup_every_n_steps, title=TRANSFORMER, **config.recipe(),
            )
        else:
            print(f"{unit} {value}: already finished in {member_dir.path}; reusing its results", flush=True)
        results.append({**done, unit: value, "run_dir": member_dir.path})
        print(f"{unit} {value}: test accuracy {done['test']['accuracy']:.4f}, "
              f"macro-F1 {done['test']['macro_f1']:.4f}", flush=True)
    return results, "fold" if config.folds else "seed"


def run_experiment(args: argparse.Namespace, started: float) -> dict[str, Any]:
    """The main job: data → tokenizer → baseline → per-seed/fold training → summary → results.json."""
    import numpy as np

    from llm_tf import training
    from llm_tf.plots import plot_confusion_matrix
    from llm_tf.tasks import baselines, classification

    run, saved = runs.open_run(EXPERIMENT, args.runs_root, config_from_args(args).to_dict(), resume=args.resume)
    config = ClassificationConfig.from_dict(saved)
    strategy = training.setup_training(strategy=config.strategy, num_cpu_devices=config.num_cpu_devices,
                                       precision=config.precision, seed=config.seeds[0],
                                       deterministic=config.deterministic)
    cli.print_config(config, title=f"{EXPERIMENT} config")
    print(f"run directory: {run.path}{' (resumed)' if run.resumed else ''}; strategy "
          f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s)", flush=True)

    splits, description = load_data(config)
    sizes = {name: len(splits[name]) for name in splits.split_names}
    print(f"data: {description}; {sizes}; {splits.num_classes} classes {splits.class_names}", flush=True)
    for name in splits.split_names:
        print(f"  {name}: {splits[name].class_counts()}", flush=True)
    for label, entries in (("notes", splits.notes), ("left out", splits.skipped)):
        if entries:
            print(f"  {label}: {'; '.join(entries[:10])}{' ...' if len(entries) > 10 else ''}", flush=True)
    tokenizer_started = time.time()
    tokenizer = tokenizer_for(run, splits.train.texts + (splits.validation.texts if config.folds else []), config)
    lengths = classification.encode_split(tokenizer, splits.train).lengths
    test_windows = classification.encode_split(tokenizer, splits.test).windows_per_document(config.max_sequence_length)
    tokenizer_info = {
        "vocabulary_size": tokenizer.vocabulary_size, "time_s": round(time.time() - tokenizer_started, 3),
        "learned_on": "train + validation" if config.folds else "train",
        "mean_tokens_train": round(float(lengths.mean()), 1), "median_tokens_train": float(np.median(lengths)),
        "longer_than_one_window_train": round(float((lengths > config.max_sequence_length - 2).mean()), 4),
        "windows_per_test_article": round(float(test_windows.mean()), 3),
    }
    print(f"tokenizer: {tokenizer_info}", flush=True)

    baseline = None
    if config.baseline:
        evaluate = {name: (splits[name].texts, splits[name].labels) for name in ("validation", "test")}
        baseline = baselines.tfidf_svm_baseline(splits.train.texts, splits.train.labels, evaluate,
                                                splits.class_names, c=config.baseline_c, lower_case=config.lower_case)
        print(f"baseline {BASELINE}: test accuracy {baseline['test']['accuracy']:.4f}, "
              f"macro-F1 {baseline['test']['macro_f1']:.4f}", flush=True)

    members, unit = train_members(run, config, splits, tokenizer, strategy, args)
    summary = classification.summarize_reports([member["test"] for member in members], splits.class_names)
    summary[f"{unit}s"] = [member[unit] for member in members]
    metrics = {f"test_{name}_{stat}": summary[f"{name}_{stat}"]
               for name in ("accuracy", "macro_f1") for stat in ("mean", "std", "ci95")}
    if config.folds:
        held_out = [member["validation"]["accuracy"] for member in members]
        cross_validation = {"folds": config.folds, "pooled": "train + validation", "test": "untouched",
                            "held_out_accuracy": runs.summarize_values(held_out),
                            "held_out_macro_f1": runs.summarize_values([m["validation"]["macro_f1"] for m in members])}
        cv = cross_validation["held_out_accuracy"]
        metrics.update(cv_accuracy_mean=cv["mean"], cv_accuracy_std=cv["std"],
                       cv_accuracy_ci95=[cv["ci95_low"], cv["ci95_high"]])
    if baseline is not None:
        metrics.update(baseline_test_accuracy=baseline["test"]["accuracy"],
                       baseline_test_macro_f1=baseline["test"]["macro_f1"])
    count = f"{len(members)} {unit}{'s' if len(members) > 1 else ''}"
    plots = {"confusion_matrix_png": plot_confusion_matrix(
        summary["confusion_matrix_sum"], splits.class_names, run.file("confusion_matrix.png"),
        title=f"{TRANSFORMER}, test, summed over {count}")}
    if baseline is not None:
        plots["baseline_confusion_matrix_png"] = plot_confusion_matrix(
            baseline["test"]["confusion_matrix"], splits.class_names, run.file("confusion_matrix_baseline.png"),
            title=f"{BASELINE}, test")
    tables = classification.summary_tables(members, splits.class_names, TRANSFORMER, baseline, BASELINE, unit)
    with open(run.file("summary.txt"), "w", encoding="utf-8") as file:
        file.write(tables + "\n")
    keep = ("test", "validation", "train_time_s", "status", "num_parameters", "run_dir", "seed")
    per_member = [{key: member.get(key) for key in keep + (unit,)} for member in members]
    for row in per_member:
        row["validation_accuracy"] = row["validation"]["accuracy"] if row.get("validation") else None
    extra = {
        "experiment": EXPERIMENT, "config": config.to_dict(), "tokenizer": tokenizer_info, "baseline": baseline,
        "data": {"description": description, "class_names": splits.class_names, "sizes": sizes,
                 "split_seed": config.split_seed, "train_class_counts": splits.train.class_counts(),
                 "test_class_counts": splits.test.class_counts(), "notes": splits.notes, "skipped": splits.skipped},
        "transformer": {**summary, f"per_{unit}": per_member},
        "strategy": type(strategy).__name__, "num_replicas": strategy.num_replicas_in_sync, **plots,
        "summary_table": tables,
    }
    if config.folds:
        extra["cross_validation"] = cross_validation
    wall_time = time.time() - started
    training.write_results(run, metrics, wall_time, extra=extra)
    print(f"\n{EXPERIMENT}: test split, {description}; macro-F1 averages over the classes present in the "
          f"evaluated split\n{tables}\n\nwall time {wall_time:.1f} s; results in {run.results_json}", flush=True)
    with open(run.results_json, encoding="utf-8") as file:
        return {**json.load(file), "run_dir": run.path}


def predict(argv: list[str]) -> str:
    """``predict --run-dir RUN [--input FILE|DIR|CSV|-] [--output OUT.csv]``: classify texts with a finished run."""
    from llm_tf.datasets import read_texts
    from llm_tf.tasks import classification

    parser = argparse.ArgumentParser(prog="news_classification.py predict", description=predict.__doc__)
    parser.add_argument("--run-dir", required=True, help="a finished run directory")
    parser.add_argument("--input", default=None, help="a text file, a folder of files, a CSV/TSV (with "
                        "--text-column) or - (one text per line); default: the run's own test split")
    parser.add_argument("--output", default=None, help="the CSV to write (default RUN/predictions.csv; - = stdout)")
    parser.add_argument("--member", default=None, help="seed_<s> or fold_<k> (default: the first seed or fold 0)")
    parser.add_argument("--text-column", action="append", default=None, help="CSV text column(s)")
    parser.add_argument("--no-header", dest="has_header", action="store_false", help="the CSV has no header row")
    parser.add_argument("--file-pattern", default="*", help="file-name glob for a folder input")
    args = parser.parse_args(argv)
    saved, tokenizer, model, class_names, member_dir = classification.load_trained_run(args.run_dir, args.member)
    config = ClassificationConfig.from_dict(saved)
    if args.input is None:
        test = load_data(config)[0].test
        ids, texts = test.ids, test.texts
    else:
        ids, texts = read_texts(args.input, text_column=args.text_column, has_header=args.has_header,
                                file_pattern=args.file_pattern)
    probabilities = classification.predict_probabilities(
        model, classification.encode_split(tokenizer, texts), config.eval_windows, config.max_sequence_length,
        config.batch_size)
    output = args.output or os.path.join(args.run_dir, "predictions.csv")
    classification.write_predictions_csv(sys.stdout if output == "-" else output, ids, probabilities, class_names)
    print(f"predicted {len(ids)} texts with {member_dir}: {output}", file=sys.stderr, flush=True)
    return output


def main(argv: list[str] | None = None) -> Any:
    """Run the experiment (returns its results with ``run_dir``), or ``predict`` (returns the CSV path)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["predict"]:
        return predict(argv[1:])
    started = time.time()
    return run_experiment(build_parser().parse_args(argv), started)


if __name__ == "__main__":
    main()
