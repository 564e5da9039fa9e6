"""llm_tf.tasks.language_modeling: the LM-window sampler, the loss evaluator, interval evaluation, generation,
character data, the residual init and the run-directory check."""

import dataclasses
import json
import math
import os

import numpy as np
import pytest

from llm_tf.tasks import language_modeling as lm


def _documents():
    # Document d holds the values 100 * d + i: a window reveals which documents it touches.
    return [100 * d + np.arange(length) for d, length in enumerate((12, 3, 9, 5))]


# ------------------------------------------------------------------------------------------------------------
# The window sampler.


def test_random_windows_of_a_stream_are_shifted_seeded_and_cover_every_start():
    stream = np.arange(20) * 7  # distinct values: a window reveals its start
    sampler = lm.LMWindowSampler(stream, block_size=4)
    assert sampler.num_starts == 16  # starts 0 .. 20 - 4 - 1
    inputs, labels = sampler.random_windows(2000, seed=3)
    assert inputs.shape == labels.shape == (2000, 4) and inputs.dtype == labels.dtype == np.int32
    starts = inputs[:, 0] // 7
    np.testing.assert_array_equal(inputs, stream[starts[:, None] + np.arange(4)])
    np.testing.assert_array_equal(labels, stream[starts[:, None] + np.arange(1, 5)])
    assert set(starts.tolist()) == set(range(16))  # every window is drawn, none past the end
    again, _ = sampler.random_windows(2000, seed=3)
    other_key, _ = sampler.random_windows(2000, seed=3, key=1)
    other_seed, _ = sampler.random_windows(2000, seed=4)
    np.testing.assert_array_equal(inputs, again)
    assert not np.array_equal(inputs, other_key) and not np.array_equal(inputs, other_seed)


def test_random_starts_of_a_stream_are_the_stateless_uniform_draw():
    import tensorflow as tf

    sampler = lm.LMWindowSampler(np.arange(1000), block_size=64)
    expected = tf.random.stateless_uniform((50,), seed=tf.constant((1337, 1), tf.int64), minval=0,
                                           maxval=1000 - 64, dtype=tf.int32).numpy()
    np.testing.assert_array_equal(sampler.random_starts(50, seed=1337, key=1), expected)


