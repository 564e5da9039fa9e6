"""Machine translation on Multi30k (en→de by default, de→en with ``--source de --target en``).

Recipe (the small-data Transformer recipe of public Multi30k setups, e.g. fairseq's ``transformer_tiny`` as used
by Wu et al. 2021): one cased byte-level BPE vocabulary (8,000) learned on the training pairs of both languages;
pre-norm encoder–decoder with tied source/target/output embeddings, dropout 0.3 (attention 0.1), label smoothing
0.1, Adam (0.9, 0.98) with linear warmup + inverse-square-root decay (``--schedule cosine``: a cosine decay to 0
at the end of ``--epochs``, for a run whose length is known), batches of <= ``max_tokens`` tokens per
side formed by length bucket (fixed batches, reshuffled per epoch), the mean of the last N epoch checkpoints.
Steps, each in ``llm_tf.tasks.seq2seq``:

1. tokenizer (``train_joint_tokenizer``, saved in the run), ``encode_pairs``, ``token_batches`` / ``pad_batches``;
2. ``llm_tf.training.train`` (run directory, crash-safe resume at the exact batch, best/last checkpoints) with
   validation BLEU (greedy, on ``val_samples`` sentences) every ``val_every`` epochs through
   ``GenerationMetricsCallback``, a ``bleu_timeline.csv`` (wall time vs BLEU), ``EpochCheckpoints`` and a
   ``--max-minutes`` wall-clock budget (stops at an epoch end);
3. ``average_checkpoints`` of the last ``average_last`` epochs; the whole test set (test2016) decoded greedy and
   with beam search (``translate``: fixed batch size, one compiled decode per shape), scored with sacreBLEU cased
   (13a, signature), lowercased, chrF (``score_translations``); decode speed in sentences/s;
4. outputs: ``results.json``, ``summary.md`` (scores, 10 example sentences: source, reference, greedy, beam),
   ``bleu_vs_time.png``, ``cross_attention_{1,2}.png``, ``test_greedy.txt``, ``test_beam.txt``.

Run directory: ``<output-dir>/translation_<src>_<tgt>/<timestamp>/``. ``--resume auto`` continues an interrupted
run with the same config; ``--resume <run dir> --max-minutes 120`` continues a finished (time-stopped) run longer.

Example:
    python experiments/translation.py --max-minutes 55
    python experiments/translation.py --schedule cosine --epochs 25 --max-minutes 59
    python experiments/translation.py --precision mixed_bfloat16 --schedule cosine --epochs 38 --max-minutes 59
    python experiments/translation.py --precision mixed_bfloat16 --schedule cosine --epochs 44 --vocabulary-size 6000 \
        --max-minutes 59
    python experiments/translation.py --precision mixed_bfloat16 --schedule cosine --epochs 33 --vocabulary-size 6000 \
        --dropout 0.2 --max-minutes 59   # lowercased BLEU 40.2 in 51 minutes on a 2-core AVX-512 EPYC
    python experiments/translation.py --source de --target en --max-minutes 55
    python experiments/translation.py --preset smoke --output-dir /tmp/runs
"""

from __future__ import annotations

from llm_tf.runtime import reexec_with_tuned_malloc

reexec_with_tuned_malloc(__name__)  # first, before TensorFlow loads: glibc reads its malloc tunables at process start

import argparse
import dataclasses
import os
import sys

from llm_tf.tasks.cli import (
    ExperimentConfig,
    add_block_order_arguments,
    add_common_arguments,
    apply_overrides,
    default_data_dir,
    flag_overrides,
    format_table,
)


@dataclasses.dataclass
class TranslationConfig(ExperimentConfig):
    """Every choice of a run (saved as config.json)."""

    preset: str = "full"
    source: str = "en"
    target: str = "de"
    data_dir: str | None = None
    max_train_pairs: int | None = None
    max_test_pairs: int | None = None
    vocabulary_size: int = 8000
    max_length: int = 64
    hidden_dim: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_dim: int = 512
    norm_first: bool = True  # pre-norm blocks; --post-norm for the original Transformer's (and fairseq's)
    dropout: float = 0.3
    label_smoothing: float = 0.1
    max_tokens: int = 2048
    bucket_width: int = 4
    warmup_steps: int = 400
    learning_rate_scale: float = 1.0
    schedule: str = "inverse_sqrt"  # or "cosine": annealed to 0 at the end of `epochs` (set them to fit the budget)
    epochs: int = 60
    average_last: int = 5  # whole-validation lowercased BLEU, beam 5: last 5 epochs 39.69, last 3 39.48, last 1 39.64
    val_every: int = 2
    val_samples: int = 200
    num_beams: int = 5
    length_penalty: float = 0.6
    decode_batch_size: int = 50
    precision: str = "float32"  # --precision: "mixed_bfloat16" computes in bfloat16 (TensorFlow's oneDNN kernels)
    optimizer_update: str = "fused"  # --optimizer-update: "per-variable" for Keras's AdamW update
    seed: int = 0

    def validate(self):
        if {self.source, self.target} != {"en", "de"}:
            raise ValueError(f"`source`/`target` must be en/de or de/en; got {self.source}/{self.target}.")
        if self.schedule not in ("inverse_sqrt", "cosine"):
            raise ValueError(f"`schedule` must be 'inverse_sqrt' or 'cosine'; got {self.schedule!r}.")


