"""What weight-only bfloat16 / float16 / int8 decoding costs in quality, on a real GPT and real text.

``GPT.generate(weight_dtype="bfloat16" | "float16" | "int8")`` reads each decoding step's weights in a smaller dtype
(activations and accumulation stay float32). This script measures its error against float32 decoding on a
trained model, through ``GPT.decode_logits`` (the generation path, teacher-forced on real text):

- the largest and the mean absolute logit difference, and the largest relative to the largest |logit|;
- teacher-forced top-1 agreement: how often the most likely next token is the same;
- perplexity of the real continuations under each dtype (and the relative change);
- free-running greedy agreement: ``generate`` from each text's first tokens, share of equal tokens and the
  length of the common prefix (after a first divergence the texts differ, so this is the strictest one).

Default model: a news-writing run's fine-tuned GPT (``experiments/news_writing.py``) on BBC News test
articles. Speed is measured side by side with the peers in ``benchmarks/generation.py --weight-dtypes``.

Usage:
    python benchmarks/weight_only_decoding.py --run-dir runs/news_writing/<timestamp>
    python benchmarks/weight_only_decoding.py --run-dir RUN --member scratch_seed_0 --articles 16
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402


def log_perplexity(logits, targets):
    """Mean negative log-likelihood of ``targets`` ``(batch, steps)`` under ``logits`` ``(batch, steps, V)``."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_normalizer = np.log(np.exp(shifted).sum(axis=-1))
    chosen = np.take_along_axis(shifted, targets[..., None], axis=-1)[..., 0]
    return float((log_normalizer - chosen).mean())


def compare(reference, candidate, targets):
    """The quality figures of ``candidate`` logits against float32 ``reference`` logits."""
    difference = np.abs(candidate - reference)
    reference_nll, candidate_nll = log_perplexity(reference, targets), log_perplexity(candidate, targets)
    return {
        "max_abs_logit_difference": float(difference.max()),
        "mean_abs_logit_difference": float(difference.mean()),
        "max_difference_over_max_logit": float(difference.max() / np.abs(reference).max()),
        "top1_agreement": float((candidate.argmax(-1) == reference.argmax(-1)).mean()),
        "perplexity": float(np.exp(candidate_nll)),
        "perplexity_change": float(np.exp(candidate_nll - reference_nll) - 1.0),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", required=True, help="a finished experiments/news_writing.py run directory")
    parser.add_argument("--member", default="pretrained_seed_0", help="which fine-tuned model of the run")
    parser.add_argument("--articles", type=int, default=32, help="test articles (evenly spread over the topics)")
    parser.add_argument("--prompt-tokens", type=int, default=16, help="tokens prefilled before scoring/generating")
    parser.add_argument("--data-dir", default=None, help="BBC News data (default: LLM_TF_DATA_DIR, ../shared/data)")
    args = parser.parse_args()

    import keras

    import llm_tf.models  # noqa: F401
    from llm_tf.datasets import load_bbc_news
    from llm_tf.layers.fast_paths import WEIGHT_DTYPES
    from llm_tf.tasks.news_writing import TOKENIZER_DIR, bbc_articles, format_article
    from llm_tf.text import load_tokenizer

    model = keras.saving.load_model(os.path.join(args.run_dir, args.member, "last.keras"), compile=False)
    tokenizer = load_tokenizer(os.path.join(args.run_dir, TOKENIZER_DIR))
    context = model.config.max_sequence_length
    articles = bbc_articles(load_bbc_news(args.data_dir).test)
    windows = []
    for index in np.linspace(0, len(articles) - 1, len(articles)).round().astype(int):
        ids = tokenizer.encode(format_article(*articles[index]))
        if len(ids) >= context:
            windows.append(np.asarray(ids[:context], dtype="int32"))
    if len(windows) < args.articles:
        raise ValueError(f"only {len(windows)} test articles have {context} tokens; asked for {args.articles}.")
    pick = np.linspace(0, len(windows) - 1, args.articles).round().astype(int)
    token_ids = np.stack([windows[i] for i in pick])
    prompt = args.prompt_tokens
    targets = token_ids[:, prompt:]

    from _machine import machine_line
    from generation import agreement

    print(machine_line())
    print(f"model: {args.run_dir}/{args.member} ({model.config.num_layers} layers × {model.config.hidden_dim}, "
          f"vocabulary {model.config.vocabulary_size}, {model.count_params() / 1e6:.1f}M parameters); "
          f"{len(token_ids)} BBC test articles × {context} tokens, {prompt} prefilled, {context - prompt} scored")
    logits = {dtype: model.decode_logits(token_ids, prompt, weight_dtype=dtype)
              for dtype in WEIGHT_DTYPES}
    forward = np.asarray(model(token_ids))[:, prompt - 1:-1]
    print(f"float32 generation path vs the forward pass: max |logit difference| "
          f"{np.abs(logits['float32'] - forward).max():.2e}; perplexity {np.exp(log_perplexity(forward, targets)):.2f}")
    greedy = {dtype: model.generate(token_ids[:, :prompt], context - prompt, weight_dtype=dtype)[:, prompt:]
              for dtype in WEIGHT_DTYPES}
    rows = [("| weights | max abs Δlogit (/ max abs logit) | mean abs Δlogit | top-1 agreement (teacher-forced) "
             "| perplexity (change) | greedy: same tokens, mean / shortest common prefix |"),
            "|---|---|---|---|---|---|"]
    for dtype in WEIGHT_DTYPES:
        figures = compare(logits["float32"], logits[dtype], targets)
        same, prefix, shortest = agreement(greedy[dtype], greedy["float32"])
        rows.append(
            f"| {dtype} | {figures['max_abs_logit_difference']:.4f} ({figures['max_difference_over_max_logit']:.2%}) "
            f"| {figures['mean_abs_logit_difference']:.5f} | {figures['top1_agreement']:.2%} "
            f"| {figures['perplexity']:.3f} ({figures['perplexity_change']:+.3%}) "
            f"| {same:.1%}, {prefix:.0f} / {shortest} of {context - prompt} |"
        )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