def test_windows_within_documents_never_cross_a_boundary_and_cover_every_valid_start():
    sampler = lm.LMWindowSampler(_documents(), block_size=4, within_documents=True)
    # Valid starts per document: 12 - 4 = 8, none for the 3-token one, 9 - 4 = 5, 5 - 4 = 1.
    assert sampler.num_starts == 14 and sampler.num_documents == 4
    inputs, labels = sampler.random_windows(3000, seed=0)
    windows = np.concatenate([inputs, labels[:, -1:]], axis=1)
    assert (windows // 100 == windows[:, :1] // 100).all()  # one document per window
    assert set(map(int, inputs[:, 0])) == {*range(0, 8), *range(200, 205), 300}


def test_packed_windows_cross_boundaries_and_separators_are_appended():
    sampler = lm.LMWindowSampler(_documents(), block_size=4, separator_id=999)
    assert sampler.num_tokens == 29 + 4 and sampler.num_starts == 33 - 4
    assert sampler.stream[12] == 999 and sampler.stream[16] == 999
    inputs, labels = sampler.random_windows(3000, seed=0)
    assert set(sampler.random_starts(3000, seed=0).tolist()) == set(range(29))  # every start of the stream
    windows = np.concatenate([inputs, labels[:, -1:]], axis=1)
    real = np.where(windows == 999, -1, windows // 100)
    assert any(len(set(row[row >= 0].tolist())) > 1 for row in real)  # some window spans two documents
    within = lm.LMWindowSampler(_documents(), block_size=4, separator_id=999, within_documents=True)
    inputs, labels = within.random_windows(3000, seed=0)
    # A window may end on its document's separator (the model learns to end a text) but never run past it.
    assert (inputs != 999).all() and (labels[:, :-1] != 999).all() and (labels[:, -1] == 999).any()


def test_tf_starts_match_the_numpy_mapping():
    import tensorflow as tf

    sampler = lm.LMWindowSampler(_documents(), block_size=4, within_documents=True)
    values = np.array([0, 7, 8, 12, 13, 14, 29, -1, 10**12], dtype=np.int64)
    expected = sampler.starts_from_indices(np.mod(values, sampler.num_starts))
    np.testing.assert_array_equal(sampler.tf_starts_from_random(tf.constant(values)).numpy(), expected)
    np.testing.assert_array_equal(expected[:6], [0, 7, 15, 19, 24, 0])  # positions in the packed stream
    np.testing.assert_array_equal(sampler.stream[expected[:6]], [0, 7, 200, 204, 300, 0])


def test_sequential_windows_cover_the_stream_or_each_document_without_overlap():
    inputs, labels = lm.LMWindowSampler(np.arange(11), 3).sequential_windows()
    assert inputs.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert labels.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    inputs, labels = lm.LMWindowSampler(_documents(), 4, within_documents=True).sequential_windows()
    assert inputs[:, 0].tolist() == [0, 4, 200, 204, 300]  # (12 - 1) // 4 = 2, (9 - 1) // 4 = 2, (5 - 1) // 4 = 1
    assert (labels[:, -1] // 100 == inputs[:, 0] // 100).all()


def test_epoch_batches_are_reproducible_per_epoch_with_or_without_padding_mask():
    sampler = lm.LMWindowSampler(np.arange(1000, dtype=np.int32) % 65, block_size=8)
    batches_for_epoch = sampler.epoch_batches(batch_size=3, steps=5, seed=3)
    first = list(batches_for_epoch(0).as_numpy_iterator())
    again = list(batches_for_epoch(0).as_numpy_iterator())
    other_epoch = list(batches_for_epoch(1).as_numpy_iterator())
    assert len(first) == 5
    inputs, labels = first[0]
    assert set(inputs) == {"token_ids"}  # no padding mask: a GPT then applies its causal mask only
    assert inputs["token_ids"].shape == (3, 8) and labels.shape == (3, 8)
    np.testing.assert_array_equal(labels[:, :-1], inputs["token_ids"][:, 1:])
    np.testing.assert_array_equal((inputs["token_ids"][:, -1] + 1) % 65, labels[:, -1])
    for (x1, _), (x2, _) in zip(first, again):
        np.testing.assert_array_equal(x1["token_ids"], x2["token_ids"])
    assert not all(np.array_equal(a[0]["token_ids"], b[0]["token_ids"]) for a, b in zip(first, other_epoch))
    # The batches of epoch e are random_starts(steps * batch, seed, key=e).
    starts = sampler.random_starts(15, seed=3, key=1).reshape(5, 3)
    np.testing.assert_array_equal(other_epoch[2][0]["token_ids"], sampler.windows(starts[2])[0])
    masked, _ = next(sampler.epoch_batches(3, 5, seed=3, padding_mask=True)(0).as_numpy_iterator())
    assert masked["padding_mask"].dtype == bool and masked["padding_mask"].all()


def test_document_start_fraction_puts_that_share_of_windows_at_document_starts():
    documents = [np.arange(100, 140), np.arange(200, 206), np.arange(300, 350)]
    sampler = lm.LMWindowSampler(documents, block_size=8, separator_id=0)
    firsts = sampler.document_starts()
    np.testing.assert_array_equal(firsts, [0, 41, 48])  # packed: the short middle document can open a window
    uniform = sampler.random_starts(4000, seed=3, key=2)
    np.testing.assert_array_equal(sampler.random_starts(4000, seed=3, key=2, document_start_fraction=0.0), uniform)
    mixed = sampler.random_starts(4000, seed=3, key=2, document_start_fraction=0.5)
    np.testing.assert_array_equal(mixed, sampler.random_starts(4000, seed=3, key=2, document_start_fraction=0.5))
    moved = mixed != uniform
    assert np.isin(mixed[moved], firsts).all()
    # Half the draws go to a document start (a few land on the one the uniform draw had already picked).
    assert 0.45 < np.isin(mixed, firsts).mean() < 0.55
    everything = sampler.random_starts(3000, seed=3, key=2, document_start_fraction=1.0)
    values, counts = np.unique(everything, return_counts=True)
    np.testing.assert_array_equal(values, firsts)
    assert counts.min() > 900  # each document equally likely
    inputs, _ = sampler.windows(everything[:1])
    assert inputs[0, 0] in (100, 200, 300)
    # Within documents only those with a full window can open one; the batches of an epoch use the fraction.
    inside = lm.LMWindowSampler(documents, block_size=8, within_documents=True)
    np.testing.assert_array_equal(inside.document_starts(), [0, 46])
    batches = inside.epoch_batches(batch_size=4, steps=3, seed=1, document_start_fraction=1.0)(0)
    for batch_inputs, _ in batches.as_numpy_iterator():
        assert set(batch_inputs["token_ids"][:, 0]) <= {100, 300}
    with pytest.raises(ValueError, match="document_start_fraction"):
        sampler.random_starts(4, seed=0, document_start_fraction=1.5)
    with pytest.raises(ValueError, match="document_start_fraction"):
        lm.CausalLMConfig(document_start_fraction=-0.1)
    short = lm.LMWindowSampler([np.arange(5), np.arange(5)], block_size=5)
    assert len(short.document_starts()) == 1  # the second one ends the stream: no window fits after it


def test_bad_sampler_input_raises_value_error_naming_the_problem():
    with pytest.raises(ValueError, match="block_size"):
        lm.LMWindowSampler(np.arange(8), block_size=8)
    with pytest.raises(ValueError, match="block_size"):
        lm.LMWindowSampler(np.arange(8), block_size=0)
    with pytest.raises(ValueError, match="1-D"):
        lm.LMWindowSampler(np.zeros((4, 4), np.int32), block_size=2)
    with pytest.raises(ValueError, match="any document"):
        lm.LMWindowSampler([[1, 2], [3, 4, 5]], block_size=3, within_documents=True)
    with pytest.raises(ValueError, match="count"):
        lm.LMWindowSampler(np.arange(20), 4).random_starts(0, seed=0)


def test_make_causal_lm_dataset_serves_documents_within_boundaries():
    from llm_tf.text import make_causal_lm_dataset

    dataset = make_causal_lm_dataset(_documents(), 4, batch_size=4, seed=1, within_documents=True,
                                     windows_per_epoch=40)
    for inputs, labels in dataset.as_numpy_iterator():
        windows = np.concatenate([inputs["token_ids"], labels[:, -1:]], axis=1)
        assert (windows // 100 == windows[:, :1] // 100).all()


# ------------------------------------------------------------------------------------------------------------
# Model pieces: a tiny GPT.


def _tiny_gpt(context=6, vocabulary_size=11):
    import keras

    from llm_tf.models import GPT, GPTConfig

    keras.utils.set_random_seed(1)
    return GPT(GPTConfig(vocabulary_size=vocabulary_size, max_sequence_length=context, hidden_dim=16,
                         num_layers=1, num_heads=2, intermediate_dim=32, initializer_range=0.5))


def test_loss_evaluator_equals_a_hand_computed_cross_entropy():
    model = _tiny_gpt()
    generator = np.random.default_rng(0)
    inputs = generator.integers(0, 11, size=(5, 6)).astype(np.int32)
    labels = generator.integers(0, 11, size=(5, 6)).astype(np.int32)
    logits = np.asarray(model({"token_ids": inputs}), dtype=np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_probs, labels[..., None], axis=-1).mean()
    # batch_size=2: three chunks (2, 2, 1), weighted by their token counts.
    assert lm.LossEvaluator(model, jit_compile=False, batch_size=2)(inputs, labels) == pytest.approx(expected, 1e-5)
    with pytest.raises(ValueError, match="labels"):
        lm.LossEvaluator(model, jit_compile=False)(inputs, labels[:, :3])


@pytest.mark.slow
def test_generate_continuation_slides_the_context_like_a_cropped_reference():
    model = _tiny_gpt(context=6)
    prompt = [3, 1, 4]
    generated = lm.generate_continuation(model, prompt, 9, sampler="greedy")
    tokens = list(prompt)
    for _ in range(9):  # each token from the last context - 1 = 5 tokens
        logits = np.asarray(model(np.array([tokens[-5:]], np.int32)))[0, -1]
        tokens.append(int(np.argmax(logits)))
    assert generated == tokens[len(prompt):]
    # A longer stride adds several tokens per call: the first 3 (filling the context) are the same.
    assert lm.generate_continuation(model, prompt, 9, sampler="greedy", stride=3)[:3] == generated[:3]


@pytest.mark.slow
def test_generate_continuation_is_reproducible_per_seed():
    model = _tiny_gpt(context=6)

    def sample(seed, **settings):
        settings = {"sampler": "temperature", "temperature": 1.5, **settings}
        return lm.generate_continuation(model, [2], 12, seed=seed, **settings)

    first, again, other = sample(5), sample(5), sample(6)
    assert first == again and len(first) == 12 and first != other
    assert all(0 <= token < 11 for token in first)
    assert sample(9, sampler="top_k", top_k=1) == lm.generate_continuation(model, [2], 12, sampler="greedy")
    with pytest.raises(ValueError, match="prompt_ids"):
        lm.generate_continuation(model, [], 3)
    with pytest.raises(ValueError, match="stride"):
        lm.generate_continuation(model, [1], 3, stride=6)
    with pytest.raises(ValueError, match="top_k"):
        lm.generate_continuation(model, [1], 3, sampler="top_k", top_k=0)


def test_interval_evaluation_writes_one_row_per_interval_and_resumes(tmp_path):
    import keras

    model = _tiny_gpt(context=4)
    model.compile(optimizer=keras.optimizers.SGD(0.5),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    sampler = lm.LMWindowSampler(np.arange(200) % 11, block_size=4)
    import tensorflow as tf

    fixed = [tf.data.Dataset.from_tensor_slices(({"token_ids": x}, y)).batch(len(x))
             for x, y in (sampler.random_windows(8, 0, 0), sampler.random_windows(8, 0, 1))]
    csv_path = str(tmp_path / "eval_losses.csv")
    evaluation = lm.IntervalEvaluation(fixed[0], fixed[1], steps_per_epoch=3, csv_path=csv_path)
    history = model.fit(sampler.epoch_batches(4, 3, seed=0)(0).repeat(), validation_data=fixed[1], epochs=2, shuffle=False,
                        steps_per_epoch=3, callbacks=[evaluation], verbose=0)
    rows = lm.read_evaluation_rows(csv_path)
    assert [row["iteration"] for row in rows] == [0, 3, 6]
    assert [row["val_loss"] for row in rows[1:]] == pytest.approx(history.history["val_loss"])
    assert rows[0]["val_loss"] > rows[-1]["val_loss"]  # SGD at 0.5 on a periodic stream learns it
    assert rows[0]["learning_rate"] == pytest.approx(0.5) and "running_train_loss" not in rows[0]
    # A resumed run keeps the earlier rows and replaces those from its first evaluation on.
    resumed = lm.IntervalEvaluation(fixed[0], fixed[1], 3, csv_path)
    resumed.set_model(model)
    resumed.on_epoch_end(0, {"val_loss": 9.0, "loss": 8.0})
    assert [(row["iteration"], row["val_loss"]) for row in lm.read_evaluation_rows(csv_path)] == [
        (0, rows[0]["val_loss"]), (3, 9.0)
    ]
    # Resumed at iteration 6 (an interval's end) without its row (killed after the backup): the row is added.
    resumed = lm.IntervalEvaluation(fixed[0], fixed[1], 3, csv_path)
    resumed.set_model(model)
    resumed.on_train_begin()
    assert [row["iteration"] for row in lm.read_evaluation_rows(csv_path)] == [0, 3, 6]
    assert resumed.rows[-1]["val_loss"] == pytest.approx(rows[-1]["val_loss"], abs=1e-5)


def test_scaled_residual_init_touches_only_the_residual_output_projections():
    from llm_tf.models import GPT, GPTConfig

    config = GPTConfig(vocabulary_size=65, max_sequence_length=16, hidden_dim=64, num_layers=2, num_heads=2,
                       intermediate_dim=256)
    model = GPT(config)
    lm.scale_residual_projections(model, seed=0)
    expected = 0.02 / math.sqrt(2 * 2)
    for block in model.blocks:
        for dense in (block.self_attention.output_dense, block.feed_forward.output_dense):
            assert float(np.std(np.asarray(dense.kernel))) == pytest.approx(expected, rel=0.1)
        assert float(np.std(np.asarray(block.feed_forward.intermediate_dense.kernel))) == pytest.approx(0.02, rel=0.1)


# ------------------------------------------------------------------------------------------------------------
# The training configuration and model.


def test_config_round_trips_through_json_and_compares_recipes():
    config = lm.CausalLMConfig(max_iters=500, eval_interval=250, steps_per_execution=50)
    assert lm.CausalLMConfig.from_json(config.to_json()) == config
    assert config.tokens_per_step == 12 * 64
    reference = lm.CausalLMConfig()
    assert lm.same_recipe(dataclasses.replace(reference, seed=3, precision="mixed_bfloat16", jit_compile=False),
                          reference)
    assert not lm.same_recipe(config, reference)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"max_iters": 2100}, "max_iters"),
        ({"steps_per_execution": 100}, "steps_per_execution"),
        ({"block_size": 0}, "block_size"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"min_learning_rate": 0.01}, "min_learning_rate"),
        ({"hidden_dim": 130}, "hidden_dim"),
        ({"sample_prompt": ""}, "sample_prompt"),
        ({"preset": ""}, "preset"),
        ({"train_fraction": 1.0}, "train_fraction"),
    ],
)
def test_bad_config_values_raise_value_error_naming_the_field(overrides, named):
    with pytest.raises(ValueError, match=named):
        lm.CausalLMConfig(**overrides)


