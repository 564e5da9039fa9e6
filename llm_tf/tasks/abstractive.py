"""Abstractive summarization: a ``Seq2SeqTransformer`` trained article → summary over the seq2seq task pieces.

The same steps as the translation experiment, sized for long inputs (all in :mod:`llm_tf.tasks.seq2seq`):

1. one byte-level BPE vocabulary learned on the training articles and summaries (saved in the run);
2. articles cut to their first ``max_source_length`` tokens (news puts the key facts first; the count of cut
   articles is reported), summaries to ``max_target_length - 1`` tokens (the model learns to stop there);
3. batches by token count with length bucketing; the decoder side is padded to the batch's own longest summary
   (``pad_batches(target_bucket_width=...)``), not to the article length, so no decoder step is spent on
   padding an article-length sequence;
4. ``llm_tf.training.train`` with label smoothing, Adam + inverse-square-root schedule, a wall-clock budget,
   greedy validation ROUGE every ``val_every`` epochs and crash-safe resume; the mean of the last
   ``average_last`` epoch checkpoints;
5. :func:`generate_summaries`: greedy or beam search over a whole split, fixed batch size (one compiled decode
   per shape), with its speed in summaries/s and generated tokens/s.

Scoring goes through :func:`llm_tf.tasks.summarization.rouge_report` with each generated summary split into
sentences (one per line, for ROUGE-Lsum), exactly as the extractive methods are scored.

Example:
    >>> config = AbstractiveConfig(max_minutes=20)
    >>> model, tokenizer, result = train_abstractive(train_docs, validation_docs, config, run_dir)  # doctest: +SKIP
    >>> summaries, speed = generate_summaries(model, tokenizer, test_docs, num_beams=4)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Sequence

import numpy as np

from llm_tf.checks import check_positive_int
from llm_tf.tasks import seq2seq as s2s


@dataclasses.dataclass
class AbstractiveConfig:
    """The sizes and recipe of the abstractive model (saved in the member run's config.json)."""

    vocabulary_size: int = 8000
    max_source_length: int = 512
    max_target_length: int = 256
    hidden_dim: int = 128
    num_layers: int = 3
    num_heads: int = 4
    intermediate_dim: int = 512
    dropout: float = 0.1
    label_smoothing: float = 0.1
    max_tokens: int = 8192
    bucket_width: int = 32
    warmup_steps: int = 300
    learning_rate_scale: float = 1.0
    epochs: int = 40
    max_minutes: float | None = 20.0
    average_last: int = 1
    val_every: int = 4
    val_samples: int = 32
    num_beams: int = 4
    length_penalty: float = 1.0
    decode_batch_size: int = 16

    def __post_init__(self):
        for name in ("vocabulary_size", "max_source_length", "max_target_length", "hidden_dim", "num_layers",
                     "num_heads", "max_tokens", "bucket_width", "epochs", "average_last", "val_every",
                     "num_beams", "decode_batch_size"):
            check_positive_int(name, getattr(self, name))
        longest = max(self.max_source_length, self.max_target_length)
        if self.max_tokens < -(-longest // self.bucket_width) * self.bucket_width:
            raise ValueError(
                f"`max_tokens`={self.max_tokens} cannot hold one pair of {longest} tokens (max_source_length / "
                "max_target_length rounded up to bucket_width); raise max_tokens or shorten the sequences."
            )


def pair_texts(documents) -> tuple[list[str], list[str]]:
    """Articles and reference summaries of :class:`~llm_tf.tasks.summarization.Document` s as plain texts.

    Sentences are joined by one space: the summaries get back the spaces BBC News Summary lost between
    sentences ("stabilise.China's"), so the model never learns glued words.
    """
    return [" ".join(d.sentences) for d in documents], [" ".join(d.reference_sentences) for d in documents]


def batches_of(tokenizer, sources, targets, config: AbstractiveConfig, seed: int):
    """Padded token-count batches of (article, summary) pairs; every pair is in exactly one batch."""
    return s2s.make_batches(tokenizer, sources, targets, config.max_source_length, config.max_target_length,
                            config.max_tokens, config.bucket_width, seed, target_bucket_width=config.bucket_width)


def build_model(vocabulary_size: int, config: AbstractiveConfig):
    """A pre-norm ``Seq2SeqTransformer`` with tied embeddings, separate source / target lengths."""
    from llm_tf.models import Seq2SeqConfig, Seq2SeqTransformer

    return Seq2SeqTransformer(Seq2SeqConfig(
        vocabulary_size=vocabulary_size, max_sequence_length=config.max_source_length,
        max_target_sequence_length=config.max_target_length, hidden_dim=config.hidden_dim,
        num_encoder_layers=config.num_layers, num_decoder_layers=config.num_layers, num_heads=config.num_heads,
        intermediate_dim=config.intermediate_dim, dropout=config.dropout, norm_first=True, tie_embeddings=True,
    ))


def count_truncated(tokenizer, texts: Sequence[str], max_length: int) -> int:
    """How many texts are longer than ``max_length`` tokens (and are cut to it)."""
    return int(sum(len(ids) > max_length for ids in tokenizer.encode(list(texts))))


def _decode(model, tokenizer, sources, **options):
    """``seq2seq.translate`` without its per-call truncation warning: cutting long articles is the documented
    choice here, and the count is reported by :func:`count_truncated`."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*longer than the model's max_sequence_length.*")
        return s2s.translate(model, tokenizer, sources, **options)


def generate_summaries(model, tokenizer, documents, num_beams: int = 1, length_penalty: float = 1.0,
                       batch_size: int = 16) -> tuple[list[str], dict]:
    """One generated summary per document (sentences one per line) and the decode speed.

    Articles longer than the model's source length are cut to their first tokens, as in training (counted in
    the returned ``truncated_articles``, not warned about per call).

    Returns:
        ``(summaries, speed)`` with ``speed`` = ``{"seconds", "summaries_per_s", "tokens_per_s",
        "mean_tokens", "truncated_articles"}``.
    """
    from llm_tf.text.sentences import split_sentences

    if not documents:
        raise ValueError("`documents` is empty; expected at least one article to summarize.")
    sources, _ = pair_texts(documents)
    texts, seconds = _decode(model, tokenizer, sources, num_beams=num_beams, length_penalty=length_penalty,
                             batch_size=batch_size)
    tokens = sum(len(ids) for ids in tokenizer.encode(texts))
    summaries = ["\n".join(split_sentences(text)) if text.strip() else "" for text in texts]
    speed = {"seconds": round(seconds, 2), "summaries_per_s": round(len(texts) / seconds, 3),
             "tokens_per_s": round(tokens / seconds, 1), "mean_tokens": round(tokens / len(texts), 1),
             "truncated_articles": count_truncated(tokenizer, sources, model.config.max_sequence_length)}
    return summaries, speed


def train_abstractive(train_documents, validation_documents, config: AbstractiveConfig, run_dir, *, seed: int = 0,
                      verbose=2, log_every_n_steps: int = 50, backup_every_n_steps: int | None = None):
    """Train (or resume, or reload when finished) the abstractive model in ``run_dir``.

    A run directory with a ``results.json`` (training done, or stopped by ``max_minutes``) is not trained again:
    the model is rebuilt and its averaged epoch weights are loaded. Without one, training starts or resumes from
    the backup at the exact next batch.

    Args:
        train_documents, validation_documents: :class:`~llm_tf.tasks.summarization.Document` lists.
        config: the model and recipe.
        run_dir: a :class:`~llm_tf.training.RunDirectory` (tokenizer/, averaging/, backups, results.json).
        seed: seed of the weight initialization and of the batch order.

    Returns:
        ``(model, tokenizer, info)``: the model holding the mean of the last ``average_last`` epoch weights, its
        tokenizer, and ``{"status", "training_wall_s", "epochs_trained", "steps_per_epoch", "validation_rouge",
        ...}`` (``validation_rouge``: this call's evaluations only).
    """
    import keras

    from llm_tf import training
    from llm_tf.metrics import GenerationMetricsCallback
    from llm_tf.tasks.runs import finished_results
    from llm_tf.text import load_tokenizer

    if not train_documents or not validation_documents:
        raise ValueError("`train_documents` and `validation_documents` must be non-empty.")
    train_sources, train_targets = pair_texts(train_documents)
    validation_sources, validation_targets = pair_texts(validation_documents)
    tokenizer_dir = os.path.join(run_dir.path, "tokenizer")
    if os.path.isdir(tokenizer_dir):
        tokenizer = load_tokenizer(tokenizer_dir)
    else:
        tokenizer = s2s.train_joint_tokenizer(train_sources, train_targets, config.vocabulary_size)
        tokenizer.save(tokenizer_dir)
    train_batches = batches_of(tokenizer, train_sources, train_targets, config, seed)
    validation_batches = batches_of(tokenizer, validation_sources, validation_targets, config, 0)
    keras.utils.set_random_seed(seed)  # the initial weights depend on the seed only, not on what ran before
    model = build_model(tokenizer.vocabulary_size, config)
    s2s.compile_translation_model(model, config.warmup_steps, config.learning_rate_scale, config.label_smoothing)

    def greedy(texts):
        return _decode(model, tokenizer, texts, batch_size=min(config.decode_batch_size, len(texts)))[0]

    rouge_callback = GenerationMetricsCallback(
        greedy, validation_sources, validation_targets, metric="rouge", every_n_epochs=config.val_every,
        num_samples=min(config.val_samples, len(validation_sources)), verbose=1)
    budget = s2s.WallClockBudget(config.max_minutes)
    average_dir = os.path.join(run_dir.path, "averaging")
    started = time.perf_counter()
    finished = finished_results(run_dir)
    if finished is None:
        result = training.train(
            model, s2s.epoch_batches_fn(train_batches, seed), s2s.epoch_batches_fn(validation_batches, 0)(0),
            epochs=config.epochs, run_dir=run_dir,
            callbacks=[rouge_callback, s2s.EpochCheckpoints(average_dir, keep=config.average_last), budget],
            log_every_n_steps=log_every_n_steps, backup_every_n_steps=backup_every_n_steps, tensorboard=False,
            verbose=verbose)
        status, training_wall_s = result.status, result.wall_time_s
    else:  # a finished training (completed or stopped by its budget) is reloaded, never trained again
        model(train_batches[0][0], training=False)  # creates the variables that the averaged weights fill
        status, training_wall_s = "already_completed", finished.get("wall_time_s")
    checkpoints = s2s.saved_checkpoints(average_dir)[-config.average_last:]
    if not checkpoints:
        raise RuntimeError(f"no epoch checkpoint in {average_dir}: the abstractive training did not finish an epoch.")
    model.set_weights(s2s.average_checkpoints(checkpoints))
    info = {"status": status, "training_wall_s": training_wall_s,
            "call_wall_s": round(time.perf_counter() - started, 1),
            "epochs_trained": int(os.path.basename(checkpoints[-1])[len("epoch_"):-len(".npz")]),
            "averaged_checkpoints": [os.path.basename(p) for p in checkpoints],
            "steps_per_epoch": len(train_batches), "validation_rouge": rouge_callback.results,
            "truncated_train_articles": count_truncated(tokenizer, train_sources, config.max_source_length),
            "truncated_train_summaries": count_truncated(tokenizer, train_targets, config.max_target_length - 1),
            "num_parameters": int(model.count_params())}
    return model, tokenizer, info


def mean_length_ratio(summaries: Sequence[str], references: Sequence[str]) -> float:
    """Mean of generated words / reference words (how long the generated summaries are)."""
    ratios = [len(s.split()) / max(1, len(r.split())) for s, r in zip(summaries, references)]
    return float(np.mean(ratios)) if ratios else float("nan")
