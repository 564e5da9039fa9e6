"""Unit tests of llm_tf.tasks.seq2seq: token-count batching, checkpoint averaging, scoring, long sources."""

import os
import warnings

import keras
import numpy as np
import pytest

from llm_tf.tasks import seq2seq as s2s

SENTENCES = [
    "a dog runs in the park", "two men play football", "a woman reads a book", "the child eats an apple",
    "a man rides a red bicycle down the street", "people walk on the beach", "a cat sleeps on a chair",
]
GERMAN = [
    "ein Hund rennt im Park", "zwei Männer spielen Fußball", "eine Frau liest ein Buch", "das Kind isst einen Apfel",
    "ein Mann fährt ein rotes Fahrrad die Straße hinunter", "Leute gehen am Strand", "eine Katze schläft auf einem Stuhl",
]


@pytest.fixture(scope="module")
def tokenizer():
    return s2s.train_joint_tokenizer(SENTENCES * 3, GERMAN * 3, vocabulary_size=320)


def tiny_model(vocabulary_size, max_length=16):
    return s2s.build_translation_model(vocabulary_size, max_length, hidden_dim=16, num_layers=1, num_heads=2,
                                       intermediate_dim=32, dropout=0.0)


def test_token_batches_respect_the_budget_and_keep_every_pair():
    rng = np.random.default_rng(0)
    source = rng.integers(1, 60, size=1000)
    target = rng.integers(1, 70, size=1000)
    for max_tokens, width in ((256, 8), (500, 4), (1000, 1)):
        batches = s2s.token_batches(source, target, max_tokens, bucket_width=width, seed=3)
        seen = np.concatenate([indices for indices, _ in batches])
        assert sorted(seen.tolist()) == list(range(1000))  # every pair exactly once
        for indices, length in batches:
            assert len(indices) * length <= max_tokens
            assert length % width == 0
            assert np.all(source[indices] <= length) and np.all(target[indices] + 1 <= length)
        # Within each length bucket every batch is full except at most one.
        for length in {b[1] for b in batches}:
            sizes = [len(i) for i, L in batches if L == length]
            assert sum(size < max_tokens // length for size in sizes) <= 1


def test_token_batches_reject_a_pair_over_the_budget_and_bad_arguments():
    with pytest.raises(ValueError, match="pair 1 needs 32 padded tokens, more than max_tokens=16"):
        s2s.token_batches([3, 30], [3, 5], max_tokens=16, bucket_width=8)
    with pytest.raises(ValueError, match="max_tokens"):
        s2s.token_batches([3], [3], max_tokens=0)
    with pytest.raises(ValueError, match="equally long"):
        s2s.token_batches([3, 4], [3], max_tokens=64)


def test_pad_batches_build_teacher_forcing_inputs_and_epoch_order_is_seeded():
    source_ids, target_ids = [[5, 6, 7], [8]], [[9, 10], [11, 12, 13]]
    batches = s2s.token_batches([3, 1], [2, 3], max_tokens=8, bucket_width=4)
    padded = s2s.pad_batches(source_ids, target_ids, batches, start_id=2, end_id=3)
    inputs, labels, weights = padded[0]
    assert inputs["encoder_token_ids"].tolist() == [[5, 6, 7, 0], [8, 0, 0, 0]]
    assert inputs["decoder_token_ids"].tolist() == [[2, 9, 10, 0], [2, 11, 12, 13]]
    assert labels.tolist() == [[9, 10, 3, 0], [11, 12, 13, 3]]
    assert weights.tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    many = s2s.pad_batches([[5]] * 6, [[6]] * 6, s2s.token_batches([1] * 6, [1] * 6, 2, bucket_width=2), 2, 3)
    batches_for_epoch = s2s.epoch_batches_fn(many, seed=1)
    assert int(batches_for_epoch(0).cardinality()) == 6
    first = [b[0]["encoder_token_ids"].numpy().shape for b in batches_for_epoch(0)]
    assert len(first) == 6


def test_checkpoint_averaging_is_the_exact_mean_and_keeps_the_last_n(tmp_path, tokenizer):
    model = tiny_model(tokenizer.vocabulary_size)
    model({"encoder_token_ids": np.array([[5, 6]]), "decoder_token_ids": np.array([[2, 7]])})
    callback = s2s.EpochCheckpoints(tmp_path, keep=2)
    callback.set_model(model)
    rng = np.random.default_rng(0)
    saved = []
    for epoch in range(3):
        weights = [rng.normal(size=w.shape).astype(w.dtype) for w in model.get_weights()]
        model.set_weights(weights)
        saved.append(weights)
        callback.on_epoch_end(epoch)
    paths = s2s.saved_checkpoints(str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["epoch_0002.npz", "epoch_0003.npz"]
    averaged = s2s.average_checkpoints(paths)
    for mean, a, b in zip(averaged, saved[1], saved[2]):
        expected = ((a.astype("float64") + b.astype("float64")) / 2).astype(a.dtype)
        np.testing.assert_array_equal(mean, expected)
    assert not np.array_equal(averaged[0], saved[2][0])
    with pytest.raises(ValueError, match="paths"):
        s2s.average_checkpoints([])


def test_bleu_of_the_references_against_themselves_is_100():
    scores = s2s.score_translations(GERMAN, GERMAN)
    assert scores["bleu"] == pytest.approx(100.0)
    assert scores["bleu_lowercase"] == pytest.approx(100.0)
    assert scores["chrf"] == pytest.approx(100.0)
    assert "case:mixed" in scores["bleu_signature"] and "tok:13a" in scores["bleu_signature"]
    assert "case:lc" in scores["bleu_lowercase_signature"]
    capitalized = [" ".join(w[:1].upper() + w[1:] for w in g.split()) for g in GERMAN]
    worse = s2s.score_translations(capitalized, GERMAN)
    assert worse["bleu"] < 50 and worse["bleu_lowercase"] == pytest.approx(100.0)


def test_label_smoothing_matches_its_formula():
    logits = np.array([[[1.0, 2.0, 0.5, -1.0]]], "float32")
    labels = np.array([[1]])
    log_p = logits[0, 0] - np.log(np.exp(logits[0, 0]).sum())
    expected = -(0.9 * log_p[1]) - 0.1 * log_p.mean()
    value = float(s2s.LabelSmoothedCrossentropy(0.1)(labels, logits))
    assert value == pytest.approx(expected, rel=1e-5)
    plain = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits))
    assert float(s2s.LabelSmoothedCrossentropy(0.0)(labels, logits)) == pytest.approx(plain, rel=1e-5)


