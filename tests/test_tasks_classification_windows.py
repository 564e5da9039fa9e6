"""llm_tf.tasks.windows: first / head+tail / random / covering windows over encoded documents, averaging."""

import numpy as np
import pytest

from llm_tf.tasks.windows import EncodedSplit, average_by_document, model_inputs


def _encoded(lengths, labels=None):
    pieces = [np.arange(100 * (i + 1), 100 * (i + 1) + length, dtype=np.int32) for i, length in enumerate(lengths)]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    labels = np.zeros(len(lengths), np.int32) if labels is None else np.asarray(labels, np.int32)
    return EncodedSplit(np.concatenate(pieces), offsets, labels, cls_id=2, sep_id=3)


def test_first_windows_wrap_truncate_and_pad():
    windows = _encoded([3, 10]).first_windows(max_sequence_length=6)
    assert windows.tolist() == [[2, 100, 101, 102, 3, 0], [2, 200, 201, 202, 203, 3]]
    assert windows.dtype == np.int32


def test_covering_windows_are_full_overlapping_and_reach_the_end():
    encoded = _encoded([3, 10, 8])
    windows, documents = encoded.covering_windows(max_sequence_length=6)  # 4 document tokens per window
    assert documents.tolist() == [0, 1, 1, 1, 2, 2]
    document_1 = windows[documents == 1]
    assert document_1[:, 1:5].tolist() == [[200, 201, 202, 203], [203, 204, 205, 206], [206, 207, 208, 209]]
    assert set(document_1[:, 1:5].ravel().tolist()) == set(range(200, 210))
    assert windows[documents == 2][:, 1:5].tolist() == [[300, 301, 302, 303], [304, 305, 306, 307]]
    assert encoded.windows_per_document(6).tolist() == [1, 3, 2]


def test_head_tail_windows_keep_the_start_and_end_of_long_documents():
    encoded = _encoded([3, 10, 5])
    windows = encoded.head_tail_windows(max_sequence_length=7)  # 5 document tokens: 2 head + 3 tail
    assert windows[0].tolist() == [2, 100, 101, 102, 3, 0, 0]
    assert windows[1].tolist() == [2, 200, 201, 207, 208, 209, 3]
    assert windows[2].tolist() == [2, 300, 301, 302, 303, 304, 3]
    np.testing.assert_array_equal(windows[[0, 2]], encoded.first_windows(7)[[0, 2]])


def test_random_windows_stay_inside_each_document_and_follow_the_seed():
    encoded = _encoded([3, 50, 9])
    first = encoded.random_windows(8, np.random.default_rng([0, 1]))
    again = encoded.random_windows(8, np.random.default_rng([0, 1]))
    other_epoch = [encoded.random_windows(8, np.random.default_rng([0, e])) for e in range(2, 6)]
    np.testing.assert_array_equal(first, again)
    assert any(not np.array_equal(first, windows) for windows in other_epoch)
    for windows in [first] + other_epoch:
        assert windows[0].tolist() == [2, 100, 101, 102, 3, 0, 0, 0]
        for row, base, length in ((1, 200, 50), (2, 300, 9)):
            body = windows[row, 1:7]
            assert windows[row, 0] == 2 and windows[row, 7] == 3
            assert np.all(np.diff(body) == 1) and base <= body[0] and body[-1] < base + length


def test_document_windows_dispatches_every_kind_and_rejects_unknown_ones():
    encoded = _encoded([3, 10])
    np.testing.assert_array_equal(encoded.document_windows("first", 6)[0], encoded.first_windows(6))
    np.testing.assert_array_equal(encoded.document_windows("head_tail", 6)[0], encoded.head_tail_windows(6))
    token_ids, documents = encoded.document_windows("all", 6)
    assert documents.tolist() == [0, 1, 1, 1] and token_ids.shape == (4, 6)
    random_ids, random_docs = encoded.document_windows("random", 6, rng=np.random.default_rng(0))
    assert random_ids.shape == (2, 6) and random_docs.tolist() == [0, 1]
    with pytest.raises(ValueError, match="rng"):
        encoded.document_windows("random", 6)
    with pytest.raises(ValueError, match="kind"):
        encoded.document_windows("middle", 6)
    with pytest.raises(ValueError, match="max_sequence_length"):
        encoded.first_windows(2)


def test_encoded_split_checks_its_offsets():
    with pytest.raises(ValueError, match="offsets"):
        EncodedSplit(np.arange(5), np.array([0, 3]), np.array([0, 1]), 2, 3)
    with pytest.raises(ValueError, match="offsets"):
        EncodedSplit(np.arange(5), np.array([0, 4, 3, 5]), np.array([0, 1, 1]), 2, 3)
    assert len(EncodedSplit(np.zeros(0), np.zeros(1), np.zeros(0), 2, 3)) == 0


def test_average_by_document_and_model_inputs():
    probabilities = np.array([[1.0, 0.0], [0.0, 1.0], [0.2, 0.8]])
    averaged = average_by_document(probabilities, np.array([0, 0, 1]), 2)
    np.testing.assert_allclose(averaged, [[0.5, 0.5], [0.2, 0.8]])
    with pytest.raises(ValueError, match="every document"):
        average_by_document(probabilities, np.array([0, 0, 0]), 2)
    inputs = model_inputs(np.array([[2, 5, 3, 0]]))
    assert inputs["padding_mask"].tolist() == [[True, True, True, False]]
