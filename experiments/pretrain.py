"""Masked-LM pretraining of a BERT-style encoder on Project Gutenberg books (optionally + task training texts).

The seed article's step "pretrain on large unlabeled text" (``llm_tf.tasks.pretraining``):

1. Corpus: the 113 Gutenberg books, split by book (grouped by author, seed 42; ~10% held out), plus with
   ``--add-texts bbc sst2`` the *training* texts of the news and sentiment jobs (never their validation/test).
2. A WordPiece vocabulary (16,000 pieces) learned on the training documents; documents encoded once and packed
   into ``[CLS] ... [SEP]`` rows of 128 tokens, per split.
3. ``MaskedLM`` on a 2-layer, 128-wide ``TransformerEncoder`` (the news job's shape; why not BERT-Mini's
   4 × 256: ``PretrainConfig``): dynamic 80/10/10 masking of 15% of the tokens, drawn again every interval
   (``--whole-word-masking`` masks whole words); AdamW, warmup + cosine decay; ``--max-steps`` or
   ``--max-tokens`` budget.
4. After every interval (``--eval-every-n-steps``): held-out masked-token accuracy and perplexity on books
   never trained on, tokens seen and tokens/s (``pretrain_eval.csv`` / ``.png``).

``--continue-from RUN --no-books --add-texts bbc`` goes on training a finished run's masked LM, with its vocabulary,
on the BBC training articles alone: task-adaptive pretraining (Gururangan et al. 2020), a second phase on the task's
own unlabelled texts (README: the 10%-of-labels BBC comparison). With a longer ``--sequence-length`` (and
``--max-predictions`` to match) it also lengthens the model: the learned positions are tiled over the longer rows.

Run directory ``<output-dir>/pretrain/<timestamp>/``: ``config.json``, ``tokenizer/``, ``backbone.keras`` (the
encoder a classification run starts from: ``--init-from RUN``), ``last.keras`` (the masked LM),
``pretrain_eval.csv`` / ``.png``, ``results.json``. Rerunning the same command resumes an interrupted run.

Presets: ``full`` (4,800 steps of 64 × 128 tokens = 39.3 M tokens; see README for its time) and ``smoke``
(a 1-layer, 64-wide model on 6 books cut to 20,000 characters; seconds).

``--objective causal`` pretrains a GPT instead (``llm_tf.tasks.causal_pretraining``): a byte-level BPE vocabulary
(16k) learned on the training books, documents packed with an end-of-text id between them, random windows of 256
tokens, a 4-layer, 256-wide GPT with tied embeddings and GPT-2's recipe (AdamW, beta2 0.95, weight decay 0.1,
100 warmup steps then cosine from 1e-3 to 1e-4, gradient clip 1.0), 1,500 steps of 16 x 256 tokens; after every
150 steps the held-out loss as perplexity and bits per byte (``pretrain_eval.csv`` / ``.png``) and continuations of
fixed prompts (``samples.md``). Its run directory (``tokenizer/``, ``last.keras``) is what
``experiments/news_writing.py --init-from RUN`` fine-tunes.

``probe --run-dir RUN --task bbc|sst2`` asks whether a finished run learned anything a task can use, in minutes
instead of a fine-tuning comparison's hours (``llm_tf.tasks.probing``): a logistic regression on each layer's
frozen, mean-pooled features (its ``C`` cross-validated on the training documents), for the pretrained
encoder and for the same architecture with random weights; test accuracy per layer, and how much of the
features' variance lies along one direction (``probe_<task>[_<n>][_<options>].json`` in the run directory).

Example:
    python experiments/pretrain.py                                  # books only
    python experiments/pretrain.py --add-texts bbc sst2             # books + task training texts
    python experiments/pretrain.py --continue-from runs/pretrain/<time> --no-books --add-texts bbc \
        --max-steps 1150 --eval-every-n-steps 115 --learning-rate 5e-4   # then 10 epochs of BBC training texts
    python experiments/pretrain.py --preset smoke --output-dir /tmp/runs
    python experiments/pretrain.py --objective causal               # a GPT on the books
    python experiments/pretrain.py --objective causal --preset smoke --output-dir /tmp/runs
    python experiments/pretrain.py probe --run-dir runs/pretrain/<time> --task bbc --max-train-examples 178
"""

from __future__ import annotations

from llm_tf.runtime import reexec_with_tuned_malloc

reexec_with_tuned_malloc(__name__)  # first, before TensorFlow loads: glibc reads its malloc tunables at process start

import argparse
import json
import os
import sys
import time

