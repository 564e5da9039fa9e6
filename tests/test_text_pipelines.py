"""tf.data pipelines: shapes and dtypes, padding, truncation, seeded shuffling, sharding policy, and the
semantics of each task (causal windows, BERT masking, seq2seq shifting)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from llm_tf.text import (
    BPETokenizer,
    CharTokenizer,
    WordPieceTokenizer,
    make_causal_lm_dataset,
    make_classification_dataset,
    make_masked_lm_dataset,
    make_seq2seq_dataset,
)

TEXTS = [
    "the cat sat on the mat",
    "a dog barked",
    "markets rose sharply on monday after the report",
    "hi",
    "the film won three awards at the festival",
    "rain again",
    "the minister announced a new plan for schools",
]
LABELS = [0, 1, 2, 1, 0, 2, 1]


@pytest.fixture(scope="module")
def wordpiece():
    return WordPieceTokenizer.train(TEXTS * 3, vocabulary_size=200, min_frequency=1)


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.train(TEXTS * 3, vocabulary_size=320, min_frequency=1)


@pytest.fixture(scope="module")
def char():
    return CharTokenizer.train(TEXTS)


def _collect(dataset):
    return list(dataset.as_numpy_iterator())


def _auto_shard_policy(dataset):
    return dataset.options().experimental_distribute.auto_shard_policy


# --------------------------------------------------------------------------------------------------
# Classification.


@pytest.mark.parametrize("name", ["wordpiece", "bpe", "char"])
def test_classification_batches_match_the_tokenizer(name, request):
    tokenizer = request.getfixturevalue(name)
    dataset = make_classification_dataset(TEXTS, LABELS, tokenizer, batch_size=3, max_sequence_length=8)
    assert _auto_shard_policy(dataset) == tf.data.experimental.AutoShardPolicy.DATA
    expected = tokenizer.encode(TEXTS, add_special_tokens=True, max_length=8)
    rows, labels = [], []
    for inputs, batch_labels in _collect(dataset):
        assert inputs["token_ids"].dtype == np.int32 and inputs["padding_mask"].dtype == bool
        assert batch_labels.dtype == np.int32
        width = inputs["token_ids"].shape[1]
        assert width == max(inputs["padding_mask"].sum(axis=1))  # padded to the longest in the batch
        for ids, mask in zip(inputs["token_ids"], inputs["padding_mask"]):
            rows.append(ids[mask].tolist())
            assert (ids[~mask] == tokenizer.pad_id).all()
            assert mask[: mask.sum()].all()  # real tokens first, then padding
        labels.extend(batch_labels.tolist())
    assert rows == expected
    assert labels == LABELS
    assert all(row[0] == tokenizer.cls_id and row[-1] == tokenizer.sep_id for row in rows)
    assert max(len(row) for row in rows) == 8  # the long texts were truncated


def test_classification_fixed_length_gives_static_shapes(wordpiece):
    dataset = make_classification_dataset(
        TEXTS,
        LABELS,
        wordpiece,
        batch_size=2,
        max_sequence_length=12,
        pad_to_max_length=True,
        drop_remainder=True,
    )
    inputs_spec, label_spec = dataset.element_spec
    assert inputs_spec["token_ids"].shape.as_list() == [2, 12]
    assert inputs_spec["padding_mask"].shape.as_list() == [2, 12]
    assert label_spec.shape.as_list() == [2]
    assert len(_collect(dataset)) == len(TEXTS) // 2


def test_classification_without_special_tokens(char):
    dataset = make_classification_dataset(["ab", "c"], [0, 1], char, batch_size=2, add_special_tokens=False)
    inputs, _ = _collect(dataset)[0]
    assert inputs["token_ids"].tolist() == [char.encode("ab"), char.encode("c") + [char.pad_id]]


def test_classification_shuffle_is_seeded_and_reshuffles_each_epoch(wordpiece):
    def label_order(dataset):
        return [label for _, labels in _collect(dataset) for label in labels.tolist()]

    many_texts = [f"text number {i}" for i in range(40)]
    many_labels = list(range(40))
    first = make_classification_dataset(
        many_texts, many_labels, wordpiece, batch_size=8, shuffle=True, seed=7
    )
    second = make_classification_dataset(
        many_texts, many_labels, wordpiece, batch_size=8, shuffle=True, seed=7
    )
    other = make_classification_dataset(
        many_texts, many_labels, wordpiece, batch_size=8, shuffle=True, seed=8
    )
    epoch_one, epoch_two = label_order(first), label_order(first)
    assert sorted(epoch_one) == many_labels and epoch_one != many_labels
    assert epoch_one != epoch_two  # a new order every epoch
    assert label_order(second) == epoch_one  # ... reproducible from the seed
    assert label_order(other) != epoch_one


def test_graph_mode_and_pretokenized_paths_agree(wordpiece):
    graph = make_classification_dataset(TEXTS, LABELS, wordpiece, batch_size=4, max_sequence_length=6)
    eager = make_classification_dataset(
        TEXTS, LABELS, wordpiece, batch_size=4, max_sequence_length=6, pretokenize=True
    )
    for (a_inputs, a_labels), (b_inputs, b_labels) in zip(_collect(graph), _collect(eager)):
        np.testing.assert_array_equal(a_inputs["token_ids"], b_inputs["token_ids"])
        np.testing.assert_array_equal(a_inputs["padding_mask"], b_inputs["padding_mask"])
        np.testing.assert_array_equal(a_labels, b_labels)


def test_classification_rejects_bad_input(wordpiece):
    with pytest.raises(ValueError, match="labels"):
        make_classification_dataset(TEXTS, LABELS[:-1], wordpiece)
    with pytest.raises(ValueError, match="integer"):
        make_classification_dataset(TEXTS, [0.5] * len(TEXTS), wordpiece)
    with pytest.raises(ValueError, match="batch_size"):
        make_classification_dataset(TEXTS, LABELS, wordpiece, batch_size=0)
    with pytest.raises(ValueError, match="tokenizer"):
        make_classification_dataset(TEXTS, LABELS, "bert")
    with pytest.raises(ValueError, match="empty"):
        make_classification_dataset([], [], wordpiece)


def test_pipeline_runs_under_a_distribution_strategy(wordpiece):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    dataset = make_classification_dataset(
        TEXTS,
        LABELS,
        wordpiece,
        batch_size=4,
        max_sequence_length=8,
        pad_to_max_length=True,
        drop_remainder=True,
    )
    distributed = strategy.experimental_distribute_dataset(dataset)
    inputs, labels = next(iter(distributed))
    assert strategy.experimental_local_results(inputs["token_ids"])[0].shape == (4, 8)
    assert strategy.experimental_local_results(labels)[0].shape == (4,)


# --------------------------------------------------------------------------------------------------
# Causal LM.


def test_causal_lm_training_windows_are_random_shifted_and_seeded():
    stream = np.arange(1000, dtype=np.int32) * 3  # distinct values: a window reveals its offset
    dataset = make_causal_lm_dataset(stream, block_size=16, batch_size=8, shuffle=True, seed=3)
    assert _auto_shard_policy(dataset) == tf.data.experimental.AutoShardPolicy.DATA
    batches = _collect(dataset)
    assert len(batches) == math.ceil((len(stream) - 1) // 16 / 8)
    starts = []
    for inputs, labels in batches:
        x = inputs["token_ids"]
        assert x.dtype == np.int32 and labels.dtype == np.int32 and x.shape[1] == 16
        assert inputs["padding_mask"].all()
        offsets = x[:, 0] // 3
        np.testing.assert_array_equal(x, stream[offsets[:, None] + np.arange(16)])
        np.testing.assert_array_equal(labels, stream[offsets[:, None] + np.arange(1, 17)])
        starts.extend(offsets.tolist())
    assert min(starts) >= 0 and max(starts) <= len(stream) - 17
    assert len(set(starts)) > len(starts) // 2 and starts != sorted(starts)  # random, not sequential
    again = [
        inputs["token_ids"][:, 0].tolist()
        for inputs, _ in _collect(make_causal_lm_dataset(stream, 16, batch_size=8, seed=3))
    ]
    assert [s * 3 for s in starts] == [v for batch in again for v in batch]
    next_epoch = [v // 3 for inputs, _ in _collect(dataset) for v in inputs["token_ids"][:, 0].tolist()]
    assert next_epoch != starts


def test_causal_lm_evaluation_windows_are_sequential_and_non_overlapping():
    stream = np.arange(103)
    dataset = make_causal_lm_dataset(stream, block_size=10, batch_size=4, shuffle=False)
    x = np.concatenate([inputs["token_ids"] for inputs, _ in _collect(dataset)])
    y = np.concatenate([labels for _, labels in _collect(dataset)])
    assert x.shape == (10, 10)  # (103 - 1) // 10 full windows; the 2 leftover tokens are dropped
    np.testing.assert_array_equal(x.reshape(-1), np.arange(100))
    np.testing.assert_array_equal(y.reshape(-1), np.arange(1, 101))


def test_causal_lm_static_shapes_and_errors():
    dataset = make_causal_lm_dataset(np.arange(50), 8, batch_size=2, drop_remainder=True, windows_per_epoch=6)
    assert dataset.element_spec[0]["token_ids"].shape.as_list() == [2, 8]
    assert len(_collect(dataset)) == 3
    with pytest.raises(ValueError, match="block_size"):
        make_causal_lm_dataset(np.arange(8), 8)
    with pytest.raises(ValueError, match="1-D"):
        make_causal_lm_dataset(np.zeros((4, 4), np.int32), 2)


# --------------------------------------------------------------------------------------------------
# Masked LM.


def test_masked_lm_follows_the_bert_recipe(char):
    texts = ["the quick brown fox jumps over the lazy dog " * 3] * 64
    dataset = make_masked_lm_dataset(
        texts,
        char,
        batch_size=16,
        max_sequence_length=100,
        max_selections_per_sequence=20,
        shuffle=True,
        seed=11,
    )
    assert _auto_shard_policy(dataset) == tf.data.experimental.AutoShardPolicy.DATA
    originals = char.encode(texts[0], add_special_tokens=True, max_length=100)
    special = set(char.special_ids)
    replaced_by = {"mask": 0, "random": 0, "kept": 0}
    for inputs, mask_ids, mask_weights in _collect(dataset):
        assert inputs["mask_positions"].shape == (16, 20) and mask_weights.dtype == np.float32
        for row in range(16):
            count = int(mask_weights[row].sum())
            selectable = sum(token not in special for token in originals)
            assert count == min(20, math.ceil(0.15 * selectable))
            assert (mask_weights[row, :count] == 1).all() and (mask_weights[row, count:] == 0).all()
            positions = inputs["mask_positions"][row, :count]
            assert len(set(positions.tolist())) == count
            assert all(originals[p] not in special for p in positions)  # specials are never selected
            np.testing.assert_array_equal(mask_ids[row, :count], [originals[p] for p in positions])
            masked = inputs["token_ids"][row][inputs["padding_mask"][row]]
            untouched = [i for i in range(len(originals)) if i not in set(positions.tolist())]
            np.testing.assert_array_equal(masked[untouched], np.asarray(originals)[untouched])
            for p in positions:
                if masked[p] == char.mask_id:
                    replaced_by["mask"] += 1
                elif masked[p] == originals[p]:
                    replaced_by["kept"] += 1
                else:
                    replaced_by["random"] += 1
    total = sum(replaced_by.values())
    # 64 sequences x 20 selections; the binomial standard error at 10% is under 1%.
    assert abs(replaced_by["mask"] / total - 0.8) < 0.04
    assert abs(replaced_by["random"] / total - 0.1) < 0.04
    assert abs(replaced_by["kept"] / total - 0.1) < 0.04 + 1 / char.vocabulary_size


@pytest.mark.slow
def test_masked_lm_is_reproducible_from_the_seed_and_changes_each_epoch(wordpiece):
    def build(seed):
        return make_masked_lm_dataset(TEXTS * 4, wordpiece, batch_size=7, max_sequence_length=12, seed=seed)

    def masking(batches):
        return [
            np.concatenate([inputs["token_ids"], inputs["mask_positions"]], axis=1)
            for inputs, _, _ in batches
        ]

    dataset = build(5)
    epoch_one, epoch_two = masking(_collect(dataset)), masking(_collect(dataset))
    same_seed, other_seed = masking(_collect(build(5))), masking(_collect(build(6)))
    assert all(np.array_equal(a, b) for a, b in zip(epoch_one, same_seed))
    assert not all(np.array_equal(a, b) for a, b in zip(epoch_one, other_seed))
    assert not all(np.array_equal(a, b) for a, b in zip(epoch_one, epoch_two))


def test_masked_lm_fixed_length_and_padding_slots(bpe):
    dataset = make_masked_lm_dataset(
        ["hi", "the cat sat on the mat"],
        bpe,
        batch_size=2,
        max_sequence_length=10,
        pad_to_max_length=True,
        max_selections_per_sequence=3,
        drop_remainder=True,
    )
    inputs, mask_ids, weights = _collect(dataset)[0]
    assert inputs["token_ids"].shape == (2, 10) and inputs["mask_positions"].shape == (2, 3)
    short = len(bpe.encode("hi", add_special_tokens=True))
    assert weights[0].sum() == math.ceil(0.15 * (short - 2))
    assert (inputs["mask_positions"][weights == 0] == 0).all() and (mask_ids[weights == 0] == 0).all()
    with pytest.raises(ValueError, match="mask token"):
        make_masked_lm_dataset(TEXTS, CharTokenizer.train(TEXTS, special_tokens=False))


# --------------------------------------------------------------------------------------------------
# Sequence to sequence.


@pytest.mark.parametrize("name", ["wordpiece", "bpe"])
def test_seq2seq_shifts_targets_and_weights_padding(name, request):
    tokenizer = request.getfixturevalue(name)
    sources, targets = TEXTS, TEXTS[::-1]
    dataset = make_seq2seq_dataset(
        sources, targets, tokenizer, batch_size=3, max_source_length=9, max_target_length=6
    )
    assert _auto_shard_policy(dataset) == tf.data.experimental.AutoShardPolicy.DATA
    row = 0
    for inputs, labels, weights in _collect(dataset):
        assert labels.dtype == np.int32 and weights.dtype == np.float32
        for i in range(labels.shape[0]):
            content = tokenizer.encode(targets[row], max_length=5)
            source = tokenizer.encode(sources[row], max_length=9)
            real = inputs["decoder_padding_mask"][i]
            assert inputs["decoder_token_ids"][i][real].tolist() == [tokenizer.bos_id] + content
            assert labels[i][weights[i] == 1].tolist() == content + [tokenizer.eos_id]
            np.testing.assert_array_equal(weights[i] == 1, real)
            assert inputs["encoder_token_ids"][i][inputs["encoder_padding_mask"][i]].tolist() == source
            assert (labels[i][weights[i] == 0] == tokenizer.pad_id).all()
            row += 1
    assert row == len(sources)


def test_seq2seq_fixed_lengths_and_errors(wordpiece, char):
    dataset = make_seq2seq_dataset(
        TEXTS,
        TEXTS,
        wordpiece,
        char,
        batch_size=2,
        max_source_length=7,
        max_target_length=5,
        pad_to_max_length=True,
        drop_remainder=True,
    )
    inputs, labels, weights = dataset.element_spec
    assert inputs["encoder_token_ids"].shape.as_list() == [2, 7]
    assert inputs["decoder_token_ids"].shape.as_list() == [2, 5]
    assert labels.shape.as_list() == [2, 5] and weights.shape.as_list() == [2, 5]
    with pytest.raises(ValueError, match="parallel"):
        make_seq2seq_dataset(TEXTS, TEXTS[:-1], wordpiece)
    with pytest.raises(ValueError, match="bos"):
        make_seq2seq_dataset(TEXTS, TEXTS, wordpiece, CharTokenizer.train(TEXTS, special_tokens=False))
