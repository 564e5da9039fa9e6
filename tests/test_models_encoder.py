"""Tests of the BERT-style encoder family: config/presets, backbone, TextClassifier and MaskedLM."""

import json
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np
import pytest

from llm_tf.models import (
    ENCODER_PRESETS,
    MaskedLM,
    TextClassifier,
    TransformerEncoder,
    TransformerEncoderConfig,
    lengthen_positions,
)
from tests.conftest import REPO_ROOT

VOCABULARY_SIZE = 40
SEQUENCE_LENGTH = 8


def tiny_config(**overrides):
    values = dict(
        vocabulary_size=VOCABULARY_SIZE,
        max_sequence_length=SEQUENCE_LENGTH,
        hidden_dim=32,
        num_layers=2,
        num_heads=2,
        intermediate_dim=64,
        dropout=0.0,
        num_segments=2,
    )
    values.update(overrides)
    return TransformerEncoderConfig(**values)


def fixed_batch(batch_size=8, seed=0):
    """Token ids in [1, vocab) with trailing padding (id 0) of varying length, and segment ids."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(1, VOCABULARY_SIZE, size=(batch_size, SEQUENCE_LENGTH)).astype("int32")
    lengths = rng.integers(4, SEQUENCE_LENGTH + 1, size=batch_size)
    padding_mask = np.arange(SEQUENCE_LENGTH)[None, :] < lengths[:, None]
    token_ids = np.where(padding_mask, token_ids, 0).astype("int32")
    segment_ids = (np.arange(SEQUENCE_LENGTH)[None, :] >= (lengths[:, None] // 2)).astype(
        "int32"
    ) * padding_mask
    return {"token_ids": token_ids, "padding_mask": padding_mask, "segment_ids": segment_ids.astype("int32")}


def mlm_batch(batch_size=8, num_masks=3, seed=0):
    """Masked-LM inputs as the data pipeline yields them: (inputs, mask_ids, mask_weights).

    The last mask slot of every other row is a padded slot (weight 0, position 0, label 0).
    """
    inputs = fixed_batch(batch_size, seed)
    rng = np.random.default_rng(seed + 1)
    positions = np.stack([rng.choice(3, size=num_masks, replace=False) + 1 for _ in range(batch_size)])
    weights = np.ones((batch_size, num_masks), dtype="float32")
    weights[::2, -1] = 0.0
    positions = np.where(weights > 0, positions, 0).astype("int32")
    mask_ids = np.take_along_axis(inputs["token_ids"], positions, axis=1)
    mask_ids = np.where(weights > 0, mask_ids, 0).astype("int32")
    masked_tokens = inputs["token_ids"].copy()
    np.put_along_axis(masked_tokens, positions, 1, axis=1)  # id 1 plays [MASK]
    masked_tokens[:, 0] = inputs["token_ids"][:, 0]  # padded slots point at position 0: leave it alone
    return {**inputs, "token_ids": masked_tokens, "mask_positions": positions}, mask_ids, weights


def tile_rows(values, times):
    """Repeat a batch ``times`` times along axis 0, so one epoch with batch_size=rows is ``times`` steps."""
    if isinstance(values, dict):
        return {key: tile_rows(value, times) for key, value in values.items()}
    return np.concatenate([values] * times, axis=0)


# ----------------------------------------------------------------------------------------------- config


def test_config_json_round_trip_and_presets():
    config = TransformerEncoderConfig.from_preset(
        "mini", vocabulary_size=8000, num_segments=0, norm_first=True
    )
    assert config.vocabulary_size == 8000 and config.num_segments == 0 and config.norm_first
    assert TransformerEncoderConfig.from_json(json.dumps(config.to_dict())) == config
    base = TransformerEncoderConfig.from_preset("base")
    assert (base.num_layers, base.hidden_dim, base.num_heads, base.intermediate_dim) == (12, 768, 12, 3072)
    assert (base.vocabulary_size, base.max_sequence_length, base.num_segments) == (30522, 512, 2)
    assert (base.activation, base.layer_norm_epsilon, base.norm_first, base.embedding_norm) == (
        "gelu",
        1e-12,
        False,
        True,
    )
    assert sorted(ENCODER_PRESETS) == ["base", "mini", "small", "tiny"]
    widths = [
        TransformerEncoderConfig.from_preset(name).hidden_dim for name in ("tiny", "mini", "small", "base")
    ]
    assert widths == sorted(widths) and len(set(widths)) == 4


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: TransformerEncoderConfig.from_preset("huge"), "unknown encoder preset 'huge'.*'base'"),
        (lambda: TransformerEncoderConfig.from_preset("tiny", hidden_size=64), "unknown.*hidden_size"),
        (lambda: TransformerEncoderConfig.from_dict({"vocabulary_size": 10}), "missing required"),
        (lambda: tiny_config(hidden_dim=30, num_heads=4), "hidden_dim=30.*num_heads=4"),
        (lambda: tiny_config(activation="swish42"), "activation"),
        (lambda: tiny_config(num_segments=-1), "num_segments=-1"),
        (lambda: tiny_config(dropout=1.5), "dropout=1.5"),
        (lambda: tiny_config(position="rotary"), "position"),
    ],
)
def test_bad_config_raises_clear_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_parameter_count_matches_bert_formula():
    config = tiny_config()
    d, f, v, t, s = config.hidden_dim, config.intermediate_dim, VOCABULARY_SIZE, SEQUENCE_LENGTH, 2
    embeddings = (v + t + s) * d + 2 * d
    block = 4 * (d * d + d) + (d * f + f) + (f * d + d) + 2 * 2 * d
    encoder = TransformerEncoder(config)
    assert encoder.count_params() == embeddings + config.num_layers * block
    mlm = MaskedLM(backbone=encoder)
    # The head adds a dense layer, a LayerNorm and an output bias, but no second (vocab, d) table.
    assert mlm.count_params() == encoder.count_params() + (d * d + d) + 2 * d + v


# --------------------------------------------------------------------------------------------- backbone


def test_encoder_variants_build_the_documented_sublayers():
    bert = TransformerEncoder(tiny_config())
    assert bert.segment_embedding is not None and bert.embedding_norm is not None and bert.final_norm is None
    pre_norm = TransformerEncoder(
        tiny_config(
            norm_first=True, final_norm=True, embedding_norm=False, num_segments=0, position="sinusoidal"
        )
    )
    assert pre_norm.segment_embedding is None and pre_norm.embedding_norm is None
    assert pre_norm.final_norm is not None and all(block.norm_first for block in pre_norm.blocks)
    inputs = fixed_batch()
    inputs.pop("segment_ids")
    output = np.asarray(pre_norm(inputs))
    assert output.shape == (8, SEQUENCE_LENGTH, 32)
    # The final LayerNorm (gamma=1, beta=0 at init) leaves each token vector with mean 0 and variance 1.
    np.testing.assert_allclose(output.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(output.var(-1), 1.0, atol=1e-3)


@pytest.mark.parametrize("norm_first", [False, True])
def test_hidden_states_are_each_layers_output_and_end_with_the_model_output(norm_first):
    keras.utils.set_random_seed(2)
    encoder = TransformerEncoder(tiny_config(norm_first=norm_first, final_norm=norm_first, embedding_norm=not norm_first))
    inputs = fixed_batch()
    states = encoder.hidden_states(*encoder.unpack_inputs(inputs), training=False)
    assert len(states) == 2 + 1 + int(norm_first)  # embeddings, one per block, the final LayerNorm
    np.testing.assert_array_equal(np.asarray(states[-1]), np.asarray(encoder(inputs, training=False)))
    embedded = encoder.embedding(inputs["token_ids"]) + encoder.segment_embedding(inputs["segment_ids"])
    if not norm_first:
        embedded = encoder.embedding_norm(embedded)
    np.testing.assert_allclose(np.asarray(states[0]), np.asarray(embedded), atol=1e-6)
    padding_mask = keras.ops.convert_to_tensor(inputs["padding_mask"])
    for block, before, after in zip(encoder.blocks, states, states[1:]):
        np.testing.assert_allclose(np.asarray(block(before, padding_mask=padding_mask)), np.asarray(after), atol=1e-6)


def test_padding_does_not_leak_into_real_tokens_or_mean_pooling():
    keras.utils.set_random_seed(1)
    classifier = TextClassifier(3, pooling="mean", config=tiny_config())
    inputs = fixed_batch()
    sequence = np.asarray(classifier.backbone(inputs))
    logits = np.asarray(classifier(inputs))
    changed = {key: value.copy() for key, value in inputs.items()}
    changed["token_ids"] = np.where(inputs["padding_mask"], inputs["token_ids"], 7)
    changed["segment_ids"] = np.where(inputs["padding_mask"], inputs["segment_ids"], 1)
    changed_sequence = np.asarray(classifier.backbone(changed))
    mask = inputs["padding_mask"]
    np.testing.assert_allclose(changed_sequence[mask], sequence[mask], atol=1e-5)
    assert not np.allclose(changed_sequence[~mask], sequence[~mask])  # the padded positions did change
    np.testing.assert_allclose(np.asarray(classifier(changed)), logits, atol=1e-5)
    # Mean pooling is the plain mean of the real tokens' states.
    expected = [sequence[row][mask[row]].mean(0) for row in range(len(mask))]
    pooled_logits = np.asarray(classifier.classifier(np.stack(expected)))
    np.testing.assert_allclose(logits, pooled_logits, atol=1e-5)


def test_max_pooling_takes_each_features_maximum_over_the_real_tokens_only():
    keras.utils.set_random_seed(1)
    classifier = TextClassifier(3, pooling="max", config=tiny_config())
    inputs = fixed_batch()
    mask = inputs["padding_mask"]
    assert (~mask).any()  # the batch has padding to ignore
    sequence = np.asarray(classifier.backbone(inputs))
    expected = np.stack([sequence[row][mask[row]].max(0) for row in range(len(mask))])
    # Padded positions whose states exceed every real token's must not win (they would with a plain max).
    assert (sequence.max(1) > expected).any()
    np.testing.assert_allclose(np.asarray(classifier(inputs)), np.asarray(classifier.classifier(expected)),
                               atol=1e-5)
    # A row without any real token pools to zeros (no -inf, no NaN), in logits and in gradients.
    empty = {key: value[:1].copy() for key, value in inputs.items()}
    empty["padding_mask"][:] = False
    zeros = np.zeros((1, classifier.config.hidden_dim), "float32")
    np.testing.assert_allclose(np.asarray(classifier(empty)), np.asarray(classifier.classifier(zeros)), atol=1e-6)
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(classifier(empty, training=True))
    gradients = tape.gradient(loss, classifier.trainable_variables)
    assert all(np.all(np.isfinite(tf.convert_to_tensor(g))) for g in gradients if g is not None)


def test_mean_max_pooling_concatenates_the_mean_and_the_max_of_the_real_tokens():
    keras.utils.set_random_seed(2)
    classifier = TextClassifier(3, pooling="mean_max", config=tiny_config())
    hidden_dim = classifier.config.hidden_dim
    assert tuple(classifier.classifier.kernel.shape) == (2 * hidden_dim, 3)
    inputs = fixed_batch()
    mask = inputs["padding_mask"]
    sequence = np.asarray(classifier.backbone(inputs))
    expected = np.stack([np.concatenate([sequence[row][mask[row]].mean(0), sequence[row][mask[row]].max(0)])
                         for row in range(len(mask))])
    np.testing.assert_allclose(np.asarray(classifier(inputs)), np.asarray(classifier.classifier(expected)),
                               atol=1e-5)
    empty = {key: value[:1].copy() for key, value in inputs.items()}
    empty["padding_mask"][:] = False
    zeros = np.zeros((1, 2 * hidden_dim), "float32")
    np.testing.assert_allclose(np.asarray(classifier(empty)), np.asarray(classifier.classifier(zeros)), atol=1e-6)


def test_bare_token_ids_are_masked_with_padding_id_zero_and_segments_default_to_zero():
    encoder = TransformerEncoder(tiny_config())
    inputs = fixed_batch()
    from_dict = np.asarray(
        encoder(
            {
                "token_ids": inputs["token_ids"],
                "padding_mask": inputs["token_ids"] != 0,
                "segment_ids": np.zeros_like(inputs["token_ids"]),
            }
        )
    )
    np.testing.assert_allclose(np.asarray(encoder(inputs["token_ids"])), from_dict, atol=1e-6)
    assert not np.allclose(np.asarray(encoder(inputs)), from_dict)  # segment ids do matter


def test_encoder_is_bidirectional_and_dropout_only_in_training():
    encoder = TransformerEncoder(tiny_config(dropout=0.3))
    inputs = {"token_ids": fixed_batch()["token_ids"], "padding_mask": np.ones((8, SEQUENCE_LENGTH), bool)}
    before = np.asarray(encoder(inputs))
    changed = {**inputs, "token_ids": inputs["token_ids"].copy()}
    changed["token_ids"][:, -1] = (changed["token_ids"][:, -1] % (VOCABULARY_SIZE - 1)) + 1
    assert not np.allclose(np.asarray(encoder(changed))[:, 0], before[:, 0])  # the first token sees the last
    np.testing.assert_allclose(np.asarray(encoder(inputs)), before, atol=0)
    assert not np.allclose(np.asarray(encoder(inputs, training=True)), before)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda x: x["token_ids"].__setitem__((1, 2), VOCABULARY_SIZE),
            r"token_ids.*vocabulary_size=40.*got token_ids=40",
        ),
        (
            lambda x: x["token_ids"].__setitem__((0, 0), -3),
            r"token_ids.*got token_ids=-3 at position \(0, 0\)",
        ),
        (
            lambda x: x["segment_ids"].__setitem__((0, 1), 2),
            r"segment_ids.*num_segments=2.*got segment_ids=2",
        ),
        (lambda x: x.update(padding_masks=x["padding_mask"]), r"unknown input key.*padding_masks"),
        (lambda x: x.update(padding_mask=x["padding_mask"][:, :4]), r"padding_mask.*shape"),
        (lambda x: x.pop("token_ids"), r"must contain 'token_ids'"),
    ],
)
def test_bad_inputs_raise_clear_errors(change, message):
    classifier = TextClassifier(2, config=tiny_config())
    inputs = fixed_batch()
    change(inputs)
    with pytest.raises(ValueError, match=message):
        classifier(inputs)


def test_too_long_sequences_and_unexpected_segments_raise():
    encoder = TransformerEncoder(tiny_config())
    with pytest.raises(ValueError, match=r"sequence too long.*9 tokens.*max_sequence_length=8"):
        encoder(np.ones((2, SEQUENCE_LENGTH + 1), "int32"))
    no_segments = TransformerEncoder(tiny_config(num_segments=0))
    with pytest.raises(ValueError, match=r"num_segments=0"):
        no_segments(fixed_batch())
    mlm = MaskedLM(backbone=encoder)
    inputs, _, _ = mlm_batch()
    inputs["mask_positions"][0, 0] = SEQUENCE_LENGTH
    with pytest.raises(ValueError, match=r"mask_positions.*sequence length=8.*got mask_positions=8"):
        mlm(inputs)


def test_classifier_and_masked_lm_need_exactly_one_of_backbone_or_config():
    with pytest.raises(ValueError, match="exactly one of `backbone`"):
        TextClassifier(2)
    with pytest.raises(ValueError, match="exactly one of `backbone`"):
        MaskedLM(backbone=TransformerEncoder(tiny_config()), config=tiny_config())
    with pytest.raises(ValueError, match="pooling"):
        TextClassifier(2, pooling="maximum", config=tiny_config())
    with pytest.raises(ValueError, match="num_classes=0"):
        TextClassifier(0, config=tiny_config())


@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
def test_lengthen_positions_keeps_every_weight_and_tiles_the_learned_table(position):
    config = tiny_config(position=position, num_segments=0)
    mlm = MaskedLM(config=config)
    rng = np.random.default_rng(3)
    for weight in mlm.weights:  # non-zero biases and norms too, so that a weight left uncopied shows
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    longer = lengthen_positions(mlm, 3 * SEQUENCE_LENGTH + 2)
    assert isinstance(longer, MaskedLM) and longer.config.max_sequence_length == 3 * SEQUENCE_LENGTH + 2
    assert mlm.config.max_sequence_length == SEQUENCE_LENGTH  # the original is unchanged
    assert [w.path for w in longer.weights] == [w.path for w in mlm.weights]
    batch = {key: value for key, value in fixed_batch().items() if key != "segment_ids"}
    np.testing.assert_array_equal(np.asarray(longer(batch)), np.asarray(mlm(batch)))
    if position == "learned":
        table = mlm.backbone.embedding.position_embeddings.numpy()
        longer_table = longer.backbone.embedding.position_embeddings.numpy()
        np.testing.assert_array_equal(longer_table, table[np.arange(3 * SEQUENCE_LENGTH + 2) % SEQUENCE_LENGTH])
    # Positions past the old length now run, and the encoder alone lengthens the same way.
    long_ids = rng.integers(1, VOCABULARY_SIZE, size=(2, 3 * SEQUENCE_LENGTH)).astype("int32")
    assert longer.backbone(long_ids).shape == (2, 3 * SEQUENCE_LENGTH, 32)
    encoder = lengthen_positions(mlm.backbone, 2 * SEQUENCE_LENGTH)
    assert isinstance(encoder, TransformerEncoder) and encoder.config.max_sequence_length == 2 * SEQUENCE_LENGTH
    np.testing.assert_array_equal(np.asarray(encoder(batch)), np.asarray(mlm.backbone(batch)))
    with pytest.raises(ValueError, match=r"must be >= the model's 8 .*got max_sequence_length=4"):
        lengthen_positions(mlm, 4)
    with pytest.raises(ValueError, match="TransformerEncoder or a MaskedLM; got TextClassifier"):
        lengthen_positions(TextClassifier(2, config=config), 16)


# --------------------------------------------------------------------------------------------- training
# Tracing a train step costs seconds on 2 CPU cores, so only the two overfitting runs use compiled
# (XLA, jit_compile=True) steps; the short training checks run eagerly, and losses are measured eagerly.


def eager_loss(model, inputs, labels, sample_weight=None):
    return float(model.loss(labels, model(inputs), sample_weight=sample_weight))


def eager_accuracy(model, inputs, labels, sample_weight=None):
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    accuracy.update_state(labels, model(inputs), sample_weight=sample_weight)
    return float(accuracy.result())


@pytest.fixture(scope="module")
def pretrained_mlm():
    """A MaskedLM overfitted on the fixed batch with compiled (XLA) train steps, and its losses."""
    keras.utils.set_random_seed(0)
    mlm = MaskedLM(config=tiny_config())
    mlm.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=True)
    inputs, mask_ids, mask_weights = mlm_batch()
    start = eager_loss(mlm, inputs, mask_ids, mask_weights)
    steps = 100
    mlm.fit(
        tile_rows(inputs, steps),
        tile_rows(mask_ids, steps),
        sample_weight=tile_rows(mask_weights, steps),
        batch_size=8,
        shuffle=False,
        verbose=0,
    )
    end = eager_loss(mlm, inputs, mask_ids, mask_weights)
    accuracy = eager_accuracy(mlm, inputs, mask_ids, mask_weights)
    return {"model": mlm, "start": start, "end": end, "accuracy": accuracy, "steps": steps}


@pytest.mark.slow
def test_masked_lm_overfits_a_fixed_batch(pretrained_mlm):
    start, end = pretrained_mlm["start"], pretrained_mlm["end"]
    assert start > 0.5 * np.log(VOCABULARY_SIZE)  # an untrained head is close to uniform
    assert end < 0.05 * start, f"loss {start:.4f} -> {end:.4f} in {pretrained_mlm['steps']} steps"
    assert pretrained_mlm["accuracy"] == 1.0


@pytest.mark.slow
def test_text_classifier_overfits_a_fixed_batch():
    keras.utils.set_random_seed(0)
    classifier = TextClassifier(4, pooling="mean", dropout=0.0, config=tiny_config())
    classifier.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=True)
    inputs = fixed_batch()
    labels = np.arange(8, dtype="int32") % 4
    start = eager_loss(classifier, inputs, labels)
    steps = 60
    classifier.fit(tile_rows(inputs, steps), tile_rows(labels, steps), batch_size=8, shuffle=False, verbose=0)
    end = eager_loss(classifier, inputs, labels)
    assert end < 0.05 * start, f"loss {start:.4f} -> {end:.4f} in {steps} steps"
    assert eager_accuracy(classifier, inputs, labels) == 1.0


def test_masked_lm_loss_and_accuracy_ignore_weight_zero_slots():
    keras.utils.set_random_seed(0)
    mlm = MaskedLM(config=tiny_config())
    mlm.compile(optimizer="adam", run_eagerly=True)
    inputs, mask_ids, mask_weights = mlm_batch()
    assert (mask_weights == 0).any() and (mask_weights == 1).any()
    padded = mask_weights == 0

    # Directly on logits: scramble the logits and labels of the weight-0 slots.
    logits = np.asarray(mlm(inputs))
    scrambled = logits.copy()
    scrambled[padded] = np.random.default_rng(0).normal(scale=30.0, size=scrambled[padded].shape)
    other_labels = np.where(padded, 5, mask_ids)
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    values = []
    for candidate_logits, labels in ((logits, mask_ids), (scrambled, other_labels)):
        accuracy.reset_state()
        accuracy.update_state(labels, candidate_logits, sample_weight=mask_weights)
        loss = float(mlm.loss(labels, candidate_logits, sample_weight=mask_weights))
        values.append((loss, float(accuracy.result())))
    assert not np.allclose(scrambled, logits)
    assert values[0] == pytest.approx(values[1], abs=1e-6)
    # The loss is the mean cross-entropy over the real masks only.
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    token_losses = -np.take_along_axis(log_probs, mask_ids[..., None], axis=-1)[..., 0]
    assert values[0][0] == pytest.approx(token_losses[~padded].mean(), rel=1e-5)

    # End to end through compile/evaluate: point the weight-0 slots at other positions with other labels.
    moved = {**inputs, "mask_positions": np.where(padded, SEQUENCE_LENGTH - 1, inputs["mask_positions"])}
    moved_labels = np.where(padded, 9, mask_ids)
    assert not np.allclose(np.asarray(mlm(moved))[padded], logits[padded])
    first = mlm.evaluate(inputs, mask_ids, sample_weight=mask_weights, verbose=0, return_dict=True)
    second = mlm.evaluate(moved, moved_labels, sample_weight=mask_weights, verbose=0, return_dict=True)
    assert first == pytest.approx(second, abs=1e-6)
    assert first["loss"] == pytest.approx(values[0][0], rel=1e-5)


def test_frozen_backbone_trains_only_the_head():
    keras.utils.set_random_seed(0)
    classifier = TextClassifier(3, pooling="first", config=tiny_config(dropout=0.2), freeze_backbone=True)
    head = [classifier.classifier.kernel, classifier.classifier.bias]
    assert {id(v) for v in classifier.trainable_weights} == {id(v) for v in head}
    backbone_before = [np.array(v) for v in classifier.backbone.weights]
    head_before = [np.array(v) for v in head]
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    classifier.fit(fixed_batch(), np.arange(8) % 3, epochs=3, verbose=0)
    for variable, before in zip(classifier.backbone.weights, backbone_before):
        np.testing.assert_array_equal(np.array(variable), before, err_msg=variable.path)
    assert all(not np.allclose(np.array(v), b) for v, b in zip(head, head_before))
    assert classifier.get_config()["freeze_backbone"] is True
    # A frozen backbone is a fixed feature extractor: its dropout (0.2 here) stays off in training mode,
    # so with no head dropout a training call equals an inference call.
    inputs = fixed_batch()
    assert not np.allclose(
        np.asarray(classifier.backbone(inputs, training=True)), np.asarray(classifier.backbone(inputs))
    )
    without_head_dropout = TextClassifier(3, backbone=classifier.backbone, dropout=0.0, freeze_backbone=True)
    np.testing.assert_allclose(
        np.asarray(without_head_dropout(inputs, training=True)),
        np.asarray(without_head_dropout(inputs)),
        atol=1e-6,
    )


@pytest.mark.slow
def test_fine_tuning_path_reuses_a_masked_lm_backbone(pretrained_mlm):
    mlm = pretrained_mlm["model"]
    pretrained = [np.array(v) for v in mlm.backbone.weights]
    classifier = TextClassifier(2, pooling="pooler", backbone=mlm.backbone)
    assert classifier.backbone is mlm.backbone
    assert {id(v) for v in mlm.backbone.weights} <= {id(v) for v in classifier.trainable_weights}
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    inputs, labels = fixed_batch(), np.arange(8) % 2
    start = eager_loss(classifier, inputs, labels)
    classifier.fit(inputs, labels, epochs=3, verbose=0)
    assert eager_loss(classifier, inputs, labels) < start
    changed = [not np.allclose(np.array(v), before) for v, before in zip(mlm.backbone.weights, pretrained)]
    assert any(changed), "fine-tuning did not update the pretrained backbone"


def test_backbone_weights_move_from_a_masked_lm_to_a_new_classifier_through_a_weights_file(tmp_path):
    keras.utils.set_random_seed(0)
    mlm = MaskedLM(config=tiny_config())
    mlm.backbone.embedding.token_embeddings.assign(
        np.random.default_rng(4).normal(size=(VOCABULARY_SIZE, 32))
    )
    path = str(tmp_path / "backbone.weights.h5")
    mlm.backbone.save_weights(path)
    classifier = TextClassifier(2, config=tiny_config())
    inputs = fixed_batch()
    assert not np.allclose(np.asarray(classifier.backbone(inputs)), np.asarray(mlm.backbone(inputs)))
    classifier.backbone.load_weights(path)
    np.testing.assert_allclose(
        np.asarray(classifier.backbone(inputs)), np.asarray(mlm.backbone(inputs)), atol=1e-6
    )


def test_mixed_precision_gives_float32_logits():
    classifier = TextClassifier(3, pooling="mean", config=tiny_config(), dtype="mixed_bfloat16")
    mlm = MaskedLM(config=tiny_config(), dtype="mixed_bfloat16")
    assert classifier.backbone.compute_dtype == "bfloat16"
    assert classifier.backbone.embedding.token_embeddings.dtype == "float32"
    inputs, _, _ = mlm_batch()
    classifier_inputs = {key: value for key, value in inputs.items() if key != "mask_positions"}
    for logits in (classifier(classifier_inputs), mlm(inputs)):
        assert keras.backend.standardize_dtype(logits.dtype) == "float32"
        assert np.all(np.isfinite(np.asarray(logits)))


def test_masked_lm_head_is_tied_to_the_token_embedding():
    mlm = MaskedLM(config=tiny_config())
    inputs, _, _ = mlm_batch()
    table = mlm.backbone.embedding.token_embeddings
    assert [w.path for w in mlm.weights if tuple(w.shape) == (VOCABULARY_SIZE, 32)] == [table.path]
    mlm.output_bias.assign(np.linspace(-1, 1, VOCABULARY_SIZE))
    # Gathering first then projecting equals projecting everything then gathering.
    everywhere = np.asarray(mlm({k: v for k, v in inputs.items() if k != "mask_positions"}))
    np.testing.assert_allclose(
        np.asarray(mlm(inputs)),
        np.take_along_axis(everywhere, inputs["mask_positions"][..., None], axis=1),
        atol=1e-5,
    )
    backbone_inputs = {k: v for k, v in inputs.items() if k != "mask_positions"}
    hidden = np.asarray(mlm.backbone(backbone_inputs))[:, 1]
    head = np.asarray(
        mlm.transform_norm(keras.activations.gelu(mlm.transform_dense(hidden), approximate=False))
    )
    np.testing.assert_allclose(
        everywhere[:, 1], head @ np.asarray(table).T + np.asarray(mlm.output_bias), atol=1e-4
    )


# ----------------------------------------------------------------------------------------- save / load

_RELOAD_SCRIPT = """
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np, keras
# llm_tf.models exports lazily: touching a name imports its family, which registers the classes.
from llm_tf.models import TransformerEncoder  # noqa: F401
directory = sys.argv[1]
names = json.load(open(os.path.join(directory, "names.json")))
results, report = {}, {}
for name in names:
    model = keras.saving.load_model(os.path.join(directory, name + ".keras"))
    inputs = dict(np.load(os.path.join(directory, name + "_inputs.npz")))
    results[name] = np.asarray(model(inputs, training=False))
    report[name] = {
        "class": type(model).__name__,
        "num_weights": len(model.weights),
        "num_trainable_weights": len(model.trainable_weights),
    }
    if type(model).__name__ == "MaskedLM":
        # Tied: the token table is the only (vocabulary, hidden) weight, i.e. also the output projection.
        table = model.backbone.embedding.token_embeddings
        report[name]["vocab_tables"] = sum(tuple(w.shape) == tuple(table.shape) for w in model.weights)
        results[name + "_table"] = np.asarray(table)