@pytest.mark.slow
def test_a_source_longer_than_the_model_is_truncated_with_a_warning(tokenizer):
    model = tiny_model(tokenizer.vocabulary_size, max_length=16)
    long_source = " ".join(SENTENCES)  # far more than 16 tokens
    assert len(tokenizer.encode(long_source)) > 16
    with pytest.warns(UserWarning, match="1 source\\(s\\) longer than the model's max_sequence_length=16"):
        outputs, seconds = s2s.translate(model, tokenizer, [SENTENCES[0], long_source], batch_size=4,
                                         max_new_tokens=5)
    assert len(outputs) == 2 and all(isinstance(o, str) for o in outputs) and seconds > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a short source is not warned about
        beam, _ = s2s.translate(model, tokenizer, SENTENCES[:3], num_beams=3, batch_size=4, max_new_tokens=5)
    assert len(beam) == 3


def test_cross_attention_weights_are_distributions_over_the_source(tokenizer):
    model = tiny_model(tokenizer.vocabulary_size)
    source = tokenizer.encode(SENTENCES[0])
    weights = s2s.cross_attention_weights(model, source, [7, 8, 9])
    assert weights.shape == (2, 4, len(source))
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-5)


def test_bleu_timeline_round_trips(tmp_path):
    path = tmp_path / "timeline.csv"
    assert s2s.read_bleu_timeline(path) == []
    path.write_text("epoch,global_step,wall_s,val_bleu\n2,100,60.5,12.5\n")
    assert s2s.read_bleu_timeline(path) == [(2, 100, 60.5, 12.5)]
    png = s2s.plot_bleu_timeline(s2s.read_bleu_timeline(path), tmp_path / "curve.png")
    assert os.path.getsize(png) > 0


