"""Training-step time of the Multi30k translation model in float32 against ``mixed_bfloat16``, side by side
(or, with ``--compare optimizer``, in float32 with the fused AdamW update against Keras's per-variable one).

The recipe of ``experiments/translation.py`` (4 + 4 pre-norm layers, 128 wide, tied embeddings, joint byte-level
BPE, batches of <= 2,048 tokens by length bucket, Adam with label smoothing, no XLA: one graph per batch shape).
Both models are built in one process (the dtype policy is read when a layer is built), warmed up on the same
batches (one trace per shape), then timed in interleaved rounds (A B, A B, ...) on those batches; the median
round counts. ``mixed_bfloat16`` only pays where the CPU has bfloat16 instructions (``avx512_bf16`` or
``amx_bf16``): oneDNN emulates it through float32 elsewhere, and ``llm_tf.training.setup_training`` warns then.

Usage:
    python benchmarks/translation_precision.py                   # 40 batches, 3 rounds
    python benchmarks/translation_precision.py --batches 10 --rounds 1 --max-train-pairs 3000   # a quick check
    python benchmarks/translation_precision.py --compare optimizer   # fused vs per-variable AdamW, float32

Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import os
import pathlib
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from llm_tf.runtime import reexec_with_tuned_malloc  # noqa: E402

reexec_with_tuned_malloc(__name__)  # the allocator the translation script runs under

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _machine import machine_line  # noqa: E402

from experiments.translation import TranslationConfig  # noqa: E402
from llm_tf.datasets.multi30k import load_multi30k  # noqa: E402
from llm_tf.tasks import seq2seq as s2s  # noqa: E402
from llm_tf.tasks.cli import default_data_dir  # noqa: E402
from llm_tf.training import set_precision  # noqa: E402

PRECISIONS = ("float32", "mixed_bfloat16")


def build(precision: str, vocabulary_size: int, recipe: TranslationConfig, fused_optimizer: bool = True):
    """The experiment's model and optimizer, built under ``precision`` (the global policy is restored after);
    ``fused_optimizer=False``: Keras's per-variable AdamW update instead of the fused one."""
    set_precision(precision)
    try:
        keras.utils.set_random_seed(0)
        model = s2s.build_translation_model(vocabulary_size, recipe.max_length, recipe.hidden_dim, recipe.num_layers,
                                            recipe.num_heads, recipe.intermediate_dim, recipe.dropout,
                                            norm_first=recipe.norm_first)
        s2s.compile_translation_model(model, recipe.warmup_steps, recipe.learning_rate_scale, recipe.label_smoothing,
                                      fused_optimizer=fused_optimizer)
    finally:
        set_precision("float32")
    return model


def run_batches(model, batches) -> float:
    """Seconds for one training step on each batch (the loss is fetched, so every step has finished)."""
    started = time.perf_counter()
    for inputs, labels, weights in batches:
        loss = model.train_on_batch(inputs, labels, sample_weight=weights)
    float(np.asarray(loss).ravel()[0])
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="Multi30k's parent folder (default: LLM_TF_DATA_DIR)")
    parser.add_argument("--max-train-pairs", type=int, default=None, help="pairs to learn the vocabulary on")
    parser.add_argument("--vocabulary-size", type=int, default=6000)
    parser.add_argument("--batches", type=int, default=40, help="batches per timed round (seeded draw)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds (median)")
    parser.add_argument("--compare", choices=("precision", "optimizer"), default="precision",
                        help="float32 vs mixed_bfloat16, or (float32) the fused AdamW update vs the per-variable one")
    args = parser.parse_args()

    print(machine_line(), flush=True)
    recipe = TranslationConfig(vocabulary_size=args.vocabulary_size)  # the experiment's defaults: sizes, batching
    pairs = load_multi30k(default_data_dir(args.data_dir))
    sources, targets = pairs.train.sources, pairs.train.targets
    if args.max_train_pairs:
        sources, targets = sources[: args.max_train_pairs], targets[: args.max_train_pairs]
    tokenizer = s2s.train_joint_tokenizer(sources, targets, args.vocabulary_size)
    all_batches = s2s.make_batches(tokenizer, sources, targets, recipe.max_length, recipe.max_length,
                                   recipe.max_tokens, recipe.bucket_width, seed=0)
    chosen = np.random.default_rng(0).choice(len(all_batches), size=min(args.batches, len(all_batches)),
                                             replace=False)
    batches = [all_batches[i] for i in sorted(chosen)]
    tokens = sum(int((b[0]["encoder_token_ids"] != 0).sum() + (b[2] > 0).sum()) for b in batches)
    print(f"{len(batches)} batches of {len(all_batches)} ({tokens:,} source + target tokens), "
          f"{len({b[0]['encoder_token_ids'].shape for b in batches})} shapes; vocabulary {tokenizer.vocabulary_size}",
          flush=True)
    if args.compare == "precision":
        models = {name: build(name, tokenizer.vocabulary_size, recipe) for name in PRECISIONS}
    else:
        models = {name: build("float32", tokenizer.vocabulary_size, recipe, fused_optimizer=fused)
                  for name, fused in (("fused AdamW", True), ("per-variable AdamW", False))}
    names = list(models)
    for name, model in models.items():
        print(f"  warm-up {name}: {run_batches(model, batches):.1f} s (tracing every shape)", flush=True)
    seconds = {name: [] for name in names}
    for round_index in range(args.rounds):
        for name, model in models.items():
            seconds[name].append(run_batches(model, batches))
            print(f"  round {round_index + 1} {name}: {seconds[name][-1]:.2f} s", flush=True)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    print(f"\n| {args.compare} | ms per step | tokens/s | vs {names[0]} |\n|---|---|---|---|")
    for name in names:
        print(f"| {name} | {1000 * median[name] / len(batches):.0f} | {tokens / median[name]:,.0f} | "
              f"{median[names[0]] / median[name]:.2f}× |")


if __name__ == "__main__":
    main()
