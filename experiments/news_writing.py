"""Automatic news writing on BBC News: a GPT pretrained on books, fine-tuned to write an article for a topic and a
headline, against the same GPT fine-tuned from scratch (``llm_tf.tasks.news_writing``).

1. Data: the BBC News split of the news job (seed 42); each article becomes
   ``topic: <topic>\\ntitle: <headline>\\n\\n<body>`` followed by end-of-text.
2. For each seed (``--seeds``, default 0 1): fine-tune the causal pretraining run of ``--init-from`` (its tokenizer
   and weights) and, with the same recipe, tokenizer and seed, the same GPT from a random initialisation (900 steps
   of 16 x 256 tokens, every window starting at an article's first token (``--document-start-fraction``), AdamW
   5e-4 with warmup and cosine decay, dropout 0.1).
3. Test articles: perplexity and bits per byte of the body given its topic and title (strided windows).
4. One article per test headline with its true topic (top-p 0.9, 200 tokens, fixed seed), classified by a TF-IDF +
   LinearSVC classifier trained on the BBC training bodies: topic agreement. On 100 headlines spread evenly over the
   test split (it is ordered by topic) every sampler (greedy, top-k 40, top-p 0.9, temperature 0.8, beam 4):
   agreement, distinct-2, repeated 4-grams.
5. Guidance: every test headline again with top-p 0.9 and classifier-free guidance at each
   ``--topic-guidance-scales`` (default 3 and 6), the title alone as the negative prompt, which amplifies the topic line
   (``--guidance-negative blank``: the prompt's closing blank line, which amplifies topic and title together):
   topic agreement, distinct-2, repeated 4-grams.
6. Generation speed (tokens/s, batch 1 and 8) of the fine-tuned model.

Run directory ``<output-dir>/news_writing/<timestamp>/``: ``config.json``, ``tokenizer/``, one resumable member per
fine-tuning (``pretrained_seed_0/`` ...), ``generated_<model>_<sampler>.jsonl``, ``examples.md``, ``results.json``.

``generate --run-dir RUN --topic sport --title "..."`` (or ``--prompt "topic: sport\\ntitle: ...\\n\\n"``, where
``\\n`` means a newline) writes an article with a finished run's pretrained-then-fine-tuned model (``--guidance 3`` with
guidance). ``topic-guidance --run-dir RUN --scales 1.5 3 5 [--negative title]`` measures guidance on a finished
run (``topic_guidance_<negative>.json`` in it).

Example:
    python experiments/pretrain.py --objective causal
    python experiments/news_writing.py --init-from runs/pretrain_causal/<timestamp>
    python experiments/news_writing.py generate --run-dir runs/news_writing/<timestamp> --topic tech \\
        --title "New phone doubles battery life"
    python experiments/news_writing.py topic-guidance --run-dir runs/news_writing/<timestamp> --scales 1.5 3 5
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
from llm_tf.tasks.news_writing import GUIDANCE_NEGATIVES, SAMPLERS, NewsWritingConfig

EXPERIMENT = "news_writing"
PRESETS = {
    "full": NewsWritingConfig(preset="full"),
    "smoke": NewsWritingConfig(preset="smoke", seeds=[0], max_iters=10, eval_interval=5, eval_iters=1, warmup_iters=2,
                               steps_per_execution=5, batch_size=4, generate_new_tokens=12, sampler_articles=4,
                               generation_batch_size=4, max_test_articles=12, jit_compile=False,
                               topic_guidance_scales=[3.0]),
}
VALUE_FLAGS = (("batch_size", int), ("dropout", float), ("max_iters", int), ("eval_interval", int),
               ("eval_iters", int), ("learning_rate", float), ("min_learning_rate", float), ("warmup_iters", int),
               ("weight_decay", float), ("grad_clip", float), ("steps_per_execution", int), ("eval_stride", int),
               ("generate_new_tokens", int), ("sampler_articles", int), ("generation_batch_size", int),
               ("generation_seed", int), ("max_test_articles", int), ("document_start_fraction", float))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="news_writing.py", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    cli.add_common_arguments(parser, presets=list(PRESETS))
    recipe = parser.add_argument_group("recipe (default: the preset's value)")
    recipe.add_argument("--init-from", default=None, required=False,
                        help="the causal pretraining run directory (experiments/pretrain.py --objective causal)")
    recipe.add_argument("--seeds", type=int, nargs="+", default=None, help="one pretrained + one scratch run per seed")
    recipe.add_argument("--topic-guidance-scales", type=float, nargs="*", default=None,
                        help="classifier-free guidance scales for the topic-guided articles (none: skip them)")
    recipe.add_argument("--guidance-negative", default=None, choices=GUIDANCE_NEGATIVES,
                        help="their negative prompt: title (the title alone: the topic line amplified) or blank "
                             "(the prompt's closing blank line: topic and title amplified)")
    for name, kind in VALUE_FLAGS:
        recipe.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None)
    return parser


def build_generate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="news_writing.py generate",
                                     description="Write an article with a finished news_writing run.")
    parser.add_argument("--run-dir", required=True, help="a finished news_writing run directory")
    parser.add_argument("--topic", default=None, help="business, entertainment, politics, sport or tech")
    parser.add_argument("--title", default=None, help="the headline")
    parser.add_argument("--prompt", default=None, help="the whole prompt instead of --topic/--title (\\n = newline)")
    parser.add_argument("--model", default="pretrained", choices=("pretrained", "scratch"))
    parser.add_argument("--model-seed", type=int, default=None, help="which seed's model (default: the first)")
    parser.add_argument("--sampler", default="top_p_0.9", choices=list(SAMPLERS))
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--guidance", "--topic-guidance", type=float, default=None,
                        help="classifier-free guidance scale (1: none)")
    parser.add_argument("--guidance-negative", default="title", choices=GUIDANCE_NEGATIVES,
                        help="the negative prompt of --guidance: title (the title alone) or blank (the prompt's "
                             "closing blank line)")
    return parser


def build_guidance_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="news_writing.py topic-guidance",
                                     description="Topic agreement of topic-guided articles on a finished run.")
    parser.add_argument("--run-dir", required=True, help="a finished news_writing run directory")
    parser.add_argument("--scales", type=float, nargs="+", required=True, help="guidance scales (1: none)")
    parser.add_argument("--model", default="pretrained", choices=("pretrained", "scratch"))
    parser.add_argument("--negative", default="title", choices=GUIDANCE_NEGATIVES,
                        help="the negative prompt: title (the title alone) or blank (the prompt's closing blank line)")
    return parser


def _finished_model(parser, run_dir, model_name, model_seed=None):
    """(results, model, tokenizer) of a finished run; a parser error when the run or its model is missing."""
    import keras

    from llm_tf.tasks import news_writing
    from llm_tf.text import load_tokenizer

    results = runs.finished_results(run_dir, required=["samplers"])
    if results is None:
        parser.error(f"--run-dir {run_dir!r} is not a finished {EXPERIMENT} run (no results.json with "
                     "'samplers'); finish or resume it first.")
    seed = results["config"]["seeds"][0] if model_seed is None else model_seed
    model_path = os.path.join(run_dir, f"{model_name}_seed_{seed}", news_writing.MODEL_FILE)
    if not os.path.isfile(model_path):
        parser.error(f"no model at {model_path}")
    model = keras.saving.load_model(model_path, compile=False)
    return results, model, load_tokenizer(os.path.join(run_dir, news_writing.TOKENIZER_DIR))


def topic_guidance(argv: list[str]) -> dict:
    """``topic-guidance``: topic agreement per guidance scale, printed and written to the run directory
    (``topic_guidance_<negative>.json``)."""
    parser = build_guidance_parser()
    args = parser.parse_args(argv)
    from llm_tf import training
    from llm_tf.tasks import news_writing

    results, model, tokenizer = _finished_model(parser, args.run_dir, args.model)
    config = cli.config_from_dict(NewsWritingConfig, results["config"])
    for scale in args.scales:
        if scale < 0:
            parser.error(f"--scales must be >= 0; got {scale}")
    articles = news_writing.load_articles(config)
    classifier = news_writing.topic_classifier(articles["train"])
    guided = news_writing.guided_topic_agreement(
        model, tokenizer, articles["test"], classifier, args.scales, results["generation_new_tokens"],
        batch_size=config.generation_batch_size, seed=config.generation_seed, negative=args.negative)
    for row in guided.values():
        row.pop("bodies")
    plain = results["samplers"][f"{args.model}/{news_writing.MAIN_SAMPLER}"]
    table = cli.format_table(
        ["guidance scale", "articles", "topic agreement", "distinct-2", "repeated 4-grams", "tokens/s"],
        [("none (results.json)", plain["articles"], f"{plain['topic_agreement']:.3f}", f"{plain['distinct_2']:.3f}",
          f"{plain['repeated_4gram_rate']:.3f}", f"{plain['tokens_per_s']:.0f}")]
        + [(scale, row["articles"], f"{row['topic_agreement']:.3f}", f"{row['distinct_2']:.3f}",
            f"{row['repeated_4gram_rate']:.3f}", f"{row['tokens_per_s']:.0f}") for scale, row in guided.items()])
    shown = repr(news_writing.format_negative_prompt("<title>", args.negative))
    output = {"model": f"{args.model}_seed_{config.seeds[0]}", "sampler": news_writing.MAIN_SAMPLER,
              "negative": args.negative, "negative_prompt": shown, "scales": guided}
    training.write_json(os.path.join(args.run_dir, f"topic_guidance_{args.negative}.json"), output)
    print(f"{args.model}/{news_writing.MAIN_SAMPLER} with guidance (negative prompt: {shown})\n{table}", flush=True)
    return output


def generate(argv: list[str]) -> str:
    """``generate``: print and return the prompt followed by the generated article."""
    parser = build_generate_parser()
    args = parser.parse_args(argv)
    from llm_tf.tasks import news_writing

    if args.prompt is not None:
        prompt = args.prompt.replace("\\n", "\n")
        news_writing.parse_prompt(prompt)
        prompt = prompt if prompt.endswith("\n\n") else prompt.rstrip("\n") + "\n\n"
    elif args.topic and args.title:
        prompt = news_writing.format_prompt(args.topic, args.title)
    else:
        parser.error("give --topic and --title, or --prompt")
    guidance = {}
    if args.guidance is not None:
        if args.guidance < 0:
            parser.error(f"--guidance must be >= 0; got {args.guidance}")
        title = news_writing.parse_prompt(prompt)[1]
        guidance = {"negative_prompts": [news_writing.format_negative_prompt(title, args.guidance_negative)],
                    "guidance_scale": args.guidance}
    _, model, tokenizer = _finished_model(parser, args.run_dir, args.model, args.model_seed)
    try:
        bodies, _ = news_writing.generate_articles(model, tokenizer, [prompt], args.max_new_tokens,
                                                   SAMPLERS[args.sampler], batch_size=1, seed=args.seed, **guidance)
    except ValueError as error:
        parser.error(str(error))
    text = prompt + bodies[0]
    print(text, flush=True)
    return text


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["generate"]:
        return generate(argv[1:])
    if argv[:1] == ["topic-guidance"]:
        return topic_guidance(argv[1:])
    args = build_parser().parse_args(argv)
    started = time.time()
    from llm_tf import training
    from llm_tf.tasks import news_writing

    skip = ("preset", "data_dir", "seed", "strategy", "num_cpu_devices", "precision")
    overrides = cli.flag_overrides(vars(args), NewsWritingConfig, skip=skip)
    overrides.update(data_dir=cli.default_data_dir(args.data_dir), strategy=args.strategy,
                     num_cpu_devices=args.num_cpu_devices, precision=args.precision)
    if args.init_from is not None:
        overrides["init_from"] = os.path.abspath(args.init_from)
    config = cli.apply_overrides(PRESETS[args.preset], overrides)
    if not config.init_from and args.resume in ("auto", "never"):
        build_parser().error("--init-from is required: the causal pretraining run to fine-tune "
                             "(python experiments/pretrain.py --objective causal)")
    run, saved = runs.open_run(EXPERIMENT, args.runs_root, config.to_dict(), resume=args.resume)
    config = cli.config_from_dict(NewsWritingConfig, saved)
    strategy = training.setup_training(strategy=config.strategy, num_cpu_devices=config.num_cpu_devices,
                                       precision=config.precision, seed=config.seeds[0],
                                       deterministic=config.deterministic,
                                       optimizer_update=config.optimizer_update)
    cli.print_config(config, title=f"{EXPERIMENT} config")
    print(f"run directory: {run.path}{' (resumed)' if run.resumed else ''}", flush=True)
    results = news_writing.run_news_writing(run, config, strategy, log_every_n_steps=args.log_every_n_steps,
                                            backup_every_n_steps=args.backup_every_n_steps)
    bits = results["bits_per_byte"]
    table = cli.format_table(["model / sampler", "articles", "topic agreement", "distinct-2", "repeated 4-grams",
                              "tokens/s"],
                             [(key, row["articles"], f"{row['topic_agreement']:.3f}", f"{row['distinct_2']:.3f}",
                               f"{row['repeated_4gram_rate']:.3f}", f"{row['tokens_per_s']:.0f}")
                              for key, row in results["samplers"].items()])
    summary = (f"test bits per byte (body | topic + title), mean of {len(config.seeds)} seed(s): pretrained "
               f"{bits['pretrained']['test_bits_per_byte_mean']:.4f}, scratch "
               f"{bits['scratch']['test_bits_per_byte_mean']:.4f}, ratio {bits['ratio_pretrained_to_scratch']:.3f} "
               f"(target <= 0.85)\n{table}\nclassifier accuracy on the real test bodies: "
               f"{results['topic_classifier']['accuracy_on_real_test_bodies']:.3f}; generation speed "
               f"{results['generation_speed']}\ndoes the model use the topic line? (each test body scored under "
               f"every topic) " + "; ".join(
                   f"{start}: true topic likeliest for {row['topic_by_likelihood_accuracy']:.3f}, bits per byte "
                   f"{row['bits_per_byte_true_topic']:.4f} true vs {row['bits_per_byte_other_topics']:.4f} others"
                   for start, row in results["topic_sensitivity"].items()))
    metrics = {"pretrained_test_bits_per_byte": bits["pretrained"]["test_bits_per_byte_mean"],
               "scratch_test_bits_per_byte": bits["scratch"]["test_bits_per_byte_mean"],
               "bits_per_byte_ratio": bits["ratio_pretrained_to_scratch"],
               "topic_agreement_top_p": results["samplers"]["pretrained/top_p_0.9"]["topic_agreement"],
               "topic_by_likelihood_accuracy": results["topic_sensitivity"]["pretrained"][
                   "topic_by_likelihood_accuracy"]}
    training.write_results(run, metrics, time.time() - started,
                           extra={"experiment": EXPERIMENT, **results, "summary": summary})
    print(f"\n{EXPERIMENT}\n{summary}\n\nexamples: {run.file('examples.md')}", flush=True)
    with open(run.results_json, encoding="utf-8") as file:
        return {**json.load(file), "run_dir": run.path}


if __name__ == "__main__":
    main()