from llm_tf.tasks import cli, runs
from llm_tf.tasks.causal_pretraining import CausalPretrainConfig
from llm_tf.tasks.pretraining import TASK_TEXT_SOURCES, PretrainConfig
from llm_tf.tasks.probing import PROBE_TASKS

EXPERIMENT = "pretrain"
PRESETS = {
    "full": PretrainConfig(preset="full"),
    "smoke": PretrainConfig(preset="smoke", max_books=6, max_chars_per_document=20000, vocabulary_size=1000,
                            hidden_dim=64, num_layers=1, num_heads=2, intermediate_dim=128, batch_size=16,
                            max_steps=12, eval_every_n_steps=6, max_eval_sequences=64, learning_rate=1e-3),
}
CAUSAL_PRESETS = {
    "full": CausalPretrainConfig(preset="full"),
    "smoke": CausalPretrainConfig(preset="smoke", max_books=6, max_chars_per_document=20000, vocabulary_size=600,
                                  block_size=96, batch_size=8, hidden_dim=32, num_layers=1, num_heads=2,
                                  intermediate_dim=64, max_iters=20, eval_interval=10, eval_iters=2, warmup_iters=2,
                                  steps_per_execution=10, sample_new_tokens=8, max_full_eval_windows=50,
                                  jit_compile=False),
}
CAUSAL_VALUE_FLAGS = (("vocabulary_size", int), ("block_size", int), ("batch_size", int), ("hidden_dim", int),
                      ("num_layers", int), ("num_heads", int), ("intermediate_dim", int), ("dropout", float),
                      ("max_iters", int), ("eval_interval", int), ("eval_iters", int), ("learning_rate", float),
                      ("min_learning_rate", float), ("warmup_iters", int), ("weight_decay", float),
                      ("grad_clip", float), ("steps_per_execution", int), ("max_books", int),
                      ("max_chars_per_document", int), ("sample_new_tokens", int), ("max_full_eval_windows", int))
VALUE_FLAGS = (("vocabulary_size", int), ("sequence_length", int), ("hidden_dim", int), ("num_layers", int),
               ("num_heads", int), ("intermediate_dim", int), ("dropout", float), ("mask_rate", float),
               ("max_predictions", int), ("batch_size", int), ("max_steps", int), ("max_tokens", int),
               ("eval_every_n_steps", int), ("max_eval_sequences", int), ("learning_rate", float),
               ("warmup_fraction", float), ("weight_decay", float), ("max_books", int),
               ("max_chars_per_document", int))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pretrain.py", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    cli.add_common_arguments(parser, presets=list(PRESETS))
    parser.set_defaults(seed=None)
    recipe = parser.add_argument_group("recipe (default: the preset's value)")
    recipe.add_argument("--objective", choices=("masked", "causal"), default="masked",
                        help="masked: BERT's masked LM on an encoder; causal: a GPT (`--objective causal --help`)")
    recipe.add_argument("--add-texts", nargs="*", choices=TASK_TEXT_SOURCES, default=None,
                        help="add these tasks' training texts to the books (domain-adaptive pretraining)")
    recipe.add_argument("--whole-word-masking", action="store_true", default=None)
    recipe.add_argument("--continue-from", default=None, metavar="RUN",
                        help="go on training a finished masked-LM run (its model and tokenizer; with --no-books "
                             "--add-texts bbc: task-adaptive pretraining; a longer --sequence-length tiles its "
                             "positions)")
    recipe.add_argument("--no-books", dest="books", action="store_false", default=None,
                        help="train on the --add-texts alone (the held-out books still measure progress)")
    cli.add_block_order_arguments(recipe, "pre-norm encoder blocks (the default)", "BERT's post-norm encoder blocks")
    recipe.add_argument("--deterministic", action="store_true", default=None,
                        help="TensorFlow op determinism (bit-exact reruns)")
    for name, kind in VALUE_FLAGS:
        recipe.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None)
    return parser


def build_causal_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pretrain.py --objective causal",
                                     description="Causal-LM (GPT) pretraining on the Gutenberg books.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    cli.add_common_arguments(parser, presets=list(CAUSAL_PRESETS))
    recipe = parser.add_argument_group("recipe (default: the preset's value)")
    recipe.add_argument("--objective", choices=("causal",), default="causal")
    recipe.add_argument("--add-texts", nargs="*", choices=TASK_TEXT_SOURCES, default=None,
                        help="add these tasks' training texts to the books")
    recipe.add_argument("--sample-prompts", nargs="+", default=None, help="prompts continued at every evaluation")
    recipe.add_argument("--deterministic", action="store_true", default=None,
                        help="TensorFlow op determinism (bit-exact reruns, without XLA)")
    for name, kind in CAUSAL_VALUE_FLAGS:
        recipe.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None)
    return parser


