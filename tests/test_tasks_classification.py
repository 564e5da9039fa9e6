"""llm_tf.tasks.classification and baselines: encoding, masking, reports over present classes, one seed trained
end to end on generated data (run directory, predictions), summaries; TF-IDF + LinearSVC."""

import csv
import json

import keras
import numpy as np
import pytest

from llm_tf.datasets import LabeledTexts
from llm_tf.tasks import baselines, classification, runs
from llm_tf.text import WordPieceTokenizer

TOPICS = {
    "astronomy": "star planet orbit telescope galaxy comet nebula moon",
    "cooking": "oven recipe flour butter simmer garlic pasta sauce",
    "football": "goal striker match referee league penalty keeper coach",
}


def _topic_texts(per_class, seed=0, words=12):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for label, vocabulary in enumerate(TOPICS.values()):
        for _ in range(per_class):
            texts.append(" ".join(rng.choice(vocabulary.split() + ["the", "a", "today"], size=words)))
            labels.append(label)
    return LabeledTexts(texts, np.array(labels), sorted(TOPICS), ids=[f"doc{i}" for i in range(len(texts))])


@pytest.fixture(scope="module")
def tokenizer():
    return WordPieceTokenizer.train(_topic_texts(10).texts, vocabulary_size=80)


def test_encode_split_keeps_every_token_and_the_labels(tokenizer):
    data = _topic_texts(2)
    encoded = classification.encode_split(tokenizer, data)
    assert len(encoded) == 6 and encoded.labels.tolist() == data.labels.tolist()
    for index, text in enumerate(data.texts):
        assert encoded.ids[encoded.offsets[index]:encoded.offsets[index + 1]].tolist() == tokenizer.encode(text)
    window = encoded.first_windows(8)[0]
    assert window[0] == tokenizer.cls_id and tokenizer.sep_id in window.tolist()
    unlabeled = classification.encode_split(tokenizer, ["star moon", "pasta"])
    assert len(unlabeled) == 2 and unlabeled.labels.tolist() == [0, 0]
    assert len(classification.encode_split(tokenizer, None)) == 0


def test_mask_tokens_replaces_about_the_rate_and_never_special_tokens():
    rng = np.random.default_rng(0)
    token_ids = rng.integers(5, 100, size=(64, 32)).astype(np.int32)
    token_ids[:, 0], token_ids[:, -3], token_ids[:, -2:] = 2, 3, 0
    masked = classification.mask_tokens(token_ids, 0.3, 4, [0, 1, 2, 3, 4], np.random.default_rng(1))
    again = classification.mask_tokens(token_ids, 0.3, 4, [0, 1, 2, 3, 4], np.random.default_rng(1))
    np.testing.assert_array_equal(masked, again)
    special = np.isin(token_ids, [0, 2, 3])
    np.testing.assert_array_equal(masked[special], token_ids[special])
    changed = masked != token_ids
    assert np.all(masked[changed] == 4) and 0.25 < changed[~special].mean() < 0.35
    np.testing.assert_array_equal(classification.mask_tokens(token_ids, 0.0, 4, [0], rng), token_ids)
    with pytest.raises(ValueError, match="rate"):
        classification.mask_tokens(token_ids, 1.0, 4, [0], rng)


