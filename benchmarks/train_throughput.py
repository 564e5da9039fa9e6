"""Training speed of the char-level GPT recipe, side by side with keras-hub and Hugging Face transformers.

The configuration is nanoGPT's Tiny Shakespeare CPU recipe: 4 layers, 4 heads, 128 wide (MLP 512), vocabulary
65, context 64, batch 12 (768 tokens per step), float32, AdamW (beta2 0.99, weight decay 0.1) with a
global gradient-norm clip of 1.0, no dropout. Three implementations of the same network train on the same
random windows of a random token stream:

- ``llm_tf``: ``llm_tf.models.GPT`` under ``model.fit`` (``jit_compile=True``, ``steps_per_execution``
  steps per call, the library's ``build_optimizer`` + ``WarmupCosineDecay``), inputs without a padding
  mask. ``--precision mixed_bfloat16`` adds a row for the same model in bfloat16 compute.
- ``keras-hub``: ``keras_hub.models.GPT2Backbone`` with the tied head (``GPT2CausalLM`` without a
  preprocessor), under ``model.fit`` with the same optimizer and the same compile options
  (``jit_compile``, ``steps_per_execution``), inputs with an all-ones padding mask (the backbone requires it).
- ``transformers``: ``GPT2LMHeadModel`` (PyTorch, CPU) in a plain training loop: forward, cross-entropy,
  backward, ``clip_grad_norm_``, ``torch.optim.AdamW`` step.

Each is built and warmed up first (compilation excluded), then measured in ``--rounds`` interleaved rounds of
``--steps`` steps, so that a busy machine slows all of them alike. Reported per implementation: the median
milliseconds per step (each block of ``steps_per_execution`` steps timed as a whole, then divided), tokens per
second, achieved GFLOP/s with ``6·N + 12·L·d·T`` FLOPs per token (``N`` = parameters without the position
table; the same count for all three, as they do the same work) and its fraction of the fp32 matmul peak
measured in the same run (a loop of 1024×1024 matmuls in TensorFlow). Ratios are printed at the end.

Windows come from ``llm_tf.tasks.language_modeling.LMWindowSampler`` and calls are timed with
``llm_tf.training.timing.ExecutionTimer`` (the library's sampler and timer; the experiment uses the same).

``--variants`` adds more ``llm_tf`` rows to the same rounds (another ``steps_per_execution``, no XLA, an
all-True padding mask, bfloat16, plain SGD in place of AdamW to bound the optimizer update's share), for
comparing the speed levers side by side.

This is a benchmark, not a test: it is never run by the test suite.

Example:
    python benchmarks/train_throughput.py                                  # 3 rounds of 500 steps
    python benchmarks/train_throughput.py --quick                          # a short check
    python benchmarks/train_throughput.py --precision float32 mixed_bfloat16 --json /tmp/throughput.json
    python benchmarks/train_throughput.py --peers --variants spe=1 spe=250 nojit spe=50,mask
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if TYPE_CHECKING:
    from llm_tf.tasks.language_modeling import CausalLMConfig

PEERS = ("keras_hub", "transformers")
PRECISIONS = ("float32", "mixed_bfloat16")


#: Characters in the vocabulary (Tiny Shakespeare's 65).
VOCABULARY_SIZE = 65


def recipe_config() -> CausalLMConfig:
    """The benchmarked configuration: nanoGPT's Tiny Shakespeare CPU recipe (the library's ``CausalLMConfig``
    defaults, as ``experiments/gpt_shakespeare.py`` trains it) with nanoGPT's tied head, as the peers have.

    Example:
        >>> recipe_config().tokens_per_step
        768
    """
    from llm_tf.tasks.language_modeling import CausalLMConfig

    return CausalLMConfig(tie_embeddings=True)


def flops_per_token(recipe: CausalLMConfig, num_parameters: int) -> float:
    """Training FLOPs per token: ``6·N + 12·L·d·T`` (PaLM appendix B; nanoGPT's ``estimate_mfu``).

    ``6·N`` is the forward and backward pass through the weight matrices, ``12·L·d·T`` the attention
    scores and the weighted sum over ``T`` positions.

    Args:
        recipe: the configuration.
        num_parameters: ``N``, the parameters without the position table (the tied token embedding counts:
            it is also the output projection).

    Returns:
        FLOPs per token.

    Example:
        >>> flops_per_token(recipe_config(), 801_664)
        5203200.0
    """
    return float(6 * num_parameters + 12 * recipe.num_layers * recipe.hidden_dim * recipe.block_size)


def measure_matmul_peak(size: int = 1024, chain: int = 10, repeats: int = 5) -> float:
    """fp32 matmul throughput of TensorFlow on this machine, in GFLOP/s (median of ``repeats``).

    Args:
        size: the square matrix size.
        chain: matmuls per timed call (each feeds the next, so none can be skipped).
        repeats: timed calls.

    Returns:
        GFLOP/s.

    Example:
        >>> measure_matmul_peak(256, chain=2, repeats=2) > 0  # doctest: +SKIP
        True
    """
    import numpy as np
    import tensorflow as tf

    generator = np.random.default_rng(0)
    left = tf.constant(generator.standard_normal((size, size), dtype=np.float32))
    right = tf.constant((generator.standard_normal((size, size)) / np.sqrt(size)).astype(np.float32))

    @tf.function
    def chained(left, right):
        product = left
        for _ in range(chain):
            product = tf.matmul(product, right)
        return product

    chained(left, right).numpy()
    seconds = []
    for _ in range(repeats):
        begin = time.perf_counter()
        chained(left, right).numpy()
        seconds.append(time.perf_counter() - begin)
    return chain * 2 * size**3 / statistics.median(seconds) / 1e9


# ------------------------------------------------------------------------------------------------------------
# Data shared by all implementations.


def token_stream(length: int = 1_000_000, vocabulary_size: int = 65, seed: int = 0):
    """A random int32 token stream (speed does not depend on the text)."""
    import numpy as np

    return np.random.default_rng(seed).integers(0, vocabulary_size, size=length, dtype=np.int32)


def window_starts(stream, recipe: CausalLMConfig, count: int, seed: int):
    """``count`` batches of random window starts ``(count, batch_size)`` from the library's LM-window sampler."""
    from llm_tf.tasks.language_modeling import LMWindowSampler

    sampler = LMWindowSampler(stream, recipe.block_size)
    return sampler, sampler.random_starts(count * recipe.batch_size, seed).reshape(count, recipe.batch_size)


def keras_dataset(stream, recipe: CausalLMConfig, with_padding_mask: bool, seed: int = 0):
    """An endless ``tf.data`` pipeline of ``({"token_ids"[, "padding_mask"]}, labels)`` random windows."""
    import tensorflow as tf

    sampler, starts = window_starts(stream, recipe, 4096, seed)
    return sampler.dataset_from_starts(tf.data.Dataset.from_tensor_slices(starts).repeat(), with_padding_mask)


# ------------------------------------------------------------------------------------------------------------
# The implementations. Each runner has `warm_up()` and `run(steps) -> list of ms per step`.


class KerasFitRunner:
    """Times ``model.fit`` of a compiled Keras model: one epoch per round, each execution timed.

    Args:
        name: the row label.
        model: a compiled model.
        dataset: an endless dataset of batches.
        steps_per_execution: the model's ``steps_per_execution``.
        num_parameters: ``N`` for the FLOP count.

    Example:
        >>> runner = KerasFitRunner("ours", model, dataset, 50, 801_664)  # doctest: +SKIP
        >>> runner.warm_up(); runner.run(100)  # doctest: +SKIP
    """

    def __init__(self, name, model, dataset, steps_per_execution, num_parameters):
        self.name = name
        self.model = model
        self.dataset = dataset
        self.steps_per_execution = steps_per_execution
        self.num_parameters = num_parameters
        self.compile_seconds = None

    def _fit(self, steps, callbacks=()):
        self.model.fit(
            self.dataset, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=list(callbacks), shuffle=False
        )

    def warm_up(self, executions: int = 2) -> None:
        begin = time.perf_counter()
        self._fit(self.steps_per_execution)
        self.compile_seconds = time.perf_counter() - begin
        if executions > 1:
            self._fit((executions - 1) * self.steps_per_execution)

    def run(self, steps: int) -> list[float]:
        from llm_tf.training.timing import ExecutionTimer

        # From one call's start to the next: the fit loop's per-call overhead counts, as in the torch loop.
        timer = ExecutionTimer(include_loop_overhead=True)
        executions = max(1, steps // self.steps_per_execution)
        self._fit(executions * self.steps_per_execution, [timer])
        return timer.ms_per_step_samples(self.steps_per_execution)


def compile_with_recipe(
    model, recipe: CausalLMConfig, jit_compile: bool, steps_per_execution: int, optimizer=None, **compile_kwargs
):
    """Compile a Keras model with the recipe's optimizer (``causal_lm_optimizer``: AdamW, warmup + cosine, clip;
    biases and norms not decayed, as nanoGPT; or ``optimizer``) and sparse cross-entropy on logits, as
    ``build_causal_lm`` does."""
    import keras

    from llm_tf.tasks.language_modeling import causal_lm_optimizer

    model.compile(
        optimizer=optimizer or causal_lm_optimizer(recipe),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
        **compile_kwargs,
    )


def build_llm_tf(
    recipe: CausalLMConfig, dataset_stream, precision: str, jit_compile: bool, steps_per_execution: int,
    padding_mask: bool = False, plain_sgd: bool = False, fused_optimizer: bool = True,
):
    """``llm_tf.models.GPT`` built and compiled by ``build_causal_lm``, as ``experiments/gpt_shakespeare.py`` does.

    With ``padding_mask`` the inputs also carry an all-True padding mask (the GPT then computes positions
    from it and merges it into the attention mask: the cost of passing a mask that is not needed).
    """
    from llm_tf.tasks.language_modeling import build_causal_lm

    model = build_causal_lm(recipe, VOCABULARY_SIZE, jit_compile, steps_per_execution, dtype=precision)
    if plain_sgd:
        # The same step with the cheapest update there is (w -= lr·g, no clipping): the difference to the
        # recipe's AdamW bounds what any fusion of the optimizer update could save.
        import keras

        compile_with_recipe(model, recipe, jit_compile, steps_per_execution, optimizer=keras.optimizers.SGD(1e-3))
    elif not fused_optimizer:
        # The recipe's AdamW with Keras's per-variable update instead of the fused one (the library's default).
        from llm_tf.tasks.language_modeling import causal_lm_optimizer

        optimizer = causal_lm_optimizer(recipe)
        optimizer = type(optimizer).from_config({**optimizer.get_config(), "fused": False})
        compile_with_recipe(model, recipe, jit_compile, steps_per_execution, optimizer=optimizer)
    num_parameters = model.count_params() - recipe.block_size * recipe.hidden_dim
    dataset = keras_dataset(dataset_stream, recipe, with_padding_mask=padding_mask)
    label = "llm_tf GPT" + ("" if precision == "float32" else f" ({precision})")
    label += " + padding mask" if padding_mask else ""
    return KerasFitRunner(label, model, dataset, steps_per_execution, num_parameters)


def build_keras_hub(recipe: CausalLMConfig, dataset_stream, jit_compile: bool, steps_per_execution: int):
    """keras-hub ``GPT2Backbone`` + tied head (``GPT2CausalLM``, no preprocessor), same optimizer and options."""
    import keras_hub

    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCABULARY_SIZE,
        num_layers=recipe.num_layers,
        num_heads=recipe.num_heads,
        hidden_dim=recipe.hidden_dim,
        intermediate_dim=recipe.intermediate_dim,
        dropout=0.0,
        max_sequence_length=recipe.block_size,
        dtype="float32",
    )
    model = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    compile_with_recipe(model, recipe, jit_compile, steps_per_execution, weighted_metrics=[])
    num_parameters = model.count_params() - recipe.block_size * recipe.hidden_dim
    dataset = keras_dataset(dataset_stream, recipe, with_padding_mask=True)
    return KerasFitRunner("keras-hub GPT2Backbone", model, dataset, steps_per_execution, num_parameters)


class TorchRunner:
    """Hugging Face ``GPT2LMHeadModel`` on PyTorch CPU in a plain training loop with ``torch.optim.AdamW``.

    Args:
        recipe: the configuration.
        stream: the token stream.
        block: steps timed together (the Keras runners' ``steps_per_execution``), so the medians compare.

    Example:
        >>> runner = TorchRunner(recipe_config(), token_stream(), block=50)  # doctest: +SKIP
    """

    def __init__(self, recipe: CausalLMConfig, stream, block: int):
        import math

        import torch
        import transformers

        torch.manual_seed(0)
        config = transformers.GPT2Config(
            vocab_size=VOCABULARY_SIZE,
            n_positions=recipe.block_size,
            n_embd=recipe.hidden_dim,
            n_layer=recipe.num_layers,
            n_head=recipe.num_heads,
            n_inner=recipe.intermediate_dim,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            tie_word_embeddings=True,
            bos_token_id=None,
            eos_token_id=None,
        )
        self.name = "transformers GPT2LMHeadModel"
        self.recipe = recipe
        self.block = block
        self.model = transformers.GPT2LMHeadModel(config)
        self.model.train()
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=recipe.learning_rate,
            betas=(recipe.beta_1, recipe.beta_2),
        )
        warmup, total = recipe.warmup_iters, recipe.max_iters
        floor = recipe.min_learning_rate / recipe.learning_rate

        def factor(step):
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        unique = {id(p): p for p in self.model.parameters()}
        self.num_parameters = sum(p.numel() for p in unique.values()) - recipe.block_size * recipe.hidden_dim
        self.stream = torch.from_numpy(stream.astype("int64"))
        self.starts = torch.from_numpy(window_starts(stream, recipe, 4096, seed=0)[1].astype("int64"))
        self.offsets = torch.arange(recipe.block_size + 1)
        self.position = 0
        self.compile_seconds = 0.0

    def _step(self):
        import torch

        starts = self.starts[self.position % len(self.starts)]
        self.position += 1
        windows = self.stream[starts[:, None] + self.offsets]
        inputs, labels = windows[:, :-1], windows[:, 1:]
        logits = self.model(input_ids=inputs).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss

    def warm_up(self, executions: int = 2) -> None:
        for _ in range(executions * self.block):
            self._step()

    def run(self, steps: int) -> list[float]:
        times = []
        for _ in range(max(1, steps // self.block)):
            begin = time.perf_counter()
            for _ in range(self.block):
                loss = self._step()
            float(loss.detach())  # read the result, as the Keras runners do at the end of each block
            times.append(1000 * (time.perf_counter() - begin) / self.block)
        return times


# ------------------------------------------------------------------------------------------------------------
# The benchmark.


def summarize(name: str, ms_per_step: list[float], recipe: CausalLMConfig, num_parameters: int, peak: float) -> dict:
    """One result row: median ms/step, tokens/s, GFLOP/s and the fraction of the matmul peak."""
    median = statistics.median(ms_per_step)
    gflops = flops_per_token(recipe, num_parameters) * recipe.tokens_per_step / (median / 1000) / 1e9
    return {
        "name": name,
        "ms_per_step": round(median, 3),
        "ms_per_step_min": round(min(ms_per_step), 3),
        "tokens_per_s": round(recipe.tokens_per_step / (median / 1000), 1),
        "gflops_per_s": round(gflops, 2),
        "fraction_of_matmul_peak": round(gflops / peak, 4),
        "samples": len(ms_per_step),
    }


def format_rows(rows: list[dict], peak: float, recipe: CausalLMConfig, num_parameters: int) -> str:
    """The printed table (and the peak's equivalent step time)."""
    header = f"{'implementation':<34} {'ms/step':>8} {'min':>8} {'tokens/s':>10} {'GFLOP/s':>8} {'of peak':>8}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['name']:<34} {row['ms_per_step']:>8.2f} {row['ms_per_step_min']:>8.2f} "
            f"{row['tokens_per_s']:>10.0f} {row['gflops_per_s']:>8.1f} {row['fraction_of_matmul_peak']:>8.1%}"
        )
    step_flops = flops_per_token(recipe, num_parameters) * recipe.tokens_per_step
    lines.append(
        f"fp32 matmul peak (1024x1024, TensorFlow): {peak:.1f} GFLOP/s = {1000 * step_flops / peak / 1e9:.2f} "
        f"ms per step of {step_flops / 1e9:.3f} GFLOP"
    )
    return "\n".join(lines)


def parse_variant(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """Turn a ``--variants`` item such as ``"spe=250,mask"`` into :func:`build_llm_tf` keyword arguments.

    Settings not named keep the command line's values (``--steps-per-execution``, ``--no-jit``, ...).

    Args:
        variant: comma-separated ``spe=N``, ``nojit``, ``mask``, ``bf16``, ``sgd`` (plain SGD instead of AdamW),
            ``unfused`` (the same AdamW with Keras's per-variable update instead of the fused one).
        args: the parsed command line.

    Returns:
        ``{"precision", "jit_compile", "steps_per_execution", "padding_mask", "plain_sgd",
        "fused_optimizer"}``.

    Example:
        >>> parse_variant("spe=250,mask", build_parser().parse_args([]))["steps_per_execution"]
        250
    """
    settings = {
        "precision": "float32", "jit_compile": args.jit_compile,
        "steps_per_execution": args.steps_per_execution, "padding_mask": args.padding_mask, "plain_sgd": False,
        "fused_optimizer": True,
    }
    for item in filter(None, variant.split(",")):
        if item == "nojit":
            settings["jit_compile"] = False
        elif item == "mask":
            settings["padding_mask"] = True
        elif item == "bf16":
            settings["precision"] = "mixed_bfloat16"
        elif item == "sgd":
            settings["plain_sgd"] = True
        elif item == "unfused":
            settings["fused_optimizer"] = False
        elif item.startswith("spe=") and item[4:].isdigit() and int(item[4:]) > 0:
            settings["steps_per_execution"] = int(item[4:])
        else:
            raise ValueError(
                f"--variants items are comma-separated spe=N (N >= 1), nojit, mask, bf16, sgd, unfused; got {item!r} in "
                f"variant={variant!r}."
            )
    return settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Training speed of llm_tf's GPT vs keras-hub and transformers on nanoGPT's char-level CPU recipe.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=500, help="measured steps per implementation and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds")
    parser.add_argument("--quick", action="store_true", help="a short check: 100 steps, 1 round")
    parser.add_argument("--steps-per-execution", type=int, default=50,
                        help="steps per compiled Keras call (also the block of steps timed together for torch)")
    parser.add_argument("--no-jit", dest="jit_compile", action="store_false", help="Keras models without XLA")
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["float32"],
                        help="precision(s) of llm_tf's model (the peers always run float32)")
    parser.add_argument("--padding-mask", action="store_true",
                        help="feed llm_tf's GPT an all-True padding mask too (to measure what it costs)")
    parser.add_argument(
        "--variants", nargs="*", default=[],
        help="more llm_tf rows measured in the same rounds, each a comma-separated list of spe=N, nojit, mask, "
        "bf16 (e.g. 'spe=250' 'spe=1' 'nojit' 'spe=50,mask')",
    )
    parser.add_argument("--peers", nargs="*", choices=PEERS, default=list(PEERS), help="peers to include")
    parser.add_argument("--intra-op-threads", type=int, default=None, help="TensorFlow intra-op threads")
    parser.add_argument("--inter-op-threads", type=int, default=None, help="TensorFlow inter-op threads")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print the table; returns the results.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        ``{"rows": [...], "matmul_peak_gflops": ..., "ratios": {...}, ...}``.

    Example:
        >>> results = main(["--quick", "--peers"])  # doctest: +SKIP
    """
    from _machine import machine_line

    print(machine_line(), flush=True)
    args = build_parser().parse_args(argv)
    if args.quick:
        args.steps, args.rounds = 100, 1
        args.steps_per_execution = min(args.steps_per_execution, 50)
    for name in ("steps", "rounds", "steps_per_execution"):
        value = getattr(args, name)
        if value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer; got {name}={value}.")
    if args.steps < args.steps_per_execution:
        raise ValueError(
            f"--steps must be at least --steps-per-execution; got steps={args.steps}, "
            f"steps_per_execution={args.steps_per_execution}."
        )
    import tensorflow as tf

    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    import keras

    keras.utils.set_random_seed(0)
    recipe = recipe_config()
    stream = token_stream(vocabulary_size=VOCABULARY_SIZE)
    runners = []
    for precision in args.precision:
        runners.append(
            build_llm_tf(recipe, stream, precision, args.jit_compile, args.steps_per_execution, args.padding_mask)
        )
    for variant in args.variants:
        settings = parse_variant(variant, args)
        runner = build_llm_tf(recipe, stream, **settings)
        runner.name = f"llm_tf GPT [{variant}]"
        runners.append(runner)
    if "keras_hub" in args.peers:
        runners.append(build_keras_hub(recipe, stream, args.jit_compile, args.steps_per_execution))
    if "transformers" in args.peers:
        runners.append(TorchRunner(recipe, stream, block=args.steps_per_execution))

    for runner in runners:
        runner.warm_up()
        print(f"warmed up {runner.name} (first call {runner.compile_seconds:.1f} s)", flush=True)
    times = {runner.name: [] for runner in runners}
    peaks = [measure_matmul_peak()]
    for round_index in range(args.rounds):
        for runner in runners:
            times[runner.name] += runner.run(args.steps)
        peaks.append(measure_matmul_peak())
        done = ", ".join(f"{name} {statistics.median(values):.2f}" for name, values in times.items())
        print(f"round {round_index + 1}/{args.rounds}: median ms/step so far: {done}", flush=True)
    peak = statistics.median(peaks)
    num_parameters = runners[0].num_parameters
    rows = [summarize(runner.name, times[runner.name], recipe, num_parameters, peak) for runner in runners]
    ours = rows[0]
    ratios = {
        f"{row['name']} / {ours['name']}": round(row["ms_per_step"] / ours["ms_per_step"], 3) for row in rows[1:]
    }
    print()
    print(
        f"Training step, {recipe.num_layers} layers x {recipe.hidden_dim} wide, {recipe.num_heads} heads, context "
        f"{recipe.block_size}, batch {recipe.batch_size} ({recipe.tokens_per_step} tokens/step), "
        f"N = {num_parameters:,} parameters (without positions); {args.rounds} round(s) x {args.steps} steps, "
        f"steps_per_execution {args.steps_per_execution}, jit_compile {args.jit_compile}, "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"
    )
    print(format_rows(rows, peak, recipe, num_parameters))
    for label, ratio in ratios.items():
        print(f"ratio {label}: {ratio:.2f}x slower" if ratio >= 1 else f"ratio {label}: {ratio:.2f}")
    results = {
        "recipe": recipe.to_dict(),
        "num_parameters_without_positions": num_parameters,
        "flops_per_token": flops_per_token(recipe, num_parameters),
        "matmul_peak_gflops": round(peak, 2),
        "matmul_peaks_gflops": [round(value, 2) for value in peaks],
        "rows": rows,
        "ratios": ratios,
        "settings": {
            "steps": args.steps, "rounds": args.rounds, "steps_per_execution": args.steps_per_execution,
            "jit_compile": args.jit_compile, "precisions": args.precision, "padding_mask": args.padding_mask,
            "variants": args.variants,
            "intra_op_threads": args.intra_op_threads, "inter_op_threads": args.inter_op_threads,
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
        },
        "compile_seconds": {runner.name: runner.compile_seconds for runner in runners},
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=2)
    return results


if __name__ == "__main__":
    main()