np.savez(os.path.join(directory, "reloaded.npz"), **results)
json.dump(report, open(os.path.join(directory, "report.json"), "w"))
"""


@pytest.mark.slow
def test_save_load_in_a_fresh_process_reproduces_outputs():
    keras.utils.set_random_seed(0)
    mlm_inputs, _, _ = mlm_batch()
    classifier_inputs = {key: value for key, value in mlm_inputs.items() if key != "mask_positions"}
    mlm = MaskedLM(config=tiny_config())
    mlm.output_bias.assign(np.random.default_rng(2).normal(size=VOCABULARY_SIZE))
    models = {
        "encoder": (TransformerEncoder(tiny_config(norm_first=True, final_norm=True)), classifier_inputs),
        "classifier": (
            TextClassifier(
                3, pooling="pooler", backbone=TransformerEncoder(tiny_config()), freeze_backbone=True
            ),
            classifier_inputs,
        ),
        "mean_max_classifier": (  # its head reads 2 * hidden_dim pooled features
            TextClassifier(3, pooling="mean_max", config=tiny_config(num_segments=0)),
            {"token_ids": classifier_inputs["token_ids"], "padding_mask": classifier_inputs["padding_mask"]},
        ),
        "mlm": (mlm, mlm_inputs),
    }
    for name in ("classifier", "mean_max_classifier"):
        # Make the logits O(1), so that the comparison below is not trivially within tolerance.
        head = models[name][0].classifier
        head.kernel.assign(np.random.default_rng(3).normal(size=tuple(head.kernel.shape)))
    mlm.compile(optimizer="adam")
    expected = {name: np.asarray(model(inputs)) for name, (model, inputs) in models.items()}
    with tempfile.TemporaryDirectory() as directory:
        for name, (model, inputs) in models.items():
            model.save(os.path.join(directory, name + ".keras"))
            np.savez(os.path.join(directory, name + "_inputs.npz"), **inputs)
        with open(os.path.join(directory, "names.json"), "w") as f:
            json.dump(list(models), f)
        result = subprocess.run(
            [sys.executable, "-c", _RELOAD_SCRIPT, directory],
            capture_output=True,
            text=True,
            timeout=180,
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        )
        assert result.returncode == 0, f"reload in a fresh process failed:\n{result.stderr[-3000:]}"
        reloaded = dict(np.load(os.path.join(directory, "reloaded.npz")))
        with open(os.path.join(directory, "report.json")) as f:
            report = json.load(f)
    for name, (model, _) in models.items():
        assert report[name]["class"] == type(model).__name__
        assert report[name]["num_weights"] == len(model.weights)
        assert report[name]["num_trainable_weights"] == len(model.trainable_weights)
        np.testing.assert_allclose(reloaded[name], expected[name], atol=1e-5, rtol=1e-5, err_msg=name)
    # The frozen backbone stayed frozen: only the pooler and classifier (kernel + bias each) train.
    assert report["classifier"]["num_trainable_weights"] == 4
    assert report["mlm"]["vocab_tables"] == 1
    np.testing.assert_array_equal(reloaded["mlm_table"], np.asarray(mlm.backbone.embedding.token_embeddings))
