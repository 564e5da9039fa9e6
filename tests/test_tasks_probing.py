"""Linear probes of an encoder's layers (``llm_tf.tasks.probing``) and ``pretrain.py probe``."""

import json
import os

import keras
import numpy as np
import pytest

from llm_tf.datasets.types import LabeledTexts
from llm_tf.models import TransformerEncoder, TransformerEncoderConfig
from llm_tf.tasks import probing
from llm_tf.tasks.windows import EncodedSplit
from llm_tf.text import WordPieceTokenizer


def _encoder(norm_first=True, max_sequence_length=8, seed=0):
    keras.utils.set_random_seed(seed)
    return TransformerEncoder(TransformerEncoderConfig(
        vocabulary_size=40, max_sequence_length=max_sequence_length, hidden_dim=16, num_layers=2, num_heads=2,
        intermediate_dim=32, dropout=0.0, norm_first=norm_first, final_norm=norm_first,
        embedding_norm=not norm_first))


def test_document_features_are_window_averaged_masked_means_of_each_layer():
    encoder = _encoder()
    # Document 0 has 9 tokens: two covering windows of T=8 (6 tokens each, starts 0 and 3); documents 1 and 2 fit.
    ids = np.concatenate([np.arange(10, 19), [20, 21], np.arange(22, 27)]).astype(np.int32)
    split = EncodedSplit(ids, np.array([0, 9, 11, 16]), np.array([0, 1, 1]), cls_id=2, sep_id=3)
    features = probing.document_features(encoder, split, max_sequence_length=8, windows="all", batch_size=2)
    assert list(features) == ["embeddings", "block_1", "block_2", "final_norm"]
    token_ids, documents = split.covering_windows(8)
    assert documents.tolist() == [0, 0, 1, 2]
    padding_mask = token_ids != 0
    states = encoder.hidden_states(*encoder.unpack_inputs({"token_ids": token_ids, "padding_mask": padding_mask}))
    for name, state in zip(features, states):
        state = np.asarray(state, np.float64)
        window_means = [state[row][padding_mask[row]].mean(axis=0) for row in range(len(token_ids))]
        expected = np.stack([(window_means[0] + window_means[1]) / 2, window_means[2], window_means[3]])
        np.testing.assert_allclose(features[name], expected, atol=1e-5, err_msg=name)


def test_document_features_reject_an_empty_split_and_a_too_long_window():
    encoder = _encoder()
    empty = EncodedSplit(np.zeros(0, np.int32), np.zeros(1, np.int64), np.zeros(0, np.int32), 2, 3)
    with pytest.raises(ValueError, match="empty split"):
        probing.document_features(encoder, empty, 8)
    split = EncodedSplit(np.arange(10, 14, dtype=np.int32), np.array([0, 4]), np.array([0]), 2, 3)
    with pytest.raises(ValueError, match="longer than the encoder's 8 positions"):
        probing.document_features(encoder, split, 16)


def _gaussian_classes(rng, per_class, shift):
    labels = np.repeat(np.arange(3), per_class)
    features = rng.normal(size=(len(labels), 6))
    features[:, 0] += shift * labels
    return features, labels


def test_linear_probe_reads_informative_features_and_not_shuffled_labels():
    rng = np.random.default_rng(0)
    train, train_labels = _gaussian_classes(rng, 40, 4.0)
    test, test_labels = _gaussian_classes(rng, 30, 4.0)
    informative = probing.fit_linear_probe(train, train_labels, test, test_labels)
    assert informative["test_accuracy"] > 0.9 and informative["cross_validation_accuracy"] > 0.9
    assert informative["c"] in probing.DEFAULT_C_VALUES
    assert informative["test_accuracy"] - 0.1 < informative["test_macro_f1"] <= 1.0  # balanced classes: F1 ~ accuracy
    shuffled = probing.fit_linear_probe(train, rng.permutation(train_labels), test, test_labels)
    assert shuffled["test_accuracy"] < 0.6  # chance is 1/3
    # Collapsed features: one direction carries almost all the variance and every pair points the same way.
    collapsed = 10.0 + np.outer(rng.normal(size=len(train)), np.ones(6)) + 0.01 * rng.normal(size=train.shape)
    shape = probing.fit_linear_probe(collapsed, train_labels, test, test_labels)
    assert shape["top_direction_variance"] > 0.99 and shape["mean_cosine"] > 0.99
    assert informative["top_direction_variance"] < 0.9 and informative["mean_cosine"] < 0.5