def main_causal(argv: list[str]) -> dict:
    """``--objective causal``: pretrain a GPT (``llm_tf.tasks.causal_pretraining``), write the run directory."""
    args = build_causal_parser().parse_args(argv)
    started = time.time()
    from llm_tf import training
    from llm_tf.tasks import causal_pretraining

    skip = ("preset", "data_dir", "seed", "strategy", "num_cpu_devices", "precision")
    overrides = cli.flag_overrides(vars(args), CausalPretrainConfig, skip=skip)
    overrides.update(data_dir=cli.default_data_dir(args.data_dir), seed=args.seed, strategy=args.strategy,
                     num_cpu_devices=args.num_cpu_devices, precision=args.precision)
    run, saved = runs.open_run(f"{EXPERIMENT}_causal", args.runs_root,
                               cli.apply_overrides(CAUSAL_PRESETS[args.preset], overrides).to_dict(),
                               resume=args.resume)
    config = cli.config_from_dict(CausalPretrainConfig, saved)
    strategy = training.setup_training(strategy=config.strategy, num_cpu_devices=config.num_cpu_devices,
                                       precision=config.precision, seed=config.seed,
                                       deterministic=config.deterministic,
                                       optimizer_update=config.optimizer_update)
    cli.print_config(config, title=f"{EXPERIMENT} (causal) config")
    print(f"run directory: {run.path}{' (resumed)' if run.resumed else ''}", flush=True)
    results = causal_pretraining.train_causal_pretraining(
        run, config, strategy, log_every_n_steps=args.log_every_n_steps,
        backup_every_n_steps=args.backup_every_n_steps)
    metrics, rows = results.pop("metrics"), results["progress"]
    table = cli.format_table(["step", "tokens (M)", "held-out loss", "perplexity", "bits/byte", "tokens/s"], [
        (row["step"], f"{row['tokens_seen'] / 1e6:.2f}", f"{row['val_loss']:.4f}", f"{row['val_perplexity']:.1f}",
         f"{row['val_bits_per_byte']:.4f}", f"{row['tokens_per_s']:.0f}" if row.get("tokens_per_s") else "")
        for row in rows])
    training.write_results(run, metrics, time.time() - started, extra={
        "experiment": f"{EXPERIMENT}_causal", "config": config.to_dict(), **results, "summary_table": table})
    print(f"\n{EXPERIMENT} (causal): held-out books\n{table}\n\nheld-out bits per byte "
          f"{metrics['full_val_bits_per_byte']:.4f} over {metrics['full_val_windows']} windows; samples:\n"
          + "\n".join(f"  {json.dumps(text)}" for text in results["samples"])
          + f"\n\nfine-tune it: python experiments/news_writing.py --init-from {run.path}", flush=True)
    with open(run.results_json, encoding="utf-8") as file:
        return {**json.load(file), "run_dir": run.path}


def config_from_args(args: argparse.Namespace) -> PretrainConfig:
    overrides = cli.flag_overrides(vars(args), PretrainConfig, skip=("preset", "data_dir", "strategy",
                                                                     "num_cpu_devices", "precision"))
    overrides.update(data_dir=cli.default_data_dir(args.data_dir), strategy=args.strategy,
                     num_cpu_devices=args.num_cpu_devices, precision=args.precision)
    config = cli.apply_overrides(PRESETS[args.preset], overrides)
    if config.continue_from:
        from llm_tf.tasks.pretraining import continued_config

        config = continued_config(config, explicit=[name for name, value in overrides.items() if value is not None])
    return config


def _objective(argv: list[str]) -> str:
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--objective", default="masked")
    return peek.parse_known_args(argv)[0].objective


