"""Sequence-to-sequence task pieces (translation; abstractive summarization in ``llm_tf.tasks.abstractive``).

- :func:`train_joint_tokenizer`: one cased byte-level BPE vocabulary learned on the training pairs (both sides);
- :func:`encode_pairs`, :func:`token_batches`, :func:`pad_batches`, :func:`epoch_batches_fn`: batches formed by
  *token count* with length bucketing (fairseq's ``batch_by_size``): pairs are grouped by their padded length
  (a multiple of ``bucket_width``), each batch holds at most ``max_tokens // length`` pairs, the batches are
  fixed once and only their order is reshuffled per epoch, so every epoch has the same number of steps (exact
  resume) and few batch shapes;
- :class:`LabelSmoothedCrossentropy`: sparse cross-entropy with label smoothing;
- :class:`EpochCheckpoints` and :func:`average_checkpoints`: keep the weights of the last N epochs and average
  them (the plain mean of every weight);
- :class:`WallClockBudget`: stop at an epoch end once another epoch would overrun a wall-clock budget;
- :func:`translate`: decode a whole test set, greedy or beam search, one compiled decode per batch shape (the
  batch size is fixed; the last batch is filled with repeats). **Sources longer than the model's
  ``max_sequence_length`` are truncated to it with a warning** (the documented choice: a test set is always
  decoded completely; the count of truncated sources is in the warning);
- :func:`score_translations`: sacreBLEU cased (13a, with signature), lowercased, and chrF via ``llm_tf.metrics``;
- :func:`cross_attention_weights`: the last decoder layer's cross-attention for a (source, output) pair, for
  ``llm_tf.plots.plot_attention_heatmaps``.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from llm_tf.checks import check_choice, check_positive_int
from llm_tf.metrics import corpus_bleu
from llm_tf.training.losses import LabelSmoothedCrossentropy  # noqa: F401  (re-exported: the task's loss)


def train_joint_tokenizer(sources: Sequence[str], targets: Sequence[str], vocabulary_size: int = 8000):
    """A cased byte-level BPE tokenizer learned on both sides of the training pairs (one vocabulary).

    Example:
        >>> tokenizer = train_joint_tokenizer(["a dog"], ["ein Hund"], vocabulary_size=300)  # doctest: +SKIP
    """
    from llm_tf.text import BPETokenizer

    return BPETokenizer.train(list(sources) + list(targets), vocabulary_size=vocabulary_size, min_frequency=2)


def encode_pairs(tokenizer, sources, targets, max_source_length: int, max_target_length: int):
    """Token ids of each pair: sources cut to ``max_source_length``, targets to ``max_target_length - 1``.

    The decoder reads ``[start] + target`` and predicts ``target + [end]``, so both fit in ``max_target_length``.

    Returns:
        ``(source_ids, target_ids)``: two lists of int lists.
    """
    if len(sources) != len(targets):
        raise ValueError(f"`sources` and `targets` must be parallel; got {len(sources)} and {len(targets)}.")
    source_ids = tokenizer.encode(list(sources), max_length=max_source_length)
    target_ids = tokenizer.encode(list(targets), max_length=max_target_length - 1)
    return source_ids, target_ids


def token_batches(source_lengths, target_lengths, max_tokens: int, bucket_width: int = 8, seed: int = 0):
    """Group pairs into batches of at most ``max_tokens`` padded tokens per side, by length bucket.

    A pair's padded length is ``max(source_length, target_length + 1)`` rounded up to a multiple of
    ``bucket_width`` (the decoder sees one token more than the target). A batch of bucket ``L`` holds at most
    ``max_tokens // L`` pairs, so ``len(batch) * L <= max_tokens`` always; every pair is in exactly one batch.
    Pairs are shuffled within their bucket with ``seed`` before being cut into batches.

    Args:
        source_lengths, target_lengths: token counts per pair.
        max_tokens: the token budget of a batch (per side, padding included).
        bucket_width: bucket granularity in tokens.
        seed: seed of the within-bucket order.

    Returns:
        A list of ``(indices, padded_length)``; ``indices`` an int array of pair positions.

    Raises:
        ValueError: for a bad argument, or when one pair alone exceeds ``max_tokens``.

    Example:
        >>> [(list(i), L) for i, L in token_batches([3, 3, 9], [2, 2, 9], max_tokens=16, bucket_width=8)]
        [([0, 1], 8), ([2], 16)]
    """
    for name, value in (("max_tokens", max_tokens), ("bucket_width", bucket_width)):
        check_positive_int(name, value)
    source_lengths, target_lengths = np.asarray(source_lengths), np.asarray(target_lengths)
    if source_lengths.shape != target_lengths.shape or source_lengths.ndim != 1:
        raise ValueError(
            f"`source_lengths` and `target_lengths` must be 1-D and equally long; got shapes "
            f"{source_lengths.shape} and {target_lengths.shape}."
        )
    lengths = np.maximum(np.maximum(source_lengths, target_lengths + 1), 1)
    padded = -(-lengths // bucket_width) * bucket_width
    if padded.size and padded.max() > max_tokens:
        worst = int(np.argmax(padded))
        raise ValueError(
            f"pair {worst} needs {int(padded[worst])} padded tokens, more than max_tokens={max_tokens}; "
            "raise max_tokens or shorten the sequences."
        )
    rng = np.random.default_rng(seed)
    batches = []
    for length in np.unique(padded):
        members = np.flatnonzero(padded == length)
        members = members[rng.permutation(len(members))]
        size = max_tokens // int(length)
        batches += [(np.sort(members[i : i + size]), int(length)) for i in range(0, len(members), size)]
    return batches


def pad_batches(source_ids, target_ids, batches, start_id: int, end_id: int, pad_id: int = 0,
                target_bucket_width: int | None = None):
    """The model inputs of each ``(indices, padded_length)`` batch as numpy arrays, padded to that length.

    Args:
        target_bucket_width: None pads the decoder side to the batch's ``padded_length`` too (translation:
            both sides are about as long); an int pads it to the batch's longest ``target + 1`` rounded up to a
            multiple of this width instead (summarization: summaries are far shorter than articles, and the
            decoder should not run over article-length padding). Never longer than ``padded_length``.

    Returns:
        A list of ``(inputs, labels, sample_weight)`` with ``inputs`` the ``Seq2SeqTransformer`` dict.
    """
    if target_bucket_width is not None:
        check_positive_int("target_bucket_width", target_bucket_width)
    out = []
    for indices, length in batches:
        target_length = length
        if target_bucket_width is not None:
            longest = max(len(target_ids[i]) + 1 for i in indices)
            target_length = min(length, -(-longest // target_bucket_width) * target_bucket_width)
        encoder = np.full((len(indices), length), pad_id, "int32")
        decoder = np.full((len(indices), target_length), pad_id, "int32")
        labels = np.full((len(indices), target_length), pad_id, "int32")
        for row, i in enumerate(indices):
            source, target = source_ids[i], target_ids[i]
            encoder[row, : len(source)] = source
            decoder[row, : len(target) + 1] = [start_id, *target]
            labels[row, : len(target) + 1] = [*target, end_id]
        inputs = {
            "encoder_token_ids": encoder,
            "encoder_padding_mask": encoder != pad_id,
            "decoder_token_ids": decoder,
            "decoder_padding_mask": decoder != pad_id,
        }
        out.append((inputs, labels, (labels != pad_id).astype("float32")))
    return out


def make_batches(tokenizer, sources, targets, max_source_length: int, max_target_length: int, max_tokens: int,
                 bucket_width: int, seed: int, target_bucket_width: int | None = None):
    """:func:`encode_pairs`, :func:`token_batches` and :func:`pad_batches` in one call: the padded batches of pairs.

    Example:
        >>> batches = make_batches(tokenizer, sources, targets, 64, 64, max_tokens=2048, bucket_width=4, seed=0)  # doctest: +SKIP
    """
    source_ids, target_ids = encode_pairs(tokenizer, sources, targets, max_source_length, max_target_length)
    chosen = token_batches([len(s) for s in source_ids], [len(t) for t in target_ids], max_tokens,
                           bucket_width=bucket_width, seed=seed)
    return pad_batches(source_ids, target_ids, chosen, tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id,
                       target_bucket_width=target_bucket_width)


def epoch_batches_fn(padded_batches, seed: int):
    """``epoch -> tf.data.Dataset`` of the fixed batches in an order drawn from ``(seed, epoch)`` (resumable).

    Example:
        >>> batches_for_epoch = epoch_batches_fn(pad_batches(...), seed=0)  # doctest: +SKIP
    """
    import tensorflow as tf

    from llm_tf.training import epoch_seed

    if not padded_batches:
        raise ValueError("`padded_batches` is empty; expected at least one batch.")
    signature = (
        {
            "encoder_token_ids": tf.TensorSpec((None, None), tf.int32),
            "encoder_padding_mask": tf.TensorSpec((None, None), tf.bool),
            "decoder_token_ids": tf.TensorSpec((None, None), tf.int32),
            "decoder_padding_mask": tf.TensorSpec((None, None), tf.bool),
        },
        tf.TensorSpec((None, None), tf.int32),
        tf.TensorSpec((None, None), tf.float32),
    )

    def batches_for_epoch(epoch):
        order = np.random.default_rng(epoch_seed(seed, epoch)).permutation(len(padded_batches))
        dataset = tf.data.Dataset.from_generator(
            lambda: (padded_batches[i] for i in order), output_signature=signature
        )
        return dataset.apply(tf.data.experimental.assert_cardinality(len(padded_batches))).prefetch(2)

    return batches_for_epoch


def _weights_path(directory, epoch):
    return os.path.join(directory, f"epoch_{epoch:04d}.npz")


class EpochCheckpoints(keras.callbacks.Callback):
    """Save the model weights at the end of every epoch (``epoch_NNNN.npz``), keeping the newest ``keep``."""

    def __init__(self, directory, keep: int = 5):
        super().__init__()
        check_positive_int("keep", keep)
        self.directory, self.keep = str(directory), keep

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        path = _weights_path(self.directory, epoch + 1)
        arrays = {f"w{i:04d}": np.asarray(w) for i, w in enumerate(self.model.get_weights())}
        np.savez(path + ".tmp.npz", **arrays)
        os.replace(path + ".tmp.npz", path)
        for old in saved_checkpoints(self.directory)[: -self.keep]:
            os.remove(old)


def saved_checkpoints(directory) -> list[str]:
    """The ``epoch_NNNN.npz`` files of ``directory``, oldest first."""
    if not os.path.isdir(directory):
        return []
    names = sorted(n for n in os.listdir(directory) if n.startswith("epoch_") and n.endswith(".npz"))
    return [os.path.join(directory, n) for n in names if not n.endswith(".tmp.npz")]


def average_checkpoints(paths: Sequence[str]) -> list[np.ndarray]:
    """The element-wise mean of every weight over the checkpoints ``paths`` (float64 sum, cast back).

    Raises:
        ValueError: for no paths, or checkpoints whose weights differ in number or shape.
    """
    if not paths:
        raise ValueError("`paths` is empty; expected at least one checkpoint to average.")
    total = None
    for path in paths:
        with np.load(path) as data:
            weights = [data[k] for k in sorted(data.files)]
        if total is None:
            total, dtypes = [w.astype("float64") for w in weights], [w.dtype for w in weights]
            continue
        if [w.shape for w in weights] != [t.shape for t in total]:
            raise ValueError(f"checkpoint {path} has other weight shapes than {paths[0]}; cannot average them.")
        total = [t + w for t, w in zip(total, weights)]
    return [(t / len(paths)).astype(d) for t, d in zip(total, dtypes)]


class WallClockBudget(keras.callbacks.Callback):
    """Stop training at an epoch end when another epoch (as long as the longest so far) would pass the budget.

    The budget counts this process's training time (a resumed run gets a new budget).
    """

    def __init__(self, max_minutes: float | None):
        super().__init__()
        self.max_seconds = None if max_minutes is None else float(max_minutes) * 60.0
        self.stopped_at_epoch = None

    def on_train_begin(self, logs=None):
        self.started = time.time()
        self.longest_epoch = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        self.longest_epoch = max(self.longest_epoch, time.time() - self.epoch_started)
        if self.max_seconds is not None and time.time() - self.started + self.longest_epoch > self.max_seconds:
            self.model.stop_training = True
            self.stopped_at_epoch = epoch + 1


def _generate(model, token_ids, max_new_tokens, num_beams, length_penalty):
    """``model.generate`` greedy (one beam) or with beam search of ``num_beams`` beams."""
    if num_beams > 1:
        return model.generate(token_ids, max_new_tokens=max_new_tokens, sampler="beam", num_beams=num_beams,
                              length_penalty=length_penalty)
    return model.generate(token_ids, max_new_tokens=max_new_tokens, sampler="greedy")


def prepare_sources(tokenizer, sources, max_length: int) -> list[list[int]]:
    """Source ids cut to ``max_length`` (the model's ``max_sequence_length``); warns how many were cut."""
    ids = tokenizer.encode(list(sources))
    too_long = [i for i, row in enumerate(ids) if len(row) > max_length]
    if too_long:
        warnings.warn(
            f"{len(too_long)} source(s) longer than the model's max_sequence_length={max_length} tokens were "
            f"truncated to it (first: #{too_long[0]}, {len(ids[too_long[0]])} tokens).",
            stacklevel=2,
        )
    return [row[:max_length] or [tokenizer.eos_id] for row in ids]


def translate(model, tokenizer, sources, num_beams: int = 1, length_penalty: float = 1.0, batch_size: int = 64,
              max_new_tokens: int | None = None):
    """Translate every source: greedy (``num_beams=1``) or beam search, in fixed-size, length-sorted batches.

    Sorting by length keeps source buckets tight; the last batch is filled with repeats of its first row, so
    every call has the same batch size and each (batch size, source bucket) shape compiles once.

    Returns:
        ``(translations, seconds)``: one detokenized string per source (in the input order) and decode time.
    """
    config = model.config
    max_new_tokens = max_new_tokens or config.effective_max_target_length
    ids = prepare_sources(tokenizer, sources, config.max_sequence_length)
    order = np.argsort([len(row) for row in ids], kind="stable")
    outputs = [None] * len(ids)
    started = time.perf_counter()
    for begin in range(0, len(order), batch_size):
        chosen = list(order[begin : begin + batch_size])
        rows = [ids[i] for i in chosen]
        rows += [rows[0]] * (batch_size - len(rows))
        width = max(len(r) for r in rows)
        batch = np.full((batch_size, width), config.pad_id, "int32")
        for r, row in enumerate(rows):
            batch[r, : len(row)] = row
        generated = np.asarray(_generate(model, batch, max_new_tokens, num_beams, length_penalty))
        for r, i in enumerate(chosen):
            outputs[i] = tokenizer.decode(generated[r].tolist(), skip_special_tokens=True).strip()
    return outputs, time.perf_counter() - started


def score_translations(hypotheses, references) -> dict:
    """sacreBLEU cased (13a) with its signature, lowercased BLEU, and chrF, all through ``llm_tf.metrics``."""
    cased = corpus_bleu(hypotheses, references)
    lower = corpus_bleu(hypotheses, references, lowercase=True, include_chrf=False)
    return {
        "bleu": cased["score"], "bleu_signature": cased["signature"],
        "bleu_lowercase": lower["score"], "bleu_lowercase_signature": lower["signature"],
        "chrf": cased["chrf"], "chrf_signature": cased["chrf_signature"],
        "brevity_penalty": cased["brevity_penalty"],
    }


def cross_attention_weights(model, source_ids, output_ids):
    """The last decoder layer's cross-attention ``(heads, output_length + 1, source_length)`` for one pair.

    The decoder reads ``[start] + output_ids`` (teacher forcing on the model's own translation).
    """
    config = model.config
    source = np.asarray([source_ids], "int32")
    decoder = np.asarray([[config.start_id, *output_ids]], "int32")
    source_mask = source != config.pad_id
    encoder_output = model.encode(source, source_mask, training=False)
    hidden = model.decoder_embedding(decoder)
    for block in model.decoder_blocks[:-1]:
        hidden = block(hidden, encoder_output, encoder_padding_mask=source_mask, training=False)
    block = model.decoder_blocks[-1]
    attended = block.self_attention(
        block.self_attention_norm(hidden) if block.norm_first else hidden, use_causal_mask=True, training=False
    )
    hidden = hidden + attended
    query = block.cross_attention_norm(hidden) if block.norm_first else block.self_attention_norm(hidden)
    _, scores = block.cross_attention_layer(
        query, encoder_output, padding_mask=source_mask, return_attention_scores=True, training=False
    )
    return np.asarray(ops.convert_to_numpy(scores))[0]


def sentences_per_second(count: int, seconds: float) -> float:
    """Decode speed; NaN for a zero duration."""
    return count / seconds if seconds > 0 else math.nan


def build_translation_model(vocabulary_size: int, max_length: int, hidden_dim: int, num_layers: int,
                            num_heads: int, intermediate_dim: int, dropout: float, norm_first: bool = True):
    """A ``Seq2SeqTransformer`` with one shared vocabulary and tied source/target/output embeddings.

    Attention dropout is a third of ``dropout`` (fairseq's small-data recipe uses 0.3 / 0.1).
    """
    from llm_tf.models import Seq2SeqConfig, Seq2SeqTransformer

    config = Seq2SeqConfig(
        vocabulary_size=vocabulary_size, max_sequence_length=max_length, hidden_dim=hidden_dim,
        num_encoder_layers=num_layers, num_decoder_layers=num_layers, num_heads=num_heads,
        intermediate_dim=intermediate_dim, dropout=dropout, attention_dropout=round(dropout / 3, 4),
        norm_first=norm_first, tie_embeddings=True,
    )
    return Seq2SeqTransformer(config)


TRANSLATION_SCHEDULES = ("inverse_sqrt", "cosine")


def compile_translation_model(model, warmup_steps: int = 500, learning_rate_scale: float = 1.0,
                              label_smoothing: float = 0.1, weight_decay: float = 1e-4,
                              schedule: str = "inverse_sqrt", total_steps: int | None = None,
                              fused_optimizer: bool | None = None):
    """Adam(W) with betas (0.9, 0.98), linear warmup then an inverse-square-root or cosine decay, label smoothing.

    Both schedules peak at ``learning_rate_scale / sqrt(d_model * warmup_steps)`` after ``warmup_steps``:

    - ``"inverse_sqrt"``: ``NoamSchedule(d_model, warmup_steps, scale)``, which decays as ``1 / sqrt(step)`` and
      needs no horizon (runs stopped by a wall-clock budget);
    - ``"cosine"``: ``WarmupCosineDecay`` down to 0 at ``total_steps`` (required): the rate anneals to zero by the
      last step, so ``total_steps`` should be the steps the run will actually take (epochs × steps per epoch).

    ``fused_optimizer=False``: Keras's per-variable AdamW update instead of the fused one (``build_optimizer``);
    None: the process's rule (``training.set_optimizer_update``, the ``--optimizer-update`` flag).
    """
    from llm_tf.training import NoamSchedule, WarmupCosineDecay, build_optimizer

    check_choice("schedule", schedule, TRANSLATION_SCHEDULES)
    d_model = model.config.hidden_dim
    if schedule == "inverse_sqrt":
        learning_rate = NoamSchedule(d_model, warmup_steps=warmup_steps, scale=learning_rate_scale)
    else:
        if total_steps is None:
            raise ValueError("schedule='cosine' needs `total_steps` (epochs × steps per epoch); got None.")
        peak = learning_rate_scale / math.sqrt(d_model * max(warmup_steps, 1))
        learning_rate = WarmupCosineDecay(peak, warmup_steps=warmup_steps, total_steps=total_steps)
    model.compile(
        optimizer=build_optimizer(learning_rate, weight_decay=weight_decay, beta_2=0.98, epsilon=1e-9,
                                  fused=fused_optimizer),
        loss=LabelSmoothedCrossentropy(label_smoothing),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=False,  # batches come in many shapes (one per length bucket): no XLA retrace per shape
    )
    return model


class BleuTimeline(keras.callbacks.Callback):
    """Append ``epoch, global_step, wall_s, val_bleu`` to ``csv_path`` whenever ``val_bleu`` is logged (not NaN).

    ``wall_s`` counts training time: this process's, plus the last ``wall_s`` already in the file (a resumed run
    continues its curve). List it after the :class:`~llm_tf.metrics.GenerationMetricsCallback`.
    """

    def __init__(self, csv_path):
        super().__init__()
        self.csv_path = str(csv_path)
        self.rows = read_bleu_timeline(self.csv_path)

    def on_train_begin(self, logs=None):
        self.started = time.time() - (self.rows[-1][2] if self.rows else 0.0)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_bleu")
        if value is None or math.isnan(value):
            return
        step = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        row = (epoch + 1, step, round(time.time() - self.started, 2), round(float(value), 3))
        self.rows.append(row)
        new = not os.path.exists(self.csv_path)
        with open(self.csv_path, "a") as handle:
            handle.write("epoch,global_step,wall_s,val_bleu\n" if new else "")
            handle.write(",".join(str(v) for v in row) + "\n")


def read_bleu_timeline(csv_path) -> list[tuple]:
    """The rows :class:`BleuTimeline` wrote, ``[(epoch, global_step, wall_s, val_bleu), ...]`` ([] if none)."""
    if not os.path.exists(csv_path):
        return []
    with open(csv_path) as handle:
        lines = handle.read().split()[1:]
    return [(int(a), int(b), float(c), float(d)) for a, b, c, d in (line.split(",") for line in lines)]


def plot_bleu_timeline(rows, path, title="validation BLEU vs training time"):
    """PNG of ``val_bleu`` against wall-clock minutes from :func:`read_bleu_timeline` rows; returns the path."""
    from matplotlib.figure import Figure

    if not rows:
        raise ValueError("`rows` is empty; expected at least one (epoch, step, wall_s, val_bleu) row.")
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    axes.plot([r[2] / 60 for r in rows], [r[3] for r in rows], marker="o")
    axes.set_xlabel("training wall time (min)")
    axes.set_ylabel("validation BLEU (greedy, cased)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return str(path)