def test_pad_batches_can_pad_the_decoder_to_the_batch_longest_target():
    # Summarization: long sources, short targets. With target_bucket_width the decoder side is padded to the
    # batch's longest target + 1 rounded up to the width, never to the (source) bucket length.
    source_ids = [list(range(1, 40)), list(range(1, 30)), list(range(1, 35))]
    target_ids = [[7] * 5, [8] * 9, [9] * 2]
    batches = s2s.token_batches([len(s) for s in source_ids], [len(t) for t in target_ids], max_tokens=128,
                                bucket_width=8)
    padded = s2s.pad_batches(source_ids, target_ids, batches, start_id=2, end_id=3, target_bucket_width=4)
    seen = []
    for (indices, length), (inputs, labels, weights) in zip(batches, padded):
        longest = max(len(target_ids[i]) + 1 for i in indices)
        assert inputs["encoder_token_ids"].shape == (len(indices), length)
        assert inputs["decoder_token_ids"].shape == labels.shape == weights.shape
        assert labels.shape[1] == -(-longest // 4) * 4 < length
        for row, i in enumerate(indices):
            target = target_ids[i]
            assert inputs["decoder_token_ids"][row, : len(target) + 1].tolist() == [2, *target]
            assert labels[row, : len(target) + 1].tolist() == [*target, 3]
            assert weights[row].sum() == len(target) + 1
            seen.append(int(i))
    assert sorted(seen) == [0, 1, 2]
    # A width wider than the bucket never pads past the bucket length.
    wide = s2s.pad_batches(source_ids, target_ids, batches, start_id=2, end_id=3, target_bucket_width=1000)
    assert all(labels.shape[1] == length for (_, length), (_, labels, _) in zip(batches, wide))
    with pytest.raises(ValueError, match="target_bucket_width"):
        s2s.pad_batches(source_ids, target_ids, batches, start_id=2, end_id=3, target_bucket_width=0)


def test_both_schedules_peak_alike_and_the_cosine_one_anneals_to_zero_at_its_horizon():
    model = tiny_model(100)  # hidden_dim 16
    peak = 2.0 / np.sqrt(16 * 40)
    s2s.compile_translation_model(model, warmup_steps=40, learning_rate_scale=2.0)
    inverse_sqrt = model.optimizer._learning_rate  # the schedule object (Keras has no public getter for it)
    s2s.compile_translation_model(model, warmup_steps=40, learning_rate_scale=2.0, schedule="cosine",
                                  total_steps=400)
    cosine = model.optimizer._learning_rate
    assert type(inverse_sqrt).__name__ == "NoamSchedule" and type(cosine).__name__ == "WarmupCosineDecay"
    np.testing.assert_allclose(float(inverse_sqrt(39)), peak, rtol=1e-5)
    np.testing.assert_allclose(float(cosine(39)), peak, rtol=1e-5)
    np.testing.assert_allclose(float(inverse_sqrt(159)), peak / 2, rtol=1e-5)  # 1/sqrt(step): 4× the steps, half
    np.testing.assert_allclose(float(cosine(220)), peak / 2, rtol=1e-2)  # the cosine's midpoint
    assert float(cosine(400)) == 0.0 and float(inverse_sqrt(400)) > 0.0
    with pytest.raises(ValueError, match="total_steps"):
        s2s.compile_translation_model(model, schedule="cosine")
    with pytest.raises(ValueError, match="schedule"):
        s2s.compile_translation_model(model, schedule="linear", total_steps=10)
