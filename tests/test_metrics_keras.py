"""Keras-facing metrics: the Perplexity metric in compile/evaluate, evaluate_classifier, evaluate_generation
and the end-of-epoch GenerationMetricsCallback (with History and CSVLogger)."""

import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from llm_tf.metrics import (
    GenerationMetricsCallback,
    Perplexity,
    classification_report,
    corpus_bleu,
    corpus_rouge,
    evaluate_classifier,
    evaluate_generation,
)
from llm_tf.plots import plot_training_curves, read_history_csv

VOCAB_SIZE = 11


def _token_cross_entropy(y_true, logits):
    """Per-token cross-entropy in nats, computed with numpy as the reference."""
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return -np.take_along_axis(log_probs, y_true[..., None], axis=-1)[..., 0]


# ---------------------------------------------------------------- Perplexity metric


def test_perplexity_metric_accumulates_weighted_tokens_over_batches():
    rng = np.random.default_rng(0)
    metric = Perplexity(ignore_class=None)
    targets, logits, weights = [], [], []
    for batch_size in (2, 3):
        y_true = rng.integers(0, VOCAB_SIZE, (batch_size, 5))
        y_pred = rng.normal(size=(batch_size, 5, VOCAB_SIZE)).astype("float32") * 3
        padding = (rng.random((batch_size, 5)) > 0.3).astype("float32")
        metric.update_state(y_true, y_pred, sample_weight=padding)
        targets.append(y_true), logits.append(y_pred), weights.append(padding)
    cross_entropy = np.concatenate([_token_cross_entropy(t, p).ravel() for t, p in zip(targets, logits)])
    token_weights = np.concatenate([w.ravel() for w in weights])
    expected = math.exp(np.sum(cross_entropy * token_weights) / token_weights.sum())
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)
    # Corpus perplexity, not the mean of the two batch perplexities.
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_perplexity_metric_probabilities_ignore_class_and_target_shapes():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, VOCAB_SIZE, (3, 4))
    y_true[:, -1] = 0  # padding id
    logits = rng.normal(size=(3, 4, VOCAB_SIZE)).astype("float32")
    weighted = Perplexity(ignore_class=None)
    weighted.update_state(y_true, logits, sample_weight=(y_true != 0).astype("float32"))
    ignoring = Perplexity()  # ignore_class=0 by default
    ignoring.update_state(y_true[..., None], logits)  # (batch, sequence, 1) targets
    probabilities = Perplexity(from_logits=False, ignore_class=None)
    probabilities.update_state(y_true, keras.ops.softmax(logits), sample_weight=(y_true != 0).astype("float32"))
    reference = float(weighted.result())
    assert float(ignoring.result()) == pytest.approx(reference, rel=1e-5)
    assert float(probabilities.result()) == pytest.approx(reference, rel=1e-4)
    low_precision = Perplexity(ignore_class=0)
    low_precision.update_state(y_true, tf.cast(logits, tf.bfloat16))
    assert float(low_precision.result()) == pytest.approx(reference, rel=2e-2)


def test_perplexity_metric_config_round_trip_and_bad_arguments():
    metric = Perplexity(ignore_class=0, name="val_ppl")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert isinstance(restored, Perplexity)
    assert (restored.ignore_class, restored.name, restored.from_logits) == (0, "val_ppl", True)
    with pytest.raises(ValueError, match="ignore_class='pad'"):
        Perplexity(ignore_class="pad")
    with pytest.raises(ValueError, match="from_logits=1"):
        Perplexity(from_logits=1)


