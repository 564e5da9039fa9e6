"""How fast XLA:CPU runs one decoding matrix-vector product per packed weight dtype, at GPT-2 small's shapes.

A batch-1 decoding step of ``GPT.generate(weight_dtype=...)`` is a chain of ``x · cast(W)ᵀ`` products over
``(out, in)`` rows (``llm_tf.layers.fast_paths.packed_matmul``). This times that product alone, inside a compiled
while-loop (as in decoding: the loop-dependent zero keeps the conversion in the loop), for each weight dtype and
for the shapes of GPT-2 small (the attention and feed-forward projections, and the 50,257-row output head), and
prints microseconds per product, weights per second and bytes read per second, with XLA's own product over a
float32 ``(in, out)`` kernel as the reference row. Where a dtype's weights per
second are no higher than float32's, its fewer bytes cannot make decoding faster: the loop's arithmetic, not the
memory, is then the limit.

Usage:
    python benchmarks/packed_matvec.py                 # GPT-2 small's shapes, every dtype, 3 rounds
    python benchmarks/packed_matvec.py --shapes 50257x768 --dtypes float32 int8

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

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _machine import machine_line  # noqa: E402
from keras import ops  # noqa: E402

from llm_tf.layers.fast_paths import WEIGHT_DTYPES, pack_rows, packed_matmul  # noqa: E402

# GPT-2 small: fused Q/K/V (2304 x 768), attention output (768 x 768), feed-forward in / out, the tied head.
GPT2_SHAPES = ("2304x768", "768x768", "3072x768", "768x3072", "50257x768")
BYTES_PER_WEIGHT = {"float32": 4, "bfloat16": 2, "float16": 2, "int8": 1}


def product_loop(packed, in_features: int, iterations: int):
    """A compiled function running ``iterations`` dependent products ``x ← x + 1e-6 · (x · Wᵀ)[:in]``."""

    @tf.function(jit_compile=True)
    def run(x):
        def step(i, x):
            loop_zero = i * 0  # 0, but not provably constant: see fast_paths.unpack_rows
            y = packed_matmul(x, packed, loop_zero)
            y = ops.tile(y, (1, -(-in_features // y.shape[1])))[:, :in_features]
            return i + 1, x + 1e-6 * y

        return tf.while_loop(lambda i, x: i < iterations, step, (tf.constant(0), x))[1]

    return run


def kernel_loop(kernel, in_features: int, iterations: int):
    """The same loop over XLA's own matrix product with a float32 ``(in, out)`` kernel (decoding's path before
    packed rows, and float32's at batch 2 and more)."""

    @tf.function(jit_compile=True)
    def run(x):
        def step(i, x):
            y = ops.matmul(x, kernel)
            y = ops.tile(y, (1, -(-in_features // y.shape[1])))[:, :in_features]
            return i + 1, x + 1e-6 * y

        return tf.while_loop(lambda i, x: i < iterations, step, (tf.constant(0), x))[1]

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", default=list(GPT2_SHAPES), help="OUTxIN matrices")
    parser.add_argument("--dtypes", nargs="+", choices=WEIGHT_DTYPES, default=list(WEIGHT_DTYPES))
    parser.add_argument("--weights-per-round", type=float, default=2e9,
                        help="weights read per timed call (sets the loop length per shape)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds (median)")
    args = parser.parse_args(argv)
    print(machine_line(), flush=True)
    rng = np.random.default_rng(0)
    rows = []
    for shape in args.shapes:
        out_features, in_features = (int(n) for n in shape.lower().split("x"))
        matrix = rng.normal(size=(out_features, in_features)).astype("float32") * 0.02
        iterations = max(10, int(args.weights_per_round / (out_features * in_features)))
        x = tf.constant(rng.normal(size=(1, in_features)).astype("float32"))
        runs = {"float32 kernel": kernel_loop(tf.constant(np.ascontiguousarray(matrix.T)), in_features, iterations)}
        runs["float32 kernel"](x).numpy()
        for dtype in args.dtypes:
            packed = {key: tf.constant(ops.convert_to_numpy(value)) for key, value in
                      pack_rows(matrix, dtype).items()}
            runs[dtype] = product_loop(packed, in_features, iterations)
            runs[dtype](x).numpy()  # compile
        seconds = {dtype: [] for dtype in runs}
        for _ in range(args.rounds):
            for dtype, run in runs.items():
                started = time.perf_counter()
                run(x).numpy()
                seconds[dtype].append((time.perf_counter() - started) / iterations)
        for dtype in runs:
            per_product = statistics.median(seconds[dtype])
            weights = out_features * in_features
            rows.append((shape, dtype, per_product * 1e6, weights / per_product / 1e9,
                         weights * BYTES_PER_WEIGHT[dtype.split()[0]] / per_product / 1e9))
        print(f"  measured {shape}", flush=True)
    print("\n| matrix (out × in) | weights | µs per product | G weights/s | GB/s read |\n|---|---|---|---|---|")
    for shape, dtype, microseconds, weights_per_second, bytes_per_second in rows:
        print(f"| {shape} | {dtype} | {microseconds:.1f} | {weights_per_second:.2f} | {bytes_per_second:.1f} |")


if __name__ == "__main__":
    main()
