"""Greedy generation speed of llm_tf's GPT against keras-hub and Hugging Face transformers, side by side.

All three decode with a key/value cache on the same GPT-2-small-shaped model (12 layers, 12 heads, 768
wide, vocabulary 50257, context 1024), float32, on the CPU:

- ``llm_tf``: :meth:`llm_tf.models.GPT.generate` (XLA-compiled prefill + while-loop, greedy);
- ``keras-hub``: ``keras_hub.models.GPT2CausalLM.generate`` (keras-hub 0.32, greedy sampler, XLA on TF,
  no preprocessor: the prompt is given as token ids with room for the new tokens);
- ``transformers``: ``GPT2LMHeadModel.generate`` (PyTorch CPU, ``do_sample=False``).

The weights are random (no download) and the same in all three: llm_tf's model is created with a fixed
seed and its weights are copied into the keras-hub backbone and (through ``llm_tf.interop.save_hf_gpt2``)
into the transformers model, so the table can also report how many generated tokens agree. (With random
weights the next-token distribution is nearly flat, so float rounding alone can flip a near-tie; a low
agreement after the first divergence is not a bug by itself.)

``--weight-dtypes`` adds llm_tf rows with weight-only bfloat16 / float16 / int8 decoding (``GPT.generate(weight_dtype=)``;
their quality cost on a trained model: ``benchmarks/weight_only_decoding.py``).

Each implementation is warmed up once per batch size (compilation; for packed weights also the packing,
which is cached), then the implementations are timed in ``--repeats`` interleaved rounds (A B C, A B C, ...)
and the median counts, so a slow spell of the machine hits all of them alike. Tokens/s = batch × new
tokens / seconds for the whole ``generate`` call (prefill included).

Usage:
    python benchmarks/generation.py                  # 128-token prompt, 128 new tokens, batch 1 and 8
    python benchmarks/generation.py --quick          # 2 layers, 16 + 16 tokens, batch 1 and 2: a smoke run
    python benchmarks/generation.py --peers keras_hub --batch-sizes 1

Needs keras-hub (``requirements-bench.txt``) for the keras-hub row and torch + transformers for the other.
Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _machine import machine_line  # noqa: E402

from llm_tf.layers.fast_paths import WEIGHT_DTYPES  # noqa: E402
from llm_tf.models import GPT, GPTConfig  # noqa: E402

PEERS = ("keras_hub", "transformers")


# ---- the three implementations -------------------------------------------------------------------------


class LlmTfRunner:
    name = "llm_tf GPT.generate"

    def __init__(self, model, weight_dtype="float32", kernels_only=False):
        self.model = model
        self.weight_dtype = weight_dtype
        # kernels_only: float32 decoding over the layers' own kernels at every batch size (what generate did
        # before packed float32 rows were used, at batch 1 and then up to PACKED_FLOAT32_MAX_ROWS rows), as a
        # same-run "before" reference.
        self.kernels_only = kernels_only
        if weight_dtype != "float32":
            self.name = f"llm_tf GPT.generate, {weight_dtype} weights"
        elif kernels_only:
            self.name = "llm_tf GPT.generate, float32 kernels (before)"

    def generate(self, prompt_ids, new_tokens):
        if self.kernels_only:
            self.model.PACKED_FLOAT32_MAX_ROWS = 0
        try:
            output = self.model.generate(prompt_ids, max_new_tokens=new_tokens, weight_dtype=self.weight_dtype)
        finally:
            self.model.__dict__.pop("PACKED_FLOAT32_MAX_ROWS", None)
        return output[:, prompt_ids.shape[1] :]


class KerasHubRunner:
    name = "keras-hub GPT2CausalLM.generate"

    def __init__(self, source):
        import keras_hub

        config = source.config
        self.backbone = keras_hub.models.GPT2Backbone(
            vocabulary_size=config.vocabulary_size,
            num_layers=config.num_layers,
            num_heads=config.num_heads,
            hidden_dim=config.hidden_dim,
            intermediate_dim=config.intermediate_dim,
            dropout=0.0,
            max_sequence_length=config.max_sequence_length,
        )
        copy_weights_to_keras_hub(source, self.backbone)
        self.model = keras_hub.models.GPT2CausalLM(backbone=self.backbone, preprocessor=None)
        self.model.compile(sampler="greedy")

    def generate(self, prompt_ids, new_tokens):
        batch, length = prompt_ids.shape
        # Without a preprocessor the output length is the input length: the prompt plus masked-out room.
        token_ids = np.concatenate([prompt_ids, np.zeros((batch, new_tokens), "int32")], axis=1)
        padding_mask = np.concatenate(
            [np.ones((batch, length), bool), np.zeros((batch, new_tokens), bool)], axis=1
        )
        output = self.model.generate(
            {"token_ids": token_ids, "padding_mask": padding_mask}, stop_token_ids=None
        )
        return np.asarray(output["token_ids"])[:, length:]


class TransformersRunner:
    name = "transformers GPT2LMHeadModel.generate"

    def __init__(self, source, threads):
        import torch
        import transformers

        from llm_tf.interop import save_hf_gpt2

        torch.set_num_threads(threads)
        self.torch = torch
        with tempfile.TemporaryDirectory() as directory:
            save_hf_gpt2(source, directory)
            self.model = transformers.GPT2LMHeadModel.from_pretrained(directory, torch_dtype=torch.float32)
        self.model.eval()
        # Random weights may emit GPT-2's end-of-text id; never stop early, so every run makes the same work.
        self.model.generation_config.eos_token_id = None
        self.model.generation_config.pad_token_id = 0

    def generate(self, prompt_ids, new_tokens):
        torch = self.torch
        input_ids = torch.from_numpy(prompt_ids.astype("int64"))
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                num_beams=1,
                use_cache=True,
            )
        return output[:, prompt_ids.shape[1] :].numpy()


def copy_weights_to_keras_hub(source, backbone):
    """Assign llm_tf GPT weights to a keras-hub ``GPT2Backbone`` (same layouts: only names differ)."""
    backbone.token_embedding.embeddings.assign(source.embedding.token_embeddings)
    backbone.position_embedding.position_embeddings.assign(source.embedding.position_embeddings)
    for block, layer in zip(source.blocks, backbone.transformer_layers):
        ours_attention, theirs_attention = block.self_attention, layer._self_attention_layer
        pairs = [
            (ours_attention.query_dense, theirs_attention._query_dense),
            (ours_attention.key_dense, theirs_attention._key_dense),
            (ours_attention.value_dense, theirs_attention._value_dense),
            (ours_attention.output_dense, theirs_attention._output_dense),
            (block.feed_forward.intermediate_dense, layer._feedforward_intermediate_dense),
            (block.feed_forward.output_dense, layer._feedforward_output_dense),
        ]
        for ours, theirs in pairs:
            theirs.kernel.assign(ours.kernel)
            theirs.bias.assign(ours.bias)
        for ours, theirs in (
            (block.self_attention_norm, layer._self_attention_layer_norm),
            (block.feed_forward_norm, layer._feedforward_layer_norm),
        ):
            theirs.gamma.assign(ours.gamma)
            theirs.beta.assign(ours.beta)
    backbone.layer_norm.gamma.assign(source.final_norm.gamma)
    backbone.layer_norm.beta.assign(source.final_norm.beta)


# ---- timing and report ---------------------------------------------------------------------------------


def interleaved_seconds(runners, prompt_ids, new_tokens, repeats):
    """Warm up (compile) each runner once, then ``repeats`` interleaved rounds; per runner the median
    seconds and its tokens."""
    tokens = [np.asarray(runner.generate(prompt_ids, new_tokens)) for runner in runners]
    times = [[] for _ in runners]
    for _ in range(repeats):
        for index, runner in enumerate(runners):
            start = time.perf_counter()
            runner.generate(prompt_ids, new_tokens)
            times[index].append(time.perf_counter() - start)
    return [(float(np.median(t)), tok) for t, tok in zip(times, tokens)]


def agreement(tokens, reference):
    """Share of positions equal to the reference, and the common prefix's length (mean and shortest row)."""
    equal = tokens == reference
    prefix = np.where(equal.all(axis=1), equal.shape[1], np.argmin(equal, axis=1))
    return float(equal.mean()), float(prefix.mean()), int(prefix.min())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--prompt-length", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--num-layers", type=int, default=12, help="GPT-2 small has 12")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timed rounds per batch size (median)")
    parser.add_argument(
        "--weight-dtypes",
        nargs="+",
        default=list(WEIGHT_DTYPES),
        choices=WEIGHT_DTYPES,
        help="llm_tf rows: float32 and weight-only decoding (float32 is always included, as the reference)",
    )
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=PEERS)
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="PyTorch threads (default: all cores)"
    )
    parser.add_argument(
        "--before",
        action="store_true",
        help="add float32 decoding over the layers' kernels at every batch size (the path before packed rows)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="2 layers, 16 + 16 tokens, batch 1 and 2, 1 repeat"
    )
    args = parser.parse_args()
    if args.quick:
        args.batch_sizes, args.prompt_length, args.new_tokens, args.num_layers, args.repeats = (
            [1, 2],
            16,
            16,
            2,
            1,
        )

    keras.utils.set_random_seed(args.seed)
    config = GPTConfig.from_preset("small", num_layers=args.num_layers)
    model = GPT(config)
    parameters = model.count_params()
    runners = [LlmTfRunner(model)] + [
        LlmTfRunner(model, dtype) for dtype in dict.fromkeys(args.weight_dtypes) if dtype != "float32"
    ]
    if args.before:
        runners.append(LlmTfRunner(model, kernels_only=True))
    if "keras_hub" in args.peers:
        runners.append(KerasHubRunner(model))
    if "transformers" in args.peers:
        runners.append(TransformersRunner(model, args.threads))

    print(machine_line())
    print(
        f"GPT-2-small shape: {config.num_layers} layers, {config.num_heads} heads, {config.hidden_dim} wide, "
        f"vocabulary {config.vocabulary_size}, context {config.max_sequence_length}; {parameters / 1e6:.1f}M "
        f"parameters = {4 * parameters / 2**20:.0f} MiB of float32 weights read per decoding step"
    )
    print(
        f"greedy, prompt {args.prompt_length} tokens + {args.new_tokens} new, float32, {os.cpu_count()} CPU cores, "
        f"median of {args.repeats} interleaved rounds after one warm-up"
    )
    rng = np.random.default_rng(args.seed)
    results = {}  # (runner name, batch) -> tokens/s
    rows = []
    for batch in args.batch_sizes:
        prompt_ids = rng.integers(0, config.vocabulary_size, size=(batch, args.prompt_length)).astype("int32")
        measured = interleaved_seconds(runners, prompt_ids, args.new_tokens, args.repeats)
        reference = measured[0][1]
        for runner, (seconds, tokens) in zip(runners, measured):
            speed = batch * args.new_tokens / seconds
            results[(runner.name, batch)] = speed
            rows.append((runner.name, batch, speed, seconds, agreement(tokens, reference)))
            print(f"  measured {runner.name}, batch {batch}: {speed:.1f} tokens/s", flush=True)

    ours = LlmTfRunner.name
    header = ["implementation", "batch", "tokens/s", "s/call", "× llm_tf float32", "same tokens as llm_tf float32"]
    table = [header]
    for name, batch, speed, seconds, (equal, prefix, _) in rows:
        ratio = "" if name == ours else f"{speed / results[(ours, batch)]:.2f}×"
        same = "(reference)" if name == ours else f"{equal:.0%} (first {prefix:.0f} of {args.new_tokens})"
        table.append([name, str(batch), f"{speed:.1f}", f"{seconds:.2f}", ratio, same])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print()
    for index, row in enumerate(table):
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    print()
    peers = [runner for runner in runners if not isinstance(runner, LlmTfRunner)]
    for batch in args.batch_sizes:
        for runner in runners:
            if not isinstance(runner, LlmTfRunner):
                continue
            speed = results[(runner.name, batch)]
            parts = [f"{speed / results[(peer.name, batch)]:.2f}× {peer.name.split()[0]}" for peer in peers]
            print(f"batch {batch}: {runner.name} {speed:.1f} tokens/s = " + ", ".join(parts or ["no peers"]))


if __name__ == "__main__":
    main()
