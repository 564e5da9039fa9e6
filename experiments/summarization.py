"""Extractive summarization of BBC News Summary with a Transformer sentence scorer; SAMSum evaluation.

``--dataset bbc`` (default), all through ``llm_tf.tasks.summarization``:

1. Data: BBC News Summary with the seeded stratified 80/10/10 split of ``load_bbc_news_summary`` (the same
   article ids per split as the news classification job: train 1,779 / validation 223 / test 223). Articles and
   references are split into sentences; every article sentence gets an oracle label (exact match after
   normalisation, else a greedy ROUGE oracle).
2. Baselines on the same split: Lead-3, Lead-k (k tuned on validation by ROUGE-2 F), TextRank over TF-IDF
   sentence vectors (IDF from the training sentences; same length budget as the model) and the extractive
   oracle (upper bound).
3. Model: ``SentenceScorer`` = a ``TransformerEncoder`` over each sentence's words (word vocabulary from the
   training split), mean-pooled, plus hand features and a sentence-position embedding, then Transformer blocks
   across the article's sentences; trained with binary cross-entropy on the oracle labels by
   ``llm_tf.training.train`` (run directory ``scorer/``: best/last .keras, crash-safe backups, exact resume);
   the last epoch's model is used (in the full run validation loss was lowest after epoch 2 of 4, 0.161 vs
   0.224 at the end; choosing best.keras was not measured).
   Budget: ``ratio`` x article words (the median reference/article word ratio of the training split) or the
   fixed k best on validation, whichever has the higher validation ROUGE-2 F.
4. Scores on the test split: ROUGE-1/2/L/Lsum F with 95% bootstrap intervals (rouge-score, Porter stemming;
   ROUGE-L is one LCS over the whole summary, ROUGE-Lsum the sentence-level union LCS with one sentence per
   line). BBC references list their sentences in another order than the article, which ROUGE-L penalises, so
   ROUGE-Lsum is the better-suited L figure here; both are reported.

5. Abstractive (``llm_tf.tasks.abstractive``; ``--abstractive-minutes 0`` skips it): a pre-norm
   ``Seq2SeqTransformer`` (3+3 layers, 128 wide, tied embeddings, 8k byte-level BPE learned on the training
   articles and summaries) trained article -> summary on the same split, articles cut to their first 512 tokens
   and summaries to 255, token-count batches, label smoothing 0.1, inverse-square-root schedule, greedy
   validation ROUGE every 4 epochs, a wall-clock budget (20 minutes by default; the run directory
   ``abstractive/`` resumes like every run); the test articles summarized greedy and with beam search (4), scored
   by the same ROUGE path, with summaries/s and tokens/s. With 1,779 training pairs and minutes of CPU it is far
   below the extractive scorer: its figures are reported beside it, not tuned to look better.

``--dataset samsum --model-run RUN`` (evaluation only: the project's SAMSum copy has no training split): Lead-3,
Longest-3 and the BBC-trained scorer of RUN (top 3 turns) on the SAMSum test dialogues, each turn one sentence.
Published anchors (Gliwa et al. 2019, test): Lead-3 31.4 / 8.7 / 29.4, Longest-3 32.5 / 10.3 / 29.9
(ROUGE-1 / 2 / L).

Run directory ``<output-dir>/summarization/<timestamp>/``: config.json, vocabulary.json, scorer/ (the training
run), abstractive/ (its training run, tokenizer and epoch weights), examples.md (3 test summaries beside their
references), summary.txt and results.json. Rerunning the same
command continues an interrupted run. Presets: ``full`` (default) and ``smoke`` (small subsets, 2 epochs).
"""

from __future__ import annotations

from llm_tf.runtime import reexec_with_tuned_malloc

reexec_with_tuned_malloc(__name__)  # first, before TensorFlow loads: glibc reads its malloc tunables at process start

import argparse
import dataclasses
import json
import os
import time

import numpy as np

from llm_tf import training
from llm_tf.datasets import load_bbc_news_summary, load_samsum
from llm_tf.metrics import DEFAULT_ROUGE_TYPES
from llm_tf.tasks import summarization as S
from llm_tf.tasks.cli import (
    add_common_arguments,
    apply_overrides,
    default_data_dir,
    flag_overrides,
    format_table,
)
from llm_tf.tasks.runs import finished_results, member_run_dir, open_run

