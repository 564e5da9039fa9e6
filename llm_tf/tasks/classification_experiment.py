"""One classification experiment end to end, shared by the news and sentiment scripts.

:func:`run_classification_experiment` takes loaded splits and a :class:`ClassificationConfig` and does the rest:
tokenizer (learned, or the pretrained model's with ``init_from``), TF-IDF + LinearSVC baseline, one model per seed
(``seed_<s>/``) or per fold (``fold_<k>/``), the summary over them, confusion matrices and ``results.json``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from llm_tf.tasks import classification, runs
from llm_tf.tasks.classification import ClassificationConfig

BASELINE = "TF-IDF + LinearSVC"


def train_members(run, config: ClassificationConfig, splits, tokenizer, strategy, title: str,
                  log_every_n_steps: int = 50, backup_every_n_steps: int | None = None) -> tuple[list[dict], str]:
    """One model per seed (``seed_<s>/``) or per fold (``fold_<k>/``); finished ones are reused.

    Returns:
        ``(member results, "seed" or "fold")``.
    """
    from llm_tf.datasets import cross_validation_folds

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
                test_texts=splits.test.texts, strategy=strategy, log_every_n_steps=log_every_n_steps,
                backup_every_n_steps=backup_every_n_steps, title=title, **config.recipe(),
            )
        else:
            print(f"{unit} {value}: already finished in {member_dir.path}; reusing its results", flush=True)
        results.append({**done, unit: value, "run_dir": member_dir.path})
        print(f"{unit} {value}: test accuracy {done['test']['accuracy']:.4f}, "
              f"macro-F1 {done['test']['macro_f1']:.4f}", flush=True)
    return results, "fold" if config.folds else "seed"


def run_classification_experiment(run, config: ClassificationConfig, splits, description: str, strategy, *,
                                  experiment: str, title: str = "Transformer", log_every_n_steps: int = 50,
                                  backup_every_n_steps: int | None = None, started: float | None = None
                                  ) -> dict[str, Any]:
    """Tokenizer → baseline → per-seed/fold training → summary → ``results.json`` in ``run``.

    Args:
        run: the experiment's ``RunDirectory`` (``llm_tf.tasks.runs.open_run``).
        config: the validated config (with the pretrained architecture applied when ``init_from`` is set).
        splits: ``ClassificationSplits`` (training subset already applied).
        description: the data's one-line description for the report.
        strategy: the ``tf.distribute`` strategy.
        experiment, title: the experiment's and the model's names in reports.
        log_every_n_steps, backup_every_n_steps: passed to the training.
        started: the experiment's start time (``time.time()``), for the wall time.

    Returns:
        The run's ``results.json`` contents plus ``run_dir``.
    """
    from llm_tf import training
    from llm_tf.plots import plot_confusion_matrix
    from llm_tf.tasks import baselines

    started = time.time() if started is None else started
    if config.init_from:
        title = f"{title} (pretrained)"
    sizes = {name: len(splits[name]) for name in splits.split_names}
    print(f"data: {description}; {sizes}; {splits.num_classes} classes {splits.class_names}", flush=True)
    for name in splits.split_names:
        print(f"  {name}: {splits[name].class_counts()}", flush=True)
    for label, entries in (("notes", splits.notes), ("left out", splits.skipped)):
        if entries:
            print(f"  {label}: {'; '.join(entries[:10])}{' ...' if len(entries) > 10 else ''}", flush=True)
    tokenizer_started = time.time()
    tokenizer = classification.tokenizer_for_run(
        run, splits.train.texts + (splits.validation.texts if config.folds else []), config)
    lengths = classification.encode_split(tokenizer, splits.train).lengths
    test_windows = classification.encode_split(tokenizer, splits.test).windows_per_document(config.max_sequence_length)
    tokenizer_info = {
        "vocabulary_size": tokenizer.vocabulary_size, "time_s": round(time.time() - tokenizer_started, 3),
        "learned_on": "pretrained model's" if config.init_from else
        ("train + validation" if config.folds else "train"),
        "mean_tokens_train": round(float(lengths.mean()), 1), "median_tokens_train": float(np.median(lengths)),
        "longer_than_one_window_train": round(float((lengths > config.max_sequence_length - 2).mean()), 4),
        "windows_per_test_article": round(float(test_windows.mean()), 3),
    }
    print(f"tokenizer: {tokenizer_info}", flush=True)

    baseline = None
    if config.baseline:
        evaluate = {name: (splits[name].texts, splits[name].labels) for name in ("validation", "test")
                    if splits[name] is not None and len(splits[name])}
        baseline = baselines.tfidf_svm_baseline(splits.train.texts, splits.train.labels, evaluate,
                                                splits.class_names, c=config.baseline_c, lower_case=config.lower_case)
        print(f"baseline {BASELINE}: test accuracy {baseline['test']['accuracy']:.4f}, "
              f"macro-F1 {baseline['test']['macro_f1']:.4f}", flush=True)

    members, unit = train_members(run, config, splits, tokenizer, strategy, title, log_every_n_steps,
                                  backup_every_n_steps)
    summary = classification.summarize_reports([member["test"] for member in members], splits.class_names)
    summary[f"{unit}s"] = [member[unit] for member in members]
    metrics = {f"test_{name}_{stat}": summary[f"{name}_{stat}"]
               for name in ("accuracy", "macro_f1") for stat in ("mean", "std", "ci95")}
    cross_validation = None
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
        title=f"{title}, test, summed over {count}")}
    if baseline is not None:
        plots["baseline_confusion_matrix_png"] = plot_confusion_matrix(
            baseline["test"]["confusion_matrix"], splits.class_names, run.file("confusion_matrix_baseline.png"),
            title=f"{BASELINE}, test")
    tables = classification.summary_tables(members, splits.class_names, title, baseline, BASELINE, unit)
    with open(run.file("summary.txt"), "w", encoding="utf-8") as file:
        file.write(tables + "\n")
    keep = ("test", "validation", "train_time_s", "status", "num_parameters", "run_dir", "seed", "misclassified")
    per_member = [{key: member.get(key) for key in keep + (unit,)} for member in members]
    for row in per_member:
        row["validation_accuracy"] = row["validation"]["accuracy"] if row.get("validation") else None
    extra = {
        "experiment": experiment, "config": config.to_dict(), "tokenizer": tokenizer_info, "baseline": baseline,
        "data": {"description": description, "class_names": splits.class_names, "sizes": sizes,
                 "split_seed": config.split_seed, "train_class_counts": splits.train.class_counts(),
                 "test_class_counts": splits.test.class_counts(), "notes": splits.notes, "skipped": splits.skipped},
        "transformer": {**summary, f"per_{unit}": per_member},
        "strategy": type(strategy).__name__, "num_replicas": strategy.num_replicas_in_sync, **plots,
        "summary_table": tables,
    }
    if cross_validation is not None:
        extra["cross_validation"] = cross_validation
    wall_time = time.time() - started
    training.write_results(run, metrics, wall_time, extra=extra)
    print(f"\n{experiment}: test split, {description}; macro-F1 averages over the classes present in the "
          f"evaluated split\n{tables}\n\nwall time {wall_time:.1f} s; results in {run.results_json}", flush=True)
    with open(run.results_json, encoding="utf-8") as file:
        return {**json.load(file), "run_dir": run.path}


__all__ = ["BASELINE", "run_classification_experiment", "train_members"]