def probe(argv: list[str]) -> dict:
    """``probe``: linear probes of a pretrained encoder's layers on a task, against the same model at random init."""
    parser = argparse.ArgumentParser(prog="pretrain.py probe", description=probe.__doc__.split(": ", 1)[1],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--run-dir", required=True, help="a pretraining run directory or a Hugging Face BERT folder")
    parser.add_argument("--task", choices=PROBE_TASKS, default="bbc", help="split as its classification job splits it")
    parser.add_argument("--max-train-examples", type=int, default=None,
                        help="the jobs' seeded stratified training subset (e.g. 178: BBC's 10%% of labels)")
    parser.add_argument("--windows", choices=("first", "head_tail", "all"), default="all")
    parser.add_argument("--max-sequence-length", type=int, default=None, help="window length (default: the model's)")
    parser.add_argument("--seed", type=int, default=0, help="random-init reference and cross-validation folds")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default=None, help="JSON report (default: probe_<task>[_<n>][_<options>].json in a "
                                                       "pretraining run directory, nothing for a Hugging Face folder)")
    args = parser.parse_args(argv)
    from llm_tf.tasks import probing
    from llm_tf.tasks.pretraining import load_pretrained_encoder

    try:
        pretrained = load_pretrained_encoder(args.run_dir)
        train, test = probing.probe_task_splits(args.task, cli.default_data_dir(args.data_dir),
                                                args.max_train_examples)
        report = probing.probe_encoder(pretrained.backbone, pretrained.tokenizer, train, test,
                                       args.max_sequence_length, args.windows, args.seed, args.folds)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    report.update(source=pretrained.source, task=args.task, max_train_examples=args.max_train_examples)
    header, rows = probing.probe_table(report)
    print(f"linear probes on {args.task} ({report['train_size']} training / {report['test_size']} test documents, "
          f"{args.windows} windows of {report['max_sequence_length']} tokens):\n{cli.format_table(header, rows)}",
          flush=True)
    output = args.output
    if output is None and pretrained.kind == "pretraining run":
        # Every setting that changes the figures is in the name, so a probe never overwrites a different one.
        parts = [args.task] + ([] if args.max_train_examples is None else [str(args.max_train_examples)])
        parts += [] if args.windows == "all" else [args.windows]
        parts += [] if args.max_sequence_length is None else [f"len{args.max_sequence_length}"]
        parts += [] if (args.seed, args.folds) == (0, 5) else [f"seed{args.seed}", f"folds{args.folds}"]
        output = os.path.join(pretrained.source, f"probe_{'_'.join(parts)}.json")
    if output is not None:
        with open(output, "w", encoding="utf-8") as file:
            json.dump(report, file, indent=2)
        print(f"report: {output}", flush=True)
    return report


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["probe"]:
        return probe(argv[1:])
    if _objective(argv) == "causal":
        return main_causal(argv)
    args = build_parser().parse_args(argv)
    started = time.time()
    from llm_tf import training
    from llm_tf.tasks import pretraining

    run, saved = runs.open_run(EXPERIMENT, args.runs_root, config_from_args(args).to_dict(), resume=args.resume)
    config = PretrainConfig.from_dict(saved)
    strategy = training.setup_training(strategy=config.strategy, num_cpu_devices=config.num_cpu_devices,
                                       precision=config.precision, seed=config.seed,
                                       deterministic=config.deterministic,
                                       optimizer_update=config.optimizer_update)
    cli.print_config(config, title=f"{EXPERIMENT} config")
    print(f"run directory: {run.path}{' (resumed)' if run.resumed else ''}", flush=True)
    tokenizer_dir = run.file(pretraining.TOKENIZER_DIR)
    tokenizer, packed, data = pretraining.prepare_masked_lm_data(config, tokenizer_dir)
    print(f"data: {data}", flush=True)
    model, result, rows = pretraining.train_masked_lm(
        run, config, tokenizer, packed["train"], packed["validation"], strategy=strategy,
        log_every_n_steps=args.log_every_n_steps, backup_every_n_steps=args.backup_every_n_steps)
    final = rows[-1]
    timed = [row["tokens_per_s"] for row in rows if row.get("tokens_per_s")]
    metrics = {"held_out_mlm_accuracy": final["val_accuracy"], "held_out_mlm_perplexity": final["val_perplexity"],
               "held_out_mlm_loss": final["val_loss"], "tokens_seen": final["tokens_seen"],
               "tokens_per_s_median": sorted(timed)[len(timed) // 2] if timed else None,
               "train_time_s": result.wall_time_s}
    table = cli.format_table(["step", "tokens (M)", "held-out MLM acc", "perplexity", "tokens/s"], [
        (row["step"], f"{row['tokens_seen'] / 1e6:.2f}", f"{row['val_accuracy']:.4f}",
         f"{row['val_perplexity']:.1f}", f"{row['tokens_per_s']:.0f}" if row.get("tokens_per_s") else "") for row in rows])
    training.write_results(run, metrics, time.time() - started, extra={
        "experiment": EXPERIMENT, "config": config.to_dict(), "data": data, "progress": rows,
        "num_parameters": int(model.backbone.count_params()), "status": result.status,
        "backbone": run.file(pretraining.BACKBONE_FILE), "tokenizer": tokenizer_dir})
    print(f"\n{EXPERIMENT}: held-out books\n{table}\n\nbackbone for fine-tuning: --init-from {run.path}", flush=True)
    with open(run.results_json, encoding="utf-8") as file:
        return {**json.load(file), "run_dir": run.path}


if __name__ == "__main__":
    main(sys.argv[1:])