PRESET_VALUES = {
    "full": {},
    "smoke": dict(max_train_pairs=1500, max_test_pairs=30, vocabulary_size=600, max_length=48, hidden_dim=32,
                  num_layers=1, num_heads=2, intermediate_dim=64, max_tokens=1024, warmup_steps=20, epochs=2,
                  average_last=2, val_every=1, val_samples=20, num_beams=3, decode_batch_size=32),
}
VALUE_FLAGS = (
    ("source", str), ("target", str), ("max_train_pairs", int), ("max_test_pairs", int), ("vocabulary_size", int),
    ("max_length", int), ("hidden_dim", int), ("num_layers", int), ("num_heads", int), ("intermediate_dim", int),
    ("dropout", float), ("label_smoothing", float), ("max_tokens", int), ("bucket_width", int),
    ("warmup_steps", int), ("learning_rate_scale", float), ("schedule", str), ("epochs", int), ("average_last", int),
    ("val_every", int), ("val_samples", int), ("num_beams", int), ("length_penalty", float),
    ("decode_batch_size", int),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="translation.py", description=__doc__.split("\n")[0])
    add_common_arguments(parser, presets=list(PRESET_VALUES))
    recipe = parser.add_argument_group("recipe (default: the preset's value)")
    for name, kind in VALUE_FLAGS:
        recipe.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None,
                            help=f"[{getattr(TranslationConfig(), name)!r}]")
    add_block_order_arguments(recipe, "pre-norm blocks [default]",
                              "post-norm blocks (the original Transformer's, fairseq's default)")
    recipe.add_argument("--max-minutes", type=float, default=None,
                        help="wall-clock training budget of this invocation (stops at an epoch end)")
    recipe.add_argument("--deterministic", action="store_true",
                        help="TensorFlow op determinism: the same command gives the same BLEU bit for bit")
    return parser