def test_perplexity_metric_in_compile_leaves_padding_out():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    token_ids = rng.integers(1, VOCAB_SIZE, (12, 7)).astype("int32")
    token_ids[:, 5:] = 0  # padded tail (padding id 0)
    inputs, labels = token_ids[:, :-1], token_ids[:, 1:]
    sample_weight = (labels != 0).astype("float32")
    model = keras.Sequential([keras.Input((6,), dtype="int32"), keras.layers.Embedding(VOCAB_SIZE, 8),
                              keras.layers.Dense(VOCAB_SIZE)])
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[Perplexity(), Perplexity(ignore_class=None, name="perplexity_all_positions")],
        weighted_metrics=[Perplexity(ignore_class=None, name="weighted_perplexity")],
    )
    results = model.evaluate(inputs, labels, sample_weight=sample_weight, batch_size=4, verbose=0,
                             return_dict=True)
    cross_entropy = _token_cross_entropy(labels, model.predict(inputs, verbose=0))
    expected = math.exp(np.sum(cross_entropy * sample_weight) / sample_weight.sum())
    assert results["perplexity"] == pytest.approx(expected, rel=1e-4)
    assert results["weighted_perplexity"] == pytest.approx(expected, rel=1e-4)
    # `metrics=` gets no sample weights from Keras: without ignore_class the padding is counted.
    assert results["perplexity_all_positions"] == pytest.approx(math.exp(cross_entropy.mean()), rel=1e-4)
    assert results["perplexity_all_positions"] != pytest.approx(expected, rel=1e-3)
    # An untrained model is close to uniform: perplexity near the vocabulary size.
    assert VOCAB_SIZE / 2 < results["perplexity"] < VOCAB_SIZE * 2
    history = model.fit(inputs, labels, sample_weight=sample_weight, epochs=1, batch_size=4, verbose=0)
    assert history.history["perplexity"][0] > 1.0


# ---------------------------------------------------------------- evaluate_classifier


def _tiny_classifier(num_classes=3):
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(num_classes)])


def test_evaluate_classifier_equals_report_on_model_predictions():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(23, 4)).astype("float32")
    labels = rng.integers(0, 3, 23)
    model = _tiny_classifier()
    dataset = tf.data.Dataset.from_tensor_slices((features, labels)).batch(5)
    report = evaluate_classifier(model, dataset, ["a", "b", "c"])
    expected = classification_report(labels, model.predict(features, verbose=0).argmax(-1), ["a", "b", "c"])
    assert report == expected
    assert report["num_examples"] == 23
    one_hot = tf.data.Dataset.from_tensor_slices((features, np.eye(3)[labels], np.ones(23))).batch(5)
    assert evaluate_classifier(model, one_hot, ["a", "b", "c"]) == expected
    first_two = evaluate_classifier(model, dataset, ["a", "b", "c"], max_batches=2)
    assert first_two["num_examples"] == 10


def test_evaluate_classifier_accepts_a_plain_callable_and_checks_shapes():
    batches = [(np.zeros((2, 4)), np.array([1, 1])), (np.zeros((1, 4)), np.array([0]))]
    always_class_one = lambda inputs: np.tile([[0.1, 0.8, 0.1]], (len(inputs), 1))  # noqa: E731
    report = evaluate_classifier(always_class_one, batches, ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=re.escape("shape (batch, 2)")):
        evaluate_classifier(always_class_one, batches, ["a", "b"])
    with pytest.raises(ValueError, match="yielded no batch"):
        evaluate_classifier(always_class_one, [], ["a", "b", "c"])
    with pytest.raises(ValueError, match="batch 0 is a ndarray"):
        evaluate_classifier(always_class_one, [np.zeros((2, 4))], ["a", "b", "c"])


# ---------------------------------------------------------------- generation

SOURCES = ["ein Haus", "eine Katze", "der Hund", "ein Baum", "die Sonne", "der Mond"]
REFERENCES = [
    "there is a small house by the river",
    "a black cat sleeps on the warm sofa",
    "the old dog barks at the postman",
    "a tall tree grows behind the school",
    "the sun rises over the quiet hills",
    "the moon shines on the dark lake",
]
TRANSLATIONS = dict(zip(SOURCES, REFERENCES))


def test_evaluate_generation_scores_the_generated_texts():
    calls = []

    def generate_fn(texts):
        calls.append(list(texts))
        return [TRANSLATIONS[t].encode() if i % 2 else "a thing" for i, t in enumerate(texts)]

    scores, hypotheses = evaluate_generation(generate_fn, SOURCES, REFERENCES, metric="bleu", batch_size=4,
                                             return_hypotheses=True)
    assert [len(c) for c in calls] == [4, 2]
    assert hypotheses[1] == REFERENCES[1] and hypotheses[0] == "a thing"
    assert scores == corpus_bleu(hypotheses, REFERENCES)
    rouge = evaluate_generation(generate_fn, SOURCES, REFERENCES, metric="rouge",
                                metric_options={"bootstrap": False})
    assert rouge == corpus_rouge(hypotheses, REFERENCES, bootstrap=False)