EXPERIMENT = "summarization"
ROUGE_TYPES = DEFAULT_ROUGE_TYPES
GLIWA_2019 = {"lead-3": (31.4, 8.7, 29.4), "longest-3": (32.5, 10.3, 29.9)}


@dataclasses.dataclass
class Config:
    dataset: str = "bbc"
    train_limit: int = 0
    eval_limit: int = 0
    epochs: int = 4
    batch_size: int = 16
    learning_rate: float = 2e-3
    hidden_dim: int = 32
    num_layers: int = 1
    num_heads: int = 2
    intermediate_dim: int = 64
    document_layers: int = 2
    dropout: float = 0.1
    max_sentences: int = 40
    max_sentence_tokens: int = 32
    vocabulary_size: int = 20000
    bootstrap_samples: int = 1000
    # The abstractive encoder-decoder (llm_tf.tasks.abstractive); abstractive_minutes=0 skips it.
    abstractive_minutes: float = 20.0
    abstractive_epochs: int = 40
    abstractive_vocabulary_size: int = 8000
    abstractive_max_source_length: int = 512
    abstractive_max_target_length: int = 256
    abstractive_hidden_dim: int = 128
    abstractive_layers: int = 3
    abstractive_beams: int = 4
    seed: int = 0
    optimizer_update: str = "fused"  # --optimizer-update: "per-variable" for Keras's AdamW update


PRESETS = {
    "full": Config(),
    "smoke": Config(train_limit=96, eval_limit=24, epochs=2, batch_size=8, hidden_dim=32, intermediate_dim=64,
                    document_layers=1, max_sentences=32, max_sentence_tokens=24, vocabulary_size=4000,
                    bootstrap_samples=200, abstractive_minutes=2.0, abstractive_epochs=1,
                    abstractive_vocabulary_size=600, abstractive_max_source_length=96,
                    abstractive_max_target_length=32, abstractive_hidden_dim=32, abstractive_layers=1,
                    abstractive_beams=2),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, list(PRESETS))
    parser.add_argument("--dataset", choices=["bbc", "samsum"], default=None)
    parser.add_argument("--model-run", default=None, help="a finished bbc run directory (for --dataset samsum)")
    for field in dataclasses.fields(Config):
        if field.name not in ("dataset", "seed", "optimizer_update"):  # --dataset is above; --seed, --optimizer-update are common flags
            parser.add_argument("--" + field.name.replace("_", "-"), type=type(field.default), default=None)
    parser.add_argument("--verbose", type=int, default=2)
    return parser.parse_args(argv)


def rouge_row(name, report):
    return [name] + [f"{100 * report[t]['fmeasure']:.1f} [{100 * report[t]['ci'][0]:.1f}, "
                     f"{100 * report[t]['ci'][1]:.1f}]" for t in ROUGE_TYPES]


def documents_of(pairs, count, **options):
    pairs = pairs.subset(np.arange(min(count, len(pairs)))) if count else pairs
    return S.prepare_documents(pairs.sources, pairs.targets, pairs.ids, **options)


def run_samsum(config, model_run, data_dir, run):
    pairs = load_samsum(data_dir).test
    documents = documents_of(pairs, config.eval_limit, lines_only=True, labels=False)
    scorers = {"lead-3": [S.lead_scores(d.sentences) for d in documents],
               "longest-3": [S.longest_scores(d.sentences) for d in documents]}
    if model_run:
        with open(os.path.join(model_run, "vocabulary.json"), encoding="utf-8") as file:
            vocabulary = json.load(file)
        model = S.load_scorer(os.path.join(model_run, "scorer", "last.keras"))
        scorer_config = model.scorer_config
        arrays = S.encode_documents(documents, vocabulary, scorer_config["max_sentences"],
                                    scorer_config["max_sentence_tokens"])
        scorers["bbc-scorer top-3"] = S.predict_scores(model, documents, arrays)
    results = {}
    for name, scores in scorers.items():
        selections = S.summarize(documents, scores, k=3)
        results[name] = S.rouge_report(S.summary_texts(documents, selections), [d.reference for d in documents],
                                       seed=config.seed)
    return documents, results, {}