def config_from_args(args) -> TranslationConfig:
    overrides = flag_overrides(vars(args), TranslationConfig, skip=("preset", "data_dir", "seed"))
    overrides.update(data_dir=default_data_dir(args.data_dir), seed=args.seed, preset=args.preset)
    return apply_overrides(TranslationConfig(**PRESET_VALUES[args.preset]), overrides)


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    from llm_tf import training
    from llm_tf.datasets.multi30k import load_multi30k
    from llm_tf.metrics import GenerationMetricsCallback
    from llm_tf.plots import plot_attention_heatmaps
    from llm_tf.tasks import seq2seq as s2s
    from llm_tf.tasks.runs import open_run
    from llm_tf.text import load_tokenizer

    run, saved = open_run(f"translation_{config.source}_{config.target}", args.runs_root, config.to_dict(),
                          resume=args.resume)
    config = TranslationConfig.from_dict(saved)  # a resumed run keeps its saved recipe and precision
    strategy = training.setup_training(strategy=args.strategy, num_cpu_devices=args.num_cpu_devices,
                                       precision=config.precision, seed=config.seed,
                                       deterministic=args.deterministic,
                                       optimizer_update=config.optimizer_update)
    print(f"run directory: {run.path}", flush=True)
    pairs = load_multi30k(config.data_dir, source_language=config.source, target_language=config.target)
    train_sources, train_targets = pairs.train.sources, pairs.train.targets
    if config.max_train_pairs:
        train_sources, train_targets = train_sources[: config.max_train_pairs], train_targets[: config.max_train_pairs]
    test_sources, test_references = pairs.test.sources, pairs.test.targets
    if config.max_test_pairs:
        test_sources, test_references = test_sources[: config.max_test_pairs], test_references[: config.max_test_pairs]

    tokenizer_dir = os.path.join(run.path, "tokenizer")
    if os.path.isdir(tokenizer_dir):
        tokenizer = load_tokenizer(tokenizer_dir)
    else:
        tokenizer = s2s.train_joint_tokenizer(train_sources, train_targets, config.vocabulary_size)
        tokenizer.save(tokenizer_dir)

    def batches(sources, targets, seed):
        return s2s.make_batches(tokenizer, sources, targets, config.max_length, config.max_length, config.max_tokens,
                                config.bucket_width, seed)

    train_batches = batches(train_sources, train_targets, config.seed)
    val_batches = batches(pairs.validation.sources, pairs.validation.targets, 0)
    with strategy.scope():
        model = s2s.build_translation_model(tokenizer.vocabulary_size, config.max_length, config.hidden_dim,
                                            config.num_layers, config.num_heads, config.intermediate_dim,
                                            config.dropout, norm_first=config.norm_first)
        s2s.compile_translation_model(model, config.warmup_steps, config.learning_rate_scale,
                                      config.label_smoothing, schedule=config.schedule,
                                      total_steps=config.epochs * len(train_batches))

    def greedy(texts):
        return s2s.translate(model, tokenizer, texts, batch_size=config.decode_batch_size)[0]

    bleu_callback = GenerationMetricsCallback(
        greedy, pairs.validation.sources, pairs.validation.targets, metric="bleu", every_n_epochs=config.val_every,
        num_samples=config.val_samples, verbose=1)
    timeline = s2s.BleuTimeline(os.path.join(run.path, "bleu_timeline.csv"))
    budget = s2s.WallClockBudget(args.max_minutes)
    average_dir = os.path.join(run.path, "averaging")
    result = training.train(
        model, s2s.epoch_batches_fn(train_batches, config.seed), s2s.epoch_batches_fn(val_batches, 0)(0),
        epochs=config.epochs, run_dir=run, callbacks=[bleu_callback, timeline, s2s.EpochCheckpoints(
            average_dir, keep=config.average_last), budget], log_every_n_steps=args.log_every_n_steps,
        backup_every_n_steps=args.backup_every_n_steps, tensorboard=False, verbose=2, strategy=strategy)

    checkpoints = s2s.saved_checkpoints(average_dir)[-config.average_last:]
    if checkpoints:  # the mean of the last N epochs' weights (also after "already_completed")
        model.set_weights(s2s.average_checkpoints(checkpoints))
    scores, outputs = {}, {}
    for name, beams in (("greedy", 1), (f"beam{config.num_beams}", config.num_beams)):
        outputs[name], seconds = s2s.translate(model, tokenizer, test_sources, num_beams=beams,
                                               length_penalty=config.length_penalty,
                                               batch_size=config.decode_batch_size)
        scores[name] = {**s2s.score_translations(outputs[name], test_references), "decode_s": round(seconds, 2),
                        "sentences_per_s": round(s2s.sentences_per_second(len(test_sources), seconds), 2)}
        with open(os.path.join(run.path, f"test_{name}.txt"), "w") as handle:
            handle.write("\n".join(outputs[name]) + "\n")
    beam = f"beam{config.num_beams}"
    rows = [(n, f"{s['bleu']:.2f}", f"{s['bleu_lowercase']:.2f}", f"{s['chrf']:.2f}", s["sentences_per_s"])
            for n, s in scores.items()]
    table = format_table(["decoding", "BLEU (cased)", "BLEU (lowercased)", "chrF", "sentences/s"], rows)
    examples = format_table(["#", "source", "reference", "greedy", beam], [
        (i + 1, test_sources[i], test_references[i], outputs["greedy"][i], outputs[beam][i])
        for i in range(min(10, len(test_sources)))])
    timeline_rows = s2s.read_bleu_timeline(timeline.csv_path)
    pngs = [s2s.plot_bleu_timeline(timeline_rows, os.path.join(run.path, "bleu_vs_time.png"))] if timeline_rows else []
    for k in range(min(2, len(test_sources))):
        source_ids = s2s.prepare_sources(tokenizer, [test_sources[k]], config.max_length)[0]
        output_ids = tokenizer.encode(outputs[beam][k])[: config.max_length - 1]
        weights = s2s.cross_attention_weights(model, source_ids, output_ids)
        pngs.append(plot_attention_heatmaps(
            weights, [tokenizer.id_to_token(t) for t in source_ids], os.path.join(run.path, f"cross_attention_{k + 1}.png"),
            title=f"last decoder layer, test sentence {k + 1}",
            query_tokens=["<s>"] + [tokenizer.id_to_token(t) for t in output_ids]))
    summary = (f"# translation {config.source}->{config.target}: test2016 ({len(test_sources)} sentences)\n\n"
               f"training: {result.status}, {result.wall_time_s / 60:.1f} min, "
               f"{len(checkpoints)} epoch checkpoints averaged\n\n{table}\n\nsignature: "
               f"{scores['greedy']['bleu_signature']}\n\n## examples\n\n{examples}\n")
    with open(os.path.join(run.path, "summary.md"), "w") as handle:
        handle.write(summary)
    print(summary, flush=True)
    results = {"test": scores, "train_status": result.status, "train_wall_time_s": result.wall_time_s,
               "averaged_checkpoints": [os.path.basename(p) for p in checkpoints], "bleu_timeline": timeline_rows,
               "stopped_by_budget_at_epoch": budget.stopped_at_epoch, "pngs": pngs, "run_dir": run.path,
               "max_minutes": args.max_minutes}
    training.write_json(os.path.join(run.path, "translation_results.json"), results)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