def test_evaluate_generation_bad_input():
    with pytest.raises(ValueError, match="one text per source"):
        evaluate_generation(lambda texts: texts[:-1], SOURCES, REFERENCES)
    with pytest.raises(ValueError, match="metric='meteor'"):
        evaluate_generation(lambda texts: texts, SOURCES, REFERENCES, metric="meteor")
    with pytest.raises(ValueError, match=re.escape("len(sources)=6 but len(references)=2")):
        evaluate_generation(lambda texts: texts, SOURCES, REFERENCES[:2])
    with pytest.raises(ValueError, match="`sources` is empty"):
        evaluate_generation(lambda texts: texts, [], [])


def test_generation_callback_logs_into_history_and_csv_every_n_epochs(tmp_path):
    seen = []

    def generate_fn(texts):
        # Runs eagerly, outside the compiled train step; gets better each time it is called.
        seen.append((tf.executing_eagerly(), list(texts)))
        return [TRANSLATIONS[t] if i < len(seen) else "" for i, t in enumerate(texts)]

    callback = GenerationMetricsCallback(generate_fn, SOURCES, REFERENCES, metric="bleu", every_n_epochs=2,
                                         num_samples=4, seed=0)
    csv_path = tmp_path / "log.csv"
    model = _tiny_classifier()
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(np.zeros((8, 4)), np.zeros(8, "int32"), epochs=4, batch_size=4, verbose=0,
                        callbacks=[callback, keras.callbacks.CSVLogger(str(csv_path))])

    assert len(seen) == 2 and all(eager for eager, _ in seen)
    assert seen[0][1] == seen[1][1] and len(seen[0][1]) == 4 and set(seen[0][1]) <= set(SOURCES)
    expected = []
    for call_index, (_, texts) in enumerate(seen, start=1):
        hypotheses = [TRANSLATIONS[t] if i < call_index else "" for i, t in enumerate(texts)]
        expected.append(corpus_bleu(hypotheses, [TRANSLATIONS[t] for t in texts]))
    bleu, chrf = history.history["val_bleu"], history.history["val_chrf"]
    assert math.isnan(bleu[0]) and math.isnan(bleu[2])
    assert [bleu[1], bleu[3]] == pytest.approx([expected[0]["score"], expected[1]["score"]])
    assert [chrf[1], chrf[3]] == pytest.approx([expected[0]["chrf"], expected[1]["chrf"]])
    assert bleu[3] > bleu[1]
    assert [r["epoch"] for r in callback.results] == [2, 4]

    logged = read_history_csv(csv_path)
    assert logged["val_bleu"][1] == pytest.approx(bleu[1]) and math.isnan(logged["val_bleu"][0])
    image_path = plot_training_curves(csv_path, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0 and image_path.endswith("curves.png")


def test_generation_callback_rouge_keys_and_argument_checks():
    callback = GenerationMetricsCallback(lambda texts: [TRANSLATIONS[t] for t in texts], SOURCES, REFERENCES,
                                         metric="rouge", log_prefix="dev_")
    logs = {}
    callback.on_epoch_end(0, logs)
    assert set(logs) == {"dev_rouge1", "dev_rouge2", "dev_rougeL", "dev_rougeLsum"}
    assert logs["dev_rouge1"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="every_n_epochs=0"):
        GenerationMetricsCallback(lambda t: t, SOURCES, REFERENCES, "bleu", every_n_epochs=0)
    with pytest.raises(ValueError, match="metric='f1'"):
        GenerationMetricsCallback(lambda t: t, SOURCES, REFERENCES, "f1")
    with pytest.raises(ValueError, match="must be callable"):
        GenerationMetricsCallback("translate", SOURCES, REFERENCES, "bleu")
