"""Where a decoding step of ``GPT.generate`` spends its time: XLA:CPU's own kernels, per kind, against memory speed.

The decoding loop of ``GPT.generate`` is one XLA program; XLA:CPU runs it as a sequence of kernels ("thunks":
matrix products and fused element-wise loops), each named after its instruction in the optimized HLO. This script
compiles the loop once with the optimized HLO dumped to a temporary folder, profiles one call with TensorFlow's
profiler, and sums the kernels' times per kind over the loop's steps: the weight products per matrix shape (with
the bytes of weights each one reads per second), the attention products over the key/value caches, and the fused
loops by name. The memory reference is TensorFlow's own ``reduce_sum`` over as many bytes as the model's float32
weights, timed in the same run: a weight product reading at that speed is as fast as this machine's memory lets it.

Each kernel appears once in the profile, on the thread that ran it (a product's work shared with the other core
is inside its time), so the kernels' sum per step is close to the step's wall time when they run one after the
other, as a decoding step's dependent chain does. Profiling itself adds a few percent. A product that XLA runs
asynchronously is timed for its dispatch only: with ``--xla_cpu_experimental_ynn_fusion_type=`` (YNNPACK off) the
prefill's products "took" 76 instead of 182 ms of kernels while the call's wall time stayed the same, so check a
surprising kernel total against the unprofiled call time printed first.

Usage:
    python benchmarks/profile_generation.py                       # GPT-2 small, batch 1, float32
    python benchmarks/profile_generation.py --weight-dtype int8 --batch-size 8

Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import os
import pathlib
import re
import shutil
import statistics
import sys
import tempfile
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
DUMP_DIR = tempfile.mkdtemp(prefix="llm_tf_hlo_")
atexit.register(shutil.rmtree, DUMP_DIR, ignore_errors=True)
# XLA reads its flags once, when TensorFlow first compiles: they must be set before the import.
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_dump_to={DUMP_DIR} --xla_dump_hlo_as_text".strip()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _machine import machine_line  # noqa: E402

from llm_tf.models import GPT, GPTConfig  # noqa: E402

# Bytes per element of the HLO types; packed bfloat16 weights are stored as s16 (fast_paths.pack_rows).
BYTES = {"f32": 4, "bf16": 2, "f16": 2, "s16": 2, "u16": 2, "s8": 1, "u8": 1, "s32": 4, "pred": 1}
INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%(\S+) = (\w+)\[([\d,]*)\]\S* ([\w-]+)\((.*?)\)")


def parse_instructions(dump_dir: str):
    """The largest optimized module in ``dump_dir`` (the generation program), as ``(in_loop, everything)``:
    ``{name: (dtype, shape, opcode, operand names, line)}`` for the instructions of its while-loop bodies (the
    decoding loop) and for all of its instructions (the prefill is the rest)."""
    modules = sorted(pathlib.Path(dump_dir).glob("*cpu_after_optimizations.txt"), key=lambda path: path.stat().st_size)
    if not modules:
        raise RuntimeError(f"XLA wrote no optimized HLO to {dump_dir}: was TensorFlow imported before this script "
                           "set XLA_FLAGS?")
    everything, in_loop, inside_body = {}, set(), False
    for line in modules[-1].read_text().splitlines():
        if line.startswith("%") and line.endswith("{"):
            inside_body = "body" in line.split("(")[0]
        match = INSTRUCTION.match(line)
        if match:
            name, dtype, dims, opcode, operands = match.groups()
            shape = tuple(int(d) for d in dims.split(",") if d)
            everything[name] = (dtype, shape, opcode, re.findall(r"%([\w.-]+)", operands), line)
            if inside_body:
                in_loop.add(name)
    return {name: everything[name] for name in in_loop}, everything


def kind_of(name, instructions, everything):
    """A readable kind for one loop kernel, and ``(bytes, weights)`` it reads per call (0s when not a weight product)."""
    dtype, shape, opcode, operands, line = instructions[name]
    if opcode == "dot" and "lhs_batch_dims" in line:
        return f"attention product -> {dtype}{list(shape)}", (0, 0)
    if opcode == "dot" or (opcode == "fusion" and "dot" in name):
        # A product with the weights, alone or fused with their conversion (weight-only dtypes): the weights are
        # its largest operand.
        def size(operand):
            return int(np.prod(operand[1])) * BYTES.get(operand[0], 4)

        weights = max((everything[o] for o in operands if o in everything), key=size)
        rows = "×".join(str(d) for d in weights[1])
        return f"weight product {weights[0]}[{rows}]{' (fused)' if opcode == 'fusion' else ''}", (
            size(weights), int(np.prod(weights[1])))
    base = re.sub(r"[.]\d+$", "", name)  # one kind for the per-layer copies of a fused loop
    return f"{opcode} {base}", (0, 0)


def memory_speed(num_bytes: int, rounds: int = 5) -> float:
    """Bytes per second of TensorFlow's ``reduce_sum`` over a float32 tensor of ``num_bytes`` (median)."""
    values = tf.random.normal((num_bytes // 4,))
    tf.reduce_sum(values).numpy()
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        tf.reduce_sum(values).numpy()
        seconds.append(time.perf_counter() - started)
    return num_bytes / statistics.median(seconds)


def profiled_kernels(generate) -> dict[str, list[float]]:
    """``{kernel name: [seconds per call]}`` of the thunks in one profiled ``generate()``."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory(prefix="llm_tf_profile_") as log_dir:
        tf.profiler.experimental.start(log_dir)
        generate()
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(pathlib.Path(log_dir).rglob("*.xplane.pb")).read_bytes())
    kernels = collections.defaultdict(list)
    for plane in space.planes:
        names = {key: metadata.name for key, metadata in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                kernels[names.get(event.metadata_id, "")].append(event.duration_ps * 1e-12)
    return kernels


def print_prefill(kernels, in_loop, everything, top):
    """The kernels of the program outside the decoding loop (the prompt's prefill), per kind, for one call."""
    by_kind = collections.defaultdict(lambda: [0, 0.0])
    for name, durations in kernels.items():
        if name in everything and name not in in_loop:
            kind = kind_of(name, everything, everything)[0].replace("weight product", "product with")
            by_kind[kind][0] += len(durations)
            by_kind[kind][1] += sum(durations)
    total = sum(entry[1] for entry in by_kind.values())
    print(f"\nprefill and set-up (outside the loop, once per call): {1e3 * total:.1f} ms of kernels\n")
    print("| kernel kind | calls | ms per call | ms | share |\n|---|---|---|---|---|")
    ordered = sorted(by_kind.items(), key=lambda item: -item[1][1])
    for kind, (calls, seconds) in ordered[:top]:
        print(f"| {kind} | {calls} | {1e3 * seconds / calls:.2f} | {1e3 * seconds:.1f} | {seconds / total:.1%} |")
    rest = ordered[top:]
    if rest:
        seconds = sum(entry[1] for _, entry in rest)
        print(f"| {len(rest)} other kinds | {sum(entry[0] for _, entry in rest)} | | {1e3 * seconds:.1f} | "
              f"{seconds / total:.1%} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--weight-dtype", default="float32", help="GPT.generate(weight_dtype=...)")
    parser.add_argument("--prompt-length", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--num-layers", type=int, default=12, help="GPT-2 small has 12")
    parser.add_argument("--top", type=int, default=14, help="kinds listed (the rest summed)")
    args = parser.parse_args(argv)

    print(machine_line(), flush=True)
    keras.utils.set_random_seed(0)
    config = GPTConfig.from_preset("small", num_layers=args.num_layers)
    model = GPT(config)
    prompt = np.random.default_rng(0).integers(0, config.vocabulary_size, (args.batch_size, args.prompt_length))
    prompt = prompt.astype("int32")

    def generate(new_tokens=args.new_tokens):
        return model.generate(prompt, max_new_tokens=new_tokens, weight_dtype=args.weight_dtype)

    generate()  # compiles (and dumps the optimized HLO)
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        generate()
        seconds.append(time.perf_counter() - started)
    call_seconds = statistics.median(seconds)
    instructions, everything = parse_instructions(DUMP_DIR)
    kernels = profiled_kernels(generate)
    steps = args.new_tokens - 1  # the prefill gives the first new token; the loop makes the others
    weight_bytes = 4 * model.count_params()
    reference = memory_speed(weight_bytes)

    by_kind = collections.defaultdict(lambda: [0, 0.0, 0, 0])  # kind -> [calls, seconds, bytes, weights per call]
    for name, durations in kernels.items():
        if name in instructions:
            kind, (num_bytes, num_weights) = kind_of(name, instructions, everything)
            by_kind[kind][0] += len(durations)
            by_kind[kind][1] += sum(durations)
            by_kind[kind][2:] = [num_bytes, num_weights]
    loop_seconds = sum(entry[1] for entry in by_kind.values())
    print(f"GPT-2-small shape, {config.num_layers} layers; batch {args.batch_size}, {args.weight_dtype} weights, "
          f"prompt {args.prompt_length} + {args.new_tokens} new tokens: {args.batch_size * args.new_tokens / call_seconds:.1f} "
          f"tokens/s unprofiled ({call_seconds:.3f} s per call)")
    print(f"decoding loop: {1e3 * loop_seconds / steps:.2f} ms of kernels per step over {steps} steps "
          f"({loop_seconds:.3f} s; the rest of the compiled program, the prefill's kernels and the gaps between kernels, "
          f"{sum(sum(d) for n, d in kernels.items() if n == 'BlockUntilReady') - loop_seconds:.3f} s)")
    print(f"memory reference: reduce_sum over {weight_bytes / 2**20:.0f} MiB of float32 reads {reference / 1e9:.1f} "
          f"GB/s, so reading every float32 weight once takes {1e3 * weight_bytes / reference:.2f} ms\n")
    print("| kernel kind | calls per step | µs per call | ms per step | share of the loop | G weights/s | "
          "GB/s read (of the memory reference) |")
    print("|---|---|---|---|---|---|---|")
    ordered = sorted(by_kind.items(), key=lambda item: -item[1][1])
    for kind, (calls, total, num_bytes, num_weights) in ordered[:args.top]:
        speed = (f"{num_weights * calls / total / 1e9:.1f} | {num_bytes * calls / total / 1e9:.1f} "
                 f"({num_bytes * calls / total / reference:.0%})") if num_bytes else " | "
        print(f"| {kind} | {calls / steps:.0f} | {1e6 * total / calls:.1f} | {1e3 * total / steps:.2f} | "
              f"{total / loop_seconds:.1%} | {speed} |")
    rest = ordered[args.top:]
    if rest:
        total = sum(entry[1] for _, entry in rest)
        calls = sum(entry[0] for _, entry in rest)
        print(f"| {len(rest)} other kinds | {calls / steps:.0f} | {1e6 * total / calls:.1f} | {1e3 * total / steps:.2f} | "
              f"{total / loop_seconds:.1%} | | |")
    products = [(entry[1], entry[0] * entry[2], entry[0] * entry[3]) for _, entry in ordered if entry[2]]
    if products:
        seconds_products = sum(s for s, _, _ in products)
        bytes_products = sum(b for _, b, _ in products)
        weights_products = sum(w for _, _, w in products)
        print(f"\nweight products: {1e3 * seconds_products / steps:.2f} ms per step, "
              f"{weights_products / seconds_products / 1e9:.1f} G weights/s, "
              f"{bytes_products / seconds_products / 1e9:.1f} GB/s = {bytes_products / seconds_products / reference:.0%} "
              f"of the memory reference (at 100%: {1e3 * bytes_products / steps / reference:.2f} ms per step)")
    print_prefill(kernels, instructions, everything, args.top)


if __name__ == "__main__":
    main()