def test_report_macro_averages_over_the_classes_present():
    report = classification.classification_report_present([0, 0, 1, 1], [0, 1, 1, 1], ["a", "b", "c"])
    # F1: a = 2/3, b = 0.8; c is absent from y_true and not averaged (over all three it would be 0.489).
    assert report["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert report["classes_absent"] == ["c"] and "2 of 3" in report["macro_average_over"]
    assert set(report["per_class"]) == {"a", "b", "c"}
    full = classification.classification_report_present([0, 1, 2], [0, 1, 1], ["a", "b", "c"])
    assert full["classes_absent"] == [] and full["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)


@pytest.mark.slow
def test_run_seed_trains_evaluates_and_writes_predictions_of_the_saved_model(tmp_path, tokenizer):
    splits = {"train": _topic_texts(8, seed=1), "validation": _topic_texts(2, seed=2), "test": _topic_texts(2, seed=3)}
    encoded = {name: classification.encode_split(tokenizer, split) for name, split in splits.items()}
    run, _ = runs.open_run("demo", str(tmp_path), {"recipe": "tiny"})
    seed_dir = runs.seed_run_dir(run, 0, {"recipe": "tiny"})
    recipe = dict(max_sequence_length=16, hidden_dim=16, num_layers=1, num_heads=2, intermediate_dim=32,
                  batch_size=8, epochs=2, learning_rate=5e-3, token_mask_rate=0.1, ema_momentum=0.9,
                  train_windows="head_tail", eval_windows="all", jit_compile=False)
    common = dict(vocabulary_size=tokenizer.vocabulary_size, mask_id=tokenizer.mask_id,
                  special_ids=tokenizer.special_ids, test_ids=splits["test"].ids, verbose=0)
    results = classification.run_seed(seed_dir, 0, encoded, sorted(TOPICS), **common, **recipe)
    assert results["status"] == "completed" and results["test"]["num_examples"] == 6
    assert results["test_accuracy"] == results["test"]["accuracy"]
    assert results["evaluated_checkpoint"] == "last.keras"
    assert runs.finished_results(seed_dir, required=["test"])["seed"] == 0
    with open(seed_dir.file(classification.TEST_PREDICTIONS_CSV), newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["id"] for row in rows] == splits["test"].ids
    probabilities = np.array([[float(row[f"p_{name}"]) for name in sorted(TOPICS)] for row in rows])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    predicted = [row["predicted"] for row in rows]
    assert predicted == [sorted(TOPICS)[i] for i in probabilities.argmax(1)]
    confusion = np.array(results["test"]["confusion_matrix"])
    assert confusion.sum() == 6 and np.trace(confusion) == round(results["test_accuracy"] * 6)
    # The saved model (weight average included) gives the same probabilities as the evaluated one.
    model = keras.saving.load_model(seed_dir.last_model)
    again = classification.predict_probabilities(model, encoded["test"], "all", 16, batch_size=8)
    np.testing.assert_allclose(again, probabilities, atol=1e-6)
    metrics = list(csv.DictReader(open(seed_dir.metrics_csv)))
    assert len(metrics) == 2 and "val_accuracy" in metrics[0]


def test_train_classifier_rejects_bad_recipes(tokenizer):
    encoded = classification.encode_split(tokenizer, _topic_texts(2))
    common = dict(num_classes=3, vocabulary_size=80, mask_id=4, special_ids=[0, 1, 2, 3, 4], seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        classification.train_classifier(encoded, None, batch_size=64, **common)
    with pytest.raises(ValueError, match="train_windows"):
        classification.train_classifier(encoded, None, batch_size=2, train_windows="all", **common)
    with pytest.raises(ValueError, match="unknown recipe"):
        classification.run_seed(None, 0, {"train": encoded}, ["a", "b", "c"], vocabulary_size=80, mask_id=4,
                                special_ids=[0], learning_rte=1e-3)


def test_the_tasks_poolings_are_the_classifiers():
    from llm_tf.models.transformer_encoder import POOLING_CHOICES

    assert sorted(classification.POOLINGS) == sorted(POOLING_CHOICES)


def test_summaries_over_seeds():
    def report(accuracy, f1):
        return {"accuracy": accuracy, "macro_f1": f1, "per_class": {"a": {"f1": f1}, "b": {"f1": f1}},
                "confusion_matrix": [[1, 0], [0, 1]]}

    reports = [report(0.9, 0.8), report(0.92, 0.84), report(0.94, 0.88)]
    summary = classification.summarize_reports(reports, ["a", "b"])
    assert summary["accuracy_mean"] == pytest.approx(0.92) and summary["accuracy_std"] == pytest.approx(0.02)
    assert summary["accuracy_ci95"] == pytest.approx([0.8703, 0.9697], abs=1e-4)
    assert summary["confusion_matrix_sum"] == [[3, 0], [0, 3]]
    assert summary["per_class_f1_mean"]["a"] == pytest.approx(0.84)
    assert classification.summarize_reports(reports[:1], ["a", "b"])["accuracy_ci95"] is None
    rows = [{"seed": s, "test": r, "validation": None, "train_time_s": 1.0} for s, r in enumerate(reports)]
    table = classification.summary_tables(rows, ["a", "b"], baseline={"test": report(1.0, 1.0)},
                                          baseline_name="TF-IDF")
    assert "0.9200 ± 0.0200 [0.8703, 0.9697]" in table and "TF-IDF" in table and "F1 b" in table
    with pytest.raises(ValueError, match="empty"):
        classification.summarize_reports([], ["a"])


def test_write_predictions_csv_checks_shapes(tmp_path):
    path = classification.write_predictions_csv(str(tmp_path / "p.csv"), ["x", "y"], np.array([[0.25, 0.75],
                                                [0.6, 0.4]]), ["neg", "pos"])
    assert open(path).read().splitlines() == ["id,predicted,p_neg,p_pos", "x,pos,0.250000,0.750000",
                                              "y,neg,0.600000,0.400000"]
    with pytest.raises(ValueError, match="probabilities"):
        classification.write_predictions_csv(str(tmp_path / "q.csv"), ["x"], np.ones((2, 2)), ["a", "b"])


def test_tfidf_svm_baseline_reports_on_each_split():
    train, test = _topic_texts(10, seed=4), _topic_texts(3, seed=5)
    result = baselines.tfidf_svm_baseline(train.texts, train.labels, {"test": (test.texts, test.labels),
                                          "validation": None}, train.class_names)
    assert result["name"] == baselines.NAME and result["validation"] is None
    assert result["test"]["accuracy"] == 1.0  # the topics share no content word
    assert result["test"]["num_examples"] == 9 and "min_df=2" in result["settings"]["vectorizer"]
    tiny = baselines.tfidf_svm_baseline(["star moon", "pasta oven"], [0, 1], {"test": (["moon"], [0])}, ["a", "b"])
    assert "min_df=1" in tiny["settings"]["vectorizer"]
    with pytest.raises(ValueError, match="c"):
        baselines.make_tfidf_svm(c=0)
    json.dumps(result)  # JSON-serializable for results.json