def test_unknown_config_field_in_json_is_rejected():
    values = json.loads(lm.CausalLMConfig().to_json())
    values["learning_rat"] = 1.0
    with pytest.raises(ValueError, match="learning_rat"):
        lm.CausalLMConfig.from_json(json.dumps(values))


def test_build_causal_lm_compiles_the_configured_gpt():
    config = lm.CausalLMConfig(block_size=16, hidden_dim=32, num_layers=2, num_heads=2, intermediate_dim=64,
                               scale_residual_init=True, tie_embeddings=True, use_bias=False)
    model = lm.build_causal_lm(config, 65, jit_compile=False, steps_per_execution=2)
    assert (model.config.max_sequence_length, model.config.tie_embeddings, model.config.use_bias) == (16, True, False)
    assert model.optimizer is not None and model.jit_compile is False
    expected = 0.02 / math.sqrt(2 * 2)
    assert float(np.std(np.asarray(model.blocks[0].feed_forward.output_dense.kernel))) == pytest.approx(expected,
                                                                                                     rel=0.15)
    untied = lm.build_causal_lm(dataclasses.replace(config, tie_embeddings=False), 65, jit_compile=False)
    assert untied.count_params() - model.count_params() == 32 * 65  # the separate bias-free output head


# ------------------------------------------------------------------------------------------------------------
# Data and run directories.