def test_linear_probe_errors_name_the_problem():
    rng = np.random.default_rng(1)
    train, labels = _gaussian_classes(rng, 3, 1.0)
    with pytest.raises(ValueError, match="5 training examples per class; the smallest class has 3"):
        probing.fit_linear_probe(train, labels, train, labels)
    with pytest.raises(ValueError, match="same d"):
        probing.fit_linear_probe(train, labels, train[:, :2], labels, folds=2)
    with pytest.raises(ValueError, match="one label per row"):
        probing.fit_linear_probe(train, labels[:-1], train, labels, folds=2)


def _word_classes(count_per_class, seed):
    """Texts whose class is which half of the vocabulary their words come from."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for label in (0, 1):
        for _ in range(count_per_class):
            words = rng.integers(1, 15, size=12) + 15 * label
            texts.append(" ".join(f"w{word}" for word in words))
            labels.append(label)
    return LabeledTexts(texts, np.array(labels), ["low", "high"])


def test_probe_encoder_probes_every_layer_of_both_models_reproducibly():
    tokenizer = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(35)])
    encoder = _encoder(norm_first=False, max_sequence_length=16, seed=5)
    train, test = _word_classes(20, seed=0), _word_classes(8, seed=1)
    report = probing.probe_encoder(encoder, tokenizer, train, test, folds=3, seed=7, c_values=(0.1, 1.0))
    assert report["layers"] == ["embeddings", "block_1", "block_2"]
    assert (report["train_size"], report["test_size"], report["max_sequence_length"]) == (40, 16, 16)
    for model in ("pretrained", "random_init"):
        assert set(report[model]) == set(report["layers"])
        # A bag of words separates these classes whatever the weights: the probe must find it.
        assert report[model]["embeddings"]["test_accuracy"] >= 0.9
    assert report["pretrained"] != report["random_init"]  # two different sets of weights
    again = probing.probe_encoder(encoder, tokenizer, train, test, folds=3, seed=7, c_values=(0.1, 1.0))
    assert again["random_init"] == report["random_init"]
    header, rows = probing.probe_table(report)
    assert len(header) == len(rows[0]) and [row[0] for row in rows] == report["layers"]


@pytest.mark.data
def test_probe_command_on_real_bbc_data_writes_its_report(tmp_path, shared_data_dir):
    from experiments import pretrain
    from tests.test_tasks_pretraining import _pretraining_run_dir

    run_dir = tmp_path / "run"
    _pretraining_run_dir(run_dir, vocabulary_size=50, max_sequence_length=16)
    report = pretrain.main(["probe", "--run-dir", str(run_dir), "--task", "bbc", "--max-train-examples", "40",
                            "--windows", "first", "--folds", "2", "--data-dir", str(shared_data_dir)])
    # The news job's stratified subset: each class keeps 40/1,779 of its articles, rounded (39 in all).
    assert report["train_size"] == 39 and report["test_size"] == 223 and report["task"] == "bbc"
    with open(os.path.join(run_dir, "probe_bbc_40_first_seed0_folds2.json"), encoding="utf-8") as file:
        assert json.load(file)["pretrained"] == report["pretrained"]
    with pytest.raises(SystemExit):
        pretrain.main(["probe", "--run-dir", str(tmp_path / "missing"), "--data-dir", str(shared_data_dir)])