def run_bbc(config, data_dir, run, verbose, log_every_n_steps=50, backup_every_n_steps=None):
    data = load_bbc_news_summary(data_dir)
    train = documents_of(data.train, config.train_limit)
    validation = documents_of(data.validation, config.eval_limit)
    test = documents_of(data.test, config.eval_limit)
    ratio = S.learn_length_ratio(train)
    best_k, lead_table = S.tune_lead_k(validation)
    vectorizer = S.fit_idf(train)

    vocabulary_path = run.file("vocabulary.json")
    if not os.path.isfile(vocabulary_path):
        training.write_json(vocabulary_path, S.build_vocabulary(train, config.vocabulary_size))
    with open(vocabulary_path, encoding="utf-8") as file:
        vocabulary = json.load(file)
    scorer_config = S.ScorerConfig(
        vocabulary_size=len(vocabulary), max_sentences=config.max_sentences,
        max_sentence_tokens=config.max_sentence_tokens, hidden_dim=config.hidden_dim, num_layers=config.num_layers,
        num_heads=config.num_heads, intermediate_dim=config.intermediate_dim,
        document_layers=config.document_layers, dropout=config.dropout)
    arrays = {name: S.encode_documents(docs, vocabulary, config.max_sentences, config.max_sentence_tokens)
              for name, docs in (("train", train), ("validation", validation), ("test", test))}
    scorer_dir = member_run_dir(run, "scorer", dataclasses.asdict(scorer_config))
    started = time.perf_counter()
    if finished_results(scorer_dir) is None:
        S.train_scorer(arrays["train"], arrays["validation"], scorer_config, epochs=config.epochs,
                       batch_size=config.batch_size, learning_rate=config.learning_rate, seed=config.seed,
                       run_dir=scorer_dir, verbose=verbose, log_every_n_steps=log_every_n_steps,
                       backup_every_n_steps=backup_every_n_steps)
    training_s = time.perf_counter() - started
    model = S.load_scorer(scorer_dir.last_model)

    validation_scores = S.predict_scores(model, validation, arrays["validation"])
    budget_name, budget, budget_table = S.choose_budget(validation, validation_scores, ratio)

    started = time.perf_counter()
    scores = {"scorer": S.predict_scores(model, test, arrays["test"])}
    seconds_per_article = (time.perf_counter() - started) / len(test)
    scores.update({"lead-3": [S.lead_scores(d.sentences) for d in test],
                   f"lead-{best_k}": [S.lead_scores(d.sentences) for d in test],
                   "textrank": [S.textrank_scores(d.sentences, vectorizer) for d in test],
                   "oracle": [d.labels.astype(float) - 1e-9 * np.arange(len(d.labels)) for d in test]})
    selections = {"scorer": S.summarize(test, scores["scorer"], **budget),
                  "lead-3": S.summarize(test, scores["lead-3"], k=3),
                  f"lead-{best_k}": S.summarize(test, scores[f"lead-{best_k}"], k=best_k),
                  "textrank": S.summarize(test, scores["textrank"], **budget),
                  "oracle": [[int(i) for i in np.flatnonzero(d.labels)] for d in test]}
    results = {name: S.rouge_report(S.summary_texts(test, chosen), [d.reference for d in test], seed=config.seed)
               for name, chosen in selections.items()}
    extra = {}
    if config.abstractive_minutes > 0:
        generated, extra["abstractive"] = run_abstractive(config, train, validation, test, run, verbose,
                                                          log_every_n_steps, backup_every_n_steps)
        for name, summaries in generated.items():
            results[name] = S.rouge_report(summaries, [d.reference for d in test], seed=config.seed)
        extra["abstractive_examples"] = generated[f"abstractive beam{config.abstractive_beams}"][:3]
    extra.update({"length_ratio": ratio, "lead_k": best_k, "lead_k_validation_rouge2": lead_table,
             "budget": budget_name, "budget_validation_rouge2": budget_table, "training_wall_s": training_s,
             "scoring_ms_per_article": 1000 * seconds_per_article, "split_sizes": [len(train), len(validation),
                                                                                    len(test)],
             "test_ids": [d.identifier for d in test]})
    return test, results, {"selections": selections["scorer"], **extra}