def test_encode_characters_matches_the_tokenizer_and_rejects_unknown_characters():
    from llm_tf.text import CharTokenizer

    tokenizer = CharTokenizer.train("hello world\n", special_tokens=False, progress=False)
    ids = lm.encode_characters("world hello\n", tokenizer)
    assert ids.dtype == np.int32 and ids.tolist() == tokenizer.encode("world hello\n")
    assert lm.encode_characters("", tokenizer).tolist() == []
    with pytest.raises(ValueError, match="'z'"):
        lm.encode_characters("hazy", tokenizer)


@pytest.mark.data
def test_character_data_matches_nanogpt(shared_data_dir):
    tokenizer, train_ids, val_ids = lm.load_character_data(str(shared_data_dir))
    assert tokenizer.vocabulary_size == 65
    assert (len(train_ids), len(val_ids)) == (1_003_854, 111_540)
    assert tokenizer.decode(train_ids[:14].tolist()) == "First Citizen:"
    assert int(train_ids.min()) >= 0 and int(train_ids.max()) == 64
    with pytest.raises(ValueError, match="max_characters"):
        lm.load_character_data(str(shared_data_dir), max_characters=300, block_size=64)


def test_missing_character_data_raises_file_not_found(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_TF_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="tiny_shakespeare"):
        lm.load_character_data(str(tmp_path))


def test_load_lm_run_refuses_missing_and_incomplete_run_directories(tmp_path):
    with pytest.raises(FileNotFoundError, match="run_dir"):
        lm.load_lm_run(str(tmp_path / "nowhere"))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="incomplete.*missing tokenizer, best.keras"):
        lm.load_lm_run(str(run))
    (run / "tokenizer").mkdir()
    (run / "best.keras").write_bytes(b"")
    with pytest.raises(ValueError, match="no finished results.json"):
        lm.load_lm_run(str(run))
    (run / "results.json").write_text(json.dumps({"status": "stopped_non_finite_loss", "summary_table": ""}))
    with pytest.raises(ValueError, match="stopped_non_finite_loss"):
        lm.load_lm_run(str(run))
    (run / "results.json").write_text(json.dumps({"status": "completed"}))
    with pytest.raises(ValueError, match="no finished results.json"):
        lm.load_lm_run(str(run), required=["summary_table"])
    with pytest.raises(ValueError, match="checkpoint"):
        lm.load_lm_run(str(run), checkpoint="final")
    assert os.path.isfile(run / "results.json")
