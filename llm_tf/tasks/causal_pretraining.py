"""Causal-LM pretraining (GPT) on the Gutenberg books: the ``--objective causal`` of ``experiments/pretrain.py``.

The steps, in order:

1. The corpus of :func:`llm_tf.tasks.pretraining.load_pretraining_corpus`: the books split by book (grouped by
   author), so no held-out book is ever trained on; ``--add-texts`` adds task *training* texts only.
2. A byte-level BPE vocabulary (:class:`llm_tf.text.BPETokenizer`, 16k by default) learned on the training
   documents only. Byte-level BPE is lossless, so a document's tokens cover exactly its UTF-8 bytes.
3. :func:`encode_texts`: every document encoded once. Training windows are packed GPT-2 style: documents one
   after another, each followed by the end-of-text id ``</s>``, random windows of ``block_size + 1`` tokens
   (:class:`llm_tf.tasks.language_modeling.LMWindowSampler`). The training and held-out documents are packed
   into two separate streams, so no window mixes a training book with a held-out one.
4. :func:`llm_tf.tasks.language_modeling.train_causal_lm`: the nanoGPT/GPT-2 recipe (AdamW, warmup + cosine,
   weight decay, gradient clipping, tied embeddings, depth-scaled residual init) with exact crash-safe resume.
5. :class:`CausalPretrainingProgress`: after every evaluation interval, the held-out loss converted to
   perplexity and **bits per byte** (:func:`bits_per_byte`: tokenizer-independent, so models with different
   vocabularies compare) against tokens seen, into ``pretrain_eval.csv`` / ``.png``, and continuations of
   fixed prompts into ``samples.md``.

Bits per byte: a model's mean loss ``L`` nats per token on text of ``N`` tokens and ``B`` UTF-8 bytes is
``L * N / (B * ln 2)`` bits per byte, i.e. ``log2(perplexity) / (bytes per token)``.

Example:
    >>> round(bits_per_byte(2.0, num_tokens=100, num_bytes=400), 4)  # 2 nats/token, 4 bytes/token
    0.7213
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence

import keras
import numpy as np

from llm_tf.checks import check_choice, check_positive_int, check_probability
from llm_tf.tasks.language_modeling import CausalLMConfig
from llm_tf.tasks.pretraining import read_progress

EVAL_CSV, EVAL_PNG, SAMPLES_MD = "pretrain_eval.csv", "pretrain_eval.png", "samples.md"
EVAL_COLUMNS = ("step", "tokens_seen", "val_loss", "val_perplexity", "val_bits_per_byte", "train_loss",
                "learning_rate", "elapsed_s", "tokens_per_s")
#: Prompts continued at every evaluation (the same ones for every run, so runs compare side by side).
DEFAULT_SAMPLE_PROMPTS = ("It was a dark and stormy night", "The king said to his", "CHAPTER I\n\n")


def bits_per_byte(loss_nats_per_token: float, num_tokens: int, num_bytes: int) -> float:
    """Bits per UTF-8 byte of text whose ``num_tokens`` tokens cost ``loss_nats_per_token`` nats each on average.

    ``bits_per_byte = loss * num_tokens / (num_bytes * ln 2)``: the total information in bits over the bytes it
    encodes, so it does not depend on how the text was tokenized.

    Raises:
        ValueError: for non-positive ``num_tokens`` or ``num_bytes``.
    """
    check_positive_int("num_tokens", num_tokens)
    check_positive_int("num_bytes", num_bytes)
    return float(loss_nats_per_token) * num_tokens / (num_bytes * math.log(2))


def encode_texts(tokenizer, texts: Sequence[str], batch_size: int = 64) -> list[np.ndarray]:
    """Every text encoded whole (no special tokens), as one int32 array each.

    Byte-level BPE keeps every byte (newlines included), so ``tokenizer.decode`` of a text's ids gives the text
    back; encoding whole texts (not paragraphs) keeps the blank lines between paragraphs.
    """
    encoded = []
    for start in range(0, len(texts), batch_size):
        encoded.extend(np.asarray(ids, np.int32) for ids in tokenizer.encode(list(texts[start:start + batch_size])))
    return encoded


@dataclasses.dataclass
class CausalPretrainConfig(CausalLMConfig):
    """A causal-LM pretraining run: the corpus, the BPE vocabulary, the GPT and its recipe (``config.json``).

    The model, optimizer and evaluation fields are :class:`~llm_tf.tasks.language_modeling.CausalLMConfig`'s
    (``block_size`` is the packed window length, 256 by default); the defaults below are the GPT-2/nanoGPT recipe
    at a size that trains in under an hour on 2 CPU cores.

    Args:
        objective: ``"causal"``.
        add_texts, validation_fraction, split_seed, max_books, max_chars_per_document: the corpus
            (:func:`llm_tf.tasks.pretraining.load_pretraining_corpus`).
        vocabulary_size: the byte-level BPE vocabulary learned on the training documents.
        sample_prompts: prompts continued after every evaluation (``samples.md``).
        sample_new_tokens: tokens generated per prompt (top-k 40, temperature 0.8, seed = the run's seed).
        max_full_eval_windows: the final held-out loss covers at most this many non-overlapping windows
            (evenly spaced over the held-out stream); None: every window.
    """

    objective: str = "causal"
    add_texts: list[str] = dataclasses.field(default_factory=list)
    validation_fraction: float = 0.1
    split_seed: int = 42
    max_books: int | None = None
    max_chars_per_document: int | None = None
    vocabulary_size: int = 16000
    sample_prompts: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_SAMPLE_PROMPTS))
    sample_new_tokens: int = 48
    max_full_eval_windows: int | None = 2000
    block_size: int = 256
    batch_size: int = 16
    hidden_dim: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_dim: int = 1024
    tie_embeddings: bool = True
    scale_residual_init: bool = True
    max_iters: int = 1500
    eval_interval: int = 150
    eval_iters: int = 8
    learning_rate: float = 1e-3
    min_learning_rate: float = 1e-4
    warmup_iters: int = 100
    beta_2: float = 0.95
    steps_per_execution: int = 50
    sample_length: int = 0

    def validate(self) -> None:
        super().validate()
        from llm_tf.tasks.pretraining import TASK_TEXT_SOURCES

        check_choice("objective", self.objective, ("causal",))
        for source in self.add_texts:
            check_choice("add_texts", source, TASK_TEXT_SOURCES)
        check_probability("validation_fraction", self.validation_fraction, allow_zero=False, allow_one=False)
        for name in ("max_books", "max_chars_per_document", "max_full_eval_windows"):
            check_positive_int(name, getattr(self, name), allow_none=True)
        check_positive_int("vocabulary_size", self.vocabulary_size)
        check_positive_int("sample_new_tokens", self.sample_new_tokens)
        if not self.sample_prompts or not all(isinstance(p, str) and p for p in self.sample_prompts):
            raise ValueError(f"`sample_prompts` must be non-empty strings; got sample_prompts={self.sample_prompts!r}.")


def progress_rows(evaluation_rows: Sequence[dict], tokens_per_step: int, bytes_per_token: float) -> list[dict]:
    """``eval_losses.csv`` rows as pretraining progress: tokens seen, perplexity, bits per byte, tokens/s."""
    rows, previous = [], None
    for row in evaluation_rows:
        step, loss = int(row["iteration"]), float(row["val_loss"])
        speed = None
        if previous is not None and row.get("elapsed_s") is not None and previous.get("elapsed_s") is not None:
            seconds = row["elapsed_s"] - previous["elapsed_s"]
            if seconds > 0 and step > previous["iteration"]:
                speed = round((step - previous["iteration"]) * tokens_per_step / seconds, 1)
        rows.append({"step": step, "tokens_seen": step * tokens_per_step, "val_loss": loss,
                     "val_perplexity": float(math.exp(min(loss, 50.0))),
                     "val_bits_per_byte": loss / math.log(2) / bytes_per_token,
                     "train_loss": row.get("train_loss"), "learning_rate": row.get("learning_rate"),
                     "elapsed_s": row.get("elapsed_s"), "tokens_per_s": speed})
        previous = row
    return rows


def plot_progress(rows: Sequence[dict], path: str, title: str = "causal-LM pretraining, held-out books") -> str:
    """Held-out bits per byte and perplexity against tokens seen, side by side (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tokens = [row["tokens_seen"] / 1e6 for row in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(tokens, [row["val_bits_per_byte"] for row in rows], marker="o")
    left.set(xlabel="tokens seen (millions)", ylabel="held-out bits per byte")
    right.plot(tokens, [row["val_perplexity"] for row in rows], marker="o", color="tab:red")
    right.set(xlabel="tokens seen (millions)", ylabel="held-out perplexity (per token)", yscale="log")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


class CausalPretrainingProgress(keras.callbacks.Callback):
    """After every evaluation: ``pretrain_eval.csv`` / ``.png`` (bits per byte, perplexity) and prompt samples.

    Runs after :class:`~llm_tf.tasks.language_modeling.IntervalEvaluation` and reads the rows it wrote to
    ``eval_losses.csv``; the samples of every evaluation so far are kept in ``samples.json`` (keyed by step, so
    a resumed run rewrites, never duplicates) and rendered to ``samples.md``.

    Args:
        run: the run directory.
        tokenizer: the run's tokenizer.
        config: the run's :class:`CausalPretrainConfig`.
        bytes_per_token: UTF-8 bytes per token of the held-out stream (end-of-text ids included).
    """

    def __init__(self, run, tokenizer, config: CausalPretrainConfig, bytes_per_token: float):
        super().__init__()
        self.run, self.tokenizer, self.config = run, tokenizer, config
        self.bytes_per_token = bytes_per_token
        self.rows: list[dict] = []

    def _samples(self) -> dict:
        path = self.run.file("samples.json")
        if not os.path.isfile(path):
            return {}
        with open(path, encoding="utf-8") as file:
            return json.load(file)

    def _update(self, with_samples: bool):
        from llm_tf.tasks.language_modeling import read_evaluation_rows
        from llm_tf.training import atomic_write_bytes, atomic_write_csv

        evaluations = read_evaluation_rows(self.run.file("eval_losses.csv"))
        if not evaluations:
            return
        self.rows = progress_rows(evaluations, self.config.tokens_per_step, self.bytes_per_token)
        atomic_write_csv(self.run.file(EVAL_CSV), EVAL_COLUMNS, self.rows)
        plot_progress(self.rows, self.run.file(EVAL_PNG))
        last = self.rows[-1]
        print(f"step {last['step']} ({last['tokens_seen'] / 1e6:.2f} M tokens): held-out perplexity "
              f"{last['val_perplexity']:.1f}, {last['val_bits_per_byte']:.4f} bits per byte", flush=True)
        if not with_samples:
            return
        samples = self._samples()
        samples[str(last["step"])] = sample_prompts(self.model, self.tokenizer, self.config)
        atomic_write_bytes(self.run.file("samples.json"), json.dumps(samples, indent=1).encode("utf-8"))
        lines = ["# Samples from fixed prompts after each evaluation", "",
                 f"top-k 40, temperature 0.8, {self.config.sample_new_tokens} new tokens, seed {self.config.seed}."]
        for step in sorted(samples, key=int):
            lines += ["", f"## step {step}", ""]
            lines += [f"- `{json.dumps(text)[1:-1]}`" for text in samples[step]]
        atomic_write_bytes(self.run.file(SAMPLES_MD), ("\n".join(lines) + "\n").encode("utf-8"))

    def on_train_begin(self, logs=None):
        self._update(with_samples=False)

    def on_epoch_end(self, epoch, logs=None):
        self._update(with_samples=True)


def sample_prompts(model, tokenizer, config: CausalPretrainConfig) -> list[str]:
    """Each of ``config.sample_prompts`` followed by its sampled continuation (one batched, seeded call)."""
    prompts = [tokenizer.encode(prompt) for prompt in config.sample_prompts]
    new_tokens = min(config.sample_new_tokens, config.block_size - max(len(ids) for ids in prompts))
    if new_tokens < 1:
        raise ValueError(f"the sample prompts leave no room in block_size={config.block_size}.")
    output = model.generate(prompts, max_new_tokens=new_tokens, sampler="top_k", top_k=40, temperature=0.8,
                            seed=config.seed)
    width = output.shape[1] - new_tokens
    return [prompt + tokenizer.decode(row[width:]) for prompt, row in zip(config.sample_prompts, output)]


def train_causal_pretraining(run, config: CausalPretrainConfig, strategy, *, log_every_n_steps: int = 50,
                             backup_every_n_steps: int | None = None) -> dict:
    """Load the corpus, learn (or reload) the BPE vocabulary, pretrain the GPT in ``run``; returns the results.

    Returns:
        A dict: ``metrics`` (held-out ``val_loss`` on the fixed windows, ``val_perplexity``,
        ``val_bits_per_byte``, and the same on up to ``max_full_eval_windows`` non-overlapping windows:
        ``full_val_*``), ``data`` (documents, tokens and bytes per split, bytes per token), ``progress`` (the
        ``pretrain_eval.csv`` rows), ``samples`` (the last evaluation's), and
        :func:`~llm_tf.tasks.language_modeling.train_causal_lm`'s timing and status fields.
    """
    import time

    from llm_tf.tasks import language_modeling as lm
    from llm_tf.tasks.pretraining import TOKENIZER_DIR, load_pretraining_corpus
    from llm_tf.text import BPETokenizer, load_tokenizer

    corpus = load_pretraining_corpus(config.data_dir, config.add_texts, config.validation_fraction,
                                     config.split_seed, config.max_books, config.max_chars_per_document)
    tokenizer_dir = run.file(TOKENIZER_DIR)
    try:
        tokenizer = load_tokenizer(tokenizer_dir)
    except FileNotFoundError:
        started = time.time()
        tokenizer = BPETokenizer.train(corpus.train, vocabulary_size=config.vocabulary_size)
        tokenizer.save(tokenizer_dir)
        print(f"BPE vocabulary of {tokenizer.vocabulary_size:,} learned in {time.time() - started:.1f} s", flush=True)
    started = time.time()
    train_documents = encode_texts(tokenizer, corpus.train)
    validation_documents = encode_texts(tokenizer, corpus.validation)
    separator = tokenizer.eos_id
    validation_bytes = sum(len(text.encode("utf-8")) for text in corpus.validation)
    validation_tokens = sum(len(ids) + 1 for ids in validation_documents)  # + the end-of-text after each
    bytes_per_token = validation_bytes / validation_tokens
    data = {"sources": corpus.sources, "encode_s": round(time.time() - started, 1),
            "train_documents": len(train_documents), "validation_documents": len(validation_documents),
            "train_tokens": int(sum(len(ids) + 1 for ids in train_documents)), "validation_tokens": validation_tokens,
            "validation_bytes": validation_bytes, "bytes_per_token": round(bytes_per_token, 4),
            "vocabulary_size": tokenizer.vocabulary_size}
    data["epochs_of_train_data"] = round(config.max_iters * config.tokens_per_step / data["train_tokens"], 3)
    print(f"data: {data}", flush=True)
    progress = CausalPretrainingProgress(run, tokenizer, config, bytes_per_token)
    results = lm.train_causal_lm(config, tokenizer, train_documents, validation_documents, run, strategy,
                                 log_every_n_steps=log_every_n_steps, backup_every_n_steps=backup_every_n_steps,
                                 name="pretrain", separator_id=separator, callbacks=[progress],
                                 max_full_eval_windows=config.max_full_eval_windows)
    model = keras.saving.load_model(run.file("last.keras"), compile=False)
    metrics = results.pop("metrics")
    final, full_loss = metrics["val_loss"], metrics["full_val_loss"]
    metrics.update(
        val_perplexity=math.exp(final), val_bits_per_byte=final / math.log(2) / bytes_per_token,
        full_val_perplexity=math.exp(full_loss), full_val_bits_per_byte=full_loss / math.log(2) / bytes_per_token)
    samples = sample_prompts(model, tokenizer, config)
    rows = read_progress(run.file(EVAL_CSV))
    return {"metrics": metrics, "data": data, "progress": rows, "samples": samples, **results,
            "tokenizer": tokenizer_dir, "model": run.file("last.keras")}


__all__ = [
    "CausalPretrainConfig",
    "CausalPretrainingProgress",
    "DEFAULT_SAMPLE_PROMPTS",
    "bits_per_byte",
    "encode_texts",
    "plot_progress",
    "progress_rows",
    "sample_prompts",
    "train_causal_pretraining",
]