def run_abstractive(config, train, validation, test, run, verbose, log_every_n_steps, backup_every_n_steps):
    """Train (or resume) the abstractive model in ``run/abstractive``; its greedy and beam test summaries."""
    from llm_tf.tasks import abstractive as A

    model_config = A.AbstractiveConfig(
        vocabulary_size=config.abstractive_vocabulary_size, max_source_length=config.abstractive_max_source_length,
        max_target_length=config.abstractive_max_target_length, hidden_dim=config.abstractive_hidden_dim,
        num_layers=config.abstractive_layers, intermediate_dim=4 * config.abstractive_hidden_dim,
        num_heads=max(1, config.abstractive_hidden_dim // 32), epochs=config.abstractive_epochs,
        max_minutes=config.abstractive_minutes, num_beams=config.abstractive_beams,
        val_every=min(4, config.abstractive_epochs))
    member = member_run_dir(run, "abstractive", dataclasses.asdict(model_config))
    model, tokenizer, info = A.train_abstractive(train, validation, model_config, member, seed=config.seed,
                                                 verbose=verbose, log_every_n_steps=log_every_n_steps,
                                                 backup_every_n_steps=backup_every_n_steps)
    generated = {}
    for beams in (1, model_config.num_beams):
        name = "abstractive greedy" if beams == 1 else f"abstractive beam{beams}"
        generated[name], info[f"speed {name}"] = A.generate_summaries(
            model, tokenizer, test, num_beams=beams, length_penalty=model_config.length_penalty,
            batch_size=model_config.decode_batch_size)
        info[f"length_ratio {name}"] = A.mean_length_ratio(generated[name], [d.reference for d in test])
    return generated, {**info, "config": dataclasses.asdict(model_config)}


def main(argv=None):
    args = parse_args(argv)
    values = vars(args)
    config = apply_overrides(PRESETS[args.preset], flag_overrides(values, Config, skip=("seed",)))
    config = dataclasses.replace(config, seed=args.seed, dataset=args.dataset or config.dataset)
    run, saved = open_run(EXPERIMENT, args.runs_root, {**dataclasses.asdict(config), "model_run": args.model_run},
                          resume=args.resume)
    model_run = saved.pop("model_run", None)
    config = Config(**saved)
    training.setup_training(strategy=args.strategy, num_cpu_devices=args.num_cpu_devices, precision=args.precision,
                            seed=config.seed, deterministic=True, optimizer_update=config.optimizer_update)
    data_dir = default_data_dir(args.data_dir)
    started = time.perf_counter()
    if config.dataset == "samsum":
        documents, results, extra = run_samsum(config, model_run, data_dir, run)
    else:
        documents, results, extra = run_bbc(config, data_dir, run, args.verbose,
                                             args.log_every_n_steps, args.backup_every_n_steps)
        S.write_examples(run.file("examples.md"), documents, extra["selections"], extra.get("abstractive_examples"))
    wall = time.perf_counter() - started
    table = format_table(["method"] + [f"{t} F [95% CI]" for t in ROUGE_TYPES],
                         [rouge_row(name, report) for name, report in results.items()])
    if config.dataset == "samsum":
        table += "\nGliwa et al. 2019 (R1/R2/L): " + "; ".join(f"{k} {v}" for k, v in GLIWA_2019.items())
    print(table)
    with open(run.file("summary.txt"), "w", encoding="utf-8") as file:
        file.write(table + "\n")
    metrics = {name: {t: report[t] for t in ROUGE_TYPES} for name, report in results.items()}
    training.write_results(run, metrics, wall, extra={"config": dataclasses.asdict(config), "model_run": model_run,
                                                      "num_test_documents": len(documents), **extra})
    print(f"run directory: {run.path} ({wall:.0f} s)")
    return run.path


if __name__ == "__main__":
    main()
