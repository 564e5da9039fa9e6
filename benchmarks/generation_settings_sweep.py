"""Sweeping generate's value settings (length penalty, temperature, top-p): one compiled loop against one per value.

Since 2026-12-05 ``temperature``, ``top_p`` and ``length_penalty`` reach the compiled decoding loop as values, so
a sweep over them (choosing a length penalty on validation data, comparing temperatures) compiles once. The peer
is the behaviour before, reproduced in the same process: the model's compiled loops are dropped before each call,
so every value compiles its own loop, as it did when the values were part of the loop's key. Both sides decode
the same inputs with the same settings; the outputs are checked equal, and each side's total wall time over the
sweep (compilation included) is printed with the ratio, in interleaved rounds (median).

Usage:
    python benchmarks/generation_settings_sweep.py              # 3 rounds
    python benchmarks/generation_settings_sweep.py --rounds 1

Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _machine import machine_line  # noqa: E402

from llm_tf.models import GPT, GPTConfig, Seq2SeqConfig, Seq2SeqTransformer, generation  # noqa: E402

LENGTH_PENALTIES = (0.0, 0.6, 1.0, 1.5, 2.0)
TEMPERATURES_AND_TOP_P = ((0.8, 0.9), (0.7, 0.9), (1.0, 0.95), (0.9, 0.8), (1.2, 0.5))


def sweep(model, call, values, recompile_each):
    """Total seconds of ``call(model, value)`` over ``values``, and the outputs."""
    outputs = []
    started = time.perf_counter()
    for value in values:
        if recompile_each:  # the peer: a fresh set of compiled loops, as when every value had its own key
            model._generation_loops = generation.CompiledLoops()
        outputs.append(call(model, value))
    return time.perf_counter() - started, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    # The translation experiment's decoder shape class (3 + 3 layers, 256 wide) and a 4-layer GPT, both untrained.
    translator = Seq2SeqTransformer(Seq2SeqConfig(
        vocabulary_size=6000, max_sequence_length=64, hidden_dim=256, num_encoder_layers=3, num_decoder_layers=3,
        num_heads=4, intermediate_dim=1024, dropout=0.0))
    gpt = GPT(GPTConfig(vocabulary_size=8000, max_sequence_length=256, hidden_dim=256, num_layers=4, num_heads=4,
                        intermediate_dim=1024, dropout=0.0))
    sources = rng.integers(4, 6000, size=(32, 20)).astype("int32")
    prompts = rng.integers(4, 8000, size=(8, 20)).astype("int32")
    cases = {
        f"beam 5 over {len(LENGTH_PENALTIES)} length penalties (Seq2Seq, batch 32, 40 tokens)": (
            translator, LENGTH_PENALTIES,
            lambda model, alpha: model.generate(sources, 40, sampler="beam", num_beams=5, length_penalty=alpha)),
        f"top-p over {len(TEMPERATURES_AND_TOP_P)} (temperature, top_p) pairs (GPT, batch 8, 64 tokens)": (
            gpt, TEMPERATURES_AND_TOP_P,
            lambda model, pair: model.generate(prompts, 64, sampler="top_p", temperature=pair[0], top_p=pair[1],
                                               seed=0)),
    }
    print(machine_line())
    for name, (model, values, call) in cases.items():
        times = {"one loop (llm_tf)": [], "one loop per value (before)": []}
        for _ in range(args.rounds):
            model._generation_loops = generation.CompiledLoops()
            once, outputs = sweep(model, call, values, recompile_each=False)
            each, peer_outputs = sweep(model, call, values, recompile_each=True)
            for ours, theirs in zip(outputs, peer_outputs):
                np.testing.assert_array_equal(ours, theirs)
            times["one loop (llm_tf)"].append(once)
            times["one loop per value (before)"].append(each)
        medians = {side: statistics.median(values) for side, values in times.items()}
        print(f"\n{name}, median of {args.rounds} rounds, compilation included:")
        for side, seconds in medians.items():
            print(f"  {side:28s} {seconds:7.1f} s")
        print(f"  ratio {medians['one loop per value (before)'] / medians['one loop (llm_tf)']:.2f}x")


if __name__ == "__main__":
    main()
