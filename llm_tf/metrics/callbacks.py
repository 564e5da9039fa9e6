"""End-of-epoch generation metrics (BLEU/chrF/ROUGE) computed outside the compiled training step."""

import math
import time

import keras
import numpy as np

from llm_tf.metrics._inputs import as_reference_lists, as_text_list, check_positive_int
from llm_tf.metrics.evaluation import (
    _check_metric,
    evaluate_generation,
    flatten_generation_scores,
    placeholder_scores,
)


class GenerationMetricsCallback(keras.callbacks.Callback):
    """Generate on a fixed set of sources at the end of every n-th epoch and log BLEU/chrF or ROUGE.

    The scores are written into the epoch's ``logs`` dict as ``{log_prefix}{name}`` (``val_bleu``,
    ``val_chrf``, ``val_rouge1``, ``val_rougeL``, …), so ``History``, ``CSVLogger``, ``EarlyStopping``
    and ``ModelCheckpoint(monitor="val_bleu", mode="max")`` see them. List this callback *before* the
    ones that read the logs: Keras calls callbacks in list order (``History`` is always called last).
    On epochs that are skipped the same keys are logged as NaN, so every CSV row has the same columns.

    Generation goes through ``generate_fn`` (eager Python: decoding loops, detokenization), never
    through the compiled train step; the model is typically captured by ``generate_fn``'s closure.

    Args:
        generate_fn: callable ``list[str] -> list[str]``, one detokenized output per source.
        sources: source texts to generate from.
        references: one reference string (or list of strings) per source.
        metric: ``"bleu"`` (BLEU + chrF), ``"chrf"`` or ``"rouge"`` (mean F of each ROUGE type).
        every_n_epochs: run after epochs ``n, 2n, 3n, …`` (1-based).
        num_samples: score a fixed random subset of this many sources (drawn once with ``seed``, so
            every epoch sees the same ones); None uses them all.
        log_prefix: prefix of the keys written into ``logs``.
        batch_size: sources per ``generate_fn`` call (None: one call).
        metric_options: keyword arguments of the scoring function; for ROUGE the bootstrap is off by
            default here (``{"bootstrap": False}``) to keep epochs fast.
        seed: seed of the subset draw.
        verbose: 1 prints the scores and one example generation after each evaluation.

    Attributes:
        results: list of ``{"epoch": int (1-based), **scores, "seconds": float}`` for each evaluation.
        last_hypotheses: the generated texts of the latest evaluation.

    Example:
        >>> callback = GenerationMetricsCallback(lambda texts: translate(model, texts), val_sources,
        ...                                      val_targets, metric="bleu", every_n_epochs=2, num_samples=200)
        >>> model.fit(train_ds, epochs=10, callbacks=[callback, keras.callbacks.CSVLogger("log.csv")])
    """

    def __init__(
        self,
        generate_fn,
        sources,
        references,
        metric="bleu",
        every_n_epochs=1,
        num_samples=None,
        log_prefix="val_",
        batch_size=None,
        metric_options=None,
        seed=0,
        verbose=0,
    ):
        super().__init__()
        if not callable(generate_fn):
            raise ValueError(f"`generate_fn` must be callable list[str] -> list[str]; got {generate_fn!r}.")
        _check_metric(metric)
        check_positive_int("every_n_epochs", every_n_epochs)
        check_positive_int("num_samples", num_samples, allow_none=True)
        check_positive_int("batch_size", batch_size, allow_none=True)
        if not isinstance(log_prefix, str):
            raise ValueError(f"`log_prefix` must be a string; got log_prefix={log_prefix!r}.")
        sources = as_text_list("sources", sources)
        reference_lists = as_reference_lists("references", references, len(sources), "sources")
        if num_samples is not None and num_samples < len(sources):
            chosen = np.sort(np.random.default_rng(seed).choice(len(sources), size=num_samples, replace=False))
            sources = [sources[i] for i in chosen]
            reference_lists = [reference_lists[i] for i in chosen]
        self.generate_fn = generate_fn
        self.sources = sources
        self.references = reference_lists
        self.metric = metric
        self.every_n_epochs = int(every_n_epochs)
        self.log_prefix = log_prefix
        self.batch_size = batch_size
        self.metric_options = dict(metric_options or {})
        if metric == "rouge":
            self.metric_options.setdefault("bootstrap", False)
        self.verbose = verbose
        self.results = []
        self.last_hypotheses = None

    def _due(self, epoch):
        return (epoch + 1) % self.every_n_epochs == 0

    def evaluate(self):
        """Generate and score now; returns the flat ``{name: score}`` dict (without prefix)."""
        scores, hypotheses = evaluate_generation(
            self.generate_fn,
            self.sources,
            self.references,
            metric=self.metric,
            batch_size=self.batch_size,
            metric_options=self.metric_options,
            return_hypotheses=True,
        )
        self.last_hypotheses = hypotheses
        return flatten_generation_scores(scores, self.metric)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            logs = {}
        if not self._due(epoch):
            for name, value in placeholder_scores(self.metric, self.metric_options).items():
                logs.setdefault(self.log_prefix + name, value)
            return
        started = time.perf_counter()
        flat_scores = self.evaluate()
        seconds = time.perf_counter() - started
        for name, value in flat_scores.items():
            logs[self.log_prefix + name] = float(value)
        self.results.append({"epoch": epoch + 1, **flat_scores, "seconds": seconds})
        if self.verbose:
            shown = ", ".join(
                f"{self.log_prefix}{name}={value:.4f}" if not math.isnan(value) else f"{self.log_prefix}{name}=nan"
                for name, value in flat_scores.items()
            )
            print(f"\nEpoch {epoch + 1}: {shown} on {len(self.sources)} samples ({seconds:.1f}s)")
            print(f"  source:     {self.sources[0]!r}\n  generated:  {self.last_hypotheses[0]!r}\n"
                  f"  reference:  {self.references[0][0]!r}")
